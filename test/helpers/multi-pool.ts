// The multi-pool fixture (test/fixtures/topology/multi-pool.yaml) as real `dnslb server` processes
// for integration tests: its addresses moved to a loopback range of the test's own (127.0.2.N →
// PREFIX.N), one free port pair for every pool, a fast heartbeat, published into a file store that
// every server follows (--store). Start, kill (SIGKILL), restart and read the status of servers by
// FQDN; a locator for src/client UserAgents that discovers a pool's addresses and resolves every
// server's FQDN by the topology (no DNS).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Discovery } from '../../src/client/discover.ts';
import type { Locator } from '../../src/client/user-agent.ts';
import type { FrontEndStatus, UserDetail, UserEntry } from '../../src/frontend/server.ts';
import { openFileStore, type FileStore } from '../../src/store/file-store.ts';
import { parse } from '../../src/topology/parse.ts';
import type { Topology } from '../../src/topology/schema.ts';
import { adminGet, freePortPair, REPO } from './frontend-pool.ts';
import { start, waitUntil, type Running } from './process.ts';
import { serverCertificateFiles } from './tls-certs.ts';

const FIXTURE = new URL('../fixtures/topology/multi-pool.yaml', import.meta.url);

export interface MultiPoolOptions {
  /** The first three octets of the loopback range, e.g. `127.0.50`. */
  prefix: string;
  /** Added to the last octet of every fixture address, modulo 256 (tests share a /24: the fixture uses .1–.90). Default 0. */
  offset?: number;
  /** The servers to start (FQDNs); default every server of pool01, pool02 and dirpool. */
  servers?: readonly string[];
  heartbeatIntervalMs?: number;
  /** More lines under `settings:` (two-space indented). */
  settingsYaml?: string;
  /** Edits the YAML text before it is published (e.g. a home rule). */
  edit?: (yaml: string) => string;
}

export interface MultiPool {
  dir: string;
  port: number;
  topology: Topology;
  /** The YAML text published as version 1. */
  yaml: string;
  store: FileStore;
  /** Publishes `yaml` as the next version; returns its number. */
  publish(yaml: string): Promise<number>;
  /** FQDN → address for every server of the topology. */
  addressOf(fqdn: string): string;
  /** The addresses of a pool's servers, in topology order. */
  poolAddresses(pool: string): string[];
  status(fqdn: string): Promise<FrontEndStatus>;
  /** The server's Prometheus text (`GET /metrics` on its admin API). */
  metrics(fqdn: string): Promise<string>;
  users(fqdn: string): Promise<UserEntry[]>;
  /** One user at a server (`GET /users/:uri`): its bindings there. */
  user(fqdn: string, uri: string): Promise<UserDetail>;
  startServer(fqdn: string): Promise<void>;
  kill(fqdn: string): Promise<void>;
  running(fqdn: string): boolean;
  /** A locator whose discovery gives `addresses` rotated by `rotation` (DNS-like), and which resolves server FQDNs by the topology. */
  locator(addresses: readonly string[], rotation: number): Locator;
  stop(): Promise<void>;
}

export const DEFAULT_SERVERS = ['fe1', 'fe2', 'fe3', 'fe4', 'fe5', 'fe6', 'dir1', 'dir2'].map((name) => `${name}.contoso.com`);

/** The fixture's text with addresses moved to `prefix`, every SIP pool on `port`/`port + 1`, and `settings`. */
export function multiPoolYaml(prefix: string, port: number, heartbeatIntervalMs: number, settingsYaml = '', offset = 0): string {
  const text = readFileSync(FIXTURE, 'utf8')
    .replace(/127\.0\.2\.(\d+)/g, (_match, last: string) => `${prefix}.${(Number(last) + offset) % 256}`)
    .replace(/^( {4}kind: (frontend|director|mediation)\n)/gm, `$1    sip: { tcpPort: ${port}, tlsPort: ${port + 1} }\n`);
  return `${text}\nsettings:\n  heartbeat: { intervalMs: ${heartbeatIntervalMs}, failAfter: 3, riseAfter: 2 }\n${settingsYaml}\n`;
}

export async function startMultiPool(options: MultiPoolOptions): Promise<MultiPool> {
  const dir = mkdtempSync(join(tmpdir(), 'dnslb-multi-pool-'));
  const offset = options.offset ?? 0;
  const fixtureAddresses = [...readFileSync(FIXTURE, 'utf8').matchAll(/127\.0\.2\.(\d+)/g)].map((match) => `${options.prefix}.${(Number(match[1]) + offset) % 256}`);
  const port = await freePortPair(fixtureAddresses);
  const yaml = (options.edit ?? ((text: string) => text))(multiPoolYaml(options.prefix, port, options.heartbeatIntervalMs ?? 200, options.settingsYaml, offset));
  const topology = parse(yaml, 'multi-pool.yaml');
  const store = await openFileStore({ dataDir: dir });
  await store.publish(topology, 0, { by: 'test', comment: 'multi-pool' });
  const addresses = new Map<string, string>();
  for (const pool of topology.pools) for (const server of pool.servers) addresses.set(server.fqdn, server.ipv4!);
  const processes = new Map<string, { process: Running; adminUrl: string }>();
  let token = '';
  const addressOf = (fqdn: string): string => {
    const address = addresses.get(fqdn.toLowerCase());
    if (address === undefined) throw new Error(`no server ${fqdn}`);
    return address;
  };
  const startServer = async (fqdn: string): Promise<void> => {
    const address = addressOf(fqdn);
    // Its own certificate from the run's pool CA (mutual TLS between servers, the default).
    const pool = topology.pools.find((candidate) => candidate.servers.some((server) => server.fqdn === fqdn.toLowerCase()));
    const tls = topology.settings.interServer.transport === 'tls' ? await serverCertificateFiles(fqdn, { names: pool ? [pool.fqdn] : [], ips: [address] }) : undefined;
    const tlsArgs = tls ? ['--tls-cert', tls.certFile, '--tls-key', tls.keyFile, '--tls-ca', tls.caFile] : [];
    const child = start(process.execPath, ['bin/dnslb.js', 'server', '--store', dir, '--server', fqdn, '--admin-listen', `${address}:0`, '--data-dir', dir, '--log-level', 'warn', ...tlsArgs], { cwd: REPO });
    let adminUrl = '';
    await waitUntil(`${fqdn} listening`, () => {
      const match = /admin (http:\/\/[0-9.]+:\d+)/.exec(child.output());
      if (match) adminUrl = match[1]!;
      return match !== null;
    }, { process: child, timeoutMs: 30_000 });
    processes.set(fqdn, { process: child, adminUrl });
    if (!token) token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  };
  const entry = (fqdn: string): { process: Running; adminUrl: string } => {
    const found = processes.get(fqdn);
    if (!found) throw new Error(`${fqdn} was never started`);
    return found;
  };
  const running = (fqdn: string): boolean => {
    const child = processes.get(fqdn)?.process.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  };
  const stop = async (): Promise<void> => {
    await Promise.all([...processes.values()].map((server) => server.process.stop()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const servers = options.servers ?? DEFAULT_SERVERS;
  const multi: MultiPool = {
    dir,
    port,
    topology,
    yaml,
    store,
    async publish(text) {
      return (await store.publish(parse(text, 'multi-pool.yaml'), await store.currentVersion(), { by: 'test' })).version;
    },
    addressOf,
    poolAddresses: (pool) => topology.pools.find((candidate) => candidate.fqdn === pool)!.servers.map((server) => server.ipv4!),
    status: (fqdn) => adminGet<FrontEndStatus>(entry(fqdn).adminUrl, token, '/status'),
    async metrics(fqdn) {
      const response = await fetch(new URL('/metrics', entry(fqdn).adminUrl), { headers: { authorization: `Bearer ${token}` } });
      if (!response.ok) throw new Error(`GET /metrics: ${response.status} ${await response.text()}`);
      return response.text();
    },
    users: async (fqdn) => (await adminGet<{ users: UserEntry[] }>(entry(fqdn).adminUrl, token, '/users')).users,
    user: (fqdn, uri) => adminGet<UserDetail>(entry(fqdn).adminUrl, token, `/users/${encodeURIComponent(uri)}`),
    startServer,
    async kill(fqdn) {
      const child = entry(fqdn).process.child;
      if (!running(fqdn)) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    running,
    locator(poolAddresses, rotation) {
      const order = poolAddresses.map((_, k) => poolAddresses[(rotation + k) % poolAddresses.length]!);
      return {
        async discover(): Promise<Discovery> {
          return { domain: 'contoso.com', via: 'static', targets: [], steps: [], expiresAtMs: 0, endpoints: order.map((address) => ({ address, port, transport: 'tcp', host: address })) };
        },
        forget() {},
        async resolveHost(host: string) {
          return [addressOf(host)];
        },
      };
    },
    stop,
  };
  try {
    for (const fqdn of servers) await startServer(fqdn);
    // Ready when every server sees every peer of its pool active.
    await waitUntil('every peer active', async () => {
      for (const fqdn of servers) {
        const status = await multi.status(fqdn);
        if (Object.entries(status.heartbeat.peers).some(([name, peer]) => servers.includes(name) && peer.state !== 'active')) return false;
      }
      return true;
    }, { timeoutMs: 30_000 });
  } catch (error) {
    await stop();
    throw error;
  }
  return multi;
}

