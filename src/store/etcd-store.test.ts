// What only the etcd backend has: values written by something else (STORE_CORRUPT naming the key),
// etcd going away and coming back (STORE_UNAVAILABLE, never a hang), etcd's own compaction under a
// watch, and the lease TTL rounding. The Store semantics themselves are in store.contract.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdServer } from '../../test/helpers/etcd.ts';
import { eventually } from '../../test/helpers/eventually.ts';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { leaseTtlSeconds, openEtcdStore, type EtcdStore } from './etcd-store.ts';
import { reportOf, type StoreEvent } from './store.ts';
import { rejectsWith, storeTopology as topology, storeUser } from '../../test/helpers/store-fixtures.ts';

let etcd: EtcdServer;
let raw: Etcd3;
let prefixes = 0;
const stores: EtcdStore[] = [];

before(async () => {
  etcd = await startEtcd();
  raw = new Etcd3({ hosts: `http://${etcd.endpoint}` });
});
after(async () => {
  for (const store of stores) await store.close();
  raw?.close();
  await etcd?.dispose();
});

async function fresh(options: { requestTimeoutMs?: number; usersPageKeys?: number } = {}): Promise<{ store: EtcdStore; prefix: string }> {
  const prefix = `/etcd-test-${process.pid}-${++prefixes}/`;
  const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix, clock: new FakeClock(), ...options });
  stores.push(store);
  return { store, prefix };
}

describe('values written by something else: STORE_CORRUPT naming the key', () => {
  test('a version summary that is not JSON', async () => {
    const { store, prefix } = await fresh();
    await store.publish(topology(), 0, { by: 'a' });
    await raw.put(`${prefix}versions/0000000000000001`).value('{"format":1,"vers');
    await rejectsWith(store.read(), 'STORE_CORRUPT', `${prefix}versions/0000000000000001`);
    await rejectsWith(store.listVersions(), 'STORE_CORRUPT', 'not JSON');
    await rejectsWith(store.snapshot(), 'STORE_CORRUPT', `${prefix}versions/0000000000000001`);
  });

  test('a version summary of the wrong shape, or naming another version than its key', async () => {
    const { store, prefix } = await fresh();
    await store.publish(topology(), 0, { by: 'a' });
    const key = `${prefix}versions/0000000000000001`;
    await raw.put(key).value(JSON.stringify({ format: 1, version: 1, publishedAtMs: 'yesterday', by: 'a', comment: '' }));
    await rejectsWith(store.listVersions(), 'STORE_CORRUPT', `${key}: unexpected content at publishedAtMs`);
    await raw.put(key).value(JSON.stringify({ format: 1, version: 7, publishedAtMs: 0, by: 'a', comment: '' }));
    await rejectsWith(store.read(1), 'STORE_CORRUPT', 'holds version 7');
  });

  test('a stored topology that no longer validates', async () => {
    const { store, prefix } = await fresh();
    await store.publish(topology(), 0, { by: 'a' });
    const key = `${prefix}topologies/0000000000000001`;
    await raw.put(key).value(JSON.stringify({ format: 1, version: 1, topology: { pools: 'none' } }));
    const error = await rejectsWith(store.read(1), 'STORE_CORRUPT', key);
    assert.match(error.message, /does not validate/);
  });

  test('an admin state and a liveness report of the wrong shape; a junk key among the versions', async () => {
    const { store, prefix } = await fresh();
    await raw.put(`${prefix}admin/fe1.example.com`).value(JSON.stringify({ format: 1, server: 'fe1.example.com', state: 'asleep', by: 'a', atMs: 0, reason: '' }));
    await rejectsWith(store.adminStates(), 'STORE_CORRUPT', `${prefix}admin/fe1.example.com: unexpected content at state`);
    await raw.put(`${prefix}liveness/a.example.com`).value('[]');
    await rejectsWith(store.liveness(), 'STORE_CORRUPT', `${prefix}liveness/a.example.com`);
    await raw.put(`${prefix}versions/latest`).value('{}');
    await rejectsWith(store.currentVersion(), 'STORE_CORRUPT', `${prefix}versions/latest: not a version key`);
  });

  test('a watch meets a corrupt admin state: it ends with STORE_CORRUPT naming the key', async () => {
    const { store, prefix } = await fresh();
    const { revision } = await store.snapshot();
    const iterator = store.watch({ afterRevision: revision })[Symbol.asyncIterator]();
    const pending = iterator.next();
    await raw.put(`${prefix}admin/x`).value('nope');
    await rejectsWith(pending, 'STORE_CORRUPT', `${prefix}admin/x`);
  });
});

describe('etcd going away and coming back', () => {
  test('stopped: calls fail with STORE_UNAVAILABLE naming the endpoint (no hang), a watch ends with it; started again on the same data: calls succeed', async () => {
    const { store } = await fresh({ requestTimeoutMs: 1000 });
    const published = await store.publish(topology(), 0, { by: 'before' });
    const iterator = store.watch({ afterRevision: published.revision })[Symbol.asyncIterator]();
    const watching = iterator.next();
    // The watch is in place once it answers with a change: give it one, then take etcd away.
    await store.setAdminState(topology().pools[0]?.servers[0]?.fqdn as string, 'draining', { by: 'a', reason: 'r' });
    assert.equal(((await watching).value as StoreEvent).kind, 'admin-state');
    const ended = iterator.next();
    ended.catch(() => undefined); // rejects while the calls below run; asserted after them
    await etcd.stop();
    try {
      await rejectsWith(store.currentVersion(), 'STORE_UNAVAILABLE', etcd.endpoint);
      await rejectsWith(store.publish(topology(), 1, { by: 'during' }), 'STORE_UNAVAILABLE', etcd.endpoint);
      await rejectsWith(store.reportLiveness(reportOf({ server: 'a', reporter: 'b', state: 'active', atMs: 0, ttlMs: 1000, topologyVersion: 0 })), 'STORE_UNAVAILABLE');
      await rejectsWith(store.snapshot(), 'STORE_UNAVAILABLE');
      await rejectsWith(ended, 'STORE_UNAVAILABLE', etcd.endpoint);
      await rejectsWith(openEtcdStore({ endpoints: [etcd.endpoint], requestTimeoutMs: 1000 }), 'STORE_UNAVAILABLE', etcd.endpoint);
    } finally {
      await etcd.start();
    }
    // The client reconnects by itself (its circuit breaker may refuse calls for a few seconds).
    await eventually(async () => assert.equal(await store.currentVersion(), 1));
    assert.equal((await store.read()).by, 'before');
    assert.equal((await store.publish(topology(3), 1, { by: 'after' })).version, 2);
  });

  test('an address where nothing answers at all (no RST): STORE_UNAVAILABLE within the request timeout', async () => {
    // 127.0.30.250 has no listener: connect is refused at once on loopback; the bound holds either way.
    await rejectsWith(openEtcdStore({ endpoints: ['127.0.30.250:9'], requestTimeoutMs: 500 }), 'STORE_UNAVAILABLE', '127.0.30.250:9');
  });
});

describe('compaction', () => {
  test('a watch from a revision etcd has compacted away replays the durable state (latest admin state per server), asks for a full read of the users, then follows', async () => {
    const { store } = await fresh();
    const value = topology(2);
    const [server] = value.pools.flatMap((pool) => pool.servers.map((candidate) => candidate.fqdn)) as [string];
    const first = await store.publish(value, 0, { by: 'w' });
    await store.setAdminState(server, 'draining', { by: 'w', reason: 'a' });
    await store.setAdminState(server, 'blocked', { by: 'w', reason: 'b' });
    const second = await store.publish(value, 1, { by: 'w' });
    await raw.kv.compact({ revision: second.revision, physical: true });
    const controller = new AbortController();
    const iterator = store.watch({ afterRevision: first.revision, signal: controller.signal })[Symbol.asyncIterator]();
    const events: StoreEvent[] = [];
    for (let index = 0; index < 3; index++) events.push((await iterator.next()).value as StoreEvent);
    assert.equal(events[0]?.kind === 'admin-state' && events[0].record.reason, 'b', 'the latest state, not the steps');
    assert.deepEqual(events[1], { kind: 'published', revision: second.revision, version: 2 });
    // A removed user leaves no key to replay: the consumer is told to read the directory again.
    assert.equal(events[2]?.kind, 'users-reset');
    // …and it follows from there.
    const next = iterator.next();
    const third = await store.publish(value, 2, { by: 'w' });
    assert.deepEqual((await next).value, { kind: 'published', revision: third.revision, version: 3 });
    controller.abort();
    assert.equal((await iterator.next()).done, true);
  });
});

describe('users in pages', () => {
  test('users() reads the directory in pages at one revision: every user once, sorted, whatever the page size', async () => {
    const { store } = await fresh({ usersPageKeys: 2 });
    const uris = ['sip:e@contoso.com', 'sip:a@contoso.com', 'sip:d@contoso.com', 'sip:c@contoso.com', 'sip:b@contoso.com'];
    for (const uri of uris) await store.addUser(storeUser(uri), { by: 'test' });
    assert.deepEqual((await store.users()).map((user) => user.uri), [...uris].sort());
  });
});

describe('lease TTL', () => {
  test('ttlMs rounds up to whole seconds, at least 1', () => {
    for (const [ttlMs, seconds] of [
      [1, 1],
      [999, 1],
      [1000, 1],
      [1001, 2],
      [2500, 3],
      [60_000, 60],
    ] as const) {
      assert.equal(leaseTtlSeconds(ttlMs), seconds, `${ttlMs} ms`);
    }
  });
});
