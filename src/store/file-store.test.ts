// Unit tests of the file store: every operation, compare-and-swap, compaction, watch resume,
// liveness expiry on a FakeClock, and corrupt or truncated files (STORE_CORRUPT naming the file).
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { topologyDocument, topologyShape, validTopology } from '../../test/helpers/topology-arbitrary.ts';
import { isDnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { fromObject } from '../topology/parse.ts';
import { openFileStore, type FileStore, type FileStoreOptions } from './file-store.ts';
import { reportOf, type StoreEvent } from './store.ts';
import { rejectsWith, serverNames, storeTopology as topology, storeUser } from '../../test/helpers/store-fixtures.ts';

const directories: string[] = [];
after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'dnslb-store-test-'));
  directories.push(directory);
  return directory;
}

async function freshStore(options: Partial<FileStoreOptions> = {}): Promise<{ store: FileStore; dataDir: string; clock: FakeClock }> {
  const dataDir = options.dataDir ?? (await freshDir());
  const clock = (options.clock as FakeClock | undefined) ?? new FakeClock();
  return { store: await openFileStore({ ...options, dataDir, clock }), dataDir, clock };
}

async function take(iterator: AsyncIterator<StoreEvent>, count: number): Promise<StoreEvent[]> {
  const events: StoreEvent[] = [];
  while (events.length < count) {
    const next = await iterator.next();
    assert.ok(!next.done, 'the watch ended early');
    events.push(next.value);
  }
  return events;
}

describe('publish and read', () => {
  test('an empty store has version 0, no versions, and read() says nothing is published', async () => {
    const { store } = await freshStore();
    assert.equal(await store.currentVersion(), 0);
    assert.deepEqual(await store.listVersions(), []);
    await rejectsWith(store.read(), 'STORE_NOT_FOUND', 'nothing has been published');
    const snapshot = await store.snapshot();
    assert.equal(snapshot.revision, 0);
    assert.equal(snapshot.current, undefined);
  });

  test('publish makes version N+1; read() gives the latest, read(N) any version, unchanged', async () => {
    const { store, clock } = await freshStore();
    const first = topology(2, 1);
    const second = topology(3, 2);
    const published = await store.publish(first, 0, { by: 'alice', comment: 'initial' });
    assert.equal(published.version, 1);
    assert.equal(published.publishedAtMs, clock.nowMs());
    clock.advance(1000);
    await store.publish(second, 1, { by: 'bob' });
    assert.equal(await store.currentVersion(), 2);
    const latest = await store.read();
    assert.equal(latest.version, 2);
    assert.deepEqual(latest.topology, second);
    assert.equal(latest.by, 'bob');
    assert.equal(latest.comment, '');
    const old = await store.read(1);
    assert.deepEqual(old.topology, first);
    assert.equal(old.comment, 'initial');
    assert.ok(Object.isFrozen(old.topology), 'a topology read back is frozen, as parse returns it');
    assert.deepEqual(
      (await store.listVersions()).map((summary) => [summary.version, summary.by, summary.publishedAtMs]),
      [
        [1, 'alice', clock.nowMs() - 1000],
        [2, 'bob', clock.nowMs()],
      ],
    );
    await rejectsWith(store.read(3), 'STORE_NOT_FOUND', 'version 3 does not exist');
  });

  test('a stale base is refused with STORE_STALE_VERSION naming both versions, and nothing is written', async () => {
    const { store, dataDir } = await freshStore();
    await store.publish(topology(), 0, { by: 'a' });
    await store.publish(topology(), 1, { by: 'a' });
    const before = await readdir(join(dataDir, 'store', 'log'));
    await rejectsWith(store.publish(topology(3), 1, { by: 'late' }), 'STORE_STALE_VERSION', /current version is 2, not the base version 1/);
    await rejectsWith(store.publish(topology(3), 5, { by: 'ahead' }), 'STORE_STALE_VERSION', /current version is 2, not the base version 5/);
    assert.deepEqual(await readdir(join(dataDir, 'store', 'log')), before);
    assert.equal(await store.currentVersion(), 2);
  });

  test('two store instances publishing on the same base at once: exactly one wins', async () => {
    const dataDir = await freshDir();
    const one = await openFileStore({ dataDir });
    const two = await openFileStore({ dataDir });
    for (let round = 0; round < 10; round++) {
      const results = await Promise.allSettled([one.publish(topology(2), round, { by: 'one' }), two.publish(topology(3), round, { by: 'two' })]);
      const won = results.filter((result) => result.status === 'fulfilled');
      const lost = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 1);
      assert.ok(isDnslbError(lost[0]?.reason, 'STORE_STALE_VERSION'));
    }
    assert.equal(await one.currentVersion(), 10);
    assert.equal(await two.currentVersion(), 10);
  });

  test('a second instance sees what the first published (no stale cache)', async () => {
    const dataDir = await freshDir();
    const writer = await openFileStore({ dataDir });
    const reader = await openFileStore({ dataDir });
    assert.equal(await reader.currentVersion(), 0);
    await writer.publish(topology(4), 0, { by: 'w' });
    assert.deepEqual(serverNames((await reader.read()).topology), serverNames(topology(4)));
  });

  test('a document over the size limit is refused with STORE_TOO_LARGE; long texts too', async () => {
    const { store } = await freshStore();
    const huge = fromObject({ ...topologyDocument(fc.sample(topologyShape, { numRuns: 1, seed: 3 })[0] as never), users: Array.from({ length: 200_000 }, (_, index) => `sip:user${index}@example.com`) });
    await rejectsWith(store.publish(huge, 0, { by: 'a' }), 'STORE_TOO_LARGE', `limit of ${limits.topologyBytesMax}`);
    await rejectsWith(store.publish(topology(), 0, { by: 'a', comment: 'x'.repeat(limits.storeTextCharsMax + 1) }), 'STORE_TOO_LARGE', 'comment');
    assert.equal(await store.currentVersion(), 0);
  });

  test('diff names the servers added and removed between two versions', async () => {
    const { store } = await freshStore();
    await store.publish(topology(2), 0, { by: 'a' });
    await store.publish(topology(3), 1, { by: 'a' });
    const diff = await store.diff(1, 2);
    assert.deepEqual(diff.summary.serversAdded, ['xp0s2.' + serverNames(topology(3))[0]?.split('.').slice(1).join('.')]);
    assert.deepEqual((await store.diff(2, 2)).entries, []);
    await rejectsWith(store.diff(1, 9), 'STORE_NOT_FOUND');
  });
});

describe('property: publish → read returns the topology unchanged', () => {
  test('any generated valid topology survives the store', async () => {
    const { store } = await freshStore({ compactEvery: 7 });
    let version = 0;
    await fc.assert(
      fc.asyncProperty(validTopology, async (generated) => {
        const published = await store.publish(generated, version, { by: 'property' });
        version = published.version;
        assert.deepEqual((await store.read()).topology, generated);
        assert.deepEqual((await store.read(version)).topology, generated);
      }),
      { numRuns: 40 },
    );
    // Compaction has run several times; the first versions are still readable from versions/.
    assert.equal((await store.listVersions()).length, version);
    assert.equal((await store.read(1)).version, 1);
  });
});

describe('compaction', () => {
  test('the log is folded into a compaction; every version and admin state survives a reopen', async () => {
    const { store, dataDir, clock } = await freshStore({ compactEvery: 3 });
    for (let version = 0; version < 10; version++) await store.publish(topology(2 + (version % 3)), version, { by: `v${version + 1}` });
    await store.setAdminState(serverNames(topology(4))[0] as string, 'blocked', { by: 'ops', reason: 'disk' });
    const log = await readdir(join(dataDir, 'store', 'log'));
    assert.ok(log.length < 3, `log holds ${log.length} entries after compaction`);
    assert.equal((await readdir(join(dataDir, 'store', 'compactions'))).length, 1);
    const reopened = await openFileStore({ dataDir, clock });
    assert.equal(await reopened.currentVersion(), 10);
    for (let version = 1; version <= 10; version++) assert.equal((await reopened.read(version)).by, `v${version}`);
    assert.equal((await reopened.adminStates()).get(serverNames(topology(4))[0] as string)?.state, 'blocked');
  });

  test('an instance that lagged behind a compaction catches up from it', async () => {
    const dataDir = await freshDir();
    const lagging = await openFileStore({ dataDir });
    const busy = await openFileStore({ dataDir, compactEvery: 2 });
    for (let version = 0; version < 7; version++) await busy.publish(topology(2), version, { by: 'busy' });
    assert.equal(await lagging.currentVersion(), 7);
    await lagging.publish(topology(3), 7, { by: 'lagging' });
    assert.equal((await busy.read()).by, 'lagging');
  });
});

describe('admin state', () => {
  test('records who, when and why; the latest per server wins; survives a reopen', async () => {
    const { store, dataDir, clock } = await freshStore();
    const value = topology(3);
    const [first, second] = serverNames(value) as [string, string];
    await store.publish(value, 0, { by: 'a' });
    const record = await store.setAdminState(first, 'draining', { by: 'ops@host', reason: 'patch Tuesday' });
    assert.deepEqual(record, { server: first, state: 'draining', by: 'ops@host', atMs: clock.nowMs(), reason: 'patch Tuesday' });
    clock.advance(5000);
    await store.setAdminState(first, 'active', { by: 'ops@host', reason: 'patched' });
    await store.setAdminState(second, 'blocked', { by: 'sec', reason: 'compromised' });
    const states = await (await openFileStore({ dataDir, clock })).adminStates();
    assert.equal(states.size, 2);
    assert.deepEqual(states.get(first), { server: first, state: 'active', by: 'ops@host', atMs: clock.nowMs(), reason: 'patched' });
    assert.equal(states.get(second)?.state, 'blocked');
  });

  test('a server outside the current topology is refused with STORE_UNKNOWN_SERVER', async () => {
    const { store } = await freshStore();
    await rejectsWith(store.setAdminState('fe9.example.com', 'blocked', { by: 'a', reason: 'r' }), 'STORE_UNKNOWN_SERVER', 'nothing is published yet');
    await store.publish(topology(2), 0, { by: 'a' });
    await rejectsWith(store.setAdminState('fe9.example.com', 'blocked', { by: 'a', reason: 'r' }), 'STORE_UNKNOWN_SERVER', '(version 1)');
  });
});

describe('liveness', () => {
  test('reports are kept per (server, reporter), the newest wins, and expired ones are not returned', async () => {
    const { store, clock, dataDir } = await freshStore({ livenessRetainMs: 10_000 });
    const base = { state: 'active' as const, ttlMs: 3000, topologyVersion: 1 };
    await store.reportLiveness(reportOf({ ...base, server: 'fe1.example.com', reporter: 'fe2.example.com', atMs: clock.nowMs() }));
    await store.reportLiveness(reportOf({ ...base, server: 'fe1.example.com', reporter: 'fe3.example.com', atMs: clock.nowMs() }));
    clock.advance(2000);
    await store.reportLiveness(reportOf({ ...base, server: 'fe1.example.com', reporter: 'fe2.example.com', state: 'down', atMs: clock.nowMs() }));
    let live = await store.liveness();
    assert.equal(live.length, 2);
    assert.equal(live.find((record) => record.reporter === 'fe2.example.com')?.state, 'down');
    clock.advance(1500); // fe3's report (at 0, ttl 3 s) has expired; fe2's (at 2 s) has not
    live = await store.liveness();
    assert.deepEqual(live.map((record) => record.reporter), ['fe2.example.com']);
    assert.equal((await store.snapshot()).liveness.length, 1);
    clock.advance(20_000); // past retention: the files are deleted, so the folder does not grow without bound
    assert.deepEqual(await store.liveness(), []);
    assert.deepEqual(await readdir(join(dataDir, 'store', 'liveness')), []);
  });

  test('one file per reporter holding its whole view: a pool of N writes N files, a new view replaces the old; files of the older one-per-pair layout are removed', async () => {
    const { store, dataDir, clock } = await freshStore();
    const names = ['fe1.example.com', 'fe2.example.com', 'fe3.example.com'];
    for (const reporter of names) {
      await store.reportLiveness({ reporter, atMs: clock.nowMs(), ttlMs: 3000, topologyVersion: 1, states: names.map((server) => ({ server, state: 'active' as const })) });
    }
    assert.deepEqual((await readdir(join(dataDir, 'store', 'liveness'))).sort(), names.map((name) => `${name}.json`));
    assert.equal((await store.liveness()).length, 9);
    await store.reportLiveness({ reporter: 'fe1.example.com', atMs: clock.nowMs(), ttlMs: 3000, topologyVersion: 1, states: [{ server: 'fe1.example.com', state: 'active' }] });
    assert.deepEqual((await store.liveness()).filter((record) => record.reporter === 'fe1.example.com').map((record) => record.server), ['fe1.example.com']);
    await writeFile(join(dataDir, 'store', 'liveness', 'fe1.example.com~fe2.example.com.json'), '{"old":"layout"}');
    assert.equal((await store.liveness()).length, 7);
    assert.deepEqual((await readdir(join(dataDir, 'store', 'liveness'))).length, 3);
  });

  test('reporters and servers with any characters stay distinct files', async () => {
    const { store, clock } = await freshStore();
    const base = { state: 'suspect' as const, ttlMs: 3000, topologyVersion: 0, atMs: clock.nowMs() };
    await store.reportLiveness(reportOf({ ...base, server: 'a.example.com', reporter: 'Admin API ~/_x' }));
    await store.reportLiveness(reportOf({ ...base, server: 'a.example.com', reporter: 'admin api ~/_x' }));
    assert.equal((await store.liveness()).length, 2);
  });
});

describe('watch', () => {
  test('a watch on another instance sees publishes and admin changes in order, from "now"', async () => {
    const dataDir = await freshDir();
    const writer = await openFileStore({ dataDir });
    const watcher = await openFileStore({ dataDir });
    const value = topology(2);
    await writer.publish(value, 0, { by: 'before the watch' });
    const controller = new AbortController();
    const iterator = watcher.watch({ signal: controller.signal })[Symbol.asyncIterator]();
    const pending = take(iterator, 2);
    await writer.publish(value, 1, { by: 'w' });
    await writer.setAdminState(serverNames(value)[0] as string, 'draining', { by: 'w', reason: 'r' });
    const events = await pending;
    assert.deepEqual(events[0], { kind: 'published', revision: 2, version: 2 });
    assert.equal(events[1]?.kind, 'admin-state');
    assert.equal(events[1]?.revision, 3);
    controller.abort();
    assert.equal((await iterator.next()).done, true);
  });

  test('afterRevision resumes exactly after the given revision', async () => {
    const { store } = await freshStore();
    const value = topology(2);
    for (let version = 0; version < 4; version++) await store.publish(value, version, { by: 'w' });
    const iterator = store.watch({ afterRevision: 2 })[Symbol.asyncIterator]();
    assert.deepEqual(await take(iterator, 2), [
      { kind: 'published', revision: 3, version: 3 },
      { kind: 'published', revision: 4, version: 4 },
    ]);
    await store.close();
    assert.equal((await iterator.next()).done, true, 'close() ends every watch');
  });

  test('a resume point that was compacted away replays the compacted state, then the log', async () => {
    const { store } = await freshStore({ compactEvery: 3 });
    const value = topology(2);
    const [server] = serverNames(value) as [string];
    await store.publish(value, 0, { by: 'w' }); // r1
    await store.setAdminState(server, 'draining', { by: 'w', reason: 'a' }); // r2
    await store.setAdminState(server, 'blocked', { by: 'w', reason: 'b' }); // r3: compaction at 3
    await store.publish(value, 1, { by: 'w' }); // r4
    const controller = new AbortController();
    const events = await take(store.watch({ afterRevision: 1, signal: controller.signal })[Symbol.asyncIterator](), 2);
    controller.abort();
    assert.equal(events[0]?.kind, 'admin-state');
    assert.equal(events[0]?.kind === 'admin-state' && events[0].record.state, 'blocked', 'the latest state, not the steps');
    assert.deepEqual(events[1], { kind: 'published', revision: 4, version: 2 });
  });

  test('user changes compacted away: a resumed watch says so (users-reset) instead of replaying them; the log entries name users, never their hashes', async () => {
    const { store } = await freshStore({ compactEvery: 3 });
    await store.publish(topology(2), 0, { by: 'w' }); // r1
    await store.addUser(storeUser('sip:alice@contoso.com'), { by: 'w' }); // r2
    const logged = JSON.parse(await readFile(join(store.directory, 'log', `${'2'.padStart(16, '0')}.json`), 'utf8')) as { change: unknown };
    assert.deepEqual(logged.change, { kind: 'user', uri: 'sip:alice@contoso.com' });
    await store.updateUser('sip:alice@contoso.com', { disabled: true }, { by: 'w' }); // r3: compaction at 3
    await store.addUser(storeUser('sip:bob@contoso.com'), { by: 'w' }); // r4
    const controller = new AbortController();
    const events = await take(store.watch({ afterRevision: 1, signal: controller.signal })[Symbol.asyncIterator](), 2);
    assert.deepEqual(events[0], { kind: 'users-reset', revision: 3 });
    assert.equal(events[1]?.kind === 'user' && events[1].uri, 'sip:bob@contoso.com', 'then the log, change by change');
    // Resumed at the compaction itself: nothing was lost, no reset.
    const [after] = await take(store.watch({ afterRevision: 3, signal: controller.signal })[Symbol.asyncIterator](), 1);
    assert.equal(after?.kind === 'user' && after.revision, 4);
    controller.abort();
  });

  test('liveness: current reports first, then changes, then expiry when the clock passes the TTL', async () => {
    const { store, clock } = await freshStore({ pollIntervalMs: 100 });
    const report = { server: 'fe1.example.com', reporter: 'fe2.example.com', state: 'active' as const, ttlMs: 3000, topologyVersion: 1 };
    await store.reportLiveness(reportOf({ ...report, atMs: clock.nowMs() }));
    const controller = new AbortController();
    const iterator = store.watch({ signal: controller.signal })[Symbol.asyncIterator]();
    const [first] = await take(iterator, 1);
    assert.equal(first?.kind === 'liveness' && first.record.state, 'active');
    const next = iterator.next();
    await store.reportLiveness(reportOf({ ...report, atMs: clock.nowMs() })); // a renewal, same state: no event
    await store.reportLiveness(reportOf({ ...report, state: 'down', atMs: clock.nowMs() }));
    const changed = await next;
    assert.equal(!changed.done && changed.value.kind === 'liveness' && changed.value.record.state, 'down');
    const expired = iterator.next();
    clock.advance(3100); // the poll timer fires on the fake clock and finds the report expired
    assert.deepEqual((await expired).value, { kind: 'liveness-expired', revision: 0, server: 'fe1.example.com', reporter: 'fe2.example.com' });
    controller.abort();
    clock.advance(100);
    assert.equal((await iterator.next()).done, true);
  });
});

describe('crash leftovers and corrupt files', () => {
  async function publishedStore(versions = 2): Promise<{ dataDir: string; logFile: (revision: number) => string }> {
    const { store, dataDir } = await freshStore();
    for (let version = 0; version < versions; version++) await store.publish(topology(2), version, { by: 'a' });
    return { dataDir, logFile: (revision) => join(dataDir, 'store', 'log', `${String(revision).padStart(16, '0')}.json`) };
  }

  test('temp files of dead writers are removed on open; a live writer\'s are kept', async () => {
    const { dataDir } = await publishedStore(1);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const tmp = join(dataDir, 'store', 'tmp');
    await writeFile(join(tmp, `${dead.stdout}.abc.tmp`), '{"half":');
    await writeFile(join(tmp, `${process.pid}.def.tmp`), 'in flight');
    const store = await openFileStore({ dataDir });
    assert.deepEqual(await readdir(tmp), [`${process.pid}.def.tmp`]);
    assert.equal(await store.currentVersion(), 1);
  });

  const cases: { name: string; damage: (logFile: (revision: number) => string) => Promise<string>; message: RegExp }[] = [
    { name: 'a truncated log entry', damage: async (logFile) => (await truncate(logFile(2), 100), logFile(2)), message: /not JSON/ },
    { name: 'an empty log entry', damage: async (logFile) => (await truncate(logFile(2), 0), logFile(2)), message: /not JSON/ },
    { name: 'a log entry written by hand with the wrong shape', damage: async (logFile) => (await writeFile(logFile(2), '{"format":1,"revision":2}'), logFile(2)), message: /unexpected content/ },
    {
      name: 'a log entry whose revision disagrees with its name',
      damage: async (logFile) => (await writeFile(logFile(2), (await readFile(logFile(2), 'utf8')).replace('"revision":2', '"revision":7')), logFile(2)),
      message: /holds revision 7/,
    },
    { name: 'a hole in the log', damage: async (logFile) => (await unlink(logFile(2)), logFile(2)), message: /missing/ },
    {
      name: 'an oversized log entry',
      damage: async (logFile) => (await writeFile(logFile(3), 'x'.repeat(limits.storeLogEntryBytesMax + 1)), logFile(3)),
      message: /more than the limit/,
    },
  ];
  for (const { name, damage, message } of cases) {
    test(`${name}: open fails with STORE_CORRUPT naming the file`, async () => {
      const { dataDir, logFile } = await publishedStore(3);
      const file = await damage(logFile);
      const error = await rejectsWith(openFileStore({ dataDir }), 'STORE_CORRUPT', file);
      assert.match(error.message, message);
    });
  }

  test('a stored topology that no longer validates: read fails with STORE_CORRUPT naming the file', async () => {
    const { dataDir, logFile } = await publishedStore(1);
    await writeFile(logFile(1), (await readFile(logFile(1), 'utf8')).replace('"kind":"frontend"', '"kind":"backend"'));
    const store = await openFileStore({ dataDir });
    const error = await rejectsWith(store.read(), 'STORE_CORRUPT', logFile(1));
    assert.match(error.message, /does not validate/);
  });

  test('a truncated compaction or version document: STORE_CORRUPT naming the file', async () => {
    const { store, dataDir } = await freshStore({ compactEvery: 2 });
    await store.publish(topology(2), 0, { by: 'a' });
    await store.publish(topology(2), 1, { by: 'a' });
    const versionFile = join(dataDir, 'store', 'versions', `${'1'.padStart(16, '0')}.json`);
    await truncate(versionFile, 50);
    await rejectsWith((await openFileStore({ dataDir })).read(1), 'STORE_CORRUPT', versionFile);
    const compactionFile = join(dataDir, 'store', 'compactions', `${'2'.padStart(16, '0')}.json`);
    await truncate(compactionFile, 10);
    await rejectsWith(openFileStore({ dataDir }), 'STORE_CORRUPT', compactionFile);
  });

  test('a corrupt liveness file: STORE_CORRUPT naming the file', async () => {
    const { store, dataDir, clock } = await freshStore();
    await store.reportLiveness(reportOf({ server: 'a.example.com', reporter: 'b.example.com', state: 'active', atMs: clock.nowMs(), ttlMs: 1000, topologyVersion: 0 }));
    const file = join(dataDir, 'store', 'liveness', 'b.example.com.json');
    await truncate(file, 5);
    await rejectsWith(store.liveness(), 'STORE_CORRUPT', file);
  });
});
