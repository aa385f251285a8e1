// The user directory as a server holds it in memory (src/auth/README.md "The directory in memory"):
// what the digest check needs (HA1s, disabled) and what routing needs (home pool, number), loaded
// once from the store and kept current by its 'user' events. Nothing here touches the disk, so a
// digest check is a map lookup. Compact: one small object per user, HA1s as raw bytes in latin1
// strings (32 and 16 characters instead of 64 and 32 hex digits), home pools interned.
import type { UserRecord } from '../store/users.ts';

/** What the authenticate step reads of a user. */
export interface AuthUser {
  readonly disabled: boolean;
  /** SHA-256 HA1 in lower-case hex. */
  ha1Sha256(): string;
  /** MD5 HA1 in lower-case hex; undefined when the user has none. */
  ha1Md5(): string | undefined;
}

/** One user: ~5 fields, strings shared where they repeat (pools). */
class Entry implements AuthUser {
  constructor(
    readonly sha: string,
    readonly md5: string | undefined,
    readonly disabled: boolean,
    readonly homePool: string | undefined,
    readonly number: string | undefined,
  ) {}

  ha1Sha256(): string {
    return Buffer.from(this.sha, 'latin1').toString('hex');
  }

  ha1Md5(): string | undefined {
    return this.md5 === undefined ? undefined : Buffer.from(this.md5, 'latin1').toString('hex');
  }
}

/** What one change did to routing: the caller re-homes the user when its home pool changed. */
export interface UserChange {
  homePoolBefore: string | undefined;
  homePoolAfter: string | undefined;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class UserTable {
  private readonly entries = new Map<string, Entry>();
  /** E.164 number → the user holding it; of two users given one number, the first by URI keeps it. */
  private readonly numbers = new Map<string, string>();
  /** Home pool FQDNs, one string each however many users name it. */
  private readonly pools = new Map<string, string>();
  private assignedCount = 0;

  /** Replaces the whole table (start, or a store watch that asks for a full read again). */
  replace(records: readonly UserRecord[]): void {
    this.entries.clear();
    this.numbers.clear();
    this.assignedCount = 0;
    for (const record of records) this.set(record.uri, record);
  }

  /** Applies one 'user' event: the user's record now, undefined when it was removed. */
  set(uri: string, record: UserRecord | undefined): UserChange {
    const before = this.entries.get(uri);
    if (before?.homePool !== undefined) this.assignedCount--;
    if (record === undefined) {
      this.entries.delete(uri);
    } else {
      const homePool = record.homePool === undefined ? undefined : this.intern(record.homePool);
      const credential = record.credential;
      const entry = new Entry(Buffer.from(credential.ha1Sha256, 'hex').toString('latin1'), credential.ha1Md5 === undefined ? undefined : Buffer.from(credential.ha1Md5, 'hex').toString('latin1'), record.disabled, homePool, record.number);
      this.entries.set(uri, entry);
      if (homePool !== undefined) this.assignedCount++;
    }
    const numberBefore = before?.number;
    const numberAfter = record?.number;
    if (numberBefore !== numberAfter) {
      if (numberBefore !== undefined && this.numbers.get(numberBefore) === uri) this.reassignNumber(numberBefore);
      if (numberAfter !== undefined) {
        const holder = this.numbers.get(numberAfter);
        if (holder === undefined || compare(uri, holder) < 0) this.numbers.set(numberAfter, uri);
      }
    }
    return { homePoolBefore: before?.homePool, homePoolAfter: record?.homePool };
  }

  /** The number's holder left it: the next user by URI that has it takes it (a scan: numbers are rarely shared). */
  private reassignNumber(number: string): void {
    let next: string | undefined;
    for (const [uri, entry] of this.entries) if (entry.number === number && (next === undefined || compare(uri, next) < 0)) next = uri;
    if (next === undefined) this.numbers.delete(number);
    else this.numbers.set(number, next);
  }

  private intern(pool: string): string {
    let shared = this.pools.get(pool);
    if (shared === undefined) {
      shared = pool;
      this.pools.set(pool, pool);
    }
    return shared;
  }

  /** A user for the digest check; undefined when the directory has no such user. */
  user(uri: string): AuthUser | undefined {
    return this.entries.get(uri);
  }

  /** The user's explicit home pool (`dnslb user move`), if any. */
  homePoolOf(uri: string): string | undefined {
    return this.entries.get(uri)?.homePool;
  }

  /** The user whose number this is (E.164 normal form), if any. */
  userOfNumber(number: string): string | undefined {
    return this.numbers.get(number);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Users with an explicit home pool. */
  get assigned(): number {
    return this.assignedCount;
  }

  /** Users with a number. */
  get numbered(): number {
    return this.numbers.size;
  }
}
