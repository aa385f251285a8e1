// Crash test of the file store: children publishing in a loop (several at once, on one store) are
// killed with SIGKILL at random moments, at least 200 times; after every kill the store must open,
// list contiguous versions, and its latest version must be exactly one of the documents being written.
// Figures (kills, versions, torn states, time) are printed as test diagnostics.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openFileStore } from '../../src/store/file-store.ts';
import { bundleForNode } from '../helpers/bundle.ts';
import { documentFor } from '../helpers/crash-documents.ts';

const KILLS = Number(process.env.DNSLB_CRASH_KILLS ?? 200);
const LANES = 3;
/** A kill lands 0–KILL_WINDOW_MS after the child says it is ready: inside opens, publishes, compactions. */
const KILL_WINDOW_MS = 100;

const children = new Set<ChildProcess>();
const directories: string[] = [];
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

/** Seeded, so that a failing run can be told apart from the next one (mulberry32). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test(`the store survives ${KILLS} SIGKILLs of writers at random instants: no torn state`, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'dnslb-crash-'));
  directories.push(work);
  const dataDir = join(work, 'data');
  const bundle = await bundleForNode(new URL('../helpers/store-child.ts', import.meta.url).pathname, work);
  const seed = Number(process.env.DNSLB_CRASH_SEED ?? Date.now() % 1_000_000);
  const random = seededRandom(seed);
  const startedMs = Date.now();
  let kills = 0;
  const torn: string[] = [];
  let checks = 0;

  /** Opens the store afresh and checks it holds whole versions only. */
  async function check(deadPid: number): Promise<void> {
    checks += 1;
    try {
      const store = await openFileStore({ dataDir });
      const versions = await store.listVersions();
      versions.forEach((summary, index) => assert.equal(summary.version, index + 1, 'versions are contiguous'));
      if (versions.length > 0) {
        const latest = await store.read();
        assert.deepEqual(latest.topology, documentFor(latest.version), `version ${latest.version} is the document written for it`);
        const sample = 1 + Math.floor(random() * versions.length);
        assert.deepEqual((await store.read(sample)).topology, documentFor(sample), `version ${sample} is the document written for it`);
      }
      await store.liveness();
      const leftovers = (await readdir(join(dataDir, 'store', 'tmp'))).filter((name) => name.startsWith(`${deadPid}.`));
      assert.deepEqual(leftovers, [], 'the dead writer\'s temp files were cleaned up on open');
      await store.close();
    } catch (error) {
      torn.push(`after kill ${kills} (pid ${deadPid}): ${(error as Error).message}`);
    }
  }

  async function lane(): Promise<void> {
    while (kills < KILLS) {
      const child = spawn(process.execPath, [bundle, 'loop', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      // Wait for "ready" (or an early death, which is a failure: the child could not open the store).
      const ready = await Promise.race([new Promise<boolean>((resolve) => child.stdout?.once('data', () => resolve(true))), exited.then(() => false)]);
      if (!ready) {
        torn.push(`a child could not start or died on its own: ${stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
        children.delete(child);
        if (torn.length > 5) return;
        continue;
      }
      await delay(random() * KILL_WINDOW_MS);
      child.kill('SIGKILL');
      await exited;
      children.delete(child);
      if (stderr.trim() !== '') torn.push(`child ${child.pid} wrote to stderr before being killed: ${stderr.trim().split('\n')[0]}`);
      kills += 1;
      await check(child.pid as number);
    }
  }

  await Promise.all(Array.from({ length: LANES }, () => lane()));
  const store = await openFileStore({ dataDir });
  const versionsSeen = await store.currentVersion();
  const elapsedMs = Date.now() - startedMs;
  t.diagnostic(`seed ${seed}: ${kills} kills (${LANES} writers at a time), ${checks} checks, ${versionsSeen} versions published, ${torn.length} torn states, ${(elapsedMs / 1000).toFixed(1)} s`);
  assert.deepEqual(torn, []);
  assert.ok(kills >= KILLS);
  assert.ok(versionsSeen > 0, 'the children published something between kills');
});
