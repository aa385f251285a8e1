// The Store contract: the same cases run against every backend (the file store in a temporary
// directory, the etcd store against a real etcd), as hono runs every router through one suite.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEtcd, type EtcdServer } from '../../test/helpers/etcd.ts';
import { eventually } from '../../test/helpers/eventually.ts';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import { isDnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { openEtcdStore } from './etcd-store.ts';
import { openFileStore } from './file-store.ts';
import { reportOf, type LivenessRecord, type Store, type StoreEvent } from './store.ts';
import { rejectsWith, serverNames, storeTopology as topology, storeTopologyWithDirector, storeUser } from '../../test/helpers/store-fixtures.ts';

interface Backend {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A fresh, empty store, and a way to open more instances on the same data (another process's view). */
  fresh(clock: Clock): Promise<{ store: Store; another(): Promise<Store> }>;
}

const opened: Store[] = [];
async function track<T extends Store>(store: Promise<T>): Promise<T> {
  const value = await store;
  opened.push(value);
  return value;
}

const directories: string[] = [];
const fileBackend: Backend = {
  name: 'file store',
  async setup() {},
  async teardown() {
    for (const directory of directories) await rm(directory, { recursive: true, force: true });
  },
  async fresh(clock) {
    const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-contract-'));
    directories.push(dataDir);
    // A short poll: liveness expiry on the system clock is noticed by the poll.
    const open = () => track(openFileStore({ dataDir, clock, pollIntervalMs: 100 }));
    return { store: await open(), another: open };
  },
};

let etcd: EtcdServer | undefined;
let prefixes = 0;
const etcdBackend: Backend = {
  name: 'etcd store',
  async setup() {
    etcd = await startEtcd();
  },
  async teardown() {
    await etcd?.dispose();
  },
  async fresh(clock) {
    assert.ok(etcd);
    // One etcd for the whole suite; each case gets keys of its own.
    const prefix = `/contract-${process.pid}-${++prefixes}/`;
    const endpoint = etcd.endpoint;
    const open = () => track(openEtcdStore({ endpoints: [endpoint], prefix, clock }));
    return { store: await open(), another: open };
  },
};

async function take(iterator: AsyncIterator<StoreEvent>, count: number, keep: (event: StoreEvent) => boolean = () => true): Promise<StoreEvent[]> {
  const events: StoreEvent[] = [];
  while (events.length < count) {
    const next = await iterator.next();
    assert.ok(!next.done, 'the watch ended early');
    if (keep(next.value)) events.push(next.value);
  }
  return events;
}

const durable = (event: StoreEvent): boolean => event.kind === 'published' || event.kind === 'admin-state';

for (const backend of [fileBackend, etcdBackend]) {
  describe(`Store contract: ${backend.name}`, () => {
    before(() => backend.setup());
    after(async () => {
      for (const store of opened.splice(0)) await store.close();
      await backend.teardown();
    });

    describe('publish, read, versions, diff', () => {
      test('an empty store: version 0, no versions, read() says nothing is published, no current version in the snapshot', async () => {
        const { store } = await backend.fresh(new FakeClock());
        assert.equal(await store.currentVersion(), 0);
        assert.deepEqual(await store.listVersions(), []);
        await rejectsWith(store.read(), 'STORE_NOT_FOUND', 'nothing has been published');
        assert.equal((await store.snapshot()).current, undefined);
      });

      test('publish makes version N+1; read() the latest, read(N) any version, unchanged and frozen; listVersions in order; diff', async () => {
        const clock = new FakeClock();
        const { store } = await backend.fresh(clock);
        const first = topology(2, 1);
        const second = topology(3, 1);
        const published = await store.publish(first, 0, { by: 'alice', comment: 'initial' });
        assert.equal(published.version, 1);
        assert.equal(published.publishedAtMs, clock.nowMs());
        clock.advance(1000);
        const again = await store.publish(second, 1, { by: 'bob' });
        assert.ok(again.revision > published.revision, 'revisions grow');
        assert.equal(await store.currentVersion(), 2);
        const latest = await store.read();
        assert.equal(latest.version, 2);
        assert.equal(latest.revision, again.revision);
        assert.deepEqual(latest.topology, second);
        assert.equal(latest.comment, '');
        const old = await store.read(1);
        assert.deepEqual(old.topology, first);
        assert.equal(old.by, 'alice');
        assert.equal(old.comment, 'initial');
        assert.ok(Object.isFrozen(old.topology));
        assert.deepEqual(await store.listVersions(), [
          { version: 1, revision: published.revision, publishedAtMs: clock.nowMs() - 1000, by: 'alice', comment: 'initial' },
          { version: 2, revision: again.revision, publishedAtMs: clock.nowMs(), by: 'bob', comment: '' },
        ]);
        await rejectsWith(store.read(3), 'STORE_NOT_FOUND', 'version 3 does not exist');
        const diff = await store.diff(1, 2);
        assert.equal(diff.summary.serversAdded.length, 1);
        assert.deepEqual((await store.diff(2, 2)).entries, []);
        await rejectsWith(store.diff(1, 9), 'STORE_NOT_FOUND');
      });

      test('a stale base (behind or ahead) is refused with STORE_STALE_VERSION naming both versions; nothing is written', async () => {
        const { store } = await backend.fresh(new FakeClock());
        await store.publish(topology(), 0, { by: 'a' });
        await store.publish(topology(), 1, { by: 'a' });
        await rejectsWith(store.publish(topology(3), 1, { by: 'late' }), 'STORE_STALE_VERSION', /current version is 2, not the base version 1/);
        await rejectsWith(store.publish(topology(3), 5, { by: 'ahead' }), 'STORE_STALE_VERSION', /current version is 2, not the base version 5/);
        await rejectsWith(store.publish(topology(3), 0, { by: 'first?' }), 'STORE_STALE_VERSION', /current version is 2, not the base version 0/);
        assert.equal(await store.currentVersion(), 2);
        assert.deepEqual((await store.listVersions()).map((summary) => summary.by), ['a', 'a']);
      });

      test('two instances publishing on the same base at once: exactly one wins, every round', async () => {
        const { store: one, another } = await backend.fresh(systemClock);
        const two = await another();
        for (let round = 0; round < 8; round++) {
          const results = await Promise.allSettled([one.publish(topology(2), round, { by: 'one' }), two.publish(topology(3), round, { by: 'two' })]);
          const lost = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
          assert.equal(lost.length, 1, `round ${round}: ${results.map((result) => result.status).join(', ')}`);
          assert.ok(isDnslbError(lost[0]?.reason, 'STORE_STALE_VERSION'), String(lost[0]?.reason));
        }
        assert.equal(await one.currentVersion(), 8);
        assert.equal(await two.currentVersion(), 8);
        assert.deepEqual((await two.listVersions()).map((summary) => summary.version), [1, 2, 3, 4, 5, 6, 7, 8]);
      });

      test('a second instance sees what the first published (no stale cache)', async () => {
        const { store: writer, another } = await backend.fresh(new FakeClock());
        const reader = await another();
        assert.equal(await reader.currentVersion(), 0);
        await writer.publish(topology(4), 0, { by: 'w' });
        assert.deepEqual(serverNames((await reader.read()).topology), serverNames(topology(4)));
      });
    });

    describe('admin state', () => {
      test('records who, when and why; the latest per server wins; another instance sees it', async () => {
        const clock = new FakeClock();
        const { store, another } = await backend.fresh(clock);
        const value = topology(3);
        const [first, second] = serverNames(value) as [string, string];
        await store.publish(value, 0, { by: 'a' });
        const record = await store.setAdminState(first, 'draining', { by: 'ops@host', reason: 'patch Tuesday' });
        assert.deepEqual(record, { server: first, state: 'draining', by: 'ops@host', atMs: clock.nowMs(), reason: 'patch Tuesday' });
        clock.advance(5000);
        await store.setAdminState(first, 'active', { by: 'ops@host', reason: 'patched' });
        await store.setAdminState(second, 'blocked', { by: 'sec', reason: 'compromised' });
        const states = await (await another()).adminStates();
        assert.equal(states.size, 2);
        assert.deepEqual(states.get(first), { server: first, state: 'active', by: 'ops@host', atMs: clock.nowMs(), reason: 'patched' });
        assert.equal(states.get(second)?.state, 'blocked');
      });

      test('a server outside the current topology is refused with STORE_UNKNOWN_SERVER', async () => {
        const { store } = await backend.fresh(new FakeClock());
        await rejectsWith(store.setAdminState('fe9.example.com', 'blocked', { by: 'a', reason: 'r' }), 'STORE_UNKNOWN_SERVER', 'nothing is published yet');
        const value = topology(3);
        await store.publish(value, 0, { by: 'a' });
        await rejectsWith(store.setAdminState('fe9.example.com', 'blocked', { by: 'a', reason: 'r' }), 'STORE_UNKNOWN_SERVER', '(version 1)');
        // A server removed by a newer version is unknown from then on.
        const removed = serverNames(value)[2] as string;
        await store.publish(topology(2), 1, { by: 'a' });
        await rejectsWith(store.setAdminState(removed, 'blocked', { by: 'a', reason: 'r' }), 'STORE_UNKNOWN_SERVER', '(version 2)');
        assert.equal((await store.adminStates()).size, 0);
      });
    });

    describe('liveness', () => {
      test('one report per reporter holds its whole view: read as one record per server; a new view replaces the old one', async () => {
        const { store, another } = await backend.fresh(systemClock);
        const view = (states: Record<string, 'active' | 'down'>) => ({ reporter: 'fe1.example.com', atMs: Date.now(), ttlMs: 60_000, topologyVersion: 2, states: Object.entries(states).map(([server, state]) => ({ server, state })) });
        await store.reportLiveness(view({ 'fe1.example.com': 'active', 'fe2.example.com': 'down' }));
        const reader = await another();
        const records = (await reader.liveness()).sort((a, b) => a.server.localeCompare(b.server));
        assert.deepEqual(records.map((record) => [record.server, record.reporter, record.state, record.topologyVersion]), [['fe1.example.com', 'fe1.example.com', 'active', 2], ['fe2.example.com', 'fe1.example.com', 'down', 2]]);
        const controller = new AbortController();
        const iterator = reader.watch({ signal: controller.signal })[Symbol.asyncIterator]();
        assert.deepEqual((await take(iterator, 2)).map((event) => event.kind === 'liveness' && event.record.server).sort(), ['fe1.example.com', 'fe2.example.com']);
        const next = iterator.next();
        await store.reportLiveness(view({ 'fe1.example.com': 'active' })); // fe2 dropped from the view; fe1 renewed
        const dropped = await next;
        assert.deepEqual(!dropped.done && { ...dropped.value, revision: 0 }, { kind: 'liveness-expired', revision: 0, server: 'fe2.example.com', reporter: 'fe1.example.com' });
        assert.deepEqual((await reader.liveness()).map((record) => record.server), ['fe1.example.com']);
        assert.deepEqual((await reader.snapshot()).liveness.map((record) => record.server), ['fe1.example.com']);
        controller.abort();
      });

      test('one report per (server, reporter), the newest wins; a report not renewed expires after its TTL', async () => {
        const { store, another } = await backend.fresh(systemClock);
        const base = { server: 'fe1.example.com', state: 'active' as const, topologyVersion: 1 };
        await store.reportLiveness(reportOf({ ...base, reporter: 'fe2.example.com', ttlMs: 60_000, atMs: Date.now() }));
        await store.reportLiveness(reportOf({ ...base, reporter: 'fe3.example.com', ttlMs: 1000, atMs: Date.now() }));
        await store.reportLiveness(reportOf({ ...base, reporter: 'fe2.example.com', ttlMs: 60_000, state: 'down', atMs: Date.now() }));
        const reader = await another();
        const byReporter = (records: readonly LivenessRecord[]) => Object.fromEntries(records.map((record) => [record.reporter, record.state]));
        // fe3's report may already have expired on a slow machine: check fe2's, then wait for fe3's to go.
        assert.equal(byReporter(await reader.liveness())['fe2.example.com'], 'down');
        await eventually(async () => assert.deepEqual(byReporter(await reader.liveness()), { 'fe2.example.com': 'down' }));
        assert.deepEqual(byReporter((await reader.snapshot()).liveness), { 'fe2.example.com': 'down' });
      });
    });

    describe('users', () => {
      test('add, read from another instance, list sorted; a second add is STORE_USER_EXISTS; update and remove; re-add after remove', async () => {
        const clock = new FakeClock(1_000_000);
        const { store, another } = await backend.fresh(clock);
        const other = await another();
        assert.equal(await store.user('sip:alice@contoso.com'), undefined);
        assert.deepEqual(await store.users(), []);
        const added = await store.addUser(storeUser('sip:bob@contoso.com', { md5: true }), { by: 'op@host' });
        assert.deepEqual(added, { ...storeUser('sip:bob@contoso.com', { md5: true }), by: 'op@host', atMs: 1_000_000 });
        await store.addUser(storeUser('sip:alice@contoso.com'), { by: 'op@host' });
        assert.deepEqual(await other.user('sip:bob@contoso.com'), added);
        assert.deepEqual((await other.users()).map((user) => user.uri), ['sip:alice@contoso.com', 'sip:bob@contoso.com']);
        await rejectsWith(other.addUser(storeUser('sip:bob@contoso.com'), { by: 'x' }), 'STORE_USER_EXISTS', 'sip:bob@contoso.com');

        clock.advance(5000);
        const disabled = await other.updateUser('sip:bob@contoso.com', { disabled: true }, { by: 'sec@host' });
        assert.deepEqual(disabled, { ...added, disabled: true, by: 'sec@host', atMs: 1_005_000 });
        const credential = { realm: 'contoso.com', ha1Sha256: 'c'.repeat(64) };
        const rekeyed = await store.updateUser('sip:bob@contoso.com', { credential }, { by: 'op@host' });
        assert.deepEqual(rekeyed.credential, credential, 'a new credential replaces the MD5 hash too');
        assert.equal(rekeyed.disabled, true, 'the other instance\'s change is kept');
        assert.deepEqual(await other.user('sip:bob@contoso.com'), rekeyed);

        await store.removeUser('sip:bob@contoso.com');
        assert.equal(await other.user('sip:bob@contoso.com'), undefined);
        assert.deepEqual((await other.users()).map((user) => user.uri), ['sip:alice@contoso.com']);
        await rejectsWith(other.removeUser('sip:bob@contoso.com'), 'STORE_UNKNOWN_USER', 'sip:bob@contoso.com');
        await rejectsWith(other.updateUser('sip:bob@contoso.com', { disabled: false }, { by: 'x' }), 'STORE_UNKNOWN_USER');
        const again = await other.addUser(storeUser('sip:bob@contoso.com'), { by: 'op@host' });
        assert.deepEqual(await store.user('sip:bob@contoso.com'), again);
      });

      test('user changes are in the watched change log: add, move, disable, new password, remove arrive from another instance as user events, in order, with the record; a resumed watch replays them', async () => {
        const clock = new FakeClock(1_000_000);
        const { store: writer, another } = await backend.fresh(clock);
        const watcher = await another();
        const published = topology();
        const home = published.pools[0]!.fqdn;
        await writer.publish(published, 0, { by: 'test' });
        const start = (await watcher.snapshot()).revision;
        const controller = new AbortController();
        const iterator = watcher.watch({ afterRevision: start, signal: controller.signal })[Symbol.asyncIterator]();
        const isUser = (event: StoreEvent): boolean => event.kind === 'user';
        const uri = 'sip:dave@contoso.com';
        const added = await writer.addUser({ ...storeUser(uri), number: '+14255550100' }, { by: 'op' });
        const moved = await writer.updateUser(uri, { homePool: home }, { by: 'op' });
        const disabled = await writer.updateUser(uri, { disabled: true }, { by: 'op' });
        const rekeyed = await writer.updateUser(uri, { credential: { realm: 'contoso.com', ha1Sha256: 'd'.repeat(64) } }, { by: 'op' });
        await writer.removeUser(uri);
        // The file store delivers a user's record as it is when the watch reads it: a quick run of
        // changes may show a later record early (never an earlier one late), so the last one is exact.
        const events = await take(iterator, 5, isUser);
        const records = events.map((event) => (event.kind === 'user' ? event : undefined));
        assert.ok(records.every((event) => event?.uri === uri), 'each names the user');
        const revisions = events.map((event) => event.revision);
        assert.deepEqual(revisions, [...revisions].sort((a, b) => a - b), 'in revision order');
        assert.ok(new Set(revisions).size === 5 && revisions[0]! > start, 'one revision per change, after the resume point');
        assert.equal(records[4]?.record, undefined, 'the removal: no record');
        const order = [added, moved, disabled, rekeyed];
        for (let index = 0; index < 4; index++) {
          const record = records[index]?.record;
          if (record === undefined) continue; // already removed when read (file store, a quick run of changes)
          assert.ok(order.slice(index).some((expected) => JSON.stringify(expected) === JSON.stringify(record)), `event ${index}: this change or a later one`);
        }
        // Resuming after the first user event replays the rest, in the same order.
        const resumed = await take(watcher.watch({ afterRevision: revisions[0], signal: controller.signal })[Symbol.asyncIterator](), 4, isUser);
        assert.deepEqual(resumed.map((event) => event.revision), revisions.slice(1));
        // Two watchers, one change: both see the record as stored.
        await writer.addUser(storeUser(uri, { homePool: home }), { by: 'op' });
        const [again] = await take(iterator, 1, isUser);
        assert.deepEqual(again?.kind === 'user' && again.record, await writer.user(uri));
        // A consumer without a directory (DNS) asks for no user events: the next durable change it sees is the publish.
        const republished = await writer.publish(published, 1, { by: 'test' });
        const [first] = await take(watcher.watch({ afterRevision: start, signal: controller.signal, users: false })[Symbol.asyncIterator](), 1, (event) => event.kind !== 'liveness');
        assert.deepEqual(first, { kind: 'published', revision: republished.revision, version: 2 });
        controller.abort();
      });

      test('a home pool must be a frontend pool of the published topology; null removes it', async () => {
        const { store } = await backend.fresh(new FakeClock());
        const value = storeTopologyWithDirector();
        const [frontend, director] = value.pools;
        assert.ok(frontend && director && director.kind === 'director');
        await rejectsWith(store.addUser(storeUser('sip:alice@contoso.com', { homePool: frontend.fqdn }), { by: 'x' }), 'STORE_UNKNOWN_POOL', 'nothing is published');
        await store.publish(value, 0, { by: 'x' });
        await rejectsWith(store.addUser(storeUser('sip:alice@contoso.com', { homePool: 'nopool.example.com' }), { by: 'x' }), 'STORE_UNKNOWN_POOL', frontend.fqdn);
        await rejectsWith(store.addUser(storeUser('sip:alice@contoso.com', { homePool: director.fqdn }), { by: 'x' }), 'STORE_UNKNOWN_POOL', 'director');
        assert.equal(await store.user('sip:alice@contoso.com'), undefined, 'a refused add writes nothing');
        const homed = await store.addUser(storeUser('sip:alice@contoso.com', { homePool: frontend.fqdn }), { by: 'x' });
        assert.equal(homed.homePool, frontend.fqdn);
        await rejectsWith(store.updateUser('sip:alice@contoso.com', { homePool: director.fqdn }, { by: 'x' }), 'STORE_UNKNOWN_POOL');
        const unhomed = await store.updateUser('sip:alice@contoso.com', { homePool: null }, { by: 'x' });
        assert.equal('homePool' in unhomed, false);
        assert.deepEqual(await store.user('sip:alice@contoso.com'), unhomed);
      });

      test('malformed records are STORE_BAD_USER naming the field: not canonical, bad hashes, a realm other than the domain', async () => {
        const { store } = await backend.fresh(new FakeClock());
        const good = storeUser('sip:alice@contoso.com');
        await rejectsWith(store.addUser({ ...good, uri: 'sip:alice@Contoso.com' }, { by: 'x' }), 'STORE_BAD_USER', 'uri');
        await rejectsWith(store.addUser({ ...good, uri: 'alice@contoso.com' }, { by: 'x' }), 'STORE_BAD_USER', 'uri');
        await rejectsWith(store.addUser({ ...good, credential: { ...good.credential, ha1Sha256: 'A'.repeat(64) } }, { by: 'x' }), 'STORE_BAD_USER', 'ha1Sha256');
        await rejectsWith(store.addUser({ ...good, credential: { ...good.credential, ha1Md5: 'ab' } }, { by: 'x' }), 'STORE_BAD_USER', 'ha1Md5');
        await rejectsWith(store.addUser({ ...good, credential: { ...good.credential, realm: 'fabrikam.com' } }, { by: 'x' }), 'STORE_BAD_USER', 'realm');
        await rejectsWith(store.addUser(good, { by: 'x'.repeat(limits.storeTextCharsMax + 1) }), 'STORE_TOO_LARGE');
        assert.deepEqual(await store.users(), []);
      });

      test('two instances adding the same user at once: exactly one wins, every round', async () => {
        const { store, another } = await backend.fresh(new FakeClock());
        const other = await another();
        for (let round = 0; round < 5; round++) {
          const uri = `sip:user${round}@contoso.com`;
          const results = await Promise.allSettled([store.addUser(storeUser(uri), { by: 'a' }), other.addUser(storeUser(uri), { by: 'b' })]);
          assert.equal(results.filter((result) => result.status === 'fulfilled').length, 1, `round ${round}`);
          const loser = results.find((result) => result.status === 'rejected');
          assert.ok(loser && isDnslbError(loser.reason, 'STORE_USER_EXISTS'));
          const winner = results.find((result) => result.status === 'fulfilled');
          assert.deepEqual(await other.user(uri), winner?.status === 'fulfilled' ? winner.value : undefined);
        }
      });

      test('concurrent changes of one user from two instances are all kept (compare-and-swap, no lost update)', async () => {
        const { store, another } = await backend.fresh(new FakeClock());
        const other = await another();
        await store.addUser(storeUser('sip:carol@contoso.com'), { by: 'x' });
        // Each writer changes its own field ten times in a row, both at once: with a read-modify-write
        // that is not a compare-and-swap, one writer's last change is overwritten by the other's stale copy.
        const writerA = async (): Promise<void> => {
          for (let index = 0; index < 10; index++) await store.updateUser('sip:carol@contoso.com', { disabled: index % 2 === 1 }, { by: 'a' });
        };
        const writerB = async (): Promise<void> => {
          for (let index = 0; index < 10; index++) await other.updateUser('sip:carol@contoso.com', { credential: { realm: 'contoso.com', ha1Sha256: String(index).repeat(64) } }, { by: 'b' });
        };
        await Promise.all([writerA(), writerB()]);
        const final = await store.user('sip:carol@contoso.com');
        assert.equal(final?.disabled, true);
        assert.equal(final?.credential.ha1Sha256, '9'.repeat(64));
      });

      test('a pool secret: the first candidate wins, every instance gets the same bytes', async () => {
        const { store, another } = await backend.fresh(new FakeClock());
        const other = await another();
        const [first, second] = await Promise.all([store.authSecret('pool.contoso.com', Buffer.alloc(32, 1)), other.authSecret('pool.contoso.com', Buffer.alloc(32, 2))]);
        assert.ok(first && second);
        assert.deepEqual(first, second);
        assert.ok(first.equals(Buffer.alloc(32, 1)) || first.equals(Buffer.alloc(32, 2)));
        assert.deepEqual(await store.authSecret('pool.contoso.com', Buffer.alloc(32, 3)), first);
        assert.deepEqual(await other.authSecret('other.contoso.com', Buffer.alloc(32, 4)), Buffer.alloc(32, 4), 'each pool has its own');
      });
    });

    describe('snapshot', () => {
      test('holds the current version, admin states and liveness at one revision; a watch from it delivers exactly what came after', async () => {
        const { store, another } = await backend.fresh(systemClock);
        const value = topology(3);
        const [server] = serverNames(value) as [string];
        await store.publish(value, 0, { by: 'a' });
        await store.setAdminState(server, 'blocked', { by: 'ops', reason: 'r' });
        await store.reportLiveness(reportOf({ server, reporter: 'fe2', state: 'active', ttlMs: 60_000, atMs: Date.now(), topologyVersion: 1 }));
        const snapshot = await store.snapshot();
        assert.equal(snapshot.current?.version, 1);
        assert.deepEqual(snapshot.current?.topology, value);
        assert.equal(snapshot.adminStates.get(server)?.state, 'blocked');
        assert.deepEqual(snapshot.liveness.map((record) => record.reporter), ['fe2']);
        assert.ok(snapshot.revision >= (snapshot.current?.revision ?? Infinity));

        // Snapshots taken while another instance keeps publishing: each one's current version is
        // exactly the last one before its revision, so a watch from it misses nothing and repeats nothing.
        const writer = await another();
        const writing = (async () => {
          for (let version = 1; version < 6; version++) await writer.publish(topology(2 + (version % 2)), version, { by: 'w' });
        })();
        const snapshots = [];
        for (let index = 0; index < 3; index++) snapshots.push(await store.snapshot());
        await writing;
        for (const taken of snapshots) {
          const controller = new AbortController();
          const from = taken.current?.version ?? 0;
          const events = await take(store.watch({ afterRevision: taken.revision, signal: controller.signal })[Symbol.asyncIterator](), 6 - from, (event) => event.kind === 'published');
          controller.abort();
          assert.deepEqual(
            events.map((event) => event.kind === 'published' && event.version),
            Array.from({ length: 6 - from }, (_, index) => from + 1 + index),
          );
        }
      });
    });

    describe('watch', () => {
      test('from now: another instance\'s publishes and admin changes, in order, with their revisions', async () => {
        const clock = new FakeClock();
        const { store: writer, another } = await backend.fresh(clock);
        const watcher = await another();
        const value = topology(2);
        await writer.publish(value, 0, { by: 'before the watch' });
        // A watch reports current liveness first: once that arrives, "now" is fixed for it.
        await writer.reportLiveness(reportOf({ server: 'fe1', reporter: 'fe2', state: 'active', ttlMs: 60_000, atMs: clock.nowMs(), topologyVersion: 1 }));
        const controller = new AbortController();
        const iterator = watcher.watch({ signal: controller.signal })[Symbol.asyncIterator]();
        assert.equal((await take(iterator, 1))[0]?.kind, 'liveness');
        const pending = take(iterator, 3, durable);
        const second = await writer.publish(value, 1, { by: 'w' });
        const admin = await writer.setAdminState(serverNames(value)[0] as string, 'draining', { by: 'w', reason: 'r' });
        const third = await writer.publish(value, 2, { by: 'w' });
        const events = await pending;
        assert.deepEqual(events[0], { kind: 'published', revision: second.revision, version: 2 });
        assert.equal(events[1]?.kind === 'admin-state' && events[1].record.server, admin.server);
        assert.ok((events[1]?.revision ?? 0) > second.revision);
        assert.deepEqual(events[2], { kind: 'published', revision: third.revision, version: 3 });
        controller.abort();
        assert.equal((await iterator.next()).done, true, 'abort ends the watch');
      });

      test('afterRevision replays the durable changes after it, in order; close() ends a watch', async () => {
        const { store, another } = await backend.fresh(new FakeClock());
        const value = topology(2);
        const [server] = serverNames(value) as [string];
        const revisions: number[] = [];
        revisions.push((await store.publish(value, 0, { by: 'w' })).revision);
        await store.setAdminState(server, 'draining', { by: 'w', reason: 'one' });
        revisions.push((await store.publish(value, 1, { by: 'w' })).revision);
        await store.setAdminState(server, 'blocked', { by: 'w', reason: 'two' });
        revisions.push((await store.publish(value, 2, { by: 'w' })).revision);
        const reader = await another();
        const iterator = reader.watch({ afterRevision: revisions[0] })[Symbol.asyncIterator]();
        const events = await take(iterator, 4, durable);
        assert.deepEqual(
          events.map((event) => (event.kind === 'published' ? `v${event.version}` : event.kind === 'admin-state' ? event.record.reason : event.kind)),
          ['one', 'v2', 'two', 'v3'],
        );
        assert.deepEqual(events.map((event) => event.revision), [...events.map((event) => event.revision)].sort((a, b) => a - b));
        assert.equal(events[3]?.revision, revisions[2]);
        const resumed = await take(reader.watch({ afterRevision: events[1]?.revision })[Symbol.asyncIterator](), 2, durable);
        assert.deepEqual(resumed, events.slice(2));
        const pending = iterator.next();
        await reader.close();
        assert.equal((await pending).done, true, 'close() ends every watch');
      });

      test('liveness: current reports first, then changes of state (not renewals), then expiry', async () => {
        const { store, another } = await backend.fresh(systemClock);
        const watcherStore = await another();
        const report = { server: 'fe1.example.com', reporter: 'fe2.example.com', state: 'active' as const, ttlMs: 60_000, topologyVersion: 1 };
        await store.reportLiveness(reportOf({ ...report, atMs: Date.now() }));
        const controller = new AbortController();
        const iterator = watcherStore.watch({ signal: controller.signal })[Symbol.asyncIterator]();
        const [first] = await take(iterator, 1);
        assert.equal(first?.kind === 'liveness' && first.record.state, 'active');
        const next = iterator.next();
        await store.reportLiveness(reportOf({ ...report, atMs: Date.now() })); // a renewal, same state: no event
        await store.reportLiveness(reportOf({ ...report, state: 'down', ttlMs: 1000, atMs: Date.now() }));
        const changed = await next;
        assert.equal(!changed.done && changed.value.kind === 'liveness' && changed.value.record.state, 'down');
        const [expired] = await take(iterator, 1);
        assert.deepEqual(expired && { ...expired, revision: 0 }, { kind: 'liveness-expired', revision: 0, server: 'fe1.example.com', reporter: 'fe2.example.com' });
        controller.abort();
        assert.equal((await iterator.next()).done, true);
      });

      test('an aborted signal ends a watch that is waiting for changes', async () => {
        const { store } = await backend.fresh(new FakeClock());
        const controller = new AbortController();
        const iterator = store.watch({ signal: controller.signal })[Symbol.asyncIterator]();
        const pending = iterator.next();
        setTimeout(() => controller.abort(), 50);
        assert.equal((await pending).done, true);
      });
    });
  });
}
