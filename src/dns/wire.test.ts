// The query reader: well-formed queries parse, every malformation maps to FORMERR or a drop, and no
// byte sequence makes it throw (property test); the encoder's output decodes with dns-packet.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { encodeName, hashName, MessageWriter, Query, readQuery, ReadResult, TYPE } from './wire.ts';

function query(name: string, type: dnsPacket.RecordType = 'A', extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({ id: 0x1234, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }], ...extra });
}

function read(packet: Buffer): { result: ReadResult; query: Query } {
  const parsed = new Query();
  return { result: readQuery(packet, packet.length, parsed), query: parsed };
}

describe('readQuery', () => {
  test('reads the header, question and EDNS OPT of a well-formed query', () => {
    const packet = query('Pool01.Contoso.COM', 'AAAA', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: dnsPacket.DNSSEC_OK, options: [{ code: 10, data: Buffer.alloc(8) }] } as unknown as dnsPacket.Answer] });
    const { result, query: parsed } = read(packet);
    assert.equal(result, ReadResult.Ok);
    assert.equal(parsed.id, 0x1234);
    assert.equal(parsed.qtype, TYPE.AAAA);
    assert.equal(parsed.qclass, 1);
    assert.equal(parsed.labelCount, 3);
    assert.equal(parsed.nameEnd, 12 + 'Pool01.Contoso.COM'.length + 2);
    assert.equal(parsed.edns, true);
    assert.equal(parsed.ednsPayload, 4096);
    assert.equal(parsed.dnssecOk, true);
    // The hash ignores case, so it finds the lower-case prebuilt name.
    const wire = encodeName('pool01.contoso.com');
    assert.equal(parsed.nameHash, hashName(wire, 0, wire.length));
  });

  test('reads a query sitting inside a larger buffer, up to the length given', () => {
    const packet = query('a.example');
    const larger = Buffer.concat([packet, Buffer.from([1, 2, 3, 4])]);
    const parsed = new Query();
    assert.equal(readQuery(larger, packet.length, parsed), ReadResult.Ok);
    assert.equal(readQuery(larger, larger.length, parsed), ReadResult.FormErr, 'garbage after the question');
  });

  const cases: [string, () => Buffer, ReadResult][] = [
    ['shorter than a header', () => Buffer.alloc(11), ReadResult.Drop],
    ['a response (QR set)', () => { const p = query('a.example'); p[2]! |= 0x80; return p; }, ReadResult.Drop],
    ['QDCOUNT 0', () => { const p = query('a.example'); p[5] = 0; return p.subarray(0, 12); }, ReadResult.FormErr],
    ['QDCOUNT 2', () => dnsPacket.encode({ type: 'query', questions: [{ name: 'a.example', type: 'A' }, { name: 'b.example', type: 'A' }] }), ReadResult.FormErr],
    ['QDCOUNT that lies (2, one question)', () => { const p = query('a.example'); p[5] = 2; return p; }, ReadResult.FormErr],
    ['truncated question', () => query('a.example').subarray(0, 20), ReadResult.FormErr],
    ['question without type and class', () => { const p = query('a.example'); return p.subarray(0, p.length - 4); }, ReadResult.FormErr],
    ['compression pointer in the question', () => Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]), ReadResult.FormErr],
    ['label over 63 bytes (0x40 label type)', () => Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64, ...Buffer.alloc(64, 0x61), 0, 0, 1, 0, 1]), ReadResult.FormErr],
    ['name over 255 bytes', () => Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...Array.from({ length: 5 }, () => [60, ...Buffer.alloc(60, 0x61)]).flat(), 0, 0, 1, 0, 1]), ReadResult.FormErr],
    ['ANCOUNT 1 in a query', () => { const p = query('a.example'); p[7] = 1; return p; }, ReadResult.FormErr],
    ['ARCOUNT 1 and nothing there', () => { const p = query('a.example'); p[11] = 1; return p; }, ReadResult.FormErr],
    ['two OPT records', () => { const opt = { type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer; return query('a.example', 'A', { additionals: [opt, opt] }); }, ReadResult.FormErr],
    ['OPT whose option overruns its RDATA', () => { const p = query('a.example', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 10, data: Buffer.alloc(8) }] } as unknown as dnsPacket.Answer] }); p.writeUInt16BE(20, p.length - 10); return p; }, ReadResult.FormErr],
    ['opcode 2 (STATUS)', () => { const p = query('a.example'); p[2] = (p[2]! & 0x87) | (2 << 3); return p; }, ReadResult.NotImp],
  ];
  for (const [name, make, expected] of cases) {
    test(`${name} → ${['Ok', 'FormErr', 'NotImp', 'Drop'][expected]}`, () => {
      assert.equal(read(make()).result, expected);
    });
  }

  test('a name of exactly 255 bytes is accepted, 256 is not', () => {
    // 3 labels of 63 + 1 of 61: 3*64 + 62 + 1 = 255 bytes.
    const labels = (last: number): number[] => [...[63, 63, 63].flatMap((n) => [n, ...Buffer.alloc(n, 0x61)]), last, ...Buffer.alloc(last, 0x62), 0];
    const header = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    assert.equal(read(Buffer.from([...header, ...labels(61), 0, 1, 0, 1])).result, ReadResult.Ok);
    assert.equal(read(Buffer.from([...header, ...labels(62), 0, 1, 0, 1])).result, ReadResult.FormErr);
  });

  test('never throws, whatever the bytes (random and mutated packets)', () => {
    const seed = query('pool01.contoso.com', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer] });
    const parsed = new Query();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const result = readQuery(bytes, bytes.length, parsed);
        assert.ok(result >= ReadResult.Ok && result <= ReadResult.Drop);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(seed.length), (edits, cut) => {
        const mutated = Buffer.from(seed);
        for (const [at, value] of edits) mutated[at] = value;
        const packet = mutated.subarray(0, cut);
        readQuery(packet, packet.length, parsed);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('MessageWriter', () => {
  test('writes records dns-packet decodes, with names compressed against the question', () => {
    const writer = new MessageWriter();
    writer.bytes([0, 7, 0x84, 0, 0, 1, 0, 6, 0, 0, 0, 0]);
    writer.knownName('pool.example.com', 12);
    writer.bytes(encodeName('pool.example.com'));
    writer.u16(TYPE.A);
    writer.u16(1);
    writer.record('pool.example.com', { type: 'A', address: '192.0.2.1' }, 60);
    writer.record('pool.example.com', { type: 'AAAA', address: '2001:db8::1' }, 60);
    writer.record('pool.example.com', { type: 'SRV', priority: 1, weight: 2, port: 5061, target: 'sip.example.com' }, 60);
    writer.record('example.com', { type: 'SOA', mname: 'ns.example.com', rname: 'hostmaster.example.com', serial: 4_000_000_000, refresh: 1, retry: 2, expire: 3, minimum: 4 }, 60);
    writer.record('pool.example.com', { type: 'MX', preference: 10, exchange: 'mail.example.com' }, 60);
    writer.record('pool.example.com', { type: 'TXT', text: 'x'.repeat(300) }, 60);
    const decoded = dnsPacket.decode(writer.toBuffer());
    assert.deepEqual(decoded.answers?.map((answer) => [answer.name, answer.type, (answer as { data: unknown }).data]), [
      ['pool.example.com', 'A', '192.0.2.1'],
      ['pool.example.com', 'AAAA', '2001:db8::1'],
      ['pool.example.com', 'SRV', { priority: 1, weight: 2, port: 5061, target: 'sip.example.com' }],
      ['example.com', 'SOA', { mname: 'ns.example.com', rname: 'hostmaster.example.com', serial: 4_000_000_000, refresh: 1, retry: 2, expire: 3, minimum: 4 }],
      ['pool.example.com', 'MX', { preference: 10, exchange: 'mail.example.com' }],
      ['pool.example.com', 'TXT', [Buffer.from('x'.repeat(255)), Buffer.from('x'.repeat(45))]],
    ]);
    // Compressed: far shorter than six owners spelled out.
    assert.ok(writer.length < 12 + 22 + 6 * 18 + 200 + 310);
  });
});
