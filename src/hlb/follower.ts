// `webServices.hlb: haproxy` under `dnslb up`: for each pool that asks for it, an HAProxy
// configuration in DATA/hlb/, the child process that runs Debian's haproxy on it, and an AdminSync
// that follows the store (admin states, published versions) into HAProxy's runtime API. Also the
// HLB's view of each server for `pool status` and the dashboard.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.ts';
import type { PublishedVersion, Store } from '../store/store.ts';
import type { Pool, Topology, WebServicesSide } from '../topology/schema.ts';
import { AdminSync, desiredStates } from './admin-sync.ts';
import { haproxyCheck } from './check.ts';
import { backendName, haproxyConfig, sidesOf } from './haproxy-config.ts';
import { HaproxyRuntime, type HlbAdminState } from './runtime-api.ts';

/** The pools whose Web services VIPs dnslb runs HAProxy on. */
export function hlbPools(topology: Topology): Pool[] {
  return topology.pools.filter((pool) => pool.webServices?.hlb === 'haproxy' && sidesOf(pool).length > 0);
}

/** The supervisor child of a pool's HAProxy. */
export function hlbChildName(pool: Pool | string): string {
  return `hlb:${typeof pool === 'string' ? pool : pool.fqdn}`;
}

/** What a child needs to run (the supervisor's ChildSpec, without importing it). */
export interface HlbChild {
  name: string;
  command: string;
  args: string[];
}

/** One side of one server as HAProxy sees it. */
export interface HlbSideView {
  /** HAProxy's status word: UP, DOWN, DRAIN, MAINT, "UP 1/2" … */
  status: string;
  sessionsCurrent: number;
  sessionsTotal: number;
  checkStatus: string;
}

/** The HLB's view of one server: each Web site's backend, and what dnslb wants of it. */
export interface HlbServerView {
  hlb: 'haproxy';
  pool: string;
  desired: HlbAdminState | null;
  sides: Partial<Record<WebServicesSide, HlbSideView>>;
  /** Why there is no view (HAProxy not answering). */
  error?: string;
}

export interface HlbFollowerOptions {
  store: Store;
  dataDir: string;
  clock: Clock;
  logger?: Logger;
  /** After the watch failed, follow again from a new snapshot this much later. Default 1000 ms. */
  retryDelayMs?: number;
  /** Quiet HAProxy's start-up notices (its alerts and warnings still show). */
  quiet?: boolean;
  /** A pool's configuration changed (servers commissioned or decommissioned): reload that HAProxy. */
  reload?: (childName: string) => void;
}

interface Instance {
  pool: Pool;
  configFile: string;
  runtime: HaproxyRuntime;
  sync: AdminSync;
}

export class HlbFollower {
  private readonly instances = new Map<string, Instance>();
  private readonly abort = new AbortController();

  constructor(private readonly options: HlbFollowerOptions) {}

  /**
   * Absolute: HAProxy reads a `stats socket` path without a leading "/" as an address (and refuses
   * it), and the data dir is relative by default (`./.dnslb`).
   */
  private get dir(): string {
    return resolve(this.options.dataDir, 'hlb');
  }

  private get caFile(): string {
    return resolve(this.options.dataDir, 'tls', 'ca.pem');
  }

  /**
   * Writes the configuration of every pool that asks for HAProxy, checks it with `haproxy -c`
   * (HLB_CONFIG with HAProxy's words: started quiet, HAProxy would exit without one), and returns
   * the children to start.
   */
  async prepare(version: PublishedVersion): Promise<HlbChild[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const pools = hlbPools(version.topology);
    const configFileOf = (pool: Pool) => join(this.dir, `${pool.fqdn}.cfg`);
    const socketPathOf = (pool: Pool) => join(this.dir, `${pool.fqdn}.sock`);
    // Every configuration written and checked by HAProxy itself before any starts; the checks run
    // side by side (each is a process start that parses the file and its certificates).
    const checked = await Promise.allSettled(
      pools.map(async (pool) => {
        await writeFile(configFileOf(pool), haproxyConfig(version.topology, pool.fqdn, { socketPath: socketPathOf(pool), caFile: this.caFile, topologyVersion: version.version }));
        await haproxyCheck(configFileOf(pool));
      }),
    );
    // The first pool's failure in topology order, whichever check ended first: the same error every time.
    const failed = checked.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    const children: HlbChild[] = [];
    for (const pool of pools) {
      const configFile = configFileOf(pool);
      const socketPath = socketPathOf(pool);
      const runtime = new HaproxyRuntime(socketPath);
      const sync = new AdminSync({ runtime, pool, clock: this.options.clock, ...(this.options.logger ? { logger: this.options.logger } : {}) });
      this.instances.set(pool.fqdn, { pool, configFile, runtime, sync });
      // -W: master-worker, so that SIGUSR2 reloads a changed configuration without dropping connections.
      children.push({ name: hlbChildName(pool), command: 'haproxy', args: ['-W', '-db', ...(this.options.quiet ? ['-q'] : []), '-f', configFile] });
    }
    return children;
  }

  /** Where each HAProxy listens, once its runtime API answers (for `dnslb up`'s table); undefined until then. */
  async listening(childName: string): Promise<string | undefined> {
    const instance = [...this.instances.values()].find((each) => hlbChildName(each.pool) === childName);
    if (!instance) return undefined;
    try {
      await instance.runtime.command('show info');
    } catch {
      return undefined;
    }
    return sidesOf(instance.pool)
      .map((side) => {
        const web = instance.pool.webServices![side]!;
        return [web.vip.ipv4, web.vip.ipv6].filter((address) => address !== undefined).map((address) => `https://${address!.includes(':') ? `[${address}]` : address}:${web.port} (${side})`).join(' ');
      })
      .join(' ');
  }

  /**
   * Applies the store's admin states now, then follows the store's changes until stop(). A watch
   * that fails (etcd going away) is followed again from a new snapshot after retryDelayMs, and
   * again after each failure; HAProxy keeps the last states it was given meanwhile.
   */
  async start(afterRevision: number): Promise<void> {
    await this.apply();
    for (const instance of this.instances.values()) instance.sync.start();
    void this.follow(afterRevision);
  }

  private async follow(afterRevision: number): Promise<void> {
    let from = afterRevision;
    while (!this.abort.signal.aborted) {
      try {
        for await (const event of this.options.store.watch({ afterRevision: from, signal: this.abort.signal, users: false })) {
          if (event.kind === 'admin-state') await this.apply();
          else if (event.kind === 'published') await this.published(event.version);
          from = Math.max(from, event.revision);
        }
        return;
      } catch (error) {
        if (this.abort.signal.aborted) return;
        this.options.logger?.error({ err: error }, 'hlb: following the store failed; retrying from a new snapshot');
      }
      // Catch up with what changed while the watch was down, then watch again from there.
      for (;;) {
        await new Promise<void>((resolve) => this.options.clock.setTimer(this.options.retryDelayMs ?? 1000, resolve));
        if (this.abort.signal.aborted) return;
        try {
          const snapshot = await this.options.store.snapshot();
          // published() rewrites (and reloads) only a configuration that changed, then applies the admin states.
          if (snapshot.current) await this.published(snapshot.current.version);
          else await this.apply();
          from = snapshot.revision;
          break;
        } catch (error) {
          this.options.logger?.error({ err: error }, 'hlb: store snapshot failed; retrying');
        }
      }
    }
  }

  stop(): void {
    this.abort.abort();
    for (const instance of this.instances.values()) instance.sync.stop();
  }

  /** The HLB's view of every server of the pools it runs, by server FQDN. */
  async view(): Promise<Map<string, HlbServerView>> {
    const views = new Map<string, HlbServerView>();
    for (const instance of this.instances.values()) {
      const desired = instance.sync.status().desired;
      let stats;
      let error: string | undefined;
      try {
        stats = await instance.runtime.stat();
      } catch (failure) {
        error = (failure as Error).message;
      }
      for (const server of instance.pool.servers) {
        const sides: HlbServerView['sides'] = {};
        for (const side of sidesOf(instance.pool)) {
          const row = stats?.find((entry) => entry.backend === backendName(side) && entry.server === server.fqdn);
          if (row) sides[side] = { status: row.status, sessionsCurrent: row.sessionsCurrent, sessionsTotal: row.sessionsTotal, checkStatus: row.checkStatus };
        }
        views.set(server.fqdn, { hlb: 'haproxy', pool: instance.pool.fqdn, desired: desired[server.fqdn] ?? null, sides, ...(error ? { error } : {}) });
      }
    }
    return views;
  }

  /** What each configured server should be, from the store's admin states and the current version. */
  private async apply(): Promise<void> {
    const snapshot = await this.options.store.snapshot();
    const admin = new Map([...snapshot.adminStates].map(([server, record]) => [server, record.state]));
    await Promise.all(
      [...this.instances.values()].map((instance) => {
        const published = snapshot.current?.topology.pools.find((pool) => pool.fqdn === instance.pool.fqdn);
        return instance.sync.want(desiredStates(instance.pool.servers.map((server) => server.fqdn), published, admin));
      }),
    );
  }

  /**
   * A new version: a pool whose servers changed gets a new configuration and a reload (HAProxy's
   * master starts new workers on it; old ones finish their connections). Until the reload, a
   * decommissioned server is drained by apply().
   */
  private async published(version: number): Promise<void> {
    const next = await this.options.store.read(version);
    for (const instance of this.instances.values()) {
      const pool = next.topology.pools.find((each) => each.fqdn === instance.pool.fqdn);
      if (pool && pool.webServices?.hlb === 'haproxy' && sidesOf(pool).length > 0) {
        const socketPath = instance.runtime.socketPath;
        const text = haproxyConfig(next.topology, pool.fqdn, { socketPath, caFile: this.caFile, topologyVersion: next.version });
        const before = await readFile(instance.configFile, 'utf8').catch(() => '');
        // The header names the version; only a change below it needs a reload.
        if (before.split('\n').slice(1).join('\n') !== text.split('\n').slice(1).join('\n')) {
          await writeFile(instance.configFile, text);
          instance.pool = pool;
          instance.sync.stop();
          instance.sync = new AdminSync({ runtime: instance.runtime, pool, clock: this.options.clock, ...(this.options.logger ? { logger: this.options.logger } : {}) });
          instance.sync.start();
          this.options.logger?.info({ pool: pool.fqdn, version: next.version }, 'hlb: configuration changed; reloading HAProxy');
          this.options.reload?.(hlbChildName(pool));
        }
      }
    }
    await this.apply();
  }
}
