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
  // dns
  /** The EDNS UDP payload size we advertise and honour at most (DNS Flag Day 2020). */
  dnsUdpPayloadBytes: 1232, // bytes
  /** RFC 1035 §4.2.1: the UDP size without EDNS; RFC 6891 §6.2.5: the floor with it. */
  dnsUdpClassicBytes: 512, // bytes
  /** Prebuilt random orders per answer set (random policy). */
  dnsRandomOrdersMax: 24,
  /** Open TCP connections at once (RFC 7766 §6.2.2: servers may cap them). */
  dnsTcpConnectionsMax: 256,
  /** A TCP connection with no complete query for this long is closed (RFC 7766 §6.2.3). */
  dnsTcpIdleTimeoutMs: 10_000, // 10 s
  /** Bytes queued for a TCP client that does not read before the connection is closed. */
  dnsTcpPendingWriteBytesMax: 256 * 1024, // 256 KiB
  /** Source-address → view decisions remembered (cleared when full). */
  dnsViewCacheEntriesMax: 65_536,
  /** Serial versions kept per zone for IXFR. */
  dnsZoneHistoryMax: 64,
} as const;

/** Asserts the relations between limits; called once when a process starts. */
export function checkLimits(): void {
  assert(limits.topologyBytesMax > 0);
  assert(limits.registrarContactsPerRequestMax <= limits.registrarBindingsPerUserMax, 'a REGISTER may not carry more Contacts than a user may hold');
  assert(limits.reginfoBytesMax > 0 && limits.rehomeBatchSizeMax > 0 && limits.registrarExpiresMaxS > 0);
  assert(limits.dnsUdpPayloadBytes >= limits.dnsUdpClassicBytes && limits.dnsUdpPayloadBytes <= 65_535);
  assert(limits.dnsRandomOrdersMax >= 1);
  assert(limits.dnsTcpConnectionsMax >= 1 && limits.dnsTcpIdleTimeoutMs > 0);
}
