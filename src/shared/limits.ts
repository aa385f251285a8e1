// Every limit of dnslb in one place (STYLE "Config and input"): checked where it applies,
// relations between limits asserted at start by checkLimits().
import { assert } from './assert.ts';

export const limits = {
  /** Largest topology document read from disk or the store. */
  topologyBytesMax: 4 * 1024 * 1024, // 4 MiB
  /** Home pool rules in one topology; each user is matched against them in order, so they stay few (explicit assignments live in the store). */
  topologyHomeRulesMax: 1000,
  /** PSTN routes in one topology. */
  topologyPstnRoutesMax: 1000,
  /** Federation partners of one edge pool (each a SIP domain the Access Edge lets through). */
  topologyFederationPartnersMax: 1000,

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
  /**
   * A user in a call waits this long at most before a hand-over moves it anyway: a call the server
   * still counts after it ended (its BYE never passed here) must not keep the user off its home for ever.
   */
  rehomeBusyWaitMs: 3_600_000, // 1 h
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
  // web services (src/webservices/)
  /** An HTTPS request whose headers (or whole request) have not arrived by then is dropped (slowloris). */
  webServicesHeadersTimeoutMs: 10_000, // 10 s
  /** Headers in one Web services request. */
  webServicesHeadersMax: 64,
  // client (src/client/)
  /** Redirects a client follows in one registration before it tries the next address (DESIGN §3: no redirect loops). */
  clientRedirectsMax: 2,
  /** Ceiling of the simulator's --users. */
  clientSimulatedUsersMax: 100_000,
  /** Ceiling of the RFC 5626 §4.5 back-off max-time a user agent may be given. */
  clientBackoffMsMax: 1_800_000, // 30 min, RFC 5626's recommended max-time
  /** Largest message of an AXFR/IXFR stream (RFC 5936 §2.2: several messages for a big zone). */
  dnsTransferMessageBytes: 16 * 1024, // 16 KiB
  /** First NOTIFY retry after this long without a response; each retry doubles it (RFC 1996 §3.6). */
  dnsNotifyRetryMs: 2_000, // 2 s
  /** NOTIFY sends per secondary and serial, first one included, before giving up. */
  dnsNotifyAttemptsMax: 5,
  /** At start, how long `dns serve` waits for each secondary's SOA serial (it serves above it). */
  dnsSecondarySerialTimeoutMs: 1_000, // 1 s
  /** Most `dns serve --workers`. */
  dnsWorkersMax: 64,
  /** How often a `--workers` worker reports its counters to the primary when metrics are served (how stale a scrape may be). */
  dnsWorkerStatsIntervalMs: 1000, // 1 s
  /** How long `dns push` waits for the server (AXFR read, UPDATE response). */
  dnsPushTimeoutMs: 10_000, // 10 s
  /** RFC 8945 §5.2.3: the clock skew a TSIG signature tolerates (the fudge we send and accept). */
  dnsTsigFudgeS: 300, // 5 min
  // sip: message framing and parsing (src/sip/framer.ts, parse.ts)
  /** Longest physical header line (bytes, CRLF excluded); a longer one closes the flow. */
  sipLineBytesMax: 8 * 1024, // 8 KiB
  /** Largest header section (start line + headers + blank line). */
  sipHeaderSectionBytesMax: 32 * 1024, // 32 KiB
  /** Most header fields in one message (after unfolding and comma-splitting). */
  sipHeaderCountMax: 256,
  /** Largest body (Content-Length); larger is refused before a byte of it is buffered. */
  sipBodyBytesMax: 64 * 1024, // 64 KiB
  /** Largest whole message: header section + body. */
  sipMessageBytesMax: 96 * 1024, // 96 KiB

  // sip: transport (src/sip/transport.ts, flow.ts)
  /** Hard cap on simultaneous connections a SipTransport holds (its option can only lower it). */
  sipConnectionsMax: 50_000,
  /**
   * Connections the kernel may hold for a SIP listener before it accepts them (listen(2) backlog; the
   * kernel caps it at net.core.somaxconn). Node's default, 511, overflowed during a sign-in storm of a
   * pool of 12 (2,000 users/s, two connections each): the SYN was dropped, the client's connect timed
   * out and it went to the home's next server, which redirected it back.
   */
  sipListenBacklog: 4096,
  /** Bytes queued for sending on one flow before it is closed as a slow reader. */
  sipFlowSendBufferBytesMax: 1024 * 1024, // 1 MiB
  /** Longest idle timeout a flow may be given. */
  sipIdleTimeoutMsMax: 3_600_000, // 1 h
  /** Longest TLS handshake timeout. */
  sipTlsHandshakeTimeoutMsMax: 120_000, // 2 min

  // frontend (src/frontend/)
  /** Proxy transactions in progress at once; more new requests are answered 503. */
  frontendTransactionsMax: 100_000,
  /** Dialogs a server remembers for counting (the oldest is forgotten beyond). */
  frontendDialogsMax: 1_000_000,
  /** A dialog with no BYE for this long is forgotten (its client crashed). */
  frontendDialogAgeMsMax: 86_400_000, // 24 h
  /** Addresses an Edge knows as partners' Access Edges (a dialog's route may lead to them): the oldest are forgotten first. */
  edgePartnerAddressesMax: 10_000,
  /** RFC 3680 reg-event subscriptions one server holds; more are answered 503. */
  frontendRegSubscriptionsMax: 200_000,
  /** Longest reg-event subscription granted (a longer Expires is shortened). */
  frontendRegSubscriptionExpiresMaxS: 7200, // 2 h
  /** Users listed by one admin `GET /users` page. */
  frontendUsersPageMax: 100_000,
  // store (src/store): sizes of what is read back from disk, so a hand-edited or hostile data
  // directory cannot make a process allocate without bound.
  /** Largest change-log entry: a whole topology plus its envelope (who, when, comment). */
  storeLogEntryBytesMax: 4 * 1024 * 1024 + 64 * 1024, // 4 MiB + 64 KiB
  /** Largest compaction file: version summaries and admin states, never topologies. */
  storeCompactionBytesMax: 16 * 1024 * 1024, // 16 MiB
  /** Largest liveness report file. */
  storeLivenessBytesMax: 4 * 1024, // 4 KiB
  /** Longest `by`, `comment` and admin `reason` text kept with a change. */
  storeTextCharsMax: 1024,
  /** Log entries read in one pass; a longer log means compaction has not run (or was disabled by hand). */
  storeLogEntriesMax: 100_000,
  /** Times a writer retries after losing the race for the next revision before giving up (STORE_LOCKED). */
  storeCommitAttemptsMax: 1000,
  /** Longest TTL a liveness report may ask for. */
  storeLivenessTtlMsMax: 3_600_000, // 1 h
  // store: the etcd v3 backend (src/store/etcd-store.ts)
  /** Default bound on one etcd call (connect included): past it the call fails with STORE_UNAVAILABLE instead of hanging. */
  storeEtcdRequestTimeoutMs: 5_000, // 5 s
  /** Largest etcd value read back (a version's topology document plus its envelope). */
  storeEtcdValueBytesMax: 4 * 1024 * 1024 + 64 * 1024, // 4 MiB + 64 KiB
  /** Keys read in one range (admin states, liveness reports, version summaries). */
  storeEtcdRangeKeysMax: 100_000,
  // store: the user directory (src/store/users.ts)
  /** Largest stored user record (URI, home pool, HA1 hashes, who and when). */
  storeUserBytesMax: 4 * 1024, // 4 KiB
  /** Users in one directory listing (`dnslb user list`, both backends). */
  storeUsersMax: 100_000,
  // auth (src/auth/)
  /** Parameters in one Authorization / Proxy-Authorization header. */
  authParamsMax: 32,
  /** Longest value of one digest parameter (username, uri, nonce, cnonce …). */
  authParamCharsMax: 1024,
  /** A nonce stamped this far in the future (clock skew between the pool's servers) is still accepted. */
  authNonceFutureMsMax: 30_000, // 30 s
  /** Nonce counts below the highest seen that may still arrive out of order (parallel transactions). */
  authNcWindow: 64,
  /** Nonces whose counts one server tracks; beyond it the least recently used are forgotten (then refused as stale). */
  authNoncesTrackedMax: 100_000,
  /** Sources and users the brute-force limiter tracks, each; beyond it the least recently failed are forgotten. */
  authLimiterEntriesMax: 100_000,
  /** Sources remembered per user as having signed in (they stay exempt from that user's lock). */
  authKnownSourcesPerUserMax: 16,
  /** Remote clients' flow identities a server keeps for Edge links (auth/relayed.ts); the oldest are forgotten first. */
  authRelayedFlowsMax: 200_000,
} as const;

/** Asserts the relations between limits; called once when a process starts. */
export function checkLimits(): void {
  assert(limits.topologyBytesMax > 0);
  assert(limits.registrarContactsPerRequestMax <= limits.registrarBindingsPerUserMax, 'a REGISTER may not carry more Contacts than a user may hold');
  assert(limits.reginfoBytesMax > 0 && limits.rehomeBatchSizeMax > 0 && limits.registrarExpiresMaxS > 0);
  assert(limits.dnsUdpPayloadBytes >= limits.dnsUdpClassicBytes && limits.dnsUdpPayloadBytes <= 65_535);
  assert(limits.dnsRandomOrdersMax >= 1);
  assert(limits.dnsTcpConnectionsMax >= 1 && limits.dnsTcpIdleTimeoutMs > 0);
  assert(limits.clientRedirectsMax >= 1 && limits.clientSimulatedUsersMax >= 1 && limits.clientBackoffMsMax > 0);
  assert(limits.dnsTransferMessageBytes >= 512 && limits.dnsTransferMessageBytes <= 65_535, 'a transfer message fits a TCP frame');
  assert(limits.dnsTransferMessageBytes <= limits.dnsTcpPendingWriteBytesMax, 'one transfer message can be queued');
  assert(limits.dnsNotifyRetryMs > 0 && limits.dnsNotifyAttemptsMax >= 1 && limits.dnsPushTimeoutMs > 0);
  assert(limits.sipLineBytesMax < limits.sipHeaderSectionBytesMax, 'a header line fits in a header section');
  assert(limits.sipHeaderSectionBytesMax + limits.sipBodyBytesMax <= limits.sipMessageBytesMax, 'header section + body fit in a message');
  assert(limits.sipMessageBytesMax <= limits.sipFlowSendBufferBytesMax, 'one whole message can be queued for sending');
  assert(limits.frontendTransactionsMax >= 1 && limits.frontendDialogsMax >= 1 && limits.frontendRegSubscriptionsMax >= 1);
  assert(limits.frontendRegSubscriptionExpiresMaxS <= limits.registrarExpiresMaxS, 'a reg subscription outlives no registration');
  assert(limits.storeLogEntryBytesMax > limits.topologyBytesMax + 3 * limits.storeTextCharsMax * 4, 'a log entry holds a topology plus its texts');
  assert(limits.storeLivenessBytesMax > 0 && limits.storeCommitAttemptsMax > 0 && limits.storeLogEntriesMax > 0);
  assert(limits.storeEtcdRequestTimeoutMs > 0 && limits.storeEtcdRangeKeysMax > 0);
  assert(limits.storeEtcdValueBytesMax > limits.topologyBytesMax + 3 * limits.storeTextCharsMax * 4, 'an etcd value holds a topology plus its texts');
}
