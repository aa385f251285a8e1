// What `dnslb --version` prints: the version, and whether the DNS server's native UDP engine
// (native/udp-batch, recvmmsg/sendmmsg) is built and loads, since without it DNS answers at about half the speed.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { udpEngines } from '../dns/udp.ts';

/** The project's package.json: the nearest one above this file (the same from src/ or a compiled copy). */
function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'dnslb') return manifest.version ?? 'unknown';
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

export function formatVersion(version: string, engines: { readonly preferred: string; readonly batchProblem?: string }, nodeVersion: string): string {
  const engine = engines.batchProblem === undefined
    ? 'native UDP engine: loaded (native/udp-batch, recvmmsg/sendmmsg); dns serve answers UDP in batches'
    : `native UDP engine: not loaded: ${engines.batchProblem}; dns serve answers UDP through node:dgram, at about half the speed`;
  return [`dnslb ${version}`, engine, `node ${nodeVersion}`].join('\n');
}

export function versionText(): string {
  return formatVersion(packageVersion(), udpEngines, process.version);
}
