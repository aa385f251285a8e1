// Where a signing-in client finds its password (`dnslb client register/simulate`): a CSV of users and
// passwords (the `uri,password` columns of `dnslb user import`), or the deterministic rule for
// synthetic users `user1@domain … userN@domain`: password = base64url(HMAC-SHA256(seed, canonical
// URI)), first 20 characters. `dnslb user import --synthetic N` loads the same users with the same
// rule, so a test or a demo needs only the seed, never a file of 100,000 passwords.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { canonicalUser } from '../registrar/sequence.ts';
import { DnslbError, isDnslbError } from '../shared/errors.ts';
import { parseCsv } from './users-csv.ts';

/** The password of a user, or undefined when the source knows none for it. */
export type PasswordOf = (aor: string) => string | undefined;

/** The password the synthetic rule gives `uri` (canonical `sip:user@domain`). */
export function syntheticPassword(seed: string, uri: string): string {
  return createHmac('sha256', seed).update(uri).digest('base64url').slice(0, 20);
}

/** The synthetic users: `sip:<prefix>1@domain` … `sip:<prefix>N@domain`, as `dnslb client simulate` names them. */
export function syntheticUris(count: number, domain: string, prefix = 'user'): string[] {
  return Array.from({ length: count }, (_, index) => canonicalUser(`sip:${prefix}${index + 1}@${domain}`));
}

/** The passwords of a CSV with `uri` and `password` columns (other columns are ignored). */
export function parsePasswordsCsv(text: string, file: string): Map<string, string> {
  const records = parseCsv(text, file);
  const header = records.shift();
  if (!header) throw new DnslbError('AUTH_USERS_FILE', `${file}: empty (expected a header row such as uri,password)`);
  const columns = header.fields.map((name) => name.trim().toLowerCase());
  const uriAt = columns.indexOf('uri');
  const passwordAt = columns.indexOf('password');
  if (uriAt < 0 || passwordAt < 0) throw new DnslbError('AUTH_USERS_FILE', `${file}:${header.line}: a passwords file needs uri and password columns`);
  const passwords = new Map<string, string>();
  for (const { line, fields } of records) {
    const text = (fields[uriAt] ?? '').trim();
    const password = fields[passwordAt] ?? '';
    if (password === '') throw new DnslbError('AUTH_USERS_FILE', `${file}:${line}: no password`);
    try {
      passwords.set(canonicalUser(/^[a-z][a-z0-9+.-]*:/i.test(text) ? text : `sip:${text}`), password);
    } catch (error) {
      if (isDnslbError(error)) throw new DnslbError('AUTH_USERS_FILE', `${file}:${line}: ${error.message}`, { cause: error });
      throw error;
    }
  }
  return passwords;
}

/** The first line of a file: a password (`--password-file`) or a seed (`--password-seed-file`); never an argument, which `ps` shows. */
export async function firstLineOf(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DnslbError('AUTH_PASSWORD', `cannot read ${what} from ${file}: ${(error as Error).message}`, { cause: error });
  }
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (line === '') throw new DnslbError('AUTH_PASSWORD', `${file}: the first line (the ${what}) is empty`);
  return line;
}

/** The client's password source from its flags: a passwords CSV, a synthetic seed file, or nothing (no authentication). */
export async function passwordSource(options: { passwords?: string; passwordSeedFile?: string }): Promise<PasswordOf | undefined> {
  if (options.passwords !== undefined && options.passwordSeedFile !== undefined) throw new DnslbError('CLI_USAGE', 'give --passwords FILE.csv or --password-seed-file FILE, not both');
  if (options.passwords !== undefined) {
    let text: string;
    try {
      text = await readFile(options.passwords, 'utf8');
    } catch (error) {
      throw new DnslbError('AUTH_USERS_FILE', `cannot read ${options.passwords}: ${(error as Error).message}`, { cause: error });
    }
    const passwords = parsePasswordsCsv(text, options.passwords);
    return (aor) => passwords.get(safeCanonical(aor));
  }
  if (options.passwordSeedFile !== undefined) {
    const seed = await firstLineOf(options.passwordSeedFile, 'password seed');
    return (aor) => syntheticPassword(seed, safeCanonical(aor));
  }
  return undefined;
}

function safeCanonical(aor: string): string {
  try {
    return canonicalUser(aor);
  } catch {
    return aor;
  }
}
