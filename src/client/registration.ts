// The timing and ordering decisions of a registering user agent, as pure functions tested with
// tables: RFC 5626 §4.5 back-off, refresh before expiry, keep-alive interval, and redirect order.
import { assert } from '../shared/assert.ts';
import type { Random } from '../shared/clock.ts';
import type { Contact } from '../sip/headers.ts';

export interface BackoffOptions {
  /** RFC 5626 §4.5 base-time when every flow has failed: 30 s. */
  backoffBaseMs: number;
  /** RFC 5626 §4.5 max-time: 1800 s. */
  backoffMaxMs: number;
}

export const BACKOFF_BASE_MS_DEFAULT = 30_000; // 30 s, RFC 5626 §4.5 (all flows failed)
export const BACKOFF_MAX_MS_DEFAULT = 1_800_000; // 1800 s, RFC 5626 §4.5
export const KEEP_ALIVE_INTERVAL_MS_DEFAULT = 30_000; // 30 s (the default; RFC 5626 suggests 95–120 s for TCP)
export const PONG_TIMEOUT_MS_DEFAULT = 10_000; // 10 s, RFC 5626 §4.4.1
export const TRANSACTION_TIMEOUT_MS_DEFAULT = 32_000; // RFC 3261 Timer B/F = 64 × T1 (500 ms)

/**
 * RFC 5626 §4.5: wait-time = min(max-time, base-time × 2^consecutive-failures), then a uniform
 * random share of 50–100 % of it, so that users cut off together do not come back together.
 */
export function backoffDelayMs(consecutiveFailures: number, options: BackoffOptions, random: Random): number {
  assert(Number.isInteger(consecutiveFailures) && consecutiveFailures >= 0, 'consecutiveFailures is a count');
  // 2^n overflows to Infinity for large n; min() keeps it at max-time.
  const ceilingMs = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** consecutiveFailures);
  return Math.round(ceilingMs * (0.5 + 0.5 * random()));
}

/**
 * When to refresh a registration granted for `grantedS` seconds: a minute before it runs out, or
 * halfway through when it is shorter than two minutes, so a refresh that needs a redirect or a
 * new connection still finishes in time.
 */
export function refreshDelayMs(grantedS: number): number {
  assert(grantedS > 0, 'a granted registration lasts');
  return grantedS >= 120 ? (grantedS - 60) * 1000 : (grantedS * 1000) / 2;
}

/**
 * RFC 5626 §4.4.1: send keep-alives at a random time between 80 % and 100 % of the interval (the
 * registrar's Flow-Timer when it sent one), so that the pings of many users spread out.
 */
export function keepAliveDelayMs(intervalMs: number, random: Random): number {
  return Math.round(intervalMs * (0.8 + 0.2 * random()));
}

/**
 * The order in which to try a 3xx's Contacts (RFC 3261 §8.1.3.4, §16.6: highest q first; absent q
 * counts as 1.0; equal q keeps the server's order).
 */
export function orderRedirectContacts(list: readonly Contact[]): Contact[] {
  return list
    .map((contact, index) => ({ contact, index, q: contact.q ?? 1 }))
    .sort((a, b) => b.q - a.q || a.index - b.index)
    .map((entry) => entry.contact);
}
