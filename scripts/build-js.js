#!/usr/bin/env node
// Compiles the TypeScript of src/ into dist/dnslb.cjs, one JavaScript file with a source map, so the
// CLI and every process `dnslb up` starts run on node alone, without a TypeScript loader.
// `npm install` / `npm ci` (package.json "install"), `npm run build` and `npm test` run it;
// bin/dnslb.js runs it when an input changed after the last build (buildStaleness), so a stale dist/
// never runs.
//
// esbuild, not tsc: it is the transform tsx applied to these same files all along (the shipped JS is
// what the unit tests run through tsx), it builds everything in well under a second of CPU (cheap
// enough to rebuild on every `npm test` and whenever bin/ finds the build stale), it was already
// installed (tsx depends on it), and it bundles: one file loads in about half the CPU time that
// node's ESM loader needs for the ~300 separate modules of src/ and its packages.
//
// CommonJS, not ESM: scripts/run-bundle.js compiles the file with node:vm and keeps V8's code cache of
// it (node 20 has no compile cache for ES modules), which spares each process most of the compiling
// (about 0.05 s of CPU out of 0.2 for each server `dnslb up` starts: 13 of them at once on the
// example). The modules a command line does not reach are not run: src/cli/main.ts imports each
// verb's module dynamically, which esbuild turns into a module initialised on first use.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_DIR = 'src';
const OUT_DIR = 'dist';
const ENTRY = 'src/cli/main.ts';
/** The bundle, relative to the repository root (scripts/run-bundle.js runs it). */
export const BUNDLE = join(OUT_DIR, 'dnslb.cjs');
/** What the last build was made from: every input's path, mtime and size. */
const MANIFEST = join(OUT_DIR, 'build-manifest.json');
/** Inputs besides src/: how the build is made, and which versions of the packages it bundles. */
const OTHER_INPUTS = ['scripts/build-js.js', 'package.json', 'package-lock.json'];
/**
 * Packages left out of the bundle and required from node_modules when used: etcd3 loads its .proto
 * files relative to its own directory, and only `--store etcd://` needs it (src/store/open.ts
 * imports it lazily).
 */
const EXTERNAL = ['etcd3'];

/** Every .ts file under src/ the build reads (not the tests), relative to the repository root. */
function sourceFiles(root) {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) files.push(path);
    }
  };
  walk(SOURCE_DIR);
  return files.sort();
}

/** path → "mtimeMs size" of every input: a changed, added, removed or renamed file changes it. */
function inputState(root) {
  const state = {};
  for (const path of [...sourceFiles(root), ...OTHER_INPUTS]) {
    try {
      const stats = statSync(join(root, path));
      state[path] = `${stats.mtimeMs} ${stats.size}`;
    } catch {
      state[path] = 'absent'; // package-lock.json is not in a published package
    }
  }
  return state;
}

/** Why dist/ does not match its inputs (a sentence), or undefined when it does. */
export function buildStaleness(root = ROOT) {
  let built;
  try {
    built = JSON.parse(readFileSync(join(root, MANIFEST), 'utf8'));
  } catch {
    return `${OUT_DIR}/ has not been built`;
  }
  let now;
  try {
    now = inputState(root);
  } catch {
    return undefined; // no src/ beside dist/: nothing to rebuild from
  }
  for (const path of new Set([...Object.keys(now), ...Object.keys(built)])) {
    if (now[path] !== built[path]) return `${path} changed since the last build`;
  }
  return undefined;
}

function writeAtomically(path, contents) {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

/**
 * A CommonJS bundle has no import.meta; the sources resolve files from their own location
 * (bin/dnslb.js, build/Release/udp_batch.node, the dashboard's files under src/admin/dashboard,
 * packages through createRequire), so each module's import.meta.url is rewritten to the URL of its
 * source file, found from the bundle's own path (__filename), which is where those paths hold.
 */
function sourceLocations(root) {
  return {
    name: 'source-locations',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        const path = relative(root, args.path);
        if (!path.startsWith(`${SOURCE_DIR}${sep}`)) return undefined;
        const text = readFileSync(args.path, 'utf8');
        const other = /\bimport\.meta\.(?!url\b)\w+/.exec(text);
        if (other) throw new Error(`${path}: ${other[0]} has no meaning in the bundle; use import.meta.url (the build maps it to the source file)`);
        const sourceUrl = `new URL(${JSON.stringify(relative(join(root, OUT_DIR), args.path).split(sep).join('/'))}, require('node:url').pathToFileURL(__filename)).href`;
        return { contents: text.replace(/\bimport\.meta\.url\b/g, sourceUrl), loader: 'ts' };
      });
    },
  };
}

/**
 * Builds dist/ from src/; returns the output files' names. With `clean`, files of earlier builds
 * (and code caches, scripts/run-bundle.js) are removed: a build run by hand or by npm; bin/'s
 * rebuild keeps them (a cache of an older bundle is not used: it names the file it was made from).
 */
export async function buildJs({ root = ROOT, clean = false } = {}) {
  const { build } = await import('esbuild');
  // Read the inputs' state before esbuild reads their contents: a file saved during the build then
  // differs from the manifest, and the next start rebuilds.
  const state = inputState(root);
  const result = await build({
    absWorkingDir: root,
    entryPoints: { dnslb: join(root, ENTRY) },
    outdir: join(root, OUT_DIR),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    external: EXTERNAL,
    plugins: [sourceLocations(root)],
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Whitespace and syntax only (identifiers keep their names, so do classes and stack frames):
    // a quarter less text for node to read and V8 to check at every start.
    minifyWhitespace: true,
    minifySyntax: true,
    // Stack traces name src/….ts lines: scripts/run-bundle.js reads the map when a stack is first
    // formatted. The map points at the sources instead of holding copies of them.
    sourcemap: 'linked',
    sourcesContent: false,
    write: false,
    logLevel: 'error',
  });
  // The bundle last, so that a process starting during the build finds the map of the bundle it loads.
  const bundle = join(root, BUNDLE);
  const outputs = [...result.outputFiles].sort((a, b) => Number(a.path === bundle) - Number(b.path === bundle));
  for (const file of outputs) writeAtomically(file.path, file.contents);
  writeAtomically(join(root, MANIFEST), `${JSON.stringify(state, null, 1)}\n`);
  const names = outputs.map((file) => relative(join(root, OUT_DIR), file.path));
  if (clean) {
    const keep = new Set([...names, relative(OUT_DIR, MANIFEST)]);
    for (const name of readdirSync(join(root, OUT_DIR))) if (!keep.has(name)) rmSync(join(root, OUT_DIR, name), { recursive: true, force: true });
  }
  return names;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const startedMs = performance.now();
  const names = await buildJs({ clean: true });
  console.log(`dnslb: built ${OUT_DIR}/ (${names.filter((name) => name.endsWith('.cjs')).join(', ')}) from ${SOURCE_DIR}/ in ${Math.round(performance.now() - startedMs)} ms`);
}
