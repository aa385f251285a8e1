// A pool of real `dnslb server` processes on loopback addresses for integration tests and benches:
// writes a topology (or publishes it into a file store the servers follow with --store), finds free
// SIP ports, starts each server with its admin API, waits until every server sees every peer active,
// reads their state, kills and restarts servers, publishes new versions, and stops them by PID.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, waitUntil, type Running } from './process.ts';
import { openFileStore, type FileStore } from '../../src/store/file-store.ts';
import { parse } from '../../src/topology/parse.ts';
import type { FrontEndStatus, UserEntry } from '../../src/frontend/server.ts';
import { serverCertificateFiles } from './tls-certs.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface PoolServer {
  fqdn: string;
  address: string;
  process: Running;
  adminUrl: string;
}

export interface RunningPool {
  dir: string;
  topologyFile: string;
  tcpPort: number;
  tlsPort: number;
  /** The pool CA that signed the servers' certificates (undefined with interServer tcp and no `tls` given). */
  caFile: string | undefined;
  /** Indexed like `addresses`; undefined for a server not started (yet). */
  servers: PoolServer[];
  /** The file store the servers follow (with `store: true`). */
  store: FileStore | undefined;
  status(index: number): Promise<FrontEndStatus>;
  users(index: number): Promise<UserEntry[]>;
  /** Waits until every running server holds `count` users of the directory in memory (they follow the store's changes). */
  directoryHeld(count: number): Promise<void>;
  /** Starts (or starts again) server `index` and waits until it listens. */
  startServer(index: number): Promise<PoolServer>;
  /** SIGKILL (a crash), waiting until the process is gone. */
  kill(index: number): Promise<void>;
  /** The topology text with the first `count` addresses as its servers. */
  topologyText(count: number): string;
  /** Publishes the topology with the first `count` addresses as the next version (store only). */
  publish(count: number): Promise<number>;
  stop(): Promise<void>;
}

export interface PoolOptions {
  /** One loopback address per server (fe1, fe2, ...). */
  addresses: string[];
  heartbeatIntervalMs?: number;
  /**
   * One certificate for every server (a single-server pool). By default each server gets its own from
   * the run's pool CA: mutual TLS between servers needs that (a certificate naming several servers
   * makes none of them a peer).
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** Extra top-level YAML (e.g. a `users:` list). */
  extraYaml?: string;
  /** Start only these servers (indexes); the others stay down. */
  startOnly?: number[];
  /** More `dnslb server` flags. */
  serverArgs?: string[];
  taskset?: string;
  /** Run `bin/dnslb.js` of this checkout instead of this repository's (bench/sip.ts compares two). */
  repo?: string;
  /** Publish the topology into a file store in the pool's directory and start servers with `--store`. */
  store?: boolean;
  /** How many of `addresses` the first topology lists (default all; the others can be commissioned). */
  inTopology?: number;
  /** More lines under `settings:` (two-space indented), e.g. `  rehome: { batchSize: 10, intervalMs: 500 }`. */
  settingsYaml?: string;
}

async function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A port P such that P and P+1 are free on every address. */
export async function freePortPair(addresses: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + 2 * Math.floor(Math.random() * 19_000);
    let free = true;
    for (const address of addresses) if (!(await portFree(address, port)) || !(await portFree(address, port + 1))) free = false;
    if (free) return port;
  }
  throw new Error('no free port pair');
}

export function topologyYaml(addresses: readonly string[], tcpPort: number, heartbeatIntervalMs: number, extraYaml = '', settingsYaml = ''): string {
  const servers = addresses.map((address, index) => `      - { fqdn: fe${index + 1}.contoso.com, ipv4: ${address} }`).join('\n');
  return `schemaVersion: 1
sipDomains: [contoso.com]
sites: [{ name: redmond }]
pools:
  - fqdn: pool01.contoso.com
    kind: frontend
    site: redmond
    loadBalancing: dns
    servers:
${servers}
    webServices:
      internal: { fqdn: webint.contoso.com, vip: { ipv4: 127.0.6.250 } }
      external: { fqdn: webext.contoso.com, vip: { ipv4: 127.0.6.251 } }
    sip: { tcpPort: ${tcpPort}, tlsPort: ${tcpPort + 1} }
dns:
  servers: [{ fqdn: dns1.contoso.com, listen: ["127.0.6.253:5300"] }]
  zones: [{ name: contoso.com }]
settings:
  heartbeat: { intervalMs: ${heartbeatIntervalMs}, failAfter: 3, riseAfter: 2 }
${settingsYaml}
${extraYaml}
`;
}

export async function adminGet<T>(url: string, token: string, path: string): Promise<T> {
  const response = await fetch(new URL(path, url), { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export async function startPool(options: PoolOptions): Promise<RunningPool> {
  const dir = mkdtempSync(join(tmpdir(), 'dnslb-pool-'));
  const tcpPort = await freePortPair(options.addresses);
  const topologyFile = join(dir, 'topology.yaml');
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 200;
  const topologyText = (count: number): string => topologyYaml(options.addresses.slice(0, count), tcpPort, heartbeatIntervalMs, options.extraYaml, options.settingsYaml);
  const inTopology = options.inTopology ?? options.addresses.length;
  writeFileSync(topologyFile, topologyText(inTopology));
  const servers: PoolServer[] = [];
  let caFile: string | undefined;
  let store: FileStore | undefined;
  let token = '';
  const publish = async (count: number): Promise<number> => {
    if (!store) throw new Error('publish needs a pool started with store: true');
    const published = await store.publish(parse(topologyText(count), 'topology.yaml'), await store.currentVersion(), { by: 'test', comment: `${count} servers` });
    return published.version;
  };
  const startServer = async (index: number): Promise<PoolServer> => {
    const address = options.addresses[index]!;
    const fqdn = `fe${index + 1}.contoso.com`;
    // Every server its own certificate from the run's pool CA (mutual TLS between servers, the
    // default), unless the test gives one or its settings say interServer tcp.
    const tcpBetweenServers = /interServer:\s*\{\s*transport:\s*tcp/.test(options.settingsYaml ?? '');
    const tls = options.tls ?? (tcpBetweenServers ? undefined : await serverCertificateFiles(fqdn, { names: ['pool01.contoso.com'], ips: [address] }));
    caFile ??= tls?.caFile;
    const tlsArgs = tls ? ['--tls-cert', tls.certFile, '--tls-key', tls.keyFile, '--tls-ca', tls.caFile] : [];
    const source = options.store ? ['--store', dir] : ['--topology', topologyFile];
    const args = ['bin/dnslb.js', 'server', ...source, '--server', fqdn, '--admin-listen', `${address}:0`, '--data-dir', dir, '--log-level', 'warn', ...tlsArgs, ...(options.serverArgs ?? [])];
    const child = start(process.execPath, args, { cwd: options.repo ?? REPO, taskset: options.taskset });
    let adminUrl = '';
    await waitUntil(`${fqdn} listening`, () => {
      const match = /admin (http:\/\/[0-9.]+:\d+)/.exec(child.output());
      if (match) adminUrl = match[1]!;
      return match !== null;
    }, { process: child, timeoutMs: 20_000 });
    const server = { fqdn, address, process: child, adminUrl };
    servers[index] = server;
    if (!token) token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    return server;
  };
  const stopAllServers = async (): Promise<void> => {
    await Promise.all(servers.filter(Boolean).map((server) => server.process.stop()));
  };
  const indexes = options.startOnly ?? options.addresses.slice(0, inTopology).map((_, index) => index);
  try {
    if (options.store) {
      store = await openFileStore({ dataDir: dir });
      await publish(inTopology);
    }
    for (const index of indexes) await startServer(index);
  } catch (error) {
    await stopAllServers();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const pool: RunningPool = {
    dir,
    topologyFile,
    tcpPort,
    tlsPort: tcpPort + 1,
    get caFile() {
      return caFile;
    },
    servers,
    store,
    status: (index) => adminGet<FrontEndStatus>(servers[index]!.adminUrl, token, '/status'),
    users: async (index) => (await adminGet<{ users: UserEntry[] }>(servers[index]!.adminUrl, token, '/users')).users,
    async directoryHeld(count) {
      await waitUntil(`every server holds ${count} users`, async () => {
        for (const server of servers) {
          if (server === undefined) continue;
          if ((await adminGet<FrontEndStatus>(server.adminUrl, token, '/status')).auth?.users !== count) return false;
        }
        return true;
      }, { timeoutMs: 60_000 });
    },
    startServer,
    async kill(index) {
      const child = servers[index]!.process.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    topologyText,
    publish,
    async stop() {
      await stopAllServers();
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (indexes.length === inTopology && indexes.length > 1) {
    // Ready when every server sees every peer active (the physical sequence is whole).
    await waitUntil('every peer active', async () => {
      for (const index of indexes) {
        const status = await pool.status(index);
        if (Object.values(status.heartbeat.peers).some((peer) => peer.state !== 'active')) return false;
      }
      return true;
    }, { timeoutMs: 20_000 });
  }
  return pool;
}
