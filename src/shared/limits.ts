// Every limit of dnslb in one place (STYLE "Config and input"): checked where it applies,
// relations between limits asserted at start by checkLimits().
import { assert } from './assert.ts';

export const limits = {
  /** Largest topology document read from disk or the store. */
  topologyBytesMax: 4 * 1024 * 1024, // 4 MiB

  // admin
  /** Largest admin API request body. */
  adminBodyBytesMax: 64 * 1024, // 64 KiB
  // registrar
  /** Ceiling of the registrar's `expiresMaxS` config. */
  registrarExpiresMaxS: 86_400, // 1 day
  /** Ceiling of the registrar's `bindingsPerUserMax` config. */
  registrarBindingsPerUserMax: 256,
  /** Contacts in one REGISTER; more is a bad request. */
  registrarContactsPerRequestMax: 32,
  /** Largest RFC 3680 reginfo document the parser reads. */
  reginfoBytesMax: 256 * 1024, // 256 KiB
  /** Ceiling of `rehome.batchSize` (the topology schema allows the same). */
  rehomeBatchSizeMax: 100_000,
} as const;

/** Asserts the relations between limits; called once when a process starts. */
export function checkLimits(): void {
  assert(limits.topologyBytesMax > 0);
  assert(limits.registrarContactsPerRequestMax <= limits.registrarBindingsPerUserMax, 'a REGISTER may not carry more Contacts than a user may hold');
  assert(limits.reginfoBytesMax > 0 && limits.rehomeBatchSizeMax > 0 && limits.registrarExpiresMaxS > 0);
}
