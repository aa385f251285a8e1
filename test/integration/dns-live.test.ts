// Live state seen through real sockets: a DNS server in this process follows a store while dig
// queries it. Block/unblock, drain, liveness and fail-open each show up with a new, greater serial.
// The store is a real file store in a temporary data dir; test/integration/dns-store-process.test.ts
// runs the same story across processes (dnslb dns serve --store, changes made by the CLI).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LiveZones } from '../../src/dns/live.ts';
import { DnsServer } from '../../src/dns/server.ts';
import { serialGreater } from '../../src/dns/zone.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { parseFile } from '../../src/topology/parse.ts';
import { dig } from '../helpers/dns-process.ts';
import { caughtUp, eventually } from '../helpers/eventually.ts';
import { tempFileStore } from '../helpers/temp-store.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { REPO } from '../helpers/dns-process.ts';

const topology = await parseFile(`${REPO}/examples/contoso.yaml`);


const store = await tempFileStore(systemClock);
describe('live state through real sockets (dig)', () => {
  const zones = new LiveZones({ store, clock: systemClock, random: seededRandom(5) });
  let server: DnsServer;
  let endpoint: { address: string; port: number };

  before(async () => {
    await store.publish(topology, 0, { by: 'test' });
    await zones.start();
    server = new DnsServer({ listen: [{ address: '127.0.4.6', port: 0 }], answers: zones, clock: systemClock });
    endpoint = (await server.start()).udp[0]!;
  });
  after(async () => {
    await server?.close();
    await zones.close();
    await store.close();
  });

  const serial = async (): Promise<number> => Number((await dig(endpoint, ['contoso.com', 'SOA'])).answer[0]?.data.split(' ')[2]);
  const pool = async (name = 'pool01.contoso.com'): Promise<string[]> => (await dig(endpoint, [name, 'A'])).answer.map((record) => record.data).sort();

  test('block: gone from the pool and its own name stops resolving, in one serial change; unblock brings it back', async () => {
    const before = await serial();
    await store.setAdminState('fe2.contoso.com', 'blocked', { by: 'test', reason: 'patching' });
    await caughtUp(zones, store);
    const blocked = await serial();
    assert.ok(serialGreater(blocked, before), `${blocked} > ${before}`);
    assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.13']);
    assert.equal((await dig(endpoint, ['fe2.contoso.com', 'A'])).status, 'NXDOMAIN');
    await store.setAdminState('fe2.contoso.com', 'active', { by: 'test', reason: 'done' });
    await caughtUp(zones, store);
    assert.ok(serialGreater(await serial(), blocked));
    assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    assert.equal((await dig(endpoint, ['fe2.contoso.com', 'A'])).status, 'NOERROR');
  });

  test('drain: the draining server leaves the pool answer but keeps its own name', async () => {
    const before = await serial();
    await store.setAdminState('fe1.contoso.com', 'draining', { by: 'test', reason: 'drain' });
    await caughtUp(zones, store);
    assert.ok(serialGreater(await serial(), before));
    assert.deepEqual(await pool(), ['127.0.0.12', '127.0.0.13']);
    assert.equal((await dig(endpoint, ['fe1.contoso.com', 'A'])).status, 'NOERROR');
    await store.setAdminState('fe1.contoso.com', 'active', { by: 'test', reason: 'undrain' });
    await caughtUp(zones, store);
    assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
  });

  test('liveness: a dead director leaves; when every one is dead, all answer (fail open)', async () => {
    const atMs = Date.now();
    const report = (states: Record<string, 'active' | 'down'>, reporter = 'dir1.contoso.com') =>
      store.reportLiveness({ reporter, atMs, ttlMs: 60_000, topologyVersion: 1, states: Object.entries(states).map(([server, state]) => ({ server, state })) });
    await report({ 'dir1.contoso.com': 'active', 'dir2.contoso.com': 'down' });
    await eventually(async () => assert.deepEqual(await pool('dirpool.contoso.com'), ['127.0.0.31']));
    const before = await serial();
    // Both stop (each reports itself down): nobody is healthy, so all answer.
    await report({ 'dir1.contoso.com': 'down', 'dir2.contoso.com': 'down' });
    await report({ 'dir2.contoso.com': 'down' }, 'dir2.contoso.com');
    await eventually(async () => assert.deepEqual(await pool('dirpool.contoso.com'), ['127.0.0.31', '127.0.0.32']));
    assert.ok(serialGreater(await serial(), before));
  });
});
