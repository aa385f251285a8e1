// The file store's user directory and pool secrets: one folder per user holding numbered versions of
// its record, each created exclusively (the same link(2) compare-and-swap as the change log), so two
// processes changing one user never lose an update; secrets are created once, exclusively.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import type { Clock } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import type { Topology } from '../topology/schema.ts';
import { escapeName, unescapeName } from './checks.ts';
import { corrupt, createExclusive, ioError, listDirectory, listDirectorySync, readBounded, readBoundedSync, removeIfPresent } from './files.ts';
import { authSecretSchema, checkedUser, checkHomePool, unknownUser, updatedUser, userExists, userRecordFields, type NewUser, type UserDirectory, type UserRecord, type UserUpdate } from './users.ts';

const FORMAT = 1;
const VERSION_NAME = /^(\d{16})\.json$/;
const READ_ATTEMPTS_MAX = 20;

/** A user file: the record, or a tombstone after `user remove` (kept so that versions only grow). */
const userFileSchema = z.union([z.strictObject({ format: z.literal(FORMAT), removed: z.literal(false), ...userRecordFields }), z.strictObject({ format: z.literal(FORMAT), removed: z.literal(true), uri: z.string() })]);
const secretFileSchema = authSecretSchema.extend({ format: z.literal(FORMAT) });



/** Users read synchronously in one go by users() before the event loop gets a turn (a few ms). */
const USERS_READ_CHUNK = 200;

function versionName(version: number): string {
  return `${String(version).padStart(16, '0')}.json`;
}

function checked<T>(path: string, raw: string, schema: z.ZodType<T>): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (cause) {
    throw corrupt(path, `not JSON (truncated or edited by hand?): ${(cause as Error).message}`, cause);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw corrupt(path, `unexpected content at ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

/** The newest version among a user folder's file names; 0 when it has none. */
function newestVersion(names: readonly string[]): number {
  let newest = 0;
  for (const name of names) {
    const found = VERSION_NAME.exec(name)?.[1];
    if (found !== undefined) newest = Math.max(newest, Number(found));
  }
  return newest;
}

/** A user file's record (undefined: a tombstone), checked; STORE_CORRUPT naming the file otherwise. */
function recordOf(uri: string, path: string, raw: string): UserRecord | undefined {
  const stored = checked(path, raw, userFileSchema);
  if (stored.uri !== uri) throw corrupt(path, `holds user ${stored.uri}, its folder says ${uri}`);
  if (stored.removed) return undefined;
  const { format: _format, removed: _removed, ...record } = stored;
  try {
    return checkedUser(record);
  } catch (error) {
    throw corrupt(path, (error as Error).message, error);
  }
}

interface Current {
  /** 0: the user never existed. */
  version: number;
  record: UserRecord | undefined;
}

export interface FileUserOptions {
  /** The store's folder (`<data-dir>/store`). */
  directory: string;
  tmpDirectory: string;
  clock: Clock;
  /**
   * Puts "this user changed" into the store's change log, after the user's new record is written:
   * watches then deliver the user's record as it is when they read it (file-store.ts).
   */
  announce(uri: string): Promise<void>;
  /** The current published topology and its version (undefined when nothing is published). */
  currentTopology(): Promise<{ topology: Topology; version: number } | undefined>;
}

export class FileUsers implements UserDirectory {
  private readonly usersDirectory: string;
  private readonly secretsDirectory: string;

  constructor(private readonly options: FileUserOptions) {
    this.usersDirectory = join(options.directory, 'users');
    this.secretsDirectory = join(options.directory, 'secrets');
  }

  private userDirectory(uri: string): string {
    return join(this.usersDirectory, escapeName(uri));
  }

  /** The newest version of a user's record; retries when a writer's cleanup removes the file under it. */
  private async current(uri: string): Promise<Current> {
    const directory = this.userDirectory(uri);
    for (let attempt = 1; attempt <= READ_ATTEMPTS_MAX; attempt++) {
      const version = newestVersion(await listDirectory(directory));
      if (version === 0) return { version: 0, record: undefined };
      const path = join(directory, versionName(version));
      const raw = await readBounded(path, limits.storeUserBytesMax);
      if (raw === undefined) continue; // superseded and cleaned up meanwhile
      return { version, record: recordOf(uri, path, raw) };
    }
    throw corrupt(directory, 'versions keep vanishing while being read');
  }

  /** current() with synchronous reads, for users(): the same answer, a fraction of the CPU. */
  private currentSync(uri: string): Current {
    const directory = this.userDirectory(uri);
    for (let attempt = 1; attempt <= READ_ATTEMPTS_MAX; attempt++) {
      const version = newestVersion(listDirectorySync(directory));
      if (version === 0) return { version: 0, record: undefined };
      const path = join(directory, versionName(version));
      const raw = readBoundedSync(path, limits.storeUserBytesMax);
      if (raw === undefined) continue;
      return { version, record: recordOf(uri, path, raw) };
    }
    throw corrupt(directory, 'versions keep vanishing while being read');
  }

  /** Writes version `version` of a user unless another writer took it; removes the older versions after. */
  private async write(uri: string, version: number, content: object): Promise<boolean> {
    const directory = this.userDirectory(uri);
    try {
      await mkdir(directory, { recursive: true });
    } catch (cause) {
      throw ioError('create', directory, cause);
    }
    const text = JSON.stringify({ format: FORMAT, ...content });
    if (Buffer.byteLength(text) > limits.storeUserBytesMax) throw new DnslbError('STORE_TOO_LARGE', `user ${uri}: the record is ${Buffer.byteLength(text)} bytes, more than the limit of ${limits.storeUserBytesMax}`);
    // 0600: an HA1 is as good as the password for digest; only the store's owner may read it.
    if (!(await createExclusive(this.options.tmpDirectory, join(directory, versionName(version)), text, 0o600))) return false;
    for (const name of await listDirectory(directory)) {
      const found = VERSION_NAME.exec(name)?.[1];
      if (found !== undefined && Number(found) < version) await removeIfPresent(join(directory, name));
    }
    return true;
  }

  /** Read, change, write the next version; start again when another writer got there first. */
  private async change<T>(uri: string, next: (current: Current) => Promise<{ content: object; result: T }>): Promise<T> {
    for (let attempt = 0; attempt < limits.storeCommitAttemptsMax; attempt++) {
      const current = await this.current(uri);
      const { content, result } = await next(current);
      if (await this.write(uri, current.version + 1, content)) {
        // A writer that dies right here leaves its change unannounced: servers see it with the user's
        // next change, or when they next read the whole directory (a restart, a failed watch).
        await this.options.announce(uri);
        return result;
      }
    }
    throw new DnslbError('STORE_LOCKED', `user ${uri}: gave up after ${limits.storeCommitAttemptsMax} attempts: other writers changed it first every time`);
  }

  private async checkPool(homePool: string | undefined): Promise<void> {
    if (homePool === undefined) return;
    const current = await this.options.currentTopology();
    checkHomePool(homePool, current?.topology, current?.version);
  }

  async addUser(user: NewUser, meta: { by: string }): Promise<UserRecord> {
    const record = checkedUser({ ...user, by: meta.by, atMs: this.options.clock.nowMs() });
    await this.checkPool(record.homePool);
    return this.change(record.uri, async (current) => {
      if (current.record) throw userExists(record.uri);
      return { content: { removed: false, ...record }, result: record };
    });
  }

  async updateUser(uri: string, update: UserUpdate, meta: { by: string }): Promise<UserRecord> {
    if (update.homePool) await this.checkPool(update.homePool);
    return this.change(uri, async (current) => {
      if (!current.record) throw unknownUser(uri);
      const record = updatedUser(current.record, update, { by: meta.by, atMs: this.options.clock.nowMs() });
      return { content: { removed: false, ...record }, result: record };
    });
  }

  async removeUser(uri: string): Promise<void> {
    await this.change(uri, async (current) => {
      if (!current.record) throw unknownUser(uri);
      return { content: { removed: true, uri }, result: undefined };
    });
  }

  async user(uri: string): Promise<UserRecord | undefined> {
    return (await this.current(uri)).record;
  }

  async users(): Promise<UserRecord[]> {
    const records: UserRecord[] = [];
    const names = await listDirectory(this.usersDirectory);
    if (names.length > limits.storeUsersMax) throw corrupt(this.usersDirectory, `${names.length} users, more than the limit of ${limits.storeUsersMax}`);
    // Synchronous reads in chunks (a server reads every user at start: 100,000 async reads cost
    // several times the CPU), the event loop let go between chunks.
    for (let first = 0; first < names.length; first += USERS_READ_CHUNK) {
      if (first > 0) await new Promise((resolve) => setImmediate(resolve));
      for (const name of names.slice(first, first + USERS_READ_CHUNK)) {
        const uri = unescapeName(name);
        if (uri === undefined || escapeName(uri) !== name) throw corrupt(join(this.usersDirectory, name), 'not the folder of a user (its name is not an escaped URI)');
        const { record } = this.currentSync(uri);
        if (record) records.push(record);
      }
    }
    return records.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  }

  async authSecret(pool: string, candidate: Buffer): Promise<Buffer> {
    const path = join(this.secretsDirectory, `${escapeName(pool)}.json`);
    try {
      await mkdir(this.secretsDirectory, { recursive: true });
    } catch (cause) {
      throw ioError('create', this.secretsDirectory, cause);
    }
    const raw = await readBounded(path, limits.storeUserBytesMax);
    if (raw === undefined) {
      const content = authSecretSchema.parse({ pool, secret: candidate.toString('hex') });
      // Exclusive: of two servers creating the secret at once, one wins and both read the winner's.
      if (await createExclusive(this.options.tmpDirectory, path, JSON.stringify({ format: FORMAT, ...content }), 0o600)) return Buffer.from(candidate);
    }
    const stored = checked(path, raw ?? (await readBounded(path, limits.storeUserBytesMax)) ?? '', secretFileSchema);
    if (stored.pool !== pool) throw corrupt(path, `holds the secret of ${stored.pool}, its name says ${pool}`);
    return Buffer.from(stored.secret, 'hex');
  }
}
