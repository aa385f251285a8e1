// answerFor over prebuilt answers, in process: RCODEs, AA, RFC 2308 negatives, EDNS, TC, the
// question's case, rotation and the other policies. (The same over real sockets: test/integration.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { fromObject, parseFile } from '../topology/parse.ts';
import type { Topology } from '../topology/schema.ts';
import { answerFor, buildAnswers, udpLimitOf, type AnswerIndex } from './answer-cache.ts';
import { Query, readQuery, ReadResult } from './wire.ts';
import { buildZones, fingerprint, NO_LIVE_STATE } from './zone.ts';

const contoso = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);

function indexOf(topology: Topology, serial = 2024): AnswerIndex {
  const zones = buildZones(topology, NO_LIVE_STATE).map((content) => ({ serial, content, fingerprint: fingerprint(content) }));
  return buildAnswers(zones, topology.dns.views, seededRandom(1));
}

const index = indexOf(contoso);
const INTERNAL = '127.0.0.5';
const EXTERNAL = '127.0.9.9';

interface Ask {
  type?: dnsPacket.RecordType;
  from?: string;
  edns?: { payload?: number; version?: number; dnssecOk?: boolean } | false;
  tcp?: boolean;
  klass?: dnsPacket.RecordClass;
  id?: number;
}

function askRaw(name: string, options: Ask = {}): Buffer {
  const additionals = options.edns === false || options.edns === undefined
    ? []
    : [{ type: 'OPT', name: '.', udpPayloadSize: options.edns.payload ?? 1232, flags: options.edns.dnssecOk ? dnsPacket.DNSSEC_OK : 0, ednsVersion: options.edns.version ?? 0 } as unknown as dnsPacket.Answer];
  const packet = dnsPacket.encode({ id: options.id ?? 4321, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: options.type ?? 'A', class: options.klass ?? 'IN' }], additionals });
  const query = new Query();
  assert.equal(readQuery(packet, packet.length, query), ReadResult.Ok);
  return answerFor(index, index.selector.indexOf(options.from ?? INTERNAL), packet, query, options.tcp ? 0 : udpLimitOf(query));
}

type Decoded = dnsPacket.DecodedPacket & { rcode: string; raw: Buffer };

function ask(name: string, options: Ask = {}): Decoded {
  const raw = askRaw(name, options);
  return Object.assign(dnsPacket.decode(raw) as Decoded, { raw });
}

const addresses = (response: dnsPacket.DecodedPacket): string[] => (response.answers ?? []).map((answer) => (answer as { data: string }).data);

describe('answerFor', () => {
  test('an authoritative answer, ID and RD echoed, the question in the case it was asked', () => {
    const response = ask('PoOl01.Contoso.COM', { id: 777 });
    assert.equal(response.id, 777);
    assert.equal(response.rcode, 'NOERROR');
    assert.equal(response.flag_aa, true);
    assert.equal(response.flag_rd, true);
    assert.equal(response.flag_ra, false);
    assert.equal(response.questions?.[0]?.name, 'PoOl01.Contoso.COM');
    assert.equal(response.answers?.[0]?.name, 'PoOl01.Contoso.COM', 'answers point at the question: same case');
    assert.deepEqual([...addresses(response)].sort(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
  });

  test('rotate: consecutive answers each start one record later', () => {
    const firsts = Array.from({ length: 6 }, () => addresses(ask('dirpool.contoso.com'))[0]);
    assert.equal(new Set(firsts).size, 2);
    for (let i = 2; i < firsts.length; i++) assert.equal(firsts[i], firsts[i - 2]);
    assert.notEqual(firsts[0], firsts[1]);
  });

  test('NXDOMAIN for a missing name, NODATA for a missing type, both with the SOA in authority (RFC 2308)', () => {
    const nx = ask('nothere.contoso.com');
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.flag_aa, true);
    assert.deepEqual(nx.authorities?.map((record) => [record.name, record.type, (record as { data: { serial: number } }).data.serial]), [['contoso.com', 'SOA', 2024]]);
    const nodata = ask('pool01.contoso.com', { type: 'MX' });
    assert.equal(nodata.rcode, 'NOERROR');
    assert.equal(nodata.answers?.length, 0);
    assert.equal(nodata.authorities?.[0]?.type, 'SOA');
    assert.equal(nodata.authorities?.[0]?.ttl, 60, 'the negative TTL: SOA MINIMUM');
    const emptyNonTerminal = ask('_tcp.contoso.com');
    assert.equal(emptyNonTerminal.rcode, 'NOERROR', 'an empty non-terminal exists (RFC 8020)');
  });

  test('REFUSED outside our zones, for other classes, and for zone transfers', () => {
    for (const response of [ask('example.org'), ask('pool01.contoso.com', { klass: 'CH' }), ask('contoso.com', { type: 'AXFR' })]) {
      assert.equal(response.rcode, 'REFUSED');
      assert.equal(response.flag_aa, false);
    }
    assert.equal(ask('contoso.com.evil.org').rcode, 'REFUSED');
  });

  test('views: the source address picks the answer', () => {
    assert.equal(ask('fe1.contoso.com', { from: INTERNAL }).rcode, 'NOERROR');
    assert.equal(ask('fe1.contoso.com', { from: EXTERNAL }).rcode, 'NXDOMAIN');
    assert.deepEqual(addresses(ask('sip.contoso.com', { from: EXTERNAL })).sort(), ['127.0.0.51', '127.0.0.52']);
    assert.deepEqual(addresses(ask('www.contoso.com', { from: EXTERNAL })), ['127.0.0.80']);
    assert.equal(ask('www.contoso.com', { from: '::1' }).rcode, 'NXDOMAIN', '::1 is inside');
    assert.equal(ask('www.contoso.com', { from: '::ffff:127.0.9.9' }).rcode, 'NOERROR', 'IPv4-mapped source is matched as IPv4');
  });

  test('EDNS: OPT echoed with our payload size and DO; version 1 → BADVERS', () => {
    const response = ask('pool01.contoso.com', { edns: { payload: 4096, dnssecOk: true } });
    const opt = response.additionals?.find((record) => record.type === 'OPT') as unknown as { udpPayloadSize: number; flags: number; ednsVersion: number };
    assert.equal(opt.udpPayloadSize, 1232);
    assert.equal(opt.ednsVersion, 0);
    assert.equal(opt.flags & dnsPacket.DNSSEC_OK, dnsPacket.DNSSEC_OK);
    const without = ask('pool01.contoso.com');
    assert.equal(without.additionals?.length, 0, 'no OPT to a query without one');
    const badvers = ask('pool01.contoso.com', { edns: { version: 1 } });
    const badOpt = badvers.additionals?.find((record) => record.type === 'OPT') as unknown as { extendedRcode: number; ednsVersion: number };
    assert.equal(badvers.answers?.length, 0);
    assert.equal(badOpt.ednsVersion, 0);
    assert.equal((badOpt.extendedRcode << 4) | (badvers.raw[3]! & 0x0f), 16, 'BADVERS = 16');
  });

  test('ANY gets one RRset (RFC 8482)', () => {
    const response = ask('pool01.contoso.com', { type: 'ANY' as dnsPacket.RecordType });
    assert.equal(response.questions?.[0]?.type, 'ANY');
    assert.deepEqual(new Set(response.answers?.map((answer) => answer.type)), new Set(['A']));
  });

  test('SOA, NS and SRV answers', () => {
    assert.equal((ask('contoso.com', { type: 'SOA' }).answers?.[0] as { data: { serial: number } }).data.serial, 2024);
    assert.equal((ask('contoso.com', { type: 'NS' }).answers?.[0] as { data: string }).data, 'dns1.contoso.com');
    const srv = ask('_sip._tls.contoso.com', { type: 'SRV', from: EXTERNAL }).answers?.[0] as { data: { port: number; target: string } };
    assert.deepEqual([srv.data.port, srv.data.target], [4443, 'sip.contoso.com']);
  });
});

describe('answerFor: sizes, truncation, policies', () => {
  const big = structuredClone(contoso) as unknown as { pools: { servers: unknown[]; dns: Record<string, unknown>; fqdn: string }[]; dns: { servers: { listen: unknown }[] } };
  // Parsed endpoints are objects; the schema reads "address:port".
  big.dns.servers[0]!.listen = ['127.0.0.1:5300'];
  const pool = big.pools[0]!;
  pool.servers = Array.from({ length: 60 }, (_, i) => ({ fqdn: `fe${i + 1}.contoso.com`, ipv6: `2001:db8::${(i + 1).toString(16)}` }));
  big.pools.find((candidate) => candidate.fqdn === 'medpool.contoso.com')!.dns = { order: 'fixed', maxRecords: 1, ttl: 5 };
  big.pools.find((candidate) => candidate.fqdn === 'dirpool.contoso.com')!.dns = { order: 'random', ttl: 60 };
  const bigIndex = indexOf(fromObject(big));
  const askBig = (name: string, type: dnsPacket.RecordType, edns: boolean | number, tcp = false): dnsPacket.DecodedPacket => {
    const additionals = edns === false ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: edns === true ? 1232 : edns } as dnsPacket.Answer];
    const packet = dnsPacket.encode({ id: 1, type: 'query', questions: [{ name, type }], additionals });
    const query = new Query();
    readQuery(packet, packet.length, query);
    return dnsPacket.decode(answerFor(bigIndex, 0, packet, query, tcp ? 0 : udpLimitOf(query)));
  };

  test('an answer larger than 512 bytes (no EDNS) or the EDNS size sets TC with no records; TCP gets it whole', () => {
    const udp = askBig('pool01.contoso.com', 'AAAA', false);
    assert.equal(udp.flag_tc, true);
    assert.equal(udp.answers?.length, 0);
    const ednsUdp = askBig('pool01.contoso.com', 'AAAA', true);
    assert.equal(ednsUdp.flag_tc, true, '60 AAAA records do not fit 1232 bytes either');
    assert.equal(ednsUdp.additionals?.[0]?.type, 'OPT');
    const tcp = askBig('pool01.contoso.com', 'AAAA', false, true);
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers?.length, 60);
  });

  test('an EDNS payload under 512 counts as 512 (RFC 6891 §6.2.5)', () => {
    assert.equal(askBig('dirpool.contoso.com', 'A', 100).flag_tc, false);
  });

  test('fixed + maxRecords 1: always the first server', () => {
    for (let i = 0; i < 4; i++) assert.deepEqual(addresses(askBig('medpool.contoso.com', 'A', false)), ['127.0.0.61']);
  });

  test('random: both servers lead some answers', () => {
    const firsts = new Set(Array.from({ length: 40 }, () => addresses(askBig('dirpool.contoso.com', 'A', false))[0]));
    assert.deepEqual([...firsts].sort(), ['127.0.0.31', '127.0.0.32']);
  });
});
