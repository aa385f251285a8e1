// The store verbs of the real `dnslb` command (node bin/dnslb.js, a child process) on a temp --data-dir:
// topology publish / diff / versions and up; and a watch in this process seeing the CLI's publish.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openFileStore } from '../../src/store/file-store.ts';
import { runDnslb, type CliRun } from '../helpers/cli.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const root = new URL('../..', import.meta.url).pathname;
const contoso = join(root, 'examples', 'contoso.yaml');
let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dnslb-store-cli-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const dnslb = (...args: string[]): Promise<CliRun> => runDnslb(args, { cwd: work });

/** contoso.yaml with fe3 moved to another address and the Front End pool's TTL changed. */
async function contosoChanged(): Promise<string> {
  const file = join(work, 'contoso-changed.yaml');
  const text = (await readFile(contoso, 'utf8')).replace('127.0.0.13', '127.0.0.14').replace('dns: { order: rotate, maxRecords: 0, ttl: 60, healthAware: true }', 'dns: { order: rotate, maxRecords: 0, ttl: 30, healthAware: true }');
  await writeFile(file, text);
  return file;
}

describe('dnslb topology publish | diff | versions', () => {
  test('publish, stale base, invalid document, diff and versions', async () => {
    const dataDir = join(work, 'publish');
    const first = await dnslb('--data-dir', dataDir, 'topology', 'publish', contoso, '--by', 'alice', '--comment', 'first', '--json');
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { version: 1, base: 0, revision: 1, by: 'alice', comment: 'first', dataDir });

    const changed = await contosoChanged();
    const second = await dnslb('--data-dir', dataDir, 'topology', 'publish', changed, '--base', '1');
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /as version 2 \(base 1\)/);

    const stale = await dnslb('--data-dir', dataDir, 'topology', 'publish', changed, '--base', '1');
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /STORE_STALE_VERSION: the current version is 2, not the base version 1/);

    const invalidFile = join(work, 'invalid.yaml');
    await writeFile(invalidFile, (await readFile(contoso, 'utf8')).replace('kind: frontend', 'kind: backend'));
    const logBefore = await readdir(join(dataDir, 'store', 'log'));
    const invalid = await dnslb('--data-dir', dataDir, 'topology', 'publish', invalidFile);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /invalid\.yaml:\d+:\d+: TOPOLOGY_SCHEMA at pools\[0\]\.kind/);
    assert.match(invalid.stderr, /nothing was published/);
    assert.deepEqual(await readdir(join(dataDir, 'store', 'log')), logBefore, 'the store is untouched');

    const diff = await dnslb('--data-dir', dataDir, 'topology', 'diff');
    assert.equal(diff.code, 0, diff.stderr);
    assert.deepEqual(diff.stdout.trim().split('\n'), [
      'version 1 → version 2',
      '~ pools[pool01.contoso.com].servers[fe3.contoso.com].ipv4: "127.0.0.13" → "127.0.0.14"',
      '~ pools[pool01.contoso.com].dns.ttl: 60 → 30',
      '2 change(s): 1 pool(s) changed, 1 server(s) changed',
    ]);
    const files = await dnslb('topology', 'diff', contoso, changed, '--json');
    assert.equal(files.code, 0, files.stderr);
    assert.deepEqual(JSON.parse(files.stdout).summary.serversChanged, ['fe3.contoso.com']);

    const versions = await dnslb('--data-dir', dataDir, 'topology', 'versions', '--json');
    assert.equal(versions.code, 0, versions.stderr);
    assert.deepEqual(
      (JSON.parse(versions.stdout) as { version: number; by: string; comment: string }[]).map(({ version, by, comment }) => ({ version, by, comment })),
      [
        { version: 1, by: 'alice', comment: 'first' },
        { version: 2, by: (JSON.parse(versions.stdout) as { by: string }[])[1]?.by, comment: '' },
      ],
    );
  });

  test('versions on a data directory without a store: STORE_NOT_FOUND, exit 1, nothing created', async () => {
    const dataDir = join(work, 'nothing-here');
    const run = await dnslb('--data-dir', dataDir, 'topology', 'versions');
    assert.equal(run.code, 1);
    assert.match(run.stderr, /STORE_NOT_FOUND: no store in/);
    await assert.rejects(readdir(dataDir), { code: 'ENOENT' });
  });

  test('a corrupt store: STORE_CORRUPT naming the file, no stack trace, exit 3', async () => {
    const dataDir = join(work, 'corrupt');
    assert.equal((await dnslb('--data-dir', dataDir, 'topology', 'publish', contoso)).code, 0);
    const entry = join(dataDir, 'store', 'log', '0000000000000001.json');
    await writeFile(entry, (await readFile(entry, 'utf8')).slice(0, 200));
    const run = await dnslb('--data-dir', dataDir, 'topology', 'versions');
    assert.equal(run.code, 3);
    assert.ok(run.stderr.startsWith(`dnslb: STORE_CORRUPT: ${entry}: not JSON`), run.stderr);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  });
});

describe('dnslb up', () => {
  test('publishes the topology, prints what it published, and skips an identical document', async () => {
    const dataDir = join(work, 'up');
    const up = await dnslb('--data-dir', dataDir, 'up', contoso, '--publish-only');
    assert.equal(up.code, 0, up.stderr);
    const lines = up.stdout.trim().split('\n');
    assert.equal(lines[0], `published ${contoso} as version 1 in ${dataDir}`);
    assert.ok(lines.includes('pool pool01.contoso.com (frontend, dns load balancing)'), up.stdout);
    assert.ok(lines.includes('  fe2.contoso.com  127.0.0.12'), up.stdout);
    assert.ok(lines.includes('  edge1.contoso.com  127.0.0.41'), up.stdout);
    assert.ok(lines.includes('dns dns1.contoso.com listens on 127.0.0.1:5300'), up.stdout);

    const again = await dnslb('--data-dir', dataDir, 'up', contoso, '--publish-only', '--json');
    assert.equal(again.code, 0, again.stderr);
    const result = JSON.parse(again.stdout) as { published: boolean; version: number; pools: { servers: unknown[] }[]; dns: unknown[] };
    assert.equal(result.published, false);
    assert.equal(result.version, 1);
    assert.equal(result.pools.reduce((total, pool) => total + pool.servers.length, 0), 12);
    assert.deepEqual(result.dns, [{ fqdn: 'dns1.contoso.com', listen: ['127.0.0.1:5300'] }]);

    const changed = await dnslb('--data-dir', dataDir, 'up', await contosoChanged(), '--publish-only');
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /as version 2 in/);
    assert.match(changed.stdout, /fe3\.contoso\.com {2}127\.0\.0\.14/);
  });
});

describe('watch across processes', () => {
  test('a watch in this process sees a publish made by the CLI in another process (through fs.watch alone)', async () => {
    const dataDir = join(work, 'watch');
    // The fake clock never fires the safety-net poll: only the file-system notification can wake the watch.
    const store = await openFileStore({ dataDir, clock: new FakeClock() });
    const controller = new AbortController();
    const iterator = store.watch({ signal: controller.signal })[Symbol.asyncIterator]();
    const event = iterator.next();
    const run = await dnslb('--data-dir', dataDir, 'topology', 'publish', contoso);
    assert.equal(run.code, 0, run.stderr);
    // A guard against a hang, not a performance threshold: without a notification the watch never wakes.
    let guard: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_resolve, reject) => (guard = setTimeout(() => reject(new Error('no fs.watch notification within 60 s')), 60_000)));
    assert.deepEqual((await Promise.race([event, hung])).value, { kind: 'published', revision: 1, version: 1 });
    clearTimeout(guard);
    controller.abort();
    await store.close();
  });
});
