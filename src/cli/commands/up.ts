// dnslb up FILE: the embedded default (DESIGN §4). Validates the topology and publishes it into the
// store — the file store of --data-dir, or the one --store names (etcd://… in distributed mode) —
// (skipped when the current version already holds exactly this document), then runs the pool: one
// child process per SIP server (frontend, director, mediation pools), one for DNS, each following
// that store on its own, and the pool admin API with its dashboard page. The data dir keeps the
// admin token, the children's admin endpoints, TLS and HAProxy files whichever store it is. Runs
// until SIGINT/SIGTERM.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ensureToken, writeEndpoint } from '../../admin/credentials.ts';
import { dashboardUrl } from '../../admin/dashboard/assets.ts';
import { PoolAdmin } from '../../admin/pool-api.ts';
import { hlbPools, HlbFollower, type HlbChild } from '../../hlb/follower.ts';
import { systemClock } from '../../shared/clock.ts';
import { DnslbError, isDnslbError } from '../../shared/errors.ts';
import { openStore } from '../../store/open.ts';
import type { PublishedVersion, Store } from '../../store/store.ts';
import { Supervisor, type ChildSpec } from '../../supervisor/supervisor.ts';
import { formatEndpoint, toDocument } from '../../topology/document.ts';
import { parseFile } from '../../topology/parse.ts';
import { endpoint, type Topology } from '../../topology/schema.ts';
import { ensurePoolCertificates, RUNNABLE_KINDS } from './certs.ts';
import { DATA_DIR_DEFAULT, DATA_DIR_DESCRIPTION, DATA_DIR_FLAGS, dataDirOf, defaultActor, STORE_DESCRIPTION, STORE_FLAGS, storeSpecOf } from './store-options.ts';

const BIN = fileURLToPath(new URL('../../../bin/dnslb.js', import.meta.url));

/** JSON with keys sorted, so that two equal documents compare equal as text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner) ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : inner,
  );
}

function describe(topology: Topology) {
  return {
    pools: topology.pools.map((pool) => ({
      fqdn: pool.fqdn,
      kind: pool.kind,
      loadBalancing: pool.loadBalancing,
      servers: pool.servers.map((server) => ({ fqdn: server.fqdn, ...(server.ipv4 ? { ipv4: server.ipv4 } : {}), ...(server.ipv6 ? { ipv6: server.ipv6 } : {}) })),
    })),
    dns: topology.dns.servers.map((server) => ({ fqdn: server.fqdn, listen: server.listen.map(formatEndpoint) })),
  };
}

interface UpOptions {
  /** commander's --no-tls: false when given. */
  tls: boolean;
  by?: string;
  json?: boolean;
  publishOnly?: boolean;
  adminListen: string;
  logLevel: string;
}

/**
 * Each child prints one line on stdout once every listener of it is bound (`dnslb server: FQDN
 * listening tcp://…`, `dnslb dns: listening udp://…`): that line is its readiness, and what it
 * says after "listening" is shown in the table.
 */
function listeningOf(pattern: RegExp): (line: string) => string | undefined {
  return (line) => pattern.exec(line)?.[1];
}

/**
 * `store` is the --store value every child follows (the data dir itself for the file store); the
 * data dir is where each child keeps its admin endpoint and finds the token and certificates.
 */
export function childSpecs(topology: Topology, dataDir: string, store: string, logLevel: string, tls: boolean): ChildSpec[] {
  // DNSLB_BUILD_CHECKED: this process (bin/dnslb.js) has just checked that dist/ matches src/; the
  // children skip that check and run the same build.
  const env = { ...process.env, DNSLB_LOG_LEVEL: logLevel, DNSLB_BUILD_CHECKED: '1' };
  const node = (args: string[]) => ({ command: process.execPath, args: [BIN, '--data-dir', dataDir, ...args], env });
  const specs: ChildSpec[] = [{ name: 'dns', ...node(['dns', 'serve', '--store', store]), ready: listeningOf(/^dnslb dns: listening (.*)$/) }];
  for (const pool of topology.pools) {
    if (!RUNNABLE_KINDS.has(pool.kind)) continue;
    for (const server of pool.servers) {
      const address = server.ipv4 ?? server.ipv6!;
      const admin = address.includes(':') ? `[${address}]:0` : `${address}:0`;
      const tlsFlags = tls ? ['--tls-cert', join(dataDir, 'tls', `${server.fqdn}.pem`), '--tls-key', join(dataDir, 'tls', `${server.fqdn}.key`), '--tls-ca', join(dataDir, 'tls', 'ca.pem')] : [];
      specs.push({ name: server.fqdn, ...node(['server', '--store', store, '--server', server.fqdn, '--admin-listen', admin, ...tlsFlags]), ready: listeningOf(/^dnslb server: \S+ listening (.*)$/) });
    }
  }
  return specs;
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('publish a topology into the store (the file store of --data-dir, or --store etcd://…) and run the pool: DNS, every SIP server, the admin API')
    .argument('<file>', 'topology YAML')
    .option('--by <who>', 'who publishes (default: user@host)')
    .option('--admin-listen <address:port>', 'the pool admin API (token in the data dir); port 0 picks one', '127.0.0.1:7300')
    .option('--publish-only', 'publish and print what was published, start nothing')
    .option('--no-tls', 'SIP over TCP only, links between servers too: needs settings.interServer.transport: tcp in the topology (by default every server listens for TLS and links to the others over mutual TLS, with certificates from the pool CA in DATA/tls)')
    .option('--log-level <level>', 'log level of the children: fatal, error, warn, info, debug', 'warn')
    .option('--json', 'print the result as JSON')
    .option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT)
    .option(STORE_FLAGS, STORE_DESCRIPTION)
    .action(async (file: string, options: UpOptions, command: Command) => {
      const dataDir = dataDirOf(command);
      // The children are given the same value and open the store themselves.
      const storeSpec = storeSpecOf(command) ?? dataDir;
      const parsed = await parseFile(file);
      if (!options.tls && parsed.settings.interServer.transport === 'tls') {
        throw new DnslbError('CLI_USAGE', `dnslb up --no-tls: ${file} links its servers over mutual TLS (settings.interServer.transport: tls, the default), which needs their certificates; drop --no-tls, or write settings.interServer.transport: tcp`);
      }
      const admin = endpoint.safeParse(options.adminListen.replace(/:0$/, ':1'));
      if (!admin.success) throw new DnslbError('CLI_USAGE', `--admin-listen ${options.adminListen}: not ADDRESS:PORT`);
      // etcd:// fails here with STORE_UNAVAILABLE naming the endpoints, before anything is started.
      const store = await openStore(storeSpec, { mustExist: false });
      let version: PublishedVersion;
      let published: boolean;
      try {
        const current = await store.currentVersion();
        const existing = current > 0 ? await store.read(current) : undefined;
        published = !existing || canonical(toDocument(existing.topology)) !== canonical(toDocument(parsed));
        version = published ? await store.publish(parsed, current, { by: options.by ?? defaultActor(), comment: `dnslb up ${file}` }) : (existing as PublishedVersion);
      } catch (error) {
        await store.close();
        throw error;
      }
      const what = describe(version.topology);
      if (options.json) console.log(JSON.stringify({ published, version: version.version, dataDir, store: storeSpec, ...what }));
      else {
        console.log(published ? `published ${file} as version ${version.version} in ${storeSpec}` : `${file} is already version ${version.version} in ${storeSpec}: nothing to publish`);
        for (const pool of what.pools) {
          console.log(`pool ${pool.fqdn} (${pool.kind}, ${pool.loadBalancing} load balancing)`);
          for (const server of pool.servers) console.log(`  ${server.fqdn}  ${[server.ipv4, server.ipv6].filter(Boolean).join(' ')}`);
        }
        for (const server of what.dns) console.log(`dns ${server.fqdn} listens on ${server.listen.join(', ')}`);
      }
      if (options.publishOnly) {
        await store.close();
        return;
      }
      await runPool(version, dataDir, storeSpec, options, store);
    });
}

async function runPool(version: PublishedVersion, dataDir: string, storeSpec: string, options: UpOptions, store: Store): Promise<void> {
  const { token, created } = await ensureToken(dataDir);
  // webServices.hlb: haproxy — Debian's HAProxy on the Web services VIPs, one child per pool (src/hlb/).
  const hlb = new HlbFollower({
    store,
    dataDir,
    clock: systemClock,
    quiet: !['debug', 'info'].includes(options.logLevel),
    // A changed configuration (servers commissioned or decommissioned): SIGUSR2 makes HAProxy's master reload it.
    reload: (name) => {
      // Called only after the supervisor below exists (on a published version).
      const pid = supervisor.status().find((child) => child.name === name)?.pid;
      if (pid !== undefined) process.kill(pid, 'SIGUSR2');
    },
  });
  // Children are added (and started) below as soon as each can start.
  const supervisor = new Supervisor([], {
    restartDelayMs: version.topology.settings.supervisor.restartDelayMs,
    output: (name, line) => process.stderr.write(`[${name}] ${line}\n`),
  });
  supervisor.onChange((status) => {
    if (status.state === 'restarting') console.error(`dnslb up: ${status.name} ended (${status.lastExit}); restarting in ${version.topology.settings.supervisor.restartDelayMs} ms`);
  });
  const poolAdmin = new PoolAdmin({ store, token, dataDir, clock: systemClock, processes: supervisor, hlb: () => hlb.view() });
  const api = poolAdmin.api();
  const port = options.adminListen.endsWith(':0') ? 0 : Number(options.adminListen.slice(options.adminListen.lastIndexOf(':') + 1));
  const host = options.adminListen.slice(0, options.adminListen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  let url: string;
  try {
    url = await api.listen(host, port);
  } catch (error) {
    await store.close();
    if (isDnslbError(error, 'ADMIN_LISTEN')) throw new DnslbError('ADMIN_LISTEN', `${error.message}; choose another with --admin-listen`, { cause: error.cause });
    throw error;
  }
  await writeEndpoint(dataDir, { url, pid: process.pid, startedAtMs: Date.now() });
  // Output that nobody reads any more (`dnslb up | head`, a terminal gone) is not a reason to stop:
  // without this, the first write after the reader left would end this process with EPIPE.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  // From here on a signal stops everything, even while the children are still coming up.
  const stopped = new Promise<'stopped'>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve('stopped');
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  // Set once the children are started; stopAll may run before (a start that failed).
  let following: AbortController | undefined = undefined;
  const stopAll = async () => {
    following?.abort();
    hlb.stop();
    await supervisor.shutdown();
    await api.close();
    await unlink(join(dataDir, 'admin.json')).catch(() => undefined);
    await store.close();
  };
  // Each child starts as soon as it can, since the 2 s a start may take are mostly the children's
  // own: the DNS first (it needs no certificate), each SIP server once its certificate exists (a
  // first start makes them, ~0.3 s of openssl on the example, while the servers before start),
  // HAProxy once its configuration is checked, while the servers start.
  let hlbChildren: HlbChild[] = [];
  try {
    const [dns, ...servers] = childSpecs(version.topology, dataDir, storeSpec, options.logLevel, options.tls);
    supervisor.add(dns!);
    if (options.tls) {
      const byName = new Map(servers.map((spec) => [spec.name, spec]));
      await ensurePoolCertificates(version.topology, dataDir, (fqdn) => supervisor.add(byName.get(fqdn)!));
      hlbChildren = await hlb.prepare(version);
      for (const child of hlbChildren) supervisor.add(child);
    } else {
      for (const spec of servers) supervisor.add(spec);
      if (hlbPools(version.topology).length > 0) console.error(`dnslb up: webServices.hlb: haproxy is not started with --no-tls: the Web services it balances are HTTPS (${hlbPools(version.topology).map((pool) => pool.fqdn).join(', ')})`);
    }
    await hlb.start(version.revision);
  } catch (error) {
    await stopAll();
    throw error;
  }
  following = followTopology(store, supervisor, version, { dataDir, storeSpec, logLevel: options.logLevel, tls: options.tls }, poolAdmin);
  console.log(`admin API ${url} (token in ${join(dataDir, 'admin-token')})`);
  if (options.tls) console.log(`TLS: every server listens on its pool's TLS port; clients trust ${join(dataDir, 'tls', 'ca.pem')}`);
  if (created) console.log(`admin token (shown once): ${token}`);
  // The token goes where it may be read: a terminal, or the first start (it is printed once anyway);
  // stdout sent to a file or a journal gets the address alone on later starts.
  console.log(`dashboard ${dashboardUrl(url, token, created || process.stdout.isTTY === true)}`);
  // "running" means every child listens: the table and that line wait for the last child's ready
  // line (HAProxy prints none of ours: it listens once its runtime API answers). A child that cannot
  // come up stops the whole start, named with its reason.
  const startTimeoutMs = version.topology.settings.supervisor.startTimeoutMs;
  const hlbListening = async (): Promise<Map<string, string>> => {
    const where = new Map<string, string>();
    const deadline = Date.now() + startTimeoutMs;
    while (where.size < hlbChildren.length) {
      for (const child of hlbChildren) {
        const listening = where.has(child.name) ? undefined : await hlb.listening(child.name);
        if (listening !== undefined) where.set(child.name, listening);
      }
      if (where.size === hlbChildren.length) break;
      if (Date.now() > deadline) {
        const waiting = hlbChildren.filter((child) => !where.has(child.name)).map((child) => child.name);
        throw new DnslbError('SUPERVISOR_START', `not ready after ${startTimeoutMs} ms: ${waiting.join(', ')} (HAProxy's runtime API does not answer)`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return where;
  };
  let ready: 'ready' | 'stopped';
  let hlbWhere = new Map<string, string>();
  try {
    ready = await Promise.race([supervisor.whenReady(startTimeoutMs).then(() => 'ready' as const), stopped]);
    if (ready === 'ready') hlbWhere = await hlbListening();
  } catch (error) {
    console.error(`dnslb up: ${(error as Error).message}; stopping everything`);
    await stopAll();
    throw error;
  }
  if (ready === 'ready') {
    for (const child of supervisor.status()) console.log(`${child.name.padEnd(24)} pid ${String(child.pid ?? '-').padEnd(8)} ${child.listening ?? hlbWhere.get(child.name) ?? `(${child.state})`}`);
    console.log('dnslb up: running; Ctrl-C stops everything');
    await stopped;
  }
  console.log('dnslb up: stopping');
  await stopAll();
}

/** How the children are started: where they keep their files, which store they follow, and how. */
interface ChildOptions {
  dataDir: string;
  storeSpec: string;
  logLevel: string;
  tls: boolean;
}

/** After the store's watch failed (etcd going away), follow it again from a new snapshot this much later. */
const FOLLOW_RETRY_MS = 1000;

/**
 * Commission and decommission under `dnslb up`: a newly published version that adds a server gets
 * a child for it; a server that is no longer in the topology drains itself (it follows the store),
 * and its child is stopped once it reports `drained` (or the drain timeout has passed). A watch that
 * fails (etcd unreachable) is followed again from a new snapshot, and again after each failure:
 * a version published while it was down is acted on once the store is back.
 */
function followTopology(store: Store, supervisor: Supervisor, first: PublishedVersion, children: ChildOptions, poolAdmin: PoolAdmin): AbortController {
  const abort = new AbortController();
  const retiring = new Set<string>();
  let applied = first.version;
  const retire = async (name: string, drainTimeoutMs: number) => {
    retiring.add(name);
    const deadline = Date.now() + drainTimeoutMs + 10_000;
    let state: string | undefined;
    while (!abort.signal.aborted && Date.now() < deadline) {
      state = ((await poolAdmin.serverStatus(name)).status as { state?: string } | undefined)?.state;
      if (state === 'drained' || state === undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (abort.signal.aborted) return;
    // Say which of the three it was: an operator reading this wants to know whether users were
    // handed over (drained) or the process was simply gone or stuck.
    const why = state === 'drained' ? 'reports drained' : state === undefined ? 'does not answer its admin API' : `is still ${state} after the drain timeout`;
    console.error(`dnslb up: ${name} left the topology and ${why}; stopping it`);
    await supervisor.remove(name).catch(() => undefined);
    retiring.delete(name);
  };
  const reconcile = async (next: PublishedVersion) => {
    if (next.version <= applied) return;
    applied = next.version;
    if (children.tls) await ensurePoolCertificates(next.topology, children.dataDir);
    const wanted = childSpecs(next.topology, children.dataDir, children.storeSpec, children.logLevel, children.tls);
    const running = new Set(supervisor.names());
    for (const spec of wanted) {
      if (running.has(spec.name)) continue;
      console.error(`dnslb up: version ${next.version} adds ${spec.name}; starting it`);
      supervisor.add(spec);
    }
    const names = new Set(wanted.map((spec) => spec.name));
    for (const name of running) {
      // HAProxy children follow the store on their own (HlbFollower reloads them).
      if (names.has(name) || retiring.has(name) || name.startsWith('hlb:')) continue;
      void retire(name, next.topology.settings.drain.timeoutMs);
    }
  };
  const pause = () => new Promise<void>((resolve) => systemClock.setTimer(FOLLOW_RETRY_MS, resolve));
  void (async () => {
    let from = first.revision;
    while (!abort.signal.aborted) {
      try {
        for await (const event of store.watch({ afterRevision: from, signal: abort.signal, users: false })) {
          if (event.kind === 'published') await reconcile(await store.read(event.version));
          from = Math.max(from, event.revision);
        }
        return;
      } catch (error) {
        if (abort.signal.aborted) return;
        console.error(`dnslb up: following the store failed (${(error as Error).message}); the children keep their last state; retrying every ${FOLLOW_RETRY_MS} ms`);
      }
      for (;;) {
        await pause();
        if (abort.signal.aborted) return;
        try {
          const snapshot = await store.snapshot();
          if (snapshot.current) await reconcile(snapshot.current);
          from = snapshot.revision;
          console.error('dnslb up: following the store again');
          break;
        } catch {
          // Still unreachable: said once above; try again.
        }
      }
    }
  })();
  return abort;
}
