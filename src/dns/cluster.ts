// `dns serve --workers N`: node:cluster workers answering on one UDP port (and TCP port).
// The primary alone follows the store, numbers the serials and sends NOTIFY; it forwards each new
// zone version to the workers, which build their own answer index from it. One serial authority,
// so every worker serves the same serial for the same content (workers following the store each
// would number versions by their own clocks, and a secondary could see a serial go back).
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { Random } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import type { Endpoint, View } from '../topology/schema.ts';
import { buildAnswers, type AnswerIndex } from './answer-cache.ts';
import type { LiveZones } from './live.ts';
import type { RateLimitSettings } from './rrl.ts';
import type { DnsServerStats } from './server.ts';
import type { TransferSource } from './transfer.ts';
import type { UdpEngineName } from './udp.ts';
import { ViewSelector } from './views.ts';
import type { RRset, ZoneVersion } from './zone.ts';

/** A ZoneVersion as it crosses the IPC channel (Maps become arrays). */
interface WireVersion {
  serial: number;
  fingerprint: string;
  origin: string;
  soa: ZoneVersion['content']['soa'];
  views: [string, readonly RRset[]][];
}

export type PrimaryMessage =
  /** `statsIntervalMs`: report DnsServer.stats this often (only when the primary serves metrics). */
  | { kind: 'listen'; listen: Endpoint[]; statsIntervalMs?: number }
  /** `reset`: the workers drop their histories first (a new worker, or a zone left). */
  | { kind: 'zones'; reset: boolean; versions: WireVersion[]; views: View[]; secondaries: Endpoint[] }
  /** dns.rateLimit (null: off) and this worker's share of the rate (1 / the number of workers). */
  | { kind: 'rate-limit'; settings: RateLimitSettings | null; share: number };

export type WorkerMessage =
  | { kind: 'listening'; udp: Endpoint[]; tcp: Endpoint[]; udpEngine: UdpEngineName }
  | { kind: 'failed'; message: string }
  | { kind: 'stats'; stats: DnsServerStats; openConnections: number };

/**
 * The primary's sum of its workers' counters (`--metrics-listen` with `--workers`): each worker
 * reports its own every `limits.dnsWorkerStatsIntervalMs`; a worker that dies leaves its last report
 * in `retired`, so the summed counters never go back when a worker is re-forked.
 */
export class WorkerStats {
  private readonly latest = new Map<number, { stats: DnsServerStats; openConnections: number }>();
  private readonly retired: DnsServerStats = emptyStats();

  report(workerId: number, stats: DnsServerStats, openConnections: number): void {
    this.latest.set(workerId, { stats, openConnections });
  }

  retire(workerId: number): void {
    const last = this.latest.get(workerId);
    if (last) addStats(this.retired, last.stats);
    this.latest.delete(workerId);
  }

  stats(): DnsServerStats {
    const sum = addStats(emptyStats(), this.retired);
    for (const { stats } of this.latest.values()) addStats(sum, stats);
    return sum;
  }

  openConnections(): number {
    let open = 0;
    for (const entry of this.latest.values()) open += entry.openConnections;
    return open;
  }
}

function emptyStats(): DnsServerStats {
  return { queries: 0, dropped: 0, formErrors: 0, serverFailures: 0, tcpConnections: 0, tcpRejected: 0, tcpIdleClosed: 0, rateLimitDropped: 0, rateLimitSlipped: 0 };
}

function addStats(into: DnsServerStats, more: DnsServerStats): DnsServerStats {
  for (const key of Object.keys(into) as (keyof DnsServerStats)[]) into[key] += more[key];
  return into;
}

function toWire(version: ZoneVersion): WireVersion {
  return { serial: version.serial, fingerprint: version.fingerprint, origin: version.content.origin, soa: version.content.soa, views: [...version.content.views.entries()] };
}

function fromWire(wire: WireVersion): ZoneVersion {
  return { serial: wire.serial, fingerprint: wire.fingerprint, content: { origin: wire.origin, soa: wire.soa, views: new Map(wire.views) } };
}

/** Every version of every zone, oldest first per zone (what a new worker needs). */
export function zonesMessage(zones: LiveZones, reset: boolean, versions?: readonly ZoneVersion[]): PrimaryMessage {
  const all = versions ?? zones.served().flatMap((served) => zones.history(served.content.origin));
  return { kind: 'zones', reset, versions: all.map(toWire), views: [...zones.viewList], secondaries: [...zones.secondaries] };
}

/** The primary's side: forwards every change to every worker. */
export function forwardChanges(zones: LiveZones, workers: () => readonly Worker[]): void {
  let known = new Set(zones.served().map((version) => version.content.origin));
  zones.onChange((changed) => {
    const origins = new Set(zones.served().map((version) => version.content.origin));
    // A zone that left the topology: the workers start over from the full histories.
    const reset = [...known].some((origin) => !origins.has(origin));
    known = origins;
    const message = reset ? zonesMessage(zones, true) : zonesMessage(zones, false, changed);
    for (const worker of workers()) if (worker.isConnected()) worker.send(message);
  });
}

/** A worker's zones: built from the versions the primary forwards (implements what DnsServer reads). */
export class ForwardedZones implements TransferSource {
  private readonly histories = new Map<string, ZoneVersion[]>();
  private answers: AnswerIndex = { views: [], selector: new ViewSelector([]), serials: new Map() };
  secondaries: readonly Endpoint[] = [];

  constructor(private readonly random: Random) {}

  get current(): AnswerIndex {
    return this.answers;
  }

  history(origin: string): readonly ZoneVersion[] {
    return this.histories.get(origin) ?? [];
  }

  apply(message: Extract<PrimaryMessage, { kind: 'zones' }>): void {
    if (message.reset) this.histories.clear();
    for (const wire of message.versions) {
      const history = this.histories.get(wire.origin) ?? [];
      history.push(fromWire(wire));
      if (history.length > limits.dnsZoneHistoryMax) history.shift();
      this.histories.set(wire.origin, history);
    }
    this.secondaries = message.secondaries;
    this.answers = buildAnswers([...this.histories.values()].map((history) => history.at(-1)!), message.views, this.random);
  }
}

export const isWorker = (): boolean => cluster.isWorker;
export { cluster };
