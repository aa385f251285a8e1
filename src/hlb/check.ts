// `haproxy -c` on a configuration file: HLB_CONFIG with HAProxy's own words when it refuses it, or
// when there is no haproxy to ask. `dnslb up` runs it before starting HAProxy (whose -q start-up
// mode would exit 1 without a word), `dnslb hlb export --check` on what it exports.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DnslbError } from '../shared/errors.ts';

const run = promisify(execFile);

export async function haproxyCheck(file: string, label = file): Promise<void> {
  try {
    await run('haproxy', ['-c', '-f', file]);
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failed.code === 'ENOENT') throw new DnslbError('HLB_CONFIG', `${label}: needs the haproxy command (Debian: apt-get install haproxy)`, { cause: error });
    throw new DnslbError('HLB_CONFIG', `haproxy -c refused ${label}: ${`${failed.stdout ?? ''}${failed.stderr ?? ''}`.trim()}`, { cause: error });
  }
}
