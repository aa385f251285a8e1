// Where a running system's admin API is and the bearer token it wants: both live in the data dir,
// so `dnslb … --data-dir DIR` commands find the system (DESIGN §4).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DnslbError } from '../shared/errors.ts';

const TOKEN_FILE = 'admin-token';
const ENDPOINT_FILE = 'admin.json';

export interface AdminEndpoint {
  url: string;
  pid: number;
  startedAtMs: number;
}

async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  await rename(temporary, file);
}

/** The token of this data dir, created on first use; `created` says whether it was just made (print it once). */
export async function ensureToken(dataDir: string): Promise<{ token: string; created: boolean }> {
  await mkdir(dataDir, { recursive: true });
  const file = join(dataDir, TOKEN_FILE);
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token.length >= 32) return { token, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new DnslbError('ADMIN_CREDENTIALS', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  const token = randomBytes(32).toString('base64url');
  await writeAtomically(file, `${token}\n`, 0o600);
  return { token, created: true };
}

export async function readToken(dataDir: string): Promise<string> {
  const file = join(dataDir, TOKEN_FILE);
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    // Missing: nothing ever ran here. Unreadable (permissions): a credentials problem, not a stopped system.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new DnslbError('ADMIN_CREDENTIALS', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
    throw new DnslbError('ADMIN_NOT_RUNNING', `no admin token in ${dataDir}: is dnslb up running with --data-dir ${dataDir}?`, { cause: error });
  }
}

export async function writeEndpoint(dataDir: string, endpoint: AdminEndpoint): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  await writeAtomically(join(dataDir, ENDPOINT_FILE), `${JSON.stringify(endpoint, null, 2)}\n`, 0o644);
}

export async function readEndpoint(dataDir: string): Promise<AdminEndpoint> {
  const file = join(dataDir, ENDPOINT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DnslbError('ADMIN_NOT_RUNNING', `no running dnslb found in ${dataDir} (no ${ENDPOINT_FILE}): start it with dnslb up --data-dir ${dataDir}`, { cause: error });
  }
  try {
    const endpoint = JSON.parse(text) as AdminEndpoint;
    if (typeof endpoint.url !== 'string') throw new Error('no url');
    return endpoint;
  } catch (error) {
    throw new DnslbError('ADMIN_CREDENTIALS', `${file} is not a valid admin endpoint record: ${(error as Error).message}`, { cause: error });
  }
}

/** Constant-time comparison of an Authorization header against the token. */
export function isAuthorized(header: string | undefined, token: string): boolean {
  const match = /^Bearer (\S+)$/.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
