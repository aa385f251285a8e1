// The user directory's records and the checks both store backends run on them: a user's canonical
// SIP URI, optional home pool, disabled flag and digest credential (HA1 hashes only, never a password).
import * as z from 'zod';
import { DnslbError } from '../shared/errors.ts';
import type { Topology } from '../topology/schema.ts';
import { storedText } from './checks.ts';

/**
 * A user's digest credential (RFC 7616 §3.4.2): HA1 = H(username ":" realm ":" password) in lower-case
 * hex, where username is the URI's user part and realm is its SIP domain. The password is never kept.
 */
export interface UserCredential {
  /** The digest realm: the user's SIP domain (one realm per domain). */
  realm: string;
  /** SHA-256 HA1, 64 hex digits. */
  ha1Sha256: string;
  /** MD5 HA1, 32 hex digits: present only for users whose clients may use MD5 (and only used when the topology enables it). */
  ha1Md5?: string | undefined;
}

export interface UserRecord {
  /** The canonical address-of-record, `sip:user@domain` (registrar/sequence.ts canonicalUser). */
  uri: string;
  /** The frontend pool the user is homed on; absent: the topology's rules decide. */
  homePool?: string | undefined;
  /** A disabled user is refused (403) whatever its credential. */
  disabled: boolean;
  /**
   * The user's telephone number (Lync's LineURI), E.164 normal form `+14255550100`: a call from a PSTN
   * gateway to this number reaches the user. Absent: the user has no number.
   */
  number?: string | undefined;
  credential: UserCredential;
  /** Who made the last change, and when. */
  by: string;
  atMs: number;
}

/** What a caller gives to add a user. */
export type NewUser = Omit<UserRecord, 'by' | 'atMs'>;

/** A change to an existing user; `homePool: null` removes the home pool, `number: null` the number. */
export interface UserUpdate {
  homePool?: string | null;
  number?: string | null;
  disabled?: boolean;
  credential?: UserCredential;
}

/** A user's number as stored: E.164 (+ country code and subscriber number, at most 15 digits). */
export const E164 = /^\+[1-9][0-9]{0,14}$/;

const CANONICAL_URI = /^sip:[^@\s:;?<>]+@[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

export const userCredentialSchema = z.strictObject({
  realm: z.string().min(1).max(253),
  ha1Sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 HA1 is 64 lower-case hex digits'),
  ha1Md5: z.string().regex(/^[0-9a-f]{32}$/, 'an MD5 HA1 is 32 lower-case hex digits').optional(),
});

export const userRecordFields = {
  uri: z.string().max(512).regex(CANONICAL_URI, 'not a canonical SIP URI sip:user@domain'),
  homePool: z.string().min(1).max(253).optional(),
  disabled: z.boolean(),
  number: z.string().regex(E164, 'a number is E.164: + then 1 to 15 digits, the first not 0').optional(),
  credential: userCredentialSchema,
  by: storedText,
  atMs: z.number(),
};
export const userRecordSchema = z.strictObject(userRecordFields);

/** The pool secret digest nonces are signed with (src/auth/nonce.ts), 32 random bytes in hex. */
export const authSecretSchema = z.strictObject({ pool: z.string().min(1), secret: z.string().regex(/^[0-9a-f]{64}$/) });

/** The SIP domain of a canonical URI. */
export function domainOf(uri: string): string {
  return uri.slice(uri.lastIndexOf('@') + 1);
}

/**
 * A record as it will be stored: its shape checked (STORE_BAD_USER naming the field otherwise) and
 * its realm the URI's domain. Both backends call this before writing.
 */
export function checkedUser(record: UserRecord): UserRecord {
  const result = userRecordSchema.safeParse(record);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new DnslbError('STORE_BAD_USER', `user ${JSON.stringify(String(record.uri).slice(0, 200))}: ${issue?.path.join('.') || '(record)'}: ${issue?.message ?? 'invalid'}`);
  }
  if (record.credential.realm !== domainOf(record.uri)) {
    throw new DnslbError('STORE_BAD_USER', `user ${record.uri}: the realm is the user's SIP domain ${domainOf(record.uri)}, not ${record.credential.realm}`);
  }
  const { homePool, number, credential, ...rest } = result.data;
  const { ha1Md5, ...hashes } = credential;
  // No `undefined` properties: both backends store and return the same JSON.
  return { ...rest, ...(homePool === undefined ? {} : { homePool }), ...(number === undefined ? {} : { number }), credential: { ...hashes, ...(ha1Md5 === undefined ? {} : { ha1Md5 }) } };
}

/** Applies an update to a stored record. */
export function updatedUser(current: UserRecord, update: UserUpdate, meta: { by: string; atMs: number }): UserRecord {
  const next: UserRecord = { ...current, by: meta.by, atMs: meta.atMs };
  if (update.disabled !== undefined) next.disabled = update.disabled;
  if (update.credential !== undefined) next.credential = update.credential;
  if (update.homePool === null) delete next.homePool;
  else if (update.homePool !== undefined) next.homePool = update.homePool;
  if (update.number === null) delete next.number;
  else if (update.number !== undefined) next.number = update.number;
  return checkedUser(next);
}

/**
 * A home pool must be a frontend pool of the published topology (a Director or Edge registers nobody);
 * `version` is the current version, undefined when nothing is published. Throws STORE_UNKNOWN_POOL.
 */
export function checkHomePool(homePool: string | undefined, topology: Topology | undefined, version: number | undefined): void {
  if (homePool === undefined) return;
  if (!topology) throw new DnslbError('STORE_UNKNOWN_POOL', `home pool ${homePool}: nothing is published yet, so no pool exists`);
  const pool = topology.pools.find((candidate) => candidate.fqdn === homePool);
  if (!pool) throw new DnslbError('STORE_UNKNOWN_POOL', `home pool ${homePool} is not a pool of the current topology (version ${version}); the frontend pools are ${topology.pools.filter((candidate) => candidate.kind === 'frontend').map((candidate) => candidate.fqdn).join(', ') || 'none'}`);
  if (pool.kind !== 'frontend') throw new DnslbError('STORE_UNKNOWN_POOL', `home pool ${homePool} is a ${pool.kind} pool (version ${version}): users are homed on frontend pools only`);
}

export function userExists(uri: string): DnslbError {
  return new DnslbError('STORE_USER_EXISTS', `user ${uri} already exists (use set-password, disable or enable to change it)`);
}

export function unknownUser(uri: string): DnslbError {
  return new DnslbError('STORE_UNKNOWN_USER', `no user ${uri} in the directory`);
}

/** The interface part both backends implement (src/store/store.ts `Store`). */
export interface UserDirectory {
  /** Adds a user; STORE_USER_EXISTS when the URI is taken, STORE_UNKNOWN_POOL for a bad home pool, STORE_BAD_USER for a malformed record. */
  addUser(user: NewUser, meta: { by: string }): Promise<UserRecord>;
  /** Changes a user (compare-and-swap on its stored version, retried); STORE_UNKNOWN_USER when absent. */
  updateUser(uri: string, update: UserUpdate, meta: { by: string }): Promise<UserRecord>;
  /** STORE_UNKNOWN_USER when absent. */
  removeUser(uri: string): Promise<void>;
  /** One user, undefined when absent. */
  user(uri: string): Promise<UserRecord | undefined>;
  /** Every user, sorted by URI. */
  users(): Promise<UserRecord[]>;
  /**
   * The pool's digest nonce secret: `candidate` (32 random bytes) is stored when the pool has none
   * yet, and whichever secret won is returned, so every server of the pool ends up with the same one.
   */
  authSecret(pool: string, candidate: Buffer): Promise<Buffer>;
}
