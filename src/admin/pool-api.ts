// The pool-level admin API of `dnslb up` (DESIGN §4): status of every server (process, admin state,
// liveness, and each server's own /status), and the admin actions drain/resume/block/unblock/stop/
// start/decommission. Actions act through the store (servers and DNS follow it) or the supervisor,
// and every action that takes servers out of service passes the quorum guard unless forced.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { consensus, isFresh, takesNewWork } from '../pool/health.ts';
import { checkQuorum } from '../pool/quorum.ts';
import { assert } from '../shared/assert.ts';
import type { Clock } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import type { HlbServerView } from '../hlb/follower.ts';
import type { AdminState, Snapshot, Store } from '../store/store.ts';
import type { Pool, Topology } from '../topology/schema.ts';
import { addDashboardRoutes } from './dashboard/assets.ts';
import { AdminApi, callAdmin } from './http-api.ts';
import { addMetricsRoute, createRegistry } from './metrics.ts';
import { registerSupervisorMetrics } from './supervisor-metrics.ts';

/** What the supervisor offers the admin API; absent when the servers are not our children. */
export interface ProcessControl {
  status(): { name: string; state: string; pid: number | undefined; restarts: number; lastExit: string | undefined }[];
  stop(name: string): Promise<unknown>;
  start(name: string): unknown;
}

export interface PoolApiOptions {
  store: Store;
  /** The bearer token of the HTTP routes (api()); absent when the CLI acts on the store directly. */
  token?: string;
  /** Where `dnslb up` records each server's admin endpoint; absent in distributed mode (the store alone). */
  dataDir?: string;
  clock: Clock;
  processes?: ProcessControl;
  /** The Web services load balancer's view of each server (`webServices.hlb: haproxy`), by server FQDN. */
  hlb?: () => Promise<ReadonlyMap<string, HlbServerView>>;
  /** Per server admin call; 1 s by default so that one hung server does not stall `pool status`. */
  serverTimeoutMs?: number;
}

export type Action = 'drain' | 'resume' | 'block' | 'unblock' | 'stop' | 'start' | 'decommission';

/** Actions that take a server out of service, hence guarded by the quorum. */
const REMOVING: ReadonlySet<Action> = new Set(['drain', 'block', 'stop', 'decommission']);

interface ActionBody {
  force?: boolean;
  by?: string;
  reason?: string;
}

function poolOf(topology: Topology, server: string): Pool {
  const pool = topology.pools.find((candidate) => candidate.servers.some((entry) => entry.fqdn === server));
  if (!pool) throw new DnslbError('ADMIN_NOT_FOUND', `${server} is not a server of the published topology (version has pools ${topology.pools.map((p) => p.fqdn).join(', ')})`);
  return pool;
}

export class PoolAdmin {
  constructor(private readonly options: PoolApiOptions) {}

  /**
   * The servers of a pool that are available now: admin state active, process running (when ours),
   * and not down nor draining by the pool's consensus (src/pool/health.ts; unknown is not down).
   */
  async available(pool: Pool, snapshot?: Snapshot): Promise<Set<string>> {
    const { adminStates, liveness } = snapshot ?? (await this.options.store.snapshot());
    const health = consensus(pool.servers.map((server) => server.fqdn), liveness, this.options.clock.nowMs());
    const processes = new Map((this.options.processes?.status() ?? []).map((entry) => [entry.name, entry]));
    const available = new Set<string>();
    for (const { fqdn } of pool.servers) {
      const admin = adminStates.get(fqdn)?.state ?? 'active';
      if (admin !== 'active') continue;
      const process = processes.get(fqdn);
      if (process && process.state !== 'running') continue;
      if (!takesNewWork(health.get(fqdn))) continue;
      available.add(fqdn);
    }
    return available;
  }

  async act(action: Action, serverName: string, body: ActionBody): Promise<Record<string, unknown>> {
    const server = serverName.toLowerCase();
    const published = await this.options.store.read();
    const pool = poolOf(published.topology, server);
    const by = body.by ?? 'admin-api';
    const reason = body.reason ?? `${action} through the admin API`;
    let quorum;
    if (REMOVING.has(action)) {
      quorum = checkQuorum(pool.servers.map((entry) => entry.fqdn), await this.available(pool), [server]);
      if (!quorum.allowed && !body.force) throw new DnslbError('ADMIN_QUORUM', `refused: ${action} ${server}: ${quorum.reason}`);
    }
    const setState = (state: AdminState) => this.options.store.setAdminState(server, state, { by, reason });
    switch (action) {
      case 'drain':
        await setState('draining');
        break;
      case 'resume':
      case 'unblock':
        await setState('active');
        break;
      case 'block':
        await setState('blocked');
        break;
      case 'stop':
      case 'start': {
        const processes = this.options.processes;
        if (!processes) throw new DnslbError('ADMIN_BAD_REQUEST', `${action}: the servers are not children of this node (not under dnslb up)`);
        if (action === 'stop') await processes.stop(server);
        else processes.start(server);
        break;
      }
      case 'decommission': {
        // A new version without the server: it drains (its users are handed over) and leaves
        // server-to-server routing; DNS stops answering it.
        const topology = structuredClone(published.topology) as Topology;
        const target = topology.pools.find((candidate) => candidate.fqdn === pool.fqdn)!;
        target.servers = target.servers.filter((entry) => entry.fqdn !== server);
        if (target.servers.length === 0) throw new DnslbError('ADMIN_BAD_REQUEST', `decommission ${server}: it is the last server of ${pool.fqdn}; remove the pool from the topology instead`);
        const next = await this.options.store.publish(topology, published.version, { by, comment: `decommission ${server}` });
        return { action, server, pool: pool.fqdn, version: next.version, quorum };
      }
    }
    return { action, server, pool: pool.fqdn, quorum };
  }

  /** One server's own /status (through the admin endpoint it recorded in the data dir), or the reason it has none. */
  async serverStatus(fqdn: string): Promise<{ status?: unknown; error?: string }> {
    // Distributed mode: no local record of the servers' admin endpoints; the store tells the rest.
    if (this.options.dataDir === undefined || this.options.token === undefined) return {};
    let record: { url: string; pid: number };
    try {
      record = JSON.parse(await readFile(join(this.options.dataDir, 'servers', `${fqdn}.json`), 'utf8')) as { url: string; pid: number };
    } catch {
      return { error: 'no admin endpoint recorded' };
    }
    const ours = this.options.processes?.status().find((entry) => entry.name === fqdn);
    if (ours && ours.pid !== record.pid) return { error: ours.state === 'running' ? 'starting' : `not running (${ours.state})` };
    try {
      const status = await Promise.race([
        callAdmin(record.url, this.options.token, 'GET', '/status'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), this.options.serverTimeoutMs ?? 1000).unref()),
      ]);
      return { status };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }

  async status(): Promise<Record<string, unknown>> {
    const snapshot = await this.options.store.snapshot();
    const topology = snapshot.current?.topology;
    const processes = new Map((this.options.processes?.status() ?? []).map((entry) => [entry.name, entry]));
    const nowMs = this.options.clock.nowMs();
    const servers = [];
    const hlb = (await this.options.hlb?.()) ?? new Map<string, HlbServerView>();
    for (const pool of topology?.pools ?? []) {
      const available = await this.available(pool, snapshot);
      const health = consensus(pool.servers.map((server) => server.fqdn), snapshot.liveness, nowMs);
      for (const server of pool.servers) {
        const own = await this.serverStatus(server.fqdn);
        const reports = snapshot.liveness.filter((record) => record.server === server.fqdn && isFresh(record, nowMs));
        const verdict = health.get(server.fqdn)!;
        servers.push({
          server: server.fqdn,
          pool: pool.fqdn,
          kind: pool.kind,
          address: server.ipv4 ?? server.ipv6,
          // An edge server's external interface: its Access Edge address.
          ...(server.external ? { accessEdge: server.external.accessEdge.ipv4 ?? server.external.accessEdge.ipv6 } : {}),
          adminState: snapshot.adminStates.get(server.fqdn) ?? null,
          available: available.has(server.fqdn),
          process: processes.get(server.fqdn) ?? null,
          liveness: reports.map((record) => ({ reporter: record.reporter, state: record.state, atMs: record.atMs })),
          health: { alive: verdict.alive, own: verdict.own ?? null, up: verdict.up, down: verdict.down, reason: verdict.reason },
          hlb: hlb.get(server.fqdn) ?? null,
          ...own,
        });
      }
    }
    return {
      topologyVersion: snapshot.current?.version ?? 0,
      revision: snapshot.revision,
      dns: processes.get('dns') ?? null,
      // Every pool of the topology, in its order, with an HAProxy in front of a pool. `runs`: dnslb runs
      // a process per server of it (every kind does now; an Edge pool was once DNS records only).
      pools: (topology?.pools ?? []).map((pool) => ({ pool: pool.fqdn, kind: pool.kind, site: pool.site, servers: pool.servers.map((server) => server.fqdn), runs: true, hlb: pool.webServices?.hlb ?? null })),
      servers,
    };
  }

  /** The HTTP routes on top of this. */
  api(): AdminApi {
    assert(this.options.token !== undefined, 'the pool admin API needs a token');
    const api = new AdminApi(this.options.token).route('GET', '/status', async () => ({ body: await this.status() }));
    for (const action of ['drain', 'resume', 'block', 'unblock', 'stop', 'start', 'decommission'] as const) {
      api.route('POST', `/servers/:server/${action}`, async (request) => ({ body: await this.act(action, request.params['server']!, (request.body ?? {}) as ActionBody) }));
    }
    // The supervisor's own metrics; each server's are on its own admin API (servers/FQDN.json).
    const registry = createRegistry();
    if (this.options.processes) registerSupervisorMetrics(registry, this.options.processes);
    addMetricsRoute(api, registry);
    // The dashboard page (public files; its calls to the routes above carry the token).
    addDashboardRoutes(api);
    return api;
  }
}
