// A Front End server following the store (DESIGN §2: "Live state flows admin/heartbeat → store →
// dns + frontends"): newly published topology versions and every server's admin state come in;
// this server's liveness reports (its own state and its heartbeat view of each peer) go out. Other
// servers' liveness reports come in too, for routing to servers of other pools (pool/membership.ts
// isRoutable), and the user directory's home pools (read at start, with each published version, and
// every assignmentsPollMs: the directory is not part of the watched change log).
import type { Logger } from 'pino';
import type { Clock, Timer } from '../shared/clock.ts';
import { reportOf, type AdminState, type LivenessRecord, type Snapshot, type Store, type StoreEvent } from '../store/store.ts';
import type { FrontEndServer } from './server.ts';

/** A liveness report is believed for this many heartbeat intervals (a killed server's own report expires then). */
export const LIVENESS_TTL_INTERVALS = 3;

function livenessKey(server: string, reporter: string): string {
  return `${server.toLowerCase()}\n${reporter.toLowerCase()}`;
}

export interface StoreFollowerOptions {
  store: Store;
  server: FrontEndServer;
  clock: Clock;
  logger: Logger;
  /** After the watch failed, follow again from a new snapshot this much later. Default 1000 ms. */
  retryDelayMs?: number;
  /** How often the user directory's home pools are read again (a `dnslb user move` takes effect within this). Default 5000 ms. */
  assignmentsPollMs?: number;
}

export const ASSIGNMENTS_POLL_MS_DEFAULT = 5000;

export class StoreFollower {
  private readonly abort = new AbortController();
  private readonly adminStates = new Map<string, AdminState>();
  /** Every server's liveness reports by server + reporter, until the store says one expired. */
  private readonly liveness = new Map<string, LivenessRecord>();
  private watching: Promise<void> | undefined;
  private reportTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private assignmentsTimer: Timer | undefined;
  private readingAssignments: Promise<void> | undefined;
  private reporting: Promise<void> | undefined;
  private reportAgain = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  /** The store revision applied so far (tests wait for it). */
  appliedRevision = 0;

  constructor(private readonly options: StoreFollowerOptions) {}

  /** Applies the snapshot (a newer version, the admin states), starts watching and reporting. */
  async start(snapshot?: Snapshot): Promise<void> {
    const first = snapshot ?? (await this.options.store.snapshot());
    this.applySnapshot(first);
    await this.readAssignments();
    this.unsubscribe = this.options.server.onChange(() => this.reportSoon());
    this.watching = this.watch(first.revision);
    this.reportSoon();
    this.pollAssignments();
  }

  private pollAssignments(): void {
    if (this.stopped) return;
    this.assignmentsTimer = this.options.clock.setTimer(this.options.assignmentsPollMs ?? ASSIGNMENTS_POLL_MS_DEFAULT, () => {
      this.readingAssignments = this.readAssignments().finally(() => {
        this.readingAssignments = undefined;
        this.pollAssignments();
      });
    });
  }

  /** Stops following; the last report (its whole view: only itself, `down`) has a short TTL so that DNS drops this server at once. */
  async stop(options: { reportDown?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.unsubscribe?.();
    this.reportTimer?.cancel();
    this.retryTimer?.cancel();
    this.assignmentsTimer?.cancel();
    await this.readingAssignments;
    await this.watching;
    await this.reporting;
    if (options.reportDown ?? true) {
      const server = this.options.server;
      const intervalMs = server.heartbeatIntervalMs;
      try {
        await this.options.store.reportLiveness(reportOf({ server: server.self, reporter: server.self, state: 'down', atMs: this.options.clock.nowMs(), ttlMs: LIVENESS_TTL_INTERVALS * intervalMs, topologyVersion: server.topologyVersion }));
      } catch (error) {
        this.options.logger.warn({ err: error }, 'frontend: could not report down to the store');
      }
    }
  }

  private applySnapshot(snapshot: Snapshot): void {
    const server = this.options.server;
    if (snapshot.current && snapshot.current.version > server.topologyVersion) server.setTopology(snapshot.current.topology, snapshot.current.version);
    this.adminStates.clear();
    for (const [fqdn, record] of snapshot.adminStates) this.adminStates.set(fqdn.toLowerCase(), record.state);
    server.applyAdminStates(this.adminStates);
    this.liveness.clear();
    for (const record of snapshot.liveness) this.liveness.set(livenessKey(record.server, record.reporter), record);
    server.applyLiveness([...this.liveness.values()]);
    this.appliedRevision = Math.max(this.appliedRevision, snapshot.revision);
  }

  /** The user directory's explicit home pools (frontend/homes.ts); a failed read keeps the last ones. */
  private async readAssignments(): Promise<void> {
    if (this.stopped) return;
    try {
      const assignments = new Map<string, string>();
      const numbers = new Map<string, string>();
      for (const user of await this.options.store.users()) {
        if (user.homePool !== undefined) assignments.set(user.uri, user.homePool);
        // Users come sorted by URI: of two users given one number, the first keeps it.
        if (user.number !== undefined && !numbers.has(user.number)) numbers.set(user.number, user.uri);
      }
      this.options.server.setAssignments(assignments);
      this.options.server.setNumbers(numbers);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'frontend: could not read the user directory; keeping the last home pools');
    }
  }

  private async watch(afterRevision: number): Promise<void> {
    try {
      for await (const event of this.options.store.watch({ afterRevision, signal: this.abort.signal })) await this.apply(event);
    } catch (error) {
      if (this.stopped) return;
      this.options.logger.error({ err: error }, 'frontend: following the store failed; retrying from a new snapshot');
      this.retry();
    }
  }

  /** Follows again from a new snapshot after retryDelayMs, and again after each failure: a store that is down for a while (etcd restarting) is followed again when it is back. */
  private retry(): void {
    if (this.stopped) return;
    this.retryTimer = this.options.clock.setTimer(this.options.retryDelayMs ?? 1000, () => {
      this.options.store.snapshot().then(
        (snapshot) => {
          if (this.stopped) return;
          this.applySnapshot(snapshot);
          this.watching = this.watch(snapshot.revision);
        },
        (cause: unknown) => {
          this.options.logger.error({ err: cause }, 'frontend: store snapshot failed; retrying');
          this.retry();
        },
      );
    });
  }

  private async apply(event: StoreEvent): Promise<void> {
    const server = this.options.server;
    switch (event.kind) {
      case 'published':
        if (event.version > server.topologyVersion) {
          const published = await this.options.store.read(event.version);
          if (published.version > server.topologyVersion) server.setTopology(published.topology, published.version);
        }
        await this.readAssignments();
        break;
      case 'admin-state':
        this.adminStates.set(event.record.server.toLowerCase(), event.record.state);
        server.applyAdminStates(this.adminStates);
        break;
      case 'liveness':
        // Delivered when a report's state changes, not on each renewal: held until it expires.
        this.liveness.set(livenessKey(event.record.server, event.record.reporter), event.record);
        server.applyLiveness([...this.liveness.values()]);
        break;
      case 'liveness-expired':
        this.liveness.delete(livenessKey(event.server, event.reporter));
        server.applyLiveness([...this.liveness.values()]);
        break;
    }
    this.appliedRevision = Math.max(this.appliedRevision, event.revision);
  }

  /** Writes the reports now (coalescing: one write in flight, one more queued), then every interval. */
  private reportSoon(): void {
    if (this.stopped) return;
    if (this.reporting) {
      this.reportAgain = true;
      return;
    }
    this.reportTimer?.cancel();
    this.reportTimer = undefined;
    this.reporting = this.report().finally(() => {
      this.reporting = undefined;
      if (this.stopped) return;
      if (this.reportAgain) {
        this.reportAgain = false;
        this.reportSoon();
        return;
      }
      this.reportTimer = this.options.clock.setTimer(this.options.server.heartbeatIntervalMs, () => this.reportSoon());
    });
  }

  private async report(): Promise<void> {
    const server = this.options.server;
    const ttlMs = LIVENESS_TTL_INTERVALS * server.heartbeatIntervalMs;
    try {
      await this.options.store.reportLiveness(server.livenessReport(ttlMs));
      server.noteLivenessReport({ ok: true });
    } catch (error) {
      server.noteLivenessReport({ ok: false, error: (error as Error).message });
      this.options.logger.warn({ err: error }, 'frontend: liveness report failed');
    }
  }
}
