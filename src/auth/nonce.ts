// Stateless digest nonces (RFC 7616 §3.3 leaves the construction to the server): the issue time, a
// salt and an HMAC over both with the pool's secret (kept in the store), so any server of the pool
// checks a nonce another issued, after a redirect, without shared state. Plus the bounded per-nonce
// nonce-count window that refuses replays (RFC 7616 §3.4: "nc" lets the server detect them).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { assert } from '../shared/assert.ts';
import { limits } from '../shared/limits.ts';

const NONCE_VERSION = 1;
const SALT_BYTES = 8;
const MAC_BYTES = 16;
/** version (1) ‖ issuedAtMs (8, big-endian) ‖ salt (8) ‖ mac (16) */
const NONCE_BYTES = 1 + 8 + SALT_BYTES + MAC_BYTES;

/** Random bytes, injected (tests pass a seeded source). */
export type RandomBytes = (count: number) => Buffer;

export type NonceCheck =
  | { kind: 'valid'; issuedAtMs: number }
  /** Genuine but older than the lifetime: challenge again with stale=true (the password was right or not checked). */
  | { kind: 'stale'; issuedAtMs: number }
  /** Not ours (another pool, a forged or damaged nonce, a secret since replaced). */
  | { kind: 'invalid' };

export interface NonceOptions {
  /** The pool's secret (32 bytes, from the store's authSecret). */
  secret: Buffer;
  /** A nonce older than this is stale (RFC 7616 §3.3 stale=true). The realm is part of the MAC: a nonce of one realm is no good in another. */
  lifetimeMs: number;
  randomBytes: RandomBytes;
}

function mac(secret: Buffer, head: Buffer, realm: string): Buffer {
  return createHmac('sha256', secret).update(head).update('\0').update(realm, 'utf8').digest().subarray(0, MAC_BYTES);
}

/** Issues a nonce for `realm` at `nowMs`: base64url, 44 characters, no quote or backslash to escape. */
export function issueNonce(options: NonceOptions, realm: string, nowMs: number): string {
  assert(options.secret.length >= 16, 'a nonce secret has at least 16 bytes');
  const head = Buffer.alloc(1 + 8 + SALT_BYTES);
  head.writeUInt8(NONCE_VERSION, 0);
  head.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(nowMs))), 1);
  const salt = options.randomBytes(SALT_BYTES);
  assert(salt.length === SALT_BYTES, 'randomBytes returned the bytes asked for');
  salt.copy(head, 9);
  return Buffer.concat([head, mac(options.secret, head, realm)]).toString('base64url');
}

/**
 * Checks a nonce: genuine (our MAC for this realm), and no older than the lifetime. A nonce from
 * the future by more than `authNonceFutureMsMax` (clock skew between servers) is invalid.
 */
export function checkNonce(options: NonceOptions, realm: string, nonce: string, nowMs: number): NonceCheck {
  if (nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(nonce)) return { kind: 'invalid' };
  const bytes = Buffer.from(nonce, 'base64url');
  if (bytes.length !== NONCE_BYTES || bytes.readUInt8(0) !== NONCE_VERSION) return { kind: 'invalid' };
  const head = bytes.subarray(0, 1 + 8 + SALT_BYTES);
  if (!timingSafeEqual(mac(options.secret, head, realm), bytes.subarray(head.length))) return { kind: 'invalid' };
  const issuedAtMs = Number(bytes.readBigUInt64BE(1));
  if (issuedAtMs > nowMs + limits.authNonceFutureMsMax) return { kind: 'invalid' };
  if (nowMs - issuedAtMs > options.lifetimeMs) return { kind: 'stale', issuedAtMs };
  return { kind: 'valid', issuedAtMs };
}

/** What the count window says of one (nonce, nc). */
export type CountCheck = 'fresh' | 'replayed' | 'forgotten';

interface Window {
  issuedAtMs: number;
  /** The highest count seen. */
  highest: number;
  /** Bit i set: count highest - i was seen (i < ncWindow). */
  seen: bigint;
}

/**
 * Nonce counts seen by this server, per nonce: a count is accepted once. Counts may arrive out of
 * order (parallel transactions) within the last `authNcWindow` counts below the highest; older ones
 * are refused. Memory is bounded: at most `authNoncesTrackedMax` nonces, expired ones dropped first,
 * then the least recently used; a nonce whose window was dropped is `forgotten` (answer stale=true,
 * the client takes a fresh nonce) — never accepted again, since its earlier counts are unknown.
 */
export class NonceCounts {
  private readonly windows = new Map<string, Window>();
  /** Nonces issued at or before this instant and not tracked may have been dropped: refuse them. */
  private forgottenUpToMs = -Infinity;
  private nextSweepMs = -Infinity;

  constructor(private readonly options: { lifetimeMs: number; capacity?: number }) {}

  get size(): number {
    return this.windows.size;
  }

  check(nonce: string, issuedAtMs: number, nc: number, nowMs: number): CountCheck {
    assert(Number.isInteger(nc) && nc >= 1, 'nc is a positive count');
    let window = this.windows.get(nonce);
    if (window === undefined) {
      // Never seen here: another server of the pool issued it, or it is new. Unless it might be one we dropped.
      if (issuedAtMs <= this.forgottenUpToMs) return 'forgotten';
      this.makeRoom(nowMs);
      window = { issuedAtMs, highest: 0, seen: 0n };
    } else {
      this.windows.delete(nonce); // re-inserted below: least recently used first in the Map
    }
    this.windows.set(nonce, window);
    const size = BigInt(limits.authNcWindow);
    if (nc > window.highest) {
      const shift = BigInt(nc - window.highest);
      window.seen = shift >= size ? 1n : ((window.seen << shift) | 1n) & ((1n << size) - 1n);
      window.highest = nc;
      return 'fresh';
    }
    const offset = BigInt(window.highest - nc);
    if (offset >= size) return 'replayed';
    const bit = 1n << offset;
    if ((window.seen & bit) !== 0n) return 'replayed';
    window.seen |= bit;
    return 'fresh';
  }

  private makeRoom(nowMs: number): void {
    const capacity = this.options.capacity ?? limits.authNoncesTrackedMax;
    if (this.windows.size < capacity) return;
    // Expired nonces are refused as stale anyway: forgetting them costs nothing. One full pass at
    // most every quarter lifetime, so that a full table under a flood costs O(1) per new nonce.
    if (nowMs >= this.nextSweepMs) {
      this.nextSweepMs = nowMs + this.options.lifetimeMs / 4;
      for (const [nonce, window] of this.windows) {
        if (nowMs - window.issuedAtMs > this.options.lifetimeMs) this.windows.delete(nonce);
      }
    }
    while (this.windows.size >= capacity) {
      const [oldest, window] = this.windows.entries().next().value as [string, Window];
      this.windows.delete(oldest);
      this.forgottenUpToMs = Math.max(this.forgottenUpToMs, window.issuedAtMs);
    }
  }
}
