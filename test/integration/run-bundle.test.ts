// scripts/run-bundle.js, which bin/dnslb.js loads dist/dnslb.cjs with: V8's code cache written by a
// process that had none and used by the next, never for another bundle (a rebuild of the same
// length included), nor when it is damaged; stack traces that name the TypeScript source's lines.
// Each case runs a small bundle of its own, built here by esbuild as scripts/build-js.js builds the
// real one, in a fresh node process.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { REPO } from '../helpers/dns-process.ts';

const run = promisify(execFile);
const RUN_BUNDLE = join(REPO, 'scripts/run-bundle.js');

/** What a process reports after loading `bundle` for `role`: whether it used a cache, and fail()'s stack. */
async function load(bundle: string, role: string): Promise<{ cache: string; stack: string }> {
  const program = `
    import { runBundle } from ${JSON.stringify(RUN_BUNDLE)};
    const { exports, cache } = runBundle(${JSON.stringify(bundle)}, ['node', 'dnslb', '--data-dir', 'x', ${JSON.stringify(role)}]);
    let stack = '';
    try { exports.fail(); } catch (error) { stack = error.stack; }
    console.log(JSON.stringify({ cache, stack }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', program]);
  return JSON.parse(stdout) as { cache: string; stack: string };
}

describe('run-bundle: the code cache and source-mapped stacks of dist/dnslb.cjs', () => {
  let dir: string;
  let bundle: string;
  const source = (word: string) => `// a module\nexport function fail(): number {\n  const value = null as unknown as string;\n  return value.length + ${JSON.stringify(word)}.length;\n}\n`;
  const buildBundle = async (word: string) => {
    await writeFile(join(dir, 'src', 'fail.ts'), source(word));
    await build({ entryPoints: [join(dir, 'src', 'fail.ts')], outfile: bundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', sourcemap: 'linked', sourcesContent: false, logLevel: 'error' });
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dnslb-run-bundle-'));
    await mkdir(join(dir, 'src'));
    bundle = join(dir, 'out.cjs');
    await buildBundle('aaaa');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the first process makes the cache of its verb, the next uses it; another verb has its own', async () => {
    assert.equal((await load(bundle, 'server')).cache, 'made');
    assert.ok(existsSync(`${bundle}.server.cache`), 'written at exit');
    assert.equal((await load(bundle, 'server')).cache, 'used');
    assert.equal((await load(bundle, 'dns')).cache, 'made');
    assert.equal((await load(bundle, 'dns')).cache, 'used');
  });

  test('a stack trace names the TypeScript file and line, not the bundle', async () => {
    const { stack } = await load(bundle, 'server');
    assert.match(stack, /^TypeError: Cannot read properties of null \(reading 'length'\)\n {4}at Object\.fail \(.*src\/fail\.ts:4:\d+\)/);
    assert.doesNotMatch(stack, /out\.cjs/);
  });

  test('a rebuilt bundle (same length, other code) does not run with the old cache: a new one is made', async () => {
    const before = await readFile(bundle);
    await buildBundle('bbbb');
    const after = await readFile(bundle);
    assert.equal(after.length, before.length, 'the test needs a bundle of the same length');
    assert.notDeepEqual(after, before);
    assert.equal((await load(bundle, 'server')).cache, 'made');
    assert.equal((await load(bundle, 'server')).cache, 'used');
  });

  test('a damaged cache is not used, and is replaced', async () => {
    const cacheFile = `${bundle}.server.cache`;
    const text = await readFile(cacheFile);
    await writeFile(cacheFile, Buffer.concat([text.subarray(0, text.indexOf(10) + 1), Buffer.from('not a V8 code cache')]));
    const { cache, stack } = await load(bundle, 'server');
    assert.equal(cache, 'made');
    assert.match(stack, /src\/fail\.ts:4:/);
    assert.equal((await load(bundle, 'server')).cache, 'used');
    await writeFile(cacheFile, 'garbage');
    assert.equal((await load(bundle, 'server')).cache, 'made');
  });
});
