// RFC 4475 and RFC 5118 torture messages: valid ones parse to the values the RFCs give, invalid ones
// get the answer the RFCs expect (see the judgement-call table in src/sip/README.md).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sipFixture } from '../../test/helpers/sip-fixture.ts';
import { parseMessage, splitHead } from './parse.ts';
import { StreamFramer } from './framer.ts';
import { answerFor, checkRequire, SipMessageError } from './problem.ts';
import { headerValue, headerValues, serializeMessage, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
import { callId, contacts, cseq, expires, from, maxForwards, proxyRequire, routes, to, vias } from './headers.ts';
import { isSipUri, unescapeUri, uriEquals, uriParam, type SipUri } from './uri.ts';

const valid = (name: string): SipMessage => parseMessage(sipFixture('rfc4475', name));
const request = (name: string): SipRequest => {
  const m = valid(name);
  assert.equal(m.kind, 'request');
  return m as SipRequest;
};
const sipUri = (uri: unknown): SipUri => {
  assert.ok(isSipUri(uri as SipUri));
  return uri as SipUri;
};
function failure(set: 'rfc4475' | 'rfc5118', name: string, stream = false): SipMessageError {
  try {
    parseMessage(sipFixture(set, name), { stream });
  } catch (error) {
    assert.ok(error instanceof SipMessageError, `${name}: ${String(error)}`);
    return error;
  }
  assert.fail(`${name} parsed but should not have`);
}

describe('RFC 4475 §3.1.1 valid messages', () => {
  test('wsinv: short tortuous INVITE', () => {
    const m = request('wsinv');
    assert.equal(m.method, 'INVITE');
    const ruri = sipUri(m.uri);
    assert.equal(ruri.user, 'vivekg');
    assert.equal(ruri.host, 'chair-dnrc.example.com');
    assert.deepEqual(ruri.params, [{ name: 'unknownparam', value: null }]);
    assert.equal(to(m).tag, '1918181833n');
    assert.equal(sipUri(to(m).uri).user, 'vivekg');
    assert.equal(from(m).displayName, 'J Rosenberg \\"');
    assert.equal(from(m).tag, '98asjd8');
    assert.equal(maxForwards(m), 68);
    assert.equal(callId(m), 'wsinv.ndaksdj@192.0.2.1');
    assert.deepEqual(cseq(m), { seq: 9, method: 'INVITE' });
    const v = vias(m);
    assert.equal(v.length, 3);
    assert.deepEqual([v[0]?.transport, v[0]?.host, v[0]?.branch], ['UDP', '192.0.2.2', '390skdjuw']);
    assert.deepEqual([v[1]?.transport, v[1]?.host, v[1]?.branch], ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8']);
    assert.deepEqual([v[2]?.transport, v[2]?.host, v[2]?.branch], ['UDP', '192.168.255.111', 'z9hG4bK30239']);
    assert.equal(headerValue(m, 'Subject'), '');
    assert.equal(headerValue(m, 'NewFangledHeader'), 'newfangled value continued newfangled value');
    assert.equal(headerValue(m, 'UnknownHeaderWithUnusualValue'), ';;,,;;,;');
    assert.equal(headerValue(m, 'content-type'), 'application/sdp');
    const route = routes(m)[0];
    assert.ok(route);
    assert.equal(sipUri(route.uri).host, 'services.example.com');
    assert.deepEqual(sipUri(route.uri).params.map((p) => p.name), ['lr', 'unknownwith', 'unknown-no-value']);
    const c = contacts(m);
    assert.ok(c !== '*' && c.length === 1 && c[0]);
    assert.equal(c[0].displayName, 'Quoted string ""');
    assert.equal(c[0].q, 0.33);
    assert.deepEqual(c[0].params.map((p) => [p.name, p.value]), [['newparam', 'newvalue'], ['secondparam', null], ['q', '0.33']]);
    assert.equal(m.body.length, 150);
  });

  test('intmeth: wide range of valid characters', () => {
    const m = request('intmeth');
    assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
    const ruri = sipUri(m.uri);
    assert.equal(ruri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert.equal(ruri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert.equal(ruri.host, 'example.com');
    assert.equal(to(m).displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
    assert.equal(from(m).displayName, "token1~` token2'+_ token3*%!.-");
    assert.equal(from(m).tag, "_token~1'+`*%!-.");
    assert.equal(from(m).params[0]?.value, '"работающий"');
    assert.equal(callId(m), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert.deepEqual(cseq(m), { seq: 139122385, method: m.method });
    assert.equal(vias(m)[0]?.branch, "z9hG4bK-.!%66*_+`'~");
    assert.equal(headerValue(m, "extensionHeader-!.%*+_`'~"), '\ufeff大停電');
  });

  test('esc01: valid use of % escaping', () => {
    const m = request('esc01');
    const ruri = sipUri(m.uri);
    assert.equal(unescapeUri(ruri.user ?? ''), 'sips:user@example.com');
    assert.equal(ruri.host, 'example.net');
    assert.equal(unescapeUri(sipUri(to(m).uri).user ?? ''), 'user');
    assert.equal(unescapeUri(sipUri(from(m).uri).user ?? ''), 'I have spaces');
    const c = contacts(m);
    assert.ok(c !== '*');
    const curi = sipUri(c[0]?.uri);
    assert.equal(unescapeUri(curi.user ?? ''), 'caller');
    assert.equal(uriParam(curi.params, 'lr')?.value, null);
    assert.equal(unescapeUri(uriParam(curi.params, 'name')?.value ?? ''), 'value%41');
    assert.equal(headerValue(m, 'Content-Type'), 'application/sdp');
    assert.equal(callId(m), 'esc01.239409asdfakjkn23onasd0-3234');
  });

  test('escnull: escaped NULs in URIs', () => {
    const m = request('escnull');
    assert.equal(unescapeUri(sipUri(to(m).uri).user ?? ''), 'null-\x00-null');
    const c = contacts(m);
    assert.ok(c !== '*' && c.length === 2);
    assert.equal(unescapeUri(sipUri(c[0]?.uri).user ?? ''), '\x00');
    assert.equal(unescapeUri(sipUri(c[1]?.uri).user ?? ''), '\x00\x00');
  });

  test('esc02: % that is not an escape', () => {
    const m = request('esc02');
    assert.equal(m.method, 'RE%47IST%45R');
    assert.equal(cseq(m).method, 'RE%47IST%45R');
    assert.equal(to(m).displayName, '%Z%45');
    assert.equal(vias(m)[0]?.branch, 'z9hG4bK209%fzsnel234');
    // C%6Fntact is an unknown header, not Contact.
    assert.equal(headerValues(m, 'Contact').length, 2);
    assert.equal(headerValue(m, 'C%6Fntact'), '<sip:alias2@host2.example.com>');
  });

  test('lwsdisp: no LWS between display name and <', () => {
    const m = request('lwsdisp');
    assert.equal(from(m).displayName, 'caller');
    assert.equal(sipUri(from(m).uri).user, 'caller');
    assert.equal(from(m).tag, '323');
  });

  test('longreq: long values everywhere', () => {
    const m = request('longreq');
    assert.equal(sipUri(to(m).uri).port, 6000);
    assert.equal(to(m).displayName, `I have a user name of ${'extreme'.repeat(10)} proportion`);
    assert.equal(from(m).tag, `12${'982'.repeat(51)}424`);
    assert.equal(vias(m).length, 34);
    assert.equal(vias(m)[0]?.host, 'sip33.example.com');
    assert.equal(vias(m)[33]?.branch, `very${'long'.repeat(50)}branchvalue`);
    assert.equal(vias(m)[33]?.received, '192.0.2.5');
    assert.equal(m.body.length, 150);
  });

  test('dblreq: two requests, one Content-Length 0 — a datagram holds only the first', () => {
    const m = request('dblreq');
    assert.equal(m.method, 'REGISTER');
    assert.equal(m.body.length, 0);
  });

  test('dblreq on a stream: both requests come out of the framer', () => {
    const events = new StreamFramer({ role: 'server' }).push(sipFixture('rfc4475', 'dblreq'));
    const messages = events.flatMap((e) => (e.kind === 'message' ? [e.message] : []));
    assert.deepEqual(messages.map((x) => (x.kind === 'request' ? x.method : '')), ['REGISTER', 'INVITE']);
    assert.equal(to(messages[1] as SipRequest).uri.scheme, 'sip');
  });

  test('semiuri: semicolon-separated parameters in the user part', () => {
    const m = request('semiuri');
    const ruri = sipUri(m.uri);
    assert.equal(ruri.user, 'user;par=u%40example.net');
    assert.equal(ruri.host, 'example.com');
    assert.deepEqual(ruri.params, []);
    assert.deepEqual(headerValues(m, 'Accept'), ['application/sdp', 'application/pkcs7-mime', 'multipart/mixed', 'multipart/signed', 'message/sip', 'message/sipfrag']);
  });

  test('transports: varied and unknown transport types', () => {
    const m = request('transports');
    assert.deepEqual(vias(m).map((v) => v.transport), ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
    assert.equal(callId(m), 'transports.kijh4akdnaqjkwendsasfdj');
  });

  test('mpart01: multipart body with binary part is carried byte for byte', () => {
    // The RFC's binary S/MIME part is not reproducible from its text; the test builds a body of the
    // same shape and length (553 octets, CR, LF and NUL inside the binary part) around the RFC's headers.
    const boundary = '7a9cbec02ceef655';
    const prefix = Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nHello\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n`);
    const suffix = Buffer.from(`\r\n--${boundary}--\r\n`);
    const binary = Buffer.alloc(553 - prefix.length - suffix.length);
    Buffer.from([0x30, 0x82, 0x01, 0x52, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0]).copy(binary);
    for (let i = 16; i < binary.length; i++) binary[i] = (i * 37 + 13) & 0xff;
    binary.write('\r\n\r\n', 40, 'latin1');
    const body = Buffer.concat([prefix, binary, suffix]);
    assert.equal(body.length, 553);
    const head = [
      'MESSAGE sip:kumiko@example.org SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport',
      'Max-Forwards: 70',
      'Route: <sip:127.0.0.1:5080>',
      'Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=',
      'Contact: <sip:fluffy@127.0.0.1:5070>',
      'To: <sip:kumiko@example.org>',
      'From: <sip:fluffy@example.com>;tag=2fb0dcc9',
      'Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..',
      'CSeq: 1 MESSAGE',
      'Content-Transfer-Encoding: binary',
      'Content-Type: multipart/mixed;boundary=7a9cbec02ceef655',
      'Date: Sat, 15 Oct 2005 04:44:56 GMT',
      'User-Agent: SIPimp.org/0.2.5 (curses)',
      'Content-Length: 553',
    ].join('\r\n');
    const wire = Buffer.concat([Buffer.from(`${head}\r\n\r\n`), body]);
    const m = parseMessage(wire);
    assert.ok(m.body.equals(body));
    assert.equal(vias(m)[0]?.rport, true);
    assert.equal(headerValue(m, 'Date'), 'Sat, 15 Oct 2005 04:44:56 GMT');
    const framed = new StreamFramer({ role: 'server' }).push(wire);
    assert.equal(framed[0]?.kind, 'message');
    assert.ok(framed[0]?.kind === 'message' && framed[0].message.body.equals(body));
  });

  test('unreason: UTF-8 reason phrase', () => {
    const m = valid('unreason') as SipResponse;
    assert.equal(m.status, 200);
    assert.equal(m.reason, '= 2**3 * 5**2 но сто девяносто девять - простое');
  });

  test('noreason: empty reason phrase', () => {
    const m = valid('noreason') as SipResponse;
    assert.equal(m.status, 100);
    assert.equal(m.reason, '');
  });
});

interface Expected {
  name: string;
  status: number | null;
  reason?: RegExp;
  close?: boolean;
  /** A response is formed (false: a response to a response, or not enough to answer). */
  answered: boolean;
}

describe('RFC 4475 §3.1.2 invalid messages and §3.2 transaction-layer cases', () => {
  const cases: Expected[] = [
    { name: 'badinv01', status: 400, reason: /Via/, answered: true },
    { name: 'clerr', status: 400, reason: /Content-Length/, answered: true },
    { name: 'ncl', status: 400, reason: /Content-Length/, answered: true, close: true },
    { name: 'scalar02', status: 400, reason: /CSeq/, answered: false },
    { name: 'scalarlg', status: 400, reason: /CSeq/, answered: false },
    { name: 'quotbal', status: 400, reason: /To/, answered: true },
    { name: 'ltgtruri', status: 400, reason: /Request-URI/, answered: true },
    { name: 'lwsruri', status: 400, reason: /Request-Line/, answered: true },
    { name: 'lwsstart', status: 400, reason: /Request-Line/, answered: true },
    { name: 'trws', status: 400, reason: /Trailing whitespace/, answered: true },
    { name: 'escruri', status: 400, reason: /Request-URI/, answered: true },
    { name: 'baddate', status: 400, reason: /Date/, answered: true },
    { name: 'regbadct', status: 400, reason: /Contact/, answered: true },
    { name: 'badaspec', status: 400, reason: /To/, answered: true },
    { name: 'baddn', status: 400, reason: /From/, answered: true },
    { name: 'badvers', status: 505, reason: /Version Not Supported/, answered: true },
    { name: 'mismatch01', status: 400, reason: /CSeq method/, answered: true },
    { name: 'mismatch02', status: 400, reason: /CSeq method/, answered: true },
    { name: 'bigcode', status: 400, reason: /Status-Line/, answered: false },
    { name: 'insuf', status: 400, reason: /Missing From/, answered: true },
    { name: 'multi01', status: 400, reason: /Multiple/, answered: true },
    { name: 'mcl01', status: 400, reason: /Multiple Content-Length/, answered: true, close: true },
  ];
  for (const c of cases) {
    test(`${c.name} → ${c.status}`, () => {
      const error = failure('rfc4475', c.name);
      const answer = answerFor(error, { toTag: 'x1' });
      assert.equal(answer.status, c.status);
      if (c.reason) assert.match(answer.reason, c.reason);
      assert.equal(answer.response !== null, c.answered);
      if (c.close !== undefined) assert.equal(answer.keepConnection, !c.close);
      if (answer.response) {
        // The response carries what the client matches it by (§17.1.3), copied as received even
        // when malformed (§8.2.6.2), so only its start line and header list are checked here.
        const wire = serializeMessage(answer.response).toString('utf8');
        const head = splitHead(wire.slice(0, wire.indexOf('\r\n\r\n')));
        assert.equal(head.startLine, `SIP/2.0 ${c.status} ${answer.reason}`);
        assert.ok(head.headers.some((h) => h.name === 'Via'));
        assert.ok(head.headers.some((h) => h.name === 'CSeq'));
      }
    });
  }

  test('clerr on a stream: the framer waits for the promised 9999 bytes (none of them beyond the body limit)', () => {
    const framer = new StreamFramer({ role: 'server' });
    assert.deepEqual(framer.push(sipFixture('rfc4475', 'clerr')), []);
    assert.ok(framer.bufferedBytes < 9999);
  });

  test('ncl on a stream: negative Content-Length loses framing, 400 then close', () => {
    const events = new StreamFramer({ role: 'server' }).push(sipFixture('rfc4475', 'ncl'));
    assert.equal(events.length, 1);
    assert.equal(events[0]?.kind, 'fatal');
    const answer = answerFor((events[0] as { error: SipMessageError }).error, { toTag: 't' });
    assert.equal(answer.status, 400);
    assert.equal(answer.keepConnection, false);
  });

  test('inv2543 on a stream: no Content-Length is a framing error (RFC 3261 §18.3)', () => {
    const events = new StreamFramer({ role: 'server' }).push(sipFixture('rfc4475', 'inv2543'));
    assert.equal(events[0]?.kind, 'fatal');
    assert.match((events[0] as { error: SipMessageError }).error.reason, /Missing Content-Length/);
  });

  test('insuf: the 400 copies what exists (Via, CSeq) and leaves out the missing From/To/Call-ID', () => {
    const answer = answerFor(failure('rfc4475', 'insuf'), { toTag: 'x' });
    assert.ok(answer.response);
    assert.deepEqual(answer.response.headers.map((h) => h.name), ['Via', 'CSeq']);
  });

  test('badbranch: a branch of only the magic cookie still parses', () => {
    assert.equal(vias(request('badbranch'))[0]?.branch, 'z9hG4bK');
  });

  test('zeromf: Max-Forwards 0 parses (a UAS still answers OPTIONS)', () => {
    assert.equal(maxForwards(request('zeromf')), 0);
  });

  test('bcast: a response with a broadcast Via parses; forwarding policy is the proxy\'s', () => {
    assert.equal(vias(valid('bcast'))[1]?.host, '255.255.255.255');
  });

  test('scalar02 values that alone would be tolerated: out-of-range expiries read as null (use the default)', () => {
    const wire = sipFixture('rfc4475', 'scalar02').toString('latin1').replace('36893488147419103232', '1').replace('Max-Forwards: 300', 'Max-Forwards: 70');
    const m = parseMessage(Buffer.from(wire, 'latin1'));
    assert.equal(expires(m), null);
    const c = contacts(m);
    assert.ok(c !== '*');
    assert.equal(c[0]?.expires, null);
  });
});

describe('RFC 4475 §3.3 application-layer cases', () => {
  test('unkscm: unknown Request-URI scheme → 416', () => {
    const answer = answerFor(failure('rfc4475', 'unkscm'), { toTag: 'x' });
    assert.equal(answer.status, 416);
    assert.ok(answer.response);
    assert.equal(answer.keepConnection, true);
  });

  test('novelsc: soap.beep Request-URI → 416', () => {
    assert.equal(answerFor(failure('rfc4475', 'novelsc')).status, 416);
  });

  test('unksm2: unknown schemes in To/From/Contact parse (a registrar refuses the AOR, not the parser)', () => {
    const m = request('unksm2');
    assert.equal(to(m).uri.scheme, 'isbn');
    assert.equal(from(m).uri.scheme, 'http');
    const c = contacts(m);
    assert.ok(c !== '*');
    assert.equal(c[0]?.uri.scheme, 'name');
  });

  test('bext01: Require with unknown options → 420 with Unsupported listing them', () => {
    const m = request('bext01');
    const error = checkRequire(m, ['path', 'outbound']);
    assert.ok(error);
    const answer = answerFor(error, { toTag: 'abc' });
    assert.equal(answer.status, 420);
    assert.ok(answer.response);
    assert.equal(headerValue(answer.response, 'Unsupported'), 'nothingSupportsThis, nothingSupportsThisEither');
    assert.equal(to(answer.response).tag, 'abc');
    assert.deepEqual(proxyRequire(m), ['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']);
    assert.equal(checkRequire(m, ['nothingSupportsThis', 'nothingSupportsThisEither']), null);
  });

  test('cparam01/cparam02: a parameter outside <> is a Contact parameter, inside it is a URI parameter', () => {
    const c1 = contacts(request('cparam01'));
    const c2 = contacts(request('cparam02'));
    assert.ok(c1 !== '*' && c2 !== '*');
    assert.deepEqual(c1[0]?.params, [{ name: 'unknownparam', value: null }]);
    assert.deepEqual(sipUri(c1[0]?.uri).params, []);
    assert.deepEqual(c2[0]?.params, []);
    assert.deepEqual(sipUri(c2[0]?.uri).params, [{ name: 'unknownparam', value: null }]);
  });

  test('regescrt: escaped headers inside a bracketed Contact URI are legal', () => {
    const c = contacts(request('regescrt'));
    assert.ok(c !== '*');
    assert.deepEqual(sipUri(c[0]?.uri).headers, [{ name: 'Route', value: '%3Csip:sip.example.com%3E' }]);
  });

  test('sdp01, invut, regaut01, inv2543: syntactically valid; the answer (415, 401) is the application\'s', () => {
    assert.equal(headerValue(request('sdp01'), 'Accept'), 'text/nobodyKnowsThis');
    assert.equal(headerValue(request('invut'), 'Content-Type'), 'application/unknownformat');
    assert.equal(headerValue(request('regaut01'), 'Authorization'), 'NoOneKnowsThisScheme opaque-data=here');
    const old = request('inv2543');
    assert.equal(maxForwards(old), null);
    assert.equal(vias(old)[0]?.branch, null);
  });
});

describe('RFC 5118 IPv6 torture cases', () => {
  const ok = (name: string): SipMessage => parseMessage(sipFixture('rfc5118', name));

  test('4.1 ipv6-good: IPv6 references in Request-URI, Via and Contact', () => {
    const m = ok('ipv6-good') as SipRequest;
    assert.equal(sipUri(m.uri).host, '[2001:db8::10]');
    assert.equal(sipUri(m.uri).port, null);
    assert.equal(vias(m)[0]?.host, '[2001:db8::9:1]');
    const c = contacts(m);
    assert.ok(c !== '*');
    assert.equal(sipUri(c[0]?.uri).host, '[2001:db8::1]');
  });

  test('4.2 ipv6-bad: IPv6 address without brackets → 400', () => {
    const answer = answerFor(failure('rfc5118', 'ipv6-bad'), { toTag: 'x' });
    assert.equal(answer.status, 400);
    assert.match(answer.reason, /Request-URI/);
  });

  test('4.3 port-ambiguous: the :5070 inside the brackets is part of the address', () => {
    const uri = sipUri((ok('port-ambiguous') as SipRequest).uri);
    assert.equal(uri.host, '[2001:db8::10:5070]');
    assert.equal(uri.port, null);
  });

  test('4.4 port-unambiguous: port after the brackets', () => {
    const uri = sipUri((ok('port-unambiguous') as SipRequest).uri);
    assert.equal(uri.host, '[2001:db8::10]');
    assert.equal(uri.port, 5070);
  });

  test('4.5 received with and without brackets both read as the bare address', () => {
    assert.equal(vias(ok('via-received-param-with-delim'))[0]?.received, '2001:db8::9:255');
    assert.equal(vias(ok('via-received-param-no-delim'))[0]?.received, '2001:db8::9:255');
  });

  test('4.7 mixed IPv4 and IPv6 Vias', () => {
    const v = vias(ok('mult-ip-in-header'));
    assert.deepEqual(v.map((x) => [x.host, x.port]), [['[2001:db8::9:1]', 6050], ['192.0.2.1', null], ['[2001:db8::9:255]', null]]);
    assert.equal(v[2]?.received, '192.0.2.200');
  });

  test('4.9 IPv4-mapped IPv6 addresses', () => {
    const m = ok('ipv4-mapped-ipv6');
    assert.equal(vias(m)[0]?.host, '[::ffff:192.0.2.10]');
    assert.equal(vias(m)[0]?.port, 19823);
  });

  test('4.10 three colons (RFC 3261 ABNF slip) accepted, and equal to the correct form', () => {
    const bad = ok('ipv6-bug-abnf-3-colons') as SipRequest;
    const good = ok('ipv6-correct-abnf-2-colons') as SipRequest;
    assert.ok(uriEquals(bad.uri, good.uri));
  });
});
