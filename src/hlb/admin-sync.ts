// dnslb's admin state → HAProxy's (src/hlb/README.md "Admin state"): a pure mapping, and the
// reconciler that makes HAProxy's servers say what the mapping says through the runtime API, at
// once on every change and again every `reconcileIntervalMs` (a restarted HAProxy forgets).
import type { Logger } from 'pino';
import type { Clock, Timer } from '../shared/clock.ts';
import type { AdminState } from '../store/store.ts';
import type { Pool } from '../topology/schema.ts';
import { backendName, sidesOf } from './haproxy-config.ts';
import type { HaproxyRuntime, HlbAdminState } from './runtime-api.ts';

/**
 * What HAProxy should do with each server its configuration lists: `drain` for a server being
 * drained or no longer in the published pool (decommissioned: its sessions end on their own),
 * `maint` for a blocked one (nothing reaches it, checks stop), `ready` otherwise.
 */
export function desiredStates(configured: readonly string[], published: Pool | undefined, adminStates: ReadonlyMap<string, AdminState>): Map<string, HlbAdminState> {
  const inPool = new Set(published?.servers.map((server) => server.fqdn) ?? []);
  const desired = new Map<string, HlbAdminState>();
  for (const server of configured) {
    const admin = adminStates.get(server) ?? 'active';
    desired.set(server, admin === 'blocked' ? 'maint' : admin === 'draining' || !inPool.has(server) ? 'drain' : 'ready');
  }
  return desired;
}

export interface AdminSyncOptions {
  runtime: HaproxyRuntime;
  /** The pool as the running HAProxy's configuration has it (backends and server names). */
  pool: Pool;
  clock: Clock;
  logger?: Logger;
  /** Re-check HAProxy's admin states this often even without a change in dnslb. */
  reconcileIntervalMs?: number;
}

export interface AdminSyncStatus {
  /** What dnslb wants of each server. */
  desired: Record<string, HlbAdminState>;
  /** `set server` commands sent, in all. */
  commandsSent: number;
  lastError: string | null;
  lastAppliedAtMs: number | null;
}

/** Keeps one HAProxy's servers in the admin states dnslb wants; one reconcile in flight at a time. */
export class AdminSync {
  private desired = new Map<string, HlbAdminState>();
  private running: Promise<void> | undefined;
  private again = false;
  private timer: Timer | undefined;
  private stopped = false;
  private readonly counters = { commandsSent: 0, lastError: null as string | null, lastAppliedAtMs: null as number | null };

  constructor(private readonly options: AdminSyncOptions) {}

  get pool(): Pool {
    return this.options.pool;
  }

  /** Wants these states from now on, and applies them at once. Resolves when HAProxy has them (or failed). */
  want(desired: ReadonlyMap<string, HlbAdminState>): Promise<void> {
    this.desired = new Map(desired);
    return this.reconcile();
  }

  start(): void {
    const intervalMs = this.options.reconcileIntervalMs ?? 1000;
    const tick = () => {
      if (this.stopped) return;
      void this.reconcile().finally(() => {
        if (!this.stopped) this.timer = this.options.clock.setTimer(intervalMs, tick);
      });
    };
    this.timer = this.options.clock.setTimer(intervalMs, tick);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  status(): AdminSyncStatus {
    return { desired: Object.fromEntries(this.desired), ...this.counters };
  }

  /** Reads HAProxy's admin states and sets those that differ; a change during a run triggers one more run. */
  reconcile(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.once();
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async once(): Promise<void> {
    if (this.desired.size === 0) return;
    try {
      const actual = await this.options.runtime.serversState();
      for (const side of sidesOf(this.options.pool)) {
        const backend = backendName(side);
        for (const [server, state] of this.desired) {
          const row = actual.find((entry) => entry.backend === backend && entry.server === server);
          if (!row || row.admin === state) continue;
          await this.options.runtime.setState(backend, server, state);
          this.counters.commandsSent++;
          this.options.logger?.info({ backend, server, from: row.admin, to: state }, 'hlb: admin state set');
        }
      }
      this.counters.lastError = null;
      this.counters.lastAppliedAtMs = this.options.clock.nowMs();
    } catch (error) {
      // HAProxy restarting, or not up yet: the next change or tick tries again.
      const message = (error as Error).message;
      if (message !== this.counters.lastError) this.options.logger?.warn({ err: error }, 'hlb: cannot apply admin states');
      this.counters.lastError = message;
    }
  }
}
