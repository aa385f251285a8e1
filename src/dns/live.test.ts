// LiveZones following a real file store (in a temporary data dir): snapshot, then every event rebuilds the
// zones; the serial moves exactly when the content does; liveness expiry is the store's event.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { caughtUp, eventually } from '../../test/helpers/eventually.ts';
import { tempFileStore } from '../../test/helpers/temp-store.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { parseFile } from '../topology/parse.ts';
import { LiveZones } from './live.ts';
import { serialGreater } from './zone.ts';

const topology = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);


function poolAddresses(zones: LiveZones): string[] {
  const version = zones.history('contoso.com').at(-1);
  const rrset = version?.content.views.get('internal')?.find((set) => set.name === 'pool01.contoso.com' && set.type === 'A');
  return (rrset?.records ?? []).map((record) => (record as { address: string }).address);
}

const clock = new FakeClock(1_700_000_000_000);
const store = await tempFileStore(clock);
describe('LiveZones', () => {
  const zones = new LiveZones({ store, clock, random: seededRandom(1) });
  after(async () => {
    await zones.close();
    await store.close();
  });

  test('serves nothing until a topology is published, then the published one', async () => {
    await zones.start();
    assert.equal(zones.current.views.length, 0);
    await store.publish(topology, 0, { by: 'test' });
    await caughtUp(zones, store);
    assert.equal(zones.current.serials.get('contoso.com'), 1_700_000_000);
    assert.deepEqual(poolAddresses(zones), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
  });

  test('block, then unblock: each a new, greater serial', async () => {
    const changes: number[] = [];
    zones.onChange((changed) => changes.push(...changed.map((version) => version.serial)));
    const before = zones.current.serials.get('contoso.com')!;
    await store.setAdminState('fe2.contoso.com', 'blocked', { by: 'test', reason: 'maintenance' });
    await caughtUp(zones, store);
    const blocked = zones.current.serials.get('contoso.com')!;
    assert.ok(serialGreater(blocked, before));
    assert.deepEqual(poolAddresses(zones), ['127.0.0.11', '127.0.0.13']);
    assert.equal(zones.history('contoso.com').at(-1)?.content.views.get('internal')?.some((set) => set.name === 'fe2.contoso.com'), false);
    await store.setAdminState('fe2.contoso.com', 'active', { by: 'test', reason: 'done' });
    await caughtUp(zones, store);
    assert.ok(serialGreater(zones.current.serials.get('contoso.com')!, blocked));
    assert.deepEqual(poolAddresses(zones), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    assert.equal(changes.length, 2);
  });

  test('an event that changes nothing keeps the serial', async () => {
    const before = zones.current.serials.get('contoso.com');
    await store.setAdminState('fe2.contoso.com', 'active', { by: 'test', reason: 'again' });
    await caughtUp(zones, store);
    assert.equal(zones.current.serials.get('contoso.com'), before);
  });

  test('liveness: a down report removes the server; when the reports expire, health information is gone and all answer', async () => {
    const nowMs = clock.nowMs();
    const states = [{ server: 'fe1.contoso.com', state: 'active' as const }, { server: 'fe2.contoso.com', state: 'active' as const }, { server: 'fe3.contoso.com', state: 'down' as const }];
    await store.reportLiveness({ reporter: 'fe1.contoso.com', atMs: nowMs, ttlMs: 3000, topologyVersion: 1, states });
    await eventually(() => assert.deepEqual(poolAddresses(zones), ['127.0.0.11', '127.0.0.12']));
    const before = zones.current.serials.get('contoso.com')!;
    clock.advance(3000); // the store's watch sees them expire on its next poll (the injected clock)
    await eventually(() => assert.deepEqual(poolAddresses(zones), ['127.0.0.11', '127.0.0.12', '127.0.0.13']));
    assert.ok(serialGreater(zones.current.serials.get('contoso.com')!, before));
  });

  test('serveAbove: the same content under a serial above a secondary\'s; later changes keep counting from there', async () => {
    const before = zones.current.serials.get('contoso.com')!;
    const content = zones.history('contoso.com').at(-1)!.fingerprint;
    const changes: number[] = [];
    zones.onChange((changed) => changes.push(...changed.map((version) => version.serial)));
    assert.equal(zones.serveAbove('contoso.com', before - 5), undefined, 'already ahead: nothing to do');
    const raised = zones.serveAbove('contoso.com', before + 1000);
    assert.equal(raised?.serial, before + 1001);
    assert.equal(raised?.fingerprint, content, 'same content');
    assert.equal(zones.current.serials.get('contoso.com'), before + 1001, 'answers carry it');
    assert.deepEqual(changes, [before + 1001], 'listeners (NOTIFY) hear of it');
    assert.equal(zones.serveAbove('nope.example', 1), undefined);
    await store.setAdminState('fe2.contoso.com', 'blocked', { by: 'test', reason: 'after the raise' });
    await caughtUp(zones, store);
    assert.equal(zones.current.serials.get('contoso.com'), before + 1002, 'the clock is behind: previous + 1');
    await store.setAdminState('fe2.contoso.com', 'active', { by: 'test', reason: 'done' });
    await caughtUp(zones, store);
  });

  test('dns.rateLimit: a published version that changes only it is heard at once, the zones unchanged', async () => {
    assert.equal(zones.rateLimit, undefined, 'off in the example');
    const heard: unknown[] = [];
    zones.onRateLimitChange((settings) => heard.push(settings));
    const serial = zones.current.serials.get('contoso.com');
    const limited = { ...topology, dns: { ...topology.dns, rateLimit: { responsesPerSecond: 50, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56 } } };
    const current = await store.currentVersion();
    await store.publish(limited, current, { by: 'test' });
    await caughtUp(zones, store);
    assert.deepEqual(heard, [limited.dns.rateLimit]);
    assert.deepEqual(zones.rateLimit, limited.dns.rateLimit);
    assert.equal(zones.current.serials.get('contoso.com'), serial, 'no zone changed');
    await store.setAdminState('fe2.contoso.com', 'active', { by: 'test', reason: 'unrelated' });
    await caughtUp(zones, store);
    assert.equal(heard.length, 1, 'not heard again for other changes');
    await store.publish(topology, current + 1, { by: 'test' });
    await caughtUp(zones, store);
    assert.deepEqual(heard, [limited.dns.rateLimit, undefined], 'off again');
  });

  test('a snapshot taken after changes starts from them (restart)', async () => {
    await store.setAdminState('fe1.contoso.com', 'blocked', { by: 'test', reason: 'x' });
    const restarted = new LiveZones({ store, clock, random: seededRandom(2) });
    await restarted.start();
    assert.deepEqual(poolAddresses(restarted), ['127.0.0.12', '127.0.0.13']);
    await restarted.close();
  });
});
