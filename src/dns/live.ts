// Follows the store (snapshot, then watch) and keeps the served zones in step with the published
// topology and the live server state: rebuilds the zones on each change, bumps the serial of each
// zone whose content changed, keeps a short history per zone (for IXFR), and swaps the answers.
import type { Logger } from 'pino';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import type { AdminState, LivenessRecord, Store, StoreEvent } from '../store/store.ts';
import type { Endpoint, Topology, View } from '../topology/schema.ts';
import { buildAnswers, type AnswerIndex } from './answer-cache.ts';
import type { RateLimitSettings } from './rrl.ts';
import { ViewSelector } from './views.ts';
import { buildZones, fingerprint, nextSerial, serialAdd, serialGreater, type ZoneVersion } from './zone.ts';

export interface LiveZonesOptions {
  /** The topology to serve when the store has none published (or when there is no store). */
  topology?: Topology;
  store?: Store;
  clock: Clock;
  random: Random;
  logger?: Logger;
  /** Delay before following the store again after its watch failed. */
  retryDelayMs?: number;
}

/** Called after each rebuild with the zones whose serial moved (NOTIFY will hang off this). */
export type ChangeListener = (changed: readonly ZoneVersion[]) => void;

const EMPTY: AnswerIndex = { views: [], selector: new ViewSelector([]), serials: new Map() };

export class LiveZones {
  private topology: Topology | undefined;
  private readonly adminStates = new Map<string, AdminState>();
  /** Liveness by server + reporter: a newer report replaces the older one; the store's 'liveness-expired' removes it. */
  private readonly liveness = new Map<string, LivenessRecord>();
  private readonly histories = new Map<string, ZoneVersion[]>();
  private answers: AnswerIndex = EMPTY;
  private readonly listeners: ChangeListener[] = [];
  private retryTimer: Timer | undefined;
  private readonly abort = new AbortController();
  private rebuildQueued = false;
  private revisionApplied = 0;
  private watching: Promise<void> | undefined;
  private readonly rateLimitListeners: ((settings: RateLimitSettings | undefined) => void)[] = [];
  private rateLimitPrint = 'none';

  constructor(private readonly options: LiveZonesOptions) {
    this.topology = options.topology;
  }

  /** The answers to serve now; the server reads this once per query. */
  get current(): AnswerIndex {
    return this.answers;
  }

  /** Zone versions, oldest first, of the zone `origin` (the last one is served). */
  history(origin: string): readonly ZoneVersion[] {
    return this.histories.get(origin) ?? [];
  }

  /** The store revision the zones have caught up with (liveness events carry no revision of their own). */
  get appliedRevision(): number {
    return this.revisionApplied;
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /** The served topology's response rate limit (dns.rateLimit); undefined: off. */
  get rateLimit(): RateLimitSettings | undefined {
    return this.topology?.dns.rateLimit;
  }

  /** Called when a rebuild finds dns.rateLimit changed (it may change without any zone changing). */
  onRateLimitChange(listener: (settings: RateLimitSettings | undefined) => void): void {
    this.rateLimitListeners.push(listener);
  }

  /** Builds the first zones (from the store's snapshot when there is a store) and starts following it. */
  async start(): Promise<void> {
    if (this.options.store) await this.follow(this.options.store);
    else this.rebuild();
  }

  private async follow(store: Store): Promise<void> {
    const snapshot = await store.snapshot();
    if (snapshot.current) this.topology = snapshot.current.topology;
    this.adminStates.clear();
    for (const [server, record] of snapshot.adminStates) this.adminStates.set(server.toLowerCase(), record.state);
    this.liveness.clear();
    for (const record of snapshot.liveness) this.applyLiveness(record);
    this.rebuild();
    this.revisionApplied = Math.max(this.revisionApplied, snapshot.revision);
    this.watching = this.watch(store, snapshot.revision);
  }

  private async watch(store: Store, afterRevision: number): Promise<void> {
    try {
      for await (const event of store.watch({ afterRevision, signal: this.abort.signal, users: false })) {
        await this.apply(store, event);
      }
    } catch (error) {
      if (this.abort.signal.aborted) return;
      this.options.logger?.error({ err: error }, 'dns: following the store failed; retrying from a new snapshot');
      this.retry(store);
    }
  }

  /** Follows again from a new snapshot after retryDelayMs, and again after each failure: a store that is down for a while (etcd restarting) is followed again when it is back. */
  private retry(store: Store): void {
    if (this.abort.signal.aborted) return;
    this.retryTimer = this.options.clock.setTimer(this.options.retryDelayMs ?? 1000, () => {
      this.follow(store).catch((cause: unknown) => {
        this.options.logger?.error({ err: cause }, 'dns: store snapshot failed; retrying');
        this.retry(store);
      });
    });
  }

  private async apply(store: Store, event: StoreEvent): Promise<void> {
    switch (event.kind) {
      case 'published':
        this.topology = (await store.read(event.version)).topology;
        break;
      case 'admin-state':
        this.adminStates.set(event.record.server.toLowerCase(), event.record.state);
        break;
      case 'liveness':
        this.applyLiveness(event.record);
        break;
      case 'liveness-expired':
        this.liveness.delete(`${event.server.toLowerCase()}\n${event.reporter.toLowerCase()}`);
        break;
    }
    this.revisionApplied = Math.max(this.revisionApplied, event.revision);
    // Several events arriving together cost one rebuild; the microtask runs before any I/O, so
    // the answers follow the store at once.
    if (!this.rebuildQueued) {
      this.rebuildQueued = true;
      queueMicrotask(() => {
        this.rebuildQueued = false;
        this.rebuild();
      });
    }
  }

  private applyLiveness(record: LivenessRecord): void {
    this.liveness.set(`${record.server.toLowerCase()}\n${record.reporter.toLowerCase()}`, { ...record, server: record.server.toLowerCase() });
  }

  /** Rebuilds every zone from the current inputs; bumps the serial of each zone that changed. */
  rebuild(): void {
    const nowMs = this.options.clock.nowMs();
    // A report held here is current until the store's watch says it expired ('liveness-expired'):
    // the watch delivers a report when its state changes, not each renewal, so the `atMs` held here
    // is when it last changed, not when it was last renewed. It is judged as renewed now.
    const liveness = [...this.liveness.values()].map((record) => ({ ...record, atMs: nowMs }));
    const live = { adminStates: this.adminStates, liveness, nowMs };
    const topology = this.topology;
    if (!topology) {
      this.answers = EMPTY;
      return;
    }
    const rateLimitPrint = JSON.stringify(topology.dns.rateLimit ?? 'none');
    if (rateLimitPrint !== this.rateLimitPrint) {
      this.rateLimitPrint = rateLimitPrint;
      for (const listener of this.rateLimitListeners) listener(topology.dns.rateLimit);
    }
    const contents = buildZones(topology, live);
    const changed: ZoneVersion[] = [];
    const served: ZoneVersion[] = [];
    for (const content of contents) {
      const history = this.histories.get(content.origin) ?? [];
      const last = history.at(-1);
      const print = fingerprint(content);
      if (last && last.fingerprint === print) {
        served.push(last);
        continue;
      }
      const version: ZoneVersion = { serial: nextSerial(last?.serial, nowMs), content, fingerprint: print };
      history.push(version);
      if (history.length > limits.dnsZoneHistoryMax) history.shift();
      this.histories.set(content.origin, history);
      served.push(version);
      changed.push(version);
    }
    // Zones that left the topology stop being served (and forget their history).
    for (const origin of [...this.histories.keys()]) if (!contents.some((content) => content.origin === origin)) this.histories.delete(origin);
    if (changed.length > 0 || this.answers === EMPTY) {
      this.answers = buildAnswers(served, topology.dns.views, this.options.random);
      for (const version of changed) this.options.logger?.info({ zone: version.content.origin, serial: version.serial }, 'dns: zone changed');
      for (const listener of this.listeners) listener(changed);
    }
  }

  /**
   * Serves the zone, same content, under a serial greater than `serial` (RFC 1982) when it is not
   * already: a restarted primary whose clock-based serial is behind what a secondary holds (changes
   * outran the clock before the restart) would otherwise be ignored by that secondary until the
   * clock caught up. Returns the new version, or undefined when the zone is ahead or not served.
   */
  serveAbove(origin: string, serial: number): ZoneVersion | undefined {
    const history = this.histories.get(origin);
    const last = history?.at(-1);
    if (!history || !last || !this.topology || serialGreater(last.serial, serial)) return undefined;
    const version: ZoneVersion = { ...last, serial: serialAdd(serial, 1) };
    history.push(version);
    if (history.length > limits.dnsZoneHistoryMax) history.shift();
    this.answers = buildAnswers(this.served(), this.topology.dns.views, this.options.random);
    this.options.logger?.info({ zone: origin, serial: version.serial }, 'dns: zone changed');
    for (const listener of this.listeners) listener([version]);
    return version;
  }

  /** Secondaries of the served topology: the transfer ACL and the NOTIFY targets. */
  get secondaries(): readonly Endpoint[] {
    return this.topology?.dns.secondaries ?? [];
  }

  /** Every zone's served version (the last of its history). */
  served(): ZoneVersion[] {
    return [...this.histories.values()].map((history) => history.at(-1)!).filter(Boolean);
  }

  /** The served topology's views (for workers that build their own answers). */
  get viewList(): readonly View[] {
    return this.topology?.dns.views ?? [];
  }

  get views(): readonly string[] {
    return this.topology?.dns.views.map((view) => view.name) ?? [];
  }

  async close(): Promise<void> {
    this.abort.abort();
    this.retryTimer?.cancel();
    await this.watching;
  }
}
