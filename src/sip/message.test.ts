// Unit and property tests of the SIP codec: URIs (§19.1.4 comparison), response building (§8.2.6),
// serialize → parse → serialize, and the stream framer under any chunking.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseMessage } from './parse.ts';
import { StreamFramer, type FrameEvent } from './framer.ts';
import { createResponse, headerValue, headerValues, serializeMessage, type SipRequest } from './message.ts';
import { cseq, to } from './headers.ts';
import { formatUri, isAddressHost, isSipUri, parseUri, uriEquals } from './uri.ts';

const OPTIONS = [
  'OPTIONS sip:fe1.contoso.com SIP/2.0',
  'Via: SIP/2.0/TCP 127.0.3.1:5061;branch=z9hG4bKa1;rport',
  'Via: SIP/2.0/TLS 127.0.3.2;branch=z9hG4bKb2;received=127.0.3.9',
  'Max-Forwards: 70',
  'To: <sip:fe1.contoso.com>',
  'From: "Alice" <sip:alice@contoso.com>;tag=f1',
  'Call-ID: c1@127.0.3.1',
  'CSeq: 7 OPTIONS',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

describe('URI', () => {
  test('parse and format round-trip, with IPv6, port, params and headers', () => {
    for (const text of ['sip:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?Subject=hi&Priority=urgent', 'sips:fe1.contoso.com', 'tel:+1-201-555-0123;phone-context=example.com', 'http://example.com/x']) {
      assert.equal(formatUri(parseUri(text)), text);
    }
  });

  test('RFC 3261 §19.1.4 equivalent URIs compare equal', () => {
    const pairs = [
      ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
      ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
      ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;newparam=5'],
      ['sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com', 'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com'],
      ['sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x'],
      ['sip:a@[2001:db8:0::1]', 'sip:a@[2001:DB8::1]'],
    ];
    for (const [a = '', b = ''] of pairs) assert.ok(uriEquals(parseUri(a), parseUri(b)), `${a} == ${b}`);
  });

  test('a host is an address (dotted IPv4, bracketed IPv6) or a name', () => {
    const hostOf = (text: string): string => {
      const uri = parseUri(text);
      assert.ok(isSipUri(uri));
      return uri.host;
    };
    for (const text of ['sip:a@192.0.2.1', 'sip:192.0.2.1:5061;lr', 'sip:[2001:db8::1]:5061', 'sips:b@[::ffff:192.0.2.1]']) assert.ok(isAddressHost(hostOf(text)), text);
    for (const text of ['sip:a@sip.fabrikam.com', 'sip:fe1.contoso.com:5061', 'sip:1a.example', 'sip:localhost']) assert.ok(!isAddressHost(hostOf(text)), text);
  });

  test('RFC 3261 §19.1.4 non-equivalent URIs compare different', () => {
    const pairs = [
      ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'],
      ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'],
      ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'],
      ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp'],
      ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'],
      ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4'],
      ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off'],
      ['sip:alice@atlanta.com', 'sips:alice@atlanta.com'],
    ];
    for (const [a = '', b = ''] of pairs) assert.ok(!uriEquals(parseUri(a), parseUri(b)), `${a} != ${b}`);
  });
});

describe('responses (§8.2.6)', () => {
  test('createResponse copies Via (all, in order), From, To + tag, Call-ID, CSeq', () => {
    const request = parseMessage(Buffer.from(OPTIONS)) as SipRequest;
    const response = createResponse(request, 200, { toTag: 'srv1', headers: [{ name: 'X-Registrar-Mode', value: 'primary' }] });
    assert.deepEqual(headerValues(response, 'Via'), headerValues(request, 'Via'));
    assert.equal(headerValue(response, 'From'), headerValue(request, 'From'));
    assert.equal(to(response).tag, 'srv1');
    assert.equal(headerValue(response, 'Call-ID'), 'c1@127.0.3.1');
    assert.deepEqual(cseq(response), { seq: 7, method: 'OPTIONS' });
    const reparsed = parseMessage(serializeMessage(response));
    assert.equal(reparsed.kind === 'response' && reparsed.reason, 'OK');
    assert.equal(headerValue(reparsed, 'X-Registrar-Mode'), 'primary');
  });

  test('a To that already has a tag keeps it; 100 Trying gets no tag', () => {
    const request = parseMessage(Buffer.from(OPTIONS.replace('To: <sip:fe1.contoso.com>', 'To: <sip:fe1.contoso.com>;tag=old'))) as SipRequest;
    assert.equal(to(createResponse(request, 200, { toTag: 'new' })).tag, 'old');
    const plain = parseMessage(Buffer.from(OPTIONS)) as SipRequest;
    assert.equal(to(createResponse(plain, 100, { toTag: 'new' })).tag, null);
  });

  test('header names are case-insensitive and compact forms expand; methods are case-sensitive', () => {
    const m = parseMessage(Buffer.from(OPTIONS.replace('Call-ID:', 'i:').replace('CSeq: 7 OPTIONS', 'cseq: 7 OPTIONS'))) as SipRequest;
    assert.equal(headerValue(m, 'call-id'), 'c1@127.0.3.1');
    assert.equal(headerValue(m, 'I'), 'c1@127.0.3.1');
    assert.throws(() => parseMessage(Buffer.from(OPTIONS.replace('CSeq: 7 OPTIONS', 'CSeq: 7 options'))), /CSeq method/);
  });

  test('commas inside quotes and <> do not split; authentication headers are never split', () => {
    const m = parseMessage(Buffer.from(OPTIONS.replace('Max-Forwards: 70', 'Max-Forwards: 70\r\nContact: "Smith, J" <sip:j,k@a;x=1>;q=0.5, <sip:k@b>\r\nAuthorization: Digest username="a", realm="b"'))) as SipRequest;
    assert.deepEqual(headerValues(m, 'Contact'), ['"Smith, J" <sip:j,k@a;x=1>;q=0.5', '<sip:k@b>']);
    assert.deepEqual(headerValues(m, 'Authorization'), ['Digest username="a", realm="b"']);
  });

  test('headers built with any spelling are found by any spelling; unknown names only case-insensitively', () => {
    const m = { headers: [{ name: 'CALL-ID', value: 'a' }, { name: 'x-thing', value: 'b' }, { name: 'Contact', value: 'c' }, { name: 'contact', value: 'd' }] };
    assert.equal(headerValue(m, 'i'), 'a');
    assert.equal(headerValue(m, 'Call-Id'), 'a');
    assert.equal(headerValue(m, 'X-Thing'), 'b');
    assert.deepEqual(headerValues(m, 'm'), ['c', 'd']);
    assert.equal(headerValue(m, 'Contac'), undefined);
  });

  test('header values parsed again give the same answers, and a bad one fails every time', () => {
    // parse.ts and the request path parse the same From/To/Contact/CSeq values more than once; the
    // parsers keep the last few results (headers.ts RecentParses): interleave more values than they keep.
    const values = Array.from({ length: 9 }, (_, n) => `<sip:u${n}@contoso.com>;tag=t${n}`);
    for (let round = 0; round < 3; round++) {
      for (const [n, value] of values.entries()) {
        const m = parseMessage(Buffer.from(OPTIONS.replace('To: <sip:fe1.contoso.com>', `To: ${value}`).replace('CSeq: 7', `CSeq: ${n}`))) as SipRequest;
        assert.equal(to(m).tag, `t${n}`);
        assert.equal(formatUri(to(m).uri), `sip:u${n}@contoso.com`);
        assert.equal(cseq(m).seq, n);
      }
      assert.throws(() => to({ headers: [{ name: 'To', value: '<sip:u@contoso.com>;tag=' }] } as unknown as SipRequest), /empty/);
    }
  });
});

// --- property tests ---

const token = fc.stringMatching(/^[A-Za-z0-9\-.!%*_+`'~]{1,12}$/);
const hostname = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9](\.[a-z][a-z0-9]{0,6}){0,2}$/);
const host = fc.oneof(hostname, fc.ipV4(), fc.constantFrom('[2001:db8::1]', '[::ffff:192.0.2.1]'));
const uriParamText = fc.stringMatching(/^[A-Za-z0-9\-_.!~*'()]{1,8}(=[A-Za-z0-9\-_.!~*'()]{1,8})?$/);
const user = fc.stringMatching(/^([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-F]{2}){1,12}$/);
const uriText = fc
  .record({ scheme: fc.constantFrom('sip', 'sips'), user: fc.option(user), host, port: fc.option(fc.integer({ min: 1, max: 65535 })), params: fc.array(uriParamText, { maxLength: 3 }) })
  .map((u) => `${u.scheme}:${u.user === null ? '' : `${u.user}@`}${u.host}${u.port === null ? '' : `:${u.port}`}${u.params.map((p) => `;${p}`).join('')}`);
const quoted = fc.stringMatching(/^[A-Za-z0-9 ,;:<>@]{0,12}$/).map((s) => `"${s}"`);
const nameAddr = fc.record({ display: fc.option(quoted), uri: uriText, tag: token }).map((n) => `${n.display ?? ''}<${n.uri}>;tag=${n.tag}`);
const method = fc.constantFrom('INVITE', 'REGISTER', 'OPTIONS', 'BYE', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE');

const messageArb = fc
  .record({
    method,
    ruri: uriText,
    vias: fc.array(fc.record({ t: fc.constantFrom('TCP', 'TLS'), host, branch: token }), { minLength: 1, maxLength: 4 }),
    from: nameAddr,
    to: nameAddr,
    callId: token,
    seq: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    contacts: fc.array(nameAddr, { maxLength: 3 }),
    extra: fc.array(fc.tuple(fc.stringMatching(/^X-[A-Za-z]{1,8}$/), fc.stringMatching(/^[ -~]{0,30}$/)), { maxLength: 3 }),
    body: fc.uint8Array({ maxLength: 300 }),
  })
  .map((r) => {
    const lines = [
      `${r.method} ${r.ruri} SIP/2.0`,
      ...r.vias.map((v) => `Via: SIP/2.0/${v.t} ${v.host};branch=${v.branch}`),
      `From: ${r.from}`,
      `To: ${r.to}`,
      `Call-ID: ${r.callId}`,
      `CSeq: ${r.seq} ${r.method}`,
      'Max-Forwards: 70',
      ...r.contacts.map((c) => `Contact: ${c}`),
      ...r.extra.map(([n, v]) => `${n}: ${v.trim()}`),
      `Content-Length: ${r.body.length}`,
    ];
    return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), Buffer.from(r.body)]);
  });

function messagesOf(events: FrameEvent[]): Buffer[] {
  return events.map((e) => {
    assert.equal(e.kind, 'message', e.kind === 'invalid' || e.kind === 'fatal' ? e.error.reason : e.kind);
    return e.kind === 'message' ? serializeMessage(e.message) : Buffer.alloc(0);
  });
}

describe('properties', () => {
  test('serialize → parse → serialize is stable', () => {
    fc.assert(
      fc.property(messageArb, (wire) => {
        const once = serializeMessage(parseMessage(wire));
        const twice = serializeMessage(parseMessage(once));
        assert.ok(once.equals(twice));
      }),
      { numRuns: 300 },
    );
  });

  test('the framer yields the same messages whatever the chunking, with keep-alives between', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 4 }), fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 40 }), (wires, cuts) => {
        const stream = Buffer.concat(wires.flatMap((w) => [Buffer.from('\r\n\r\n'), w]));
        const whole = new StreamFramer({ role: 'server' }).push(stream);
        const framer = new StreamFramer({ role: 'server' });
        const pieces: FrameEvent[] = [];
        let offset = 0;
        for (let i = 0; offset < stream.length; i++) {
          const size = cuts[i % cuts.length] ?? 1;
          pieces.push(...framer.push(stream.subarray(offset, offset + size)));
          offset += size;
        }
        assert.deepEqual(pieces.map((e) => e.kind), whole.map((e) => e.kind));
        assert.equal(whole.filter((e) => e.kind === 'ping').length, wires.length);
        const a = messagesOf(whole.filter((e) => e.kind !== 'ping'));
        const b = messagesOf(pieces.filter((e) => e.kind !== 'ping'));
        assert.equal(a.length, wires.length);
        a.forEach((m, i) => assert.ok(m.equals(b[i] ?? Buffer.alloc(0))));
      }),
      { numRuns: 150 },
    );
  });

  test('random bytes never throw anything but SipMessageError, and the framer never buffers past its limits', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 10 }), (chunks) => {
        for (const chunk of chunks) {
          try {
            parseMessage(Buffer.from(chunk));
          } catch (error) {
            assert.equal((error as Error).name, 'SipMessageError');
          }
        }
        const framer = new StreamFramer({ role: 'server', lineBytesMax: 256, headerSectionBytesMax: 1024, bodyBytesMax: 1024 });
        for (const chunk of chunks) {
          framer.push(Buffer.from(chunk));
          assert.ok(framer.bufferedBytes <= 2048);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('framer', () => {
  test('a double CRLF is a ping; client role reports every CRLF as a pong', () => {
    assert.deepEqual(new StreamFramer({ role: 'server' }).push(Buffer.from('\r\n\r\n\r\n\r\n')).map((e) => e.kind), ['ping', 'ping']);
    const split = new StreamFramer({ role: 'server' });
    assert.deepEqual([...split.push(Buffer.from('\r\n\r')), ...split.push(Buffer.from('\n'))].map((e) => e.kind), ['ping']);
    assert.deepEqual(new StreamFramer({ role: 'client' }).push(Buffer.from('\r\n')).map((e) => e.kind), ['pong']);
  });

  test('a megabyte header line is refused after the line limit, without buffering it', () => {
    const framer = new StreamFramer({ role: 'server' });
    const events = framer.push(Buffer.concat([Buffer.from('OPTIONS sip:a SIP/2.0\r\nX-Big: '), Buffer.alloc(1024 * 1024, 0x61)]));
    assert.equal(events.length, 1);
    assert.equal(events[0]?.kind, 'fatal');
    assert.equal(framer.bufferedBytes, 0);
    assert.ok(framer.dead);
  });

  test('an invalid but delimited message keeps the stream in step', () => {
    const bad = OPTIONS.replace('CSeq: 7 OPTIONS', 'CSeq: 7 INVITE');
    const events = new StreamFramer({ role: 'server' }).push(Buffer.from(bad + OPTIONS));
    assert.deepEqual(events.map((e) => e.kind), ['invalid', 'message']);
  });

  test('a header section at and just past the line limit: the same events in one chunk as a byte at a time', () => {
    const kinds = (framer: StreamFramer, chunks: Buffer[]) => chunks.flatMap((chunk) => framer.push(chunk)).map((e) => (e.kind === 'fatal' || e.kind === 'invalid' ? `${e.kind}: ${e.error.reason}` : e.kind));
    for (const extra of [-1, 0, 1, 2]) {
      // One long header line: the whole head is lineBytesMax + extra bytes.
      const lineBytesMax = 512;
      const filler = lineBytesMax + extra - OPTIONS.length - 'X-Fill: \r\n'.length;
      const head = Buffer.from(OPTIONS.replace('Content-Length: 0', `X-Fill: ${'a'.repeat(filler)}\r\nContent-Length: 0`));
      assert.equal(head.length, lineBytesMax + extra);
      const make = () => new StreamFramer({ role: 'server', lineBytesMax, headerSectionBytesMax: 1024 });
      const whole = kinds(make(), [head]);
      assert.deepEqual(whole, kinds(make(), [...head].map((byte) => Buffer.from([byte]))), `head of ${head.length} bytes`);
      assert.deepEqual(whole, [filler + 'X-Fill: '.length > lineBytesMax ? 'fatal: Header line too long' : 'message']);
    }
  });

  test('header names that are Object.prototype members are plain unknown headers (a `constructor` header once crashed the server)', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const message = parseMessage(Buffer.from(OPTIONS.replace('Content-Length: 0', `${name}: x\r\nContent-Length: 0`)), { stream: true });
      assert.equal(headerValue(message, name), 'x');
      const events = new StreamFramer({ role: 'server' }).push(Buffer.from(OPTIONS.replace('Content-Length: 0', `${name}: x\r\nContent-Length: 0`)));
      assert.deepEqual(events.map((e) => e.kind), ['message']);
    }
  });

  test('a Content-Length above the body limit is refused before the body arrives', () => {
    const events = new StreamFramer({ role: 'server' }).push(Buffer.from(OPTIONS.replace('Content-Length: 0', 'Content-Length: 99999999')));
    assert.equal(events[0]?.kind, 'fatal');
    assert.equal(events[0]?.kind === 'fatal' && events[0].error.problem, 'body-too-large');
  });
});
