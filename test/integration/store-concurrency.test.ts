// Two processes publish on the same base version at the same moment, 20 times: each time exactly
// one wins and the other gets STORE_STALE_VERSION (the exclusive creation of the next log entry).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openFileStore } from '../../src/store/file-store.ts';
import { bundleForNode } from '../helpers/bundle.ts';
import { documentFor } from '../helpers/crash-documents.ts';

const ROUNDS = 20;
const children = new Set<ChildProcess>();
const directories: string[] = [];
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

interface Outcome {
  won: boolean;
  version?: number;
  code?: string;
}

/** Starts a child that publishes once on `base` when told; resolves when it has opened the store. */
async function startPublisher(bundle: string, dataDir: string, base: number, tag: string): Promise<{ go: () => void; outcome: Promise<Outcome> }> {
  const child = spawn(process.execPath, [bundle, 'once', dataDir, String(base), tag], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const ready = await lines.next();
  assert.equal(ready.value, 'ready');
  return {
    go: () => child.stdin?.end('go\n'),
    outcome: lines.next().then((line) => JSON.parse(String(line.value)) as Outcome),
  };
}

test(`two processes publishing on the same base: exactly one wins, ${ROUNDS} times`, async () => {
  const work = await mkdtemp(join(tmpdir(), 'dnslb-concurrency-'));
  directories.push(work);
  const dataDir = join(work, 'data');
  const bundle = await bundleForNode(new URL('../helpers/store-child.ts', import.meta.url).pathname, work);
  const store = await openFileStore({ dataDir });
  for (let round = 0; round < ROUNDS; round++) {
    const base = await store.currentVersion();
    assert.equal(base, round);
    const [one, two] = await Promise.all([startPublisher(bundle, dataDir, base, 'one'), startPublisher(bundle, dataDir, base, 'two')]);
    one.go();
    two.go();
    const outcomes = await Promise.all([one.outcome, two.outcome]);
    const winners = outcomes.filter((outcome) => outcome.won);
    const losers = outcomes.filter((outcome) => !outcome.won);
    assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
    assert.equal(winners[0]?.version, base + 1);
    assert.deepEqual(losers, [{ won: false, code: 'STORE_STALE_VERSION' }]);
  }
  const versions = await store.listVersions();
  assert.equal(versions.length, ROUNDS);
  for (const summary of versions) assert.deepEqual((await store.read(summary.version)).topology, documentFor(summary.version));
  await store.close();
});
