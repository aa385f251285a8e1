// The metrics of `dnslb dns serve`: read at scrape time from DnsServer.stats, Notifier.stats and the
// zone serials, so the answer path does no more work than it did (no per-query metric call).
import type { DnsServerStats } from '../dns/server.ts';
import type { NotifyStats } from '../dns/notify.ts';
import { collectedCounter, collectedGauge, type Registry } from './metrics.ts';

export interface DnsMetricsSource {
  /** The server's counters; under `--workers` the sum over the workers (dns/cluster.ts WorkerStats). */
  stats(): DnsServerStats;
  /** TCP connections open now (summed over workers likewise). */
  openConnections(): number;
  notify: NotifyStats;
  /** Zone origin → the serial served now. */
  serials(): ReadonlyMap<string, number>;
  udpEngine: string;
  /** `--workers N` (0: answered in the primary). */
  workers: number;
}

/** Every DNS metric name, in the order they are registered (src/admin/README.md lists them). */
export function registerDnsMetrics(registry: Registry, source: DnsMetricsSource): void {
  const counter = (name: string, help: string, field: keyof DnsServerStats) => collectedCounter(registry, { name, help, read: () => source.stats()[field] });
  counter('dnslb_dns_queries_total', 'DNS messages received over UDP and TCP, malformed ones included: the load on this server.', 'queries');
  counter('dnslb_dns_dropped_total', 'DNS messages dropped without an answer (shorter than a header, or a response): a misbehaving or spoofing sender when it grows.', 'dropped');
  counter('dnslb_dns_format_errors_total', 'Queries answered FORMERR (malformed question, bad EDNS, trailing bytes): broken clients or probes.', 'formErrors');
  counter('dnslb_dns_server_failures_total', 'Queries answered SERVFAIL because answering threw: a bug to report, should stay 0.', 'serverFailures');
  counter('dnslb_dns_tcp_connections_accepted_total', 'TCP connections accepted (RFC 7766): truncated answers retried, zone transfers.', 'tcpConnections');
  counter('dnslb_dns_tcp_connections_rejected_total', 'TCP connections closed at once because --tcp-connections-max were open: raise the cap or find the client holding them.', 'tcpRejected');
  counter('dnslb_dns_tcp_connections_idle_closed_total', 'TCP connections closed after --tcp-idle-timeout-ms without a complete query.', 'tcpIdleClosed');
  counter('dnslb_dns_rate_limit_dropped_total', 'UDP responses not sent because their source prefix was over dns.rateLimit.responsesPerSecond (response rate limiting): a flood, or a spoofed victim.', 'rateLimitDropped');
  counter('dnslb_dns_rate_limit_slipped_total', 'UDP responses sent truncated (TC=1, no records) instead, every dns.rateLimit.slip-th over the rate: real clients retry them over TCP.', 'rateLimitSlipped');
  collectedGauge(registry, { name: 'dnslb_dns_tcp_connections_open', help: 'TCP connections open now, against --tcp-connections-max.', read: () => source.openConnections() });
  collectedGauge(registry, {
    name: 'dnslb_dns_zone_serial',
    help: 'SOA serial served now per zone: secondaries whose SOA serial lags this are behind.',
    labelNames: ['zone'],
    read: () => [...source.serials()].map(([zone, serial]) => [{ zone }, serial] as const),
  });
  const notify = (name: string, help: string, field: keyof NotifyStats) => collectedCounter(registry, { name, help, read: () => source.notify[field] });
  notify('dnslb_dns_notify_sent_total', 'NOTIFY messages sent to secondaries (RFC 1996), first sends and retries.', 'sent');
  notify('dnslb_dns_notify_retried_total', 'NOTIFY messages sent again because the secondary had not answered: a secondary slow or unreachable.', 'retried');
  notify('dnslb_dns_notify_acknowledged_total', 'NOTIFY answered NOERROR by the secondary.', 'acknowledged');
  notify('dnslb_dns_notify_failed_total', 'NOTIFY given up after every attempt, or answered with an error: that secondary serves an old zone until its refresh.', 'failed');
  collectedGauge(registry, { name: 'dnslb_dns_udp_engine_info', help: 'The UDP engine answering (batch: recvmmsg/sendmmsg; dgram: node:dgram, at about half the speed), always 1.', labelNames: ['engine'], read: () => [[{ engine: source.udpEngine }, 1]] });
  collectedGauge(registry, { name: 'dnslb_dns_workers', help: 'Worker processes answering (--workers; 0: the primary answers itself).', read: () => source.workers });
}
