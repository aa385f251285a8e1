// A Front End server following the store (DESIGN §2: "Live state flows admin/heartbeat → store →
// dns + frontends"): newly published topology versions and every server's admin state come in;
// this server's liveness reports (its own state and its heartbeat view of each peer) go out. Other
// servers' liveness reports come in too, for routing to servers of other pools (pool/membership.ts
// isRoutable), and the user directory: read whole once at start (and again after a failed watch, or
// when the store says user changes were compacted away), then followed change by change ('user'
// events), so a digest check never reads the store and `dnslb user move|disable|set-password` takes
// effect here as soon as its event is applied.
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
}

export class StoreFollower {
  private readonly abort = new AbortController();
  private readonly adminStates = new Map<string, AdminState>();
  /** Every server's liveness reports by server + reporter, until the store says one expired. */
  private readonly liveness = new Map<string, LivenessRecord>();
  private watching: Promise<void> | undefined;
  private reportTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private reporting: Promise<void> | undefined;
  private reportAgain = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  /** The store revision applied so far (tests wait for it). */
  appliedRevision = 0;

  constructor(private readonly options: StoreFollowerOptions) {}

  /**
   * Applies the snapshot (a newer version, the admin states) and the whole user directory, starts
   * watching and reporting. A directory that cannot be read fails the start (a server must not run
   * on an empty directory: every sign-in would be refused).
   */
  async start(snapshot?: Snapshot): Promise<void> {
    const first = snapshot ?? (await this.options.store.snapshot());
    this.applySnapshot(first);
    await this.readUsers();
    this.unsubscribe = this.options.server.onChange(() => this.reportSoon());
    this.watching = this.watch(first.revision);
    this.reportSoon();
  }

  /** Stops following; the last report (its whole view: only itself, `down`) has a short TTL so that DNS drops this server at once. */
  async stop(options: { reportDown?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.unsubscribe?.();
    this.reportTimer?.cancel();
    this.retryTimer?.cancel();
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

  /**
   * The whole user directory, read after the snapshot the watch resumes from: the changes between
   * the two are delivered again by the watch and applied on top (each carries the user's record as
   * it is now, so applying it again is harmless). Throws when the store cannot be read.
   */
  private async readUsers(): Promise<void> {
    if (this.stopped) return;
    const startedMs = performance.now();
    const users = await this.options.store.users();
    if (this.stopped) return;
    this.options.server.setUsers(users);
    this.options.logger.info({ users: users.length, ms: Math.round(performance.now() - startedMs) }, 'frontend: user directory loaded');
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
        async (snapshot) => {
          if (this.stopped) return;
          this.applySnapshot(snapshot);
          try {
            await this.readUsers();
          } catch (cause) {
            this.options.logger.error({ err: cause }, 'frontend: reading the user directory failed; retrying');
            this.retry();
            return;
          }
          if (this.stopped) return;
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
        break;
      case 'user':
        server.setUser(event.uri, event.record);
        break;
      case 'users-reset':
        // The store could not replay user changes one by one (compacted away): read them all again.
        await this.readUsers();
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

/**
 * The user directory alone, for a server run from a topology file (no store to follow) whose
 * topology turns authentication on: the directory of --data-dir, read whole at start and then
 * followed by its 'user' events, as StoreFollower does; the other events are not this server's.
 */
export class DirectoryFollower {
  private readonly abort = new AbortController();
  private watching: Promise<void> | undefined;
  private retryTimer: Timer | undefined;
  private stopped = false;

  constructor(private readonly options: Pick<StoreFollowerOptions, 'store' | 'server' | 'clock' | 'logger' | 'retryDelayMs'>) {}

  /** Reads the whole directory (throws when it cannot), then follows it. */
  async start(): Promise<void> {
    const revision = (await this.options.store.snapshot()).revision;
    this.options.server.setUsers(await this.options.store.users());
    this.watching = this.watch(revision);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.retryTimer?.cancel();
    await this.watching;
  }

  private async watch(afterRevision: number): Promise<void> {
    try {
      for await (const event of this.options.store.watch({ afterRevision, signal: this.abort.signal })) {
        if (event.kind === 'user') this.options.server.setUser(event.uri, event.record);
        else if (event.kind === 'users-reset') this.options.server.setUsers(await this.options.store.users());
      }
    } catch (error) {
      if (this.stopped) return;
      this.options.logger.error({ err: error }, 'frontend: following the user directory failed; reading it again');
      this.retryTimer = this.options.clock.setTimer(this.options.retryDelayMs ?? 1000, () => {
        this.watching = this.start().catch((cause: unknown) => this.options.logger.error({ err: cause }, 'frontend: reading the user directory failed'));
      });
    }
  }
}
