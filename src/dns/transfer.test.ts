// AXFR/IXFR responses from the zone history (RFC 5936, RFC 1995): the ACL, SOA first and last,
// several messages for a big zone, the condensed IXFR difference, the AXFR fallback and the
// single SOA for a current client.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { caughtUp } from '../../test/helpers/eventually.ts';
import { tempFileStore } from '../../test/helpers/temp-store.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { limits } from '../shared/limits.ts';
import { parse } from '../topology/parse.ts';
import { LiveZones } from './live.ts';
import { transferResponse } from './transfer.ts';
import { Query, readQuery, ReadResult } from './wire.ts';

const SECONDARY = '127.0.0.7'; // inside 127.0.0.0/24: the internal view
const EXAMPLE = readFileSync(new URL('../../examples/contoso.yaml', import.meta.url), 'utf8');

function topologyText(extraRecords = 0): string {
  const records = Array.from({ length: extraRecords }, (_, i) => `        - { name: host${i}.contoso.com, type: A, value: 10.1.${i >> 8}.${i & 0xff} }`).join('\n');
  return EXAMPLE.replace('secondaries: []', `secondaries: ["${SECONDARY}:53"]`).replace(/(- \{ name: www\.contoso\.com.*\n)/, `$1${records}${records ? '\n' : ''}`);
}

async function liveZones(extraRecords = 0): Promise<{ zones: LiveZones; store: Awaited<ReturnType<typeof tempFileStore>>; clock: FakeClock }> {
  const clock = new FakeClock();
  const store = await tempFileStore(clock);
  await store.publish(parse(topologyText(extraRecords)), 0, { by: 'test' });
  const zones = new LiveZones({ store, clock, random: seededRandom(1) });
  await zones.start();
  return { zones, store, clock };
}


function ask(zones: LiveZones, question: Omit<dnsPacket.Packet, 'id'>, address = SECONDARY, udp = false): dnsPacket.DecodedPacket[] {
  const packet = dnsPacket.encode({ id: 4242, type: 'query', ...question });
  const query = new Query();
  assert.equal(readQuery(packet, packet.length, query), ReadResult.Ok);
  return transferResponse(zones, packet, query, address, udp).map((message) => dnsPacket.decode(message));
}

const axfr = { questions: [{ name: 'contoso.com', type: 'AXFR' as const }] };
const ixfr = (serial: number): Omit<dnsPacket.Packet, 'id'> => ({
  questions: [{ name: 'contoso.com', type: 'IXFR' as unknown as 'AXFR' }],
  authorities: [{ name: 'contoso.com', type: 'SOA', data: { mname: 'a.', rname: 'b.', serial, refresh: 1, retry: 1, expire: 1, minimum: 1 } }],
});
const rcode = (message: dnsPacket.DecodedPacket): string => (message as { rcode?: string }).rcode ?? '';
const soaSerial = (record: dnsPacket.Answer | undefined): number => (record?.type === 'SOA' ? (record.data.serial ?? -2) : -1);
const text = (record: dnsPacket.Answer): string => `${record.name} ${record.type} ${JSON.stringify((record as { data?: unknown }).data)}`;

describe('AXFR', () => {
  test('to a secondary: SOA first and last, every record of its view, ID and question echoed', async () => {
    const { zones, store } = await liveZones();
    const messages = ask(zones, axfr);
    assert.equal(messages.length, 1);
    const records = messages[0]!.answers ?? [];
    const serial = zones.current.serials.get('contoso.com');
    assert.equal(messages[0]!.id, 4242);
    assert.equal(messages[0]!.questions?.[0]?.name, 'contoso.com');
    assert.equal(soaSerial(records[0]), serial);
    assert.equal(soaSerial(records.at(-1)), serial);
    const names = new Set(records.map((record) => `${record.name}/${record.type}`));
    // The internal view: pool and servers, not the external-only www record.
    for (const expected of ['pool01.contoso.com/A', 'fe2.contoso.com/A', '_sipinternaltls._tcp.contoso.com/SRV', 'contoso.com/NS']) assert.ok(names.has(expected), expected);
    assert.equal(names.has('www.contoso.com/A'), false);
    assert.equal(records.filter((record) => record.name === 'pool01.contoso.com').length, 3);
    await zones.close();
    await store.close();
  });

  test('a big zone streams as several messages, each within the limit, the question in the first only', async () => {
    const { zones, store } = await liveZones(1000);
    const packet = dnsPacket.encode({ id: 7, type: 'query', ...axfr });
    const query = new Query();
    readQuery(packet, packet.length, query);
    const raw = transferResponse(zones, packet, query, SECONDARY, false);
    assert.ok(raw.length >= 2, `${raw.length} messages`);
    for (const message of raw) assert.ok(message.length <= limits.dnsTransferMessageBytes);
    const messages = raw.map((message) => dnsPacket.decode(message));
    assert.deepEqual(messages.map((message) => message.questions?.length ?? 0), [1, ...Array<number>(raw.length - 1).fill(0)]);
    const records = messages.flatMap((message) => message.answers ?? []);
    assert.equal(records[0]?.type, 'SOA');
    assert.equal(records.at(-1)?.type, 'SOA');
    assert.equal(records.filter((record) => record.type === 'SOA').length, 2);
    assert.equal(records.filter((record) => /^host\d+\./.test(record.name)).length, 1000);
    await zones.close();
    await store.close();
  });

  test('REFUSED to anyone else and over UDP; NOTAUTH for a name that is not a zone apex', async () => {
    const { zones, store } = await liveZones();
    assert.equal(rcode(ask(zones, axfr, '127.0.0.8')[0]!), 'REFUSED');
    assert.equal(rcode(ask(zones, axfr, SECONDARY, true)[0]!), 'REFUSED');
    assert.equal(rcode(ask(zones, { questions: [{ name: 'pool01.contoso.com', type: 'AXFR' }] })[0]!), 'NOTAUTH');
    assert.equal(rcode(ask(zones, ixfr(1), '::ffff:127.0.0.9')[0]!), 'REFUSED');
    await zones.close();
    await store.close();
  });
});

describe('IXFR', () => {
  test('from a serial in the history: one condensed difference (RFC 1995 §4)', async () => {
    const { zones, store, clock } = await liveZones();
    const old = zones.current.serials.get('contoso.com')!;
    clock.advance(5000);
    await store.setAdminState('fe2.contoso.com', 'blocked', { by: 'test', reason: 'patching' });
    await caughtUp(zones, store);
    const current = zones.current.serials.get('contoso.com')!;
    assert.notEqual(current, old);
    const records = ask(zones, ixfr(old)).flatMap((message) => message.answers ?? []);
    assert.deepEqual(records.filter((record) => record.type === 'SOA').map(soaSerial), [current, old, current, current]);
    const second = records.findIndex((record, i) => i > 1 && record.type === 'SOA');
    const deleted = records.slice(2, second).map(text).sort();
    const added = records.slice(second + 1, -1).map(text);
    assert.deepEqual(deleted, ['fe2.contoso.com A "127.0.0.12"', 'pool01.contoso.com A "127.0.0.12"']);
    assert.deepEqual(added, []);
    await zones.close();
    await store.close();
  });

  test('a current client gets the SOA alone; over UDP too; an unknown serial gets the whole zone', async () => {
    const { zones, store } = await liveZones();
    const current = zones.current.serials.get('contoso.com')!;
    for (const udp of [false, true]) {
      const records = ask(zones, ixfr(current), SECONDARY, udp).flatMap((message) => message.answers ?? []);
      assert.deepEqual(records.map(soaSerial), [current]);
    }
    const full = ask(zones, ixfr(current - 1000)).flatMap((message) => message.answers ?? []);
    assert.equal(soaSerial(full[0]), current);
    assert.equal(soaSerial(full.at(-1)), current);
    assert.equal(full.filter((record) => record.type === 'SOA').length, 2);
    assert.deepEqual(full, ask(zones, axfr)[0]!.answers);
    await zones.close();
    await store.close();
  });
});
