// Loads dist/dnslb.cjs (scripts/build-js.js) the way node would require it, with two differences that
// make each process start cheaper:
//
// - V8's code cache. Node 20 keeps no compiled code between runs (module.enableCompileCache is node
//   22), so every process compiled the whole bundle again: `dnslb up` starts 13 node processes at
//   once on the example. The bundle is compiled through node:vm with the cache of an earlier run, and
//   a process that found none (or one V8 refused: another node, other flags) writes one once it has
//   started, holding what it compiled by then. One cache per verb (`server`, `dns`, `up`, …), since
//   each runs other code; each names the bundle file it was made from (size, mtime, inode), so a
//   rebuilt bundle never runs with an older bundle's cache (V8's own check is little more than the
//   source's length). Caches are written atomically beside the bundle; when dist/ is not writable
//   there is none, and nothing else changes.
// - Source maps read when needed. Node's own support (--enable-source-maps) parses the map at load,
//   about 0.01–0.02 s of CPU per process; here a stack trace is mapped to src/….ts lines when it is
//   first formatted (Error.prepareStackTrace), and the map is read then.
import { closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire, SourceMap } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import vm from 'node:vm';

const CACHE_MAGIC = 'dnslb-code-cache 1';
/** A long-running process writes its cache this long after it loaded the bundle: it has started by then. */
const CACHE_AFTER_MS = 3000;

/** The verb of a command line, for naming its cache: the first word that is not an option (or --data-dir's value). */
export function cacheRole(argv) {
  for (let index = 2; index < argv.length; index++) {
    const arg = argv[index];
    if (arg === '--data-dir') index++;
    else if (!arg.startsWith('-')) return /^[a-z][a-z-]{0,30}$/.test(arg) ? arg : 'other';
  }
  return 'none';
}

/** What identifies the bundle file's contents cheaply: a rebuild renames a new file into place. */
function identity(fd) {
  const stats = fstatSync(fd, { bigint: true });
  return `${stats.size} ${stats.mtimeNs} ${stats.ino}`;
}

/** The V8 data of `cacheFile` when it was made from the bundle `id` names, else undefined. */
function readCache(cacheFile, id) {
  let bytes;
  try {
    bytes = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  const newline = bytes.indexOf(10);
  if (newline < 0 || bytes.toString('latin1', 0, newline) !== `${CACHE_MAGIC} ${id}`) return undefined;
  return bytes.subarray(newline + 1);
}

function writeCache(cacheFile, id, script) {
  const temporary = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, Buffer.concat([Buffer.from(`${CACHE_MAGIC} ${id}\n`, 'latin1'), script.createCachedData()]));
    renameSync(temporary, cacheFile);
  } catch {
    // dist/ not writable (an installed copy): run without a cache.
    try {
      unlinkSync(temporary);
    } catch {
      // never written
    }
  }
}

/**
 * Maps the frames of `bundle` in V8's call sites to the sources named by its source map, read on
 * first use; other frames as V8 prints them.
 */
function sourceMappedStacks(bundle) {
  let map;
  const mapOf = () => {
    if (map === undefined) {
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${bundle}.map`, 'utf8')));
      } catch {
        map = null; // no map: frames name the bundle
      }
    }
    return map;
  };
  const root = dirname(bundle);
  const frame = (site) => {
    const text = site.toString();
    if (site.getFileName() !== bundle) return text;
    const entry = mapOf()?.findEntry(site.getLineNumber() - 1, site.getColumnNumber() - 1);
    if (!entry?.originalSource) return text;
    return text.replace(`${bundle}:${site.getLineNumber()}:${site.getColumnNumber()}`, `${resolve(root, entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1}`);
  };
  return (error, sites) => {
    let header;
    try {
      header = error instanceof Error ? Error.prototype.toString.call(error) : String(error);
    } catch {
      header = '<error>';
    }
    return [header, ...sites.map((site) => `    at ${frame(site)}`)].join('\n');
  };
}

/**
 * Runs the bundle as CommonJS: its exports, and whether a code cache was used or this process makes
 * one. `argv` picks the cache (cacheRole); `cacheAfterMs`: when a process without a usable cache
 * writes one (at exit if sooner).
 */
export function runBundle(bundle, argv = process.argv, { cacheAfterMs = CACHE_AFTER_MS } = {}) {
  const fd = openSync(bundle, 'r');
  let source;
  let id;
  try {
    id = identity(fd);
    const size = fstatSync(fd).size;
    const buffer = Buffer.allocUnsafe(size);
    let read = 0;
    while (read < size) {
      const got = readSync(fd, buffer, read, size - read, read);
      if (got === 0) break;
      read += got;
    }
    source = buffer.toString('utf8', 0, read);
  } finally {
    closeSync(fd);
  }
  const cacheFile = join(dirname(bundle), `${bundle.slice(dirname(bundle).length + 1)}.${cacheRole(argv)}.cache`);
  const cachedData = readCache(cacheFile, id);
  // The wrapper node's CommonJS loader puts around a module, on one line so that line numbers hold.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
  const cache = cachedData === undefined || script.cachedDataRejected ? 'made' : 'used';
  if (cache === 'made') {
    let written = false;
    const write = () => {
      if (written) return;
      written = true;
      writeCache(cacheFile, id, script);
    };
    setTimeout(write, cacheAfterMs).unref();
    process.once('exit', write);
  }
  Error.prepareStackTrace = sourceMappedStacks(bundle);
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return { exports: module.exports, cache };
}
