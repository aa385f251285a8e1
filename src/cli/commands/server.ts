// dnslb server: runs one Front End server (SIP registrar + proxy) of a topology until SIGTERM/SIGINT,
// with an optional admin API (GET /status, GET /users, GET /users/:uri, GET /metrics) for status,
// Prometheus and tests.
import type { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AdminApi } from '../../admin/http-api.ts';
import { ensureToken } from '../../admin/credentials.ts';
import { registerFrontendMetrics } from '../../admin/frontend-metrics.ts';
import { addMetricsRoute, createRegistry } from '../../admin/metrics.ts';
import { FrontEndServer } from '../../frontend/server.ts';
import { EdgeServer } from '../../edge/edge-server.ts';
import { readTlsFiles } from '../../frontend/tls-files.ts';
import { DirectoryFollower, StoreFollower } from '../../frontend/store-follower.ts';
import { openStore } from '../../store/open.ts';
import { DATA_DIR_DEFAULT, DATA_DIR_DESCRIPTION, DATA_DIR_FLAGS, dataDirOf, openFileStoreOf, STORE_DESCRIPTION, STORE_FLAGS, storeSpecOrDefault } from './store-options.ts';
import { randomBytes } from 'node:crypto';
import type { Store } from '../../store/store.ts';
import type { Snapshot } from '../../store/store.ts';
import type { Topology } from '../../topology/schema.ts';
import { systemClock, systemRandom } from '../../shared/clock.ts';
import { DnslbError } from '../../shared/errors.ts';
import { checkLimits, limits } from '../../shared/limits.ts';
import { endpoint } from '../../topology/schema.ts';
import type { WebServerState } from '../../webservices/health.ts';
import { WebServices, webServicesPoolOf } from '../../webservices/web-services.ts';
import { untilStopSignal } from '../../shared/stop-signal.ts';

/** Reads a topology YAML file; the YAML parser is loaded only when one is given (a process `dnslb up` starts reads the store). */
async function parseTopologyFile(file: string): Promise<Topology> {
  return (await import('../../topology/parse.ts')).parseFile(file);
}

interface ServerOptions {
  topology?: string;
  store?: string;
  server: string;
  topologyVersion: string;
  adminListen?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  idleTimeoutMs: string;
  connectionsMax: string;
  tlsHandshakeTimeoutMs: string;
  logLevel: string;
}

function integer(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new DnslbError('CLI_USAGE', `${flag} ${text}: not an integer ≥ ${min}`);
  return value;
}

export function registerServer(program: Command): void {
  program
    .command('server')
    // DESIGN §4 distributed mode names it `dnslb node --store etcd://… --server FQDN`: one server per process or machine.
    .alias('node')
    .description('run one server of the topology (Front End, Director, Mediation or Edge: SIP over TCP/TLS) until SIGTERM/SIGINT; `dnslb node` is the same')
    .option('--topology <file>', 'topology YAML: given alone (no --store), run from it alone; with --store, used until the store has a published version')
    // Followed: published versions and admin state in, liveness out.
    .option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT)
    .option(STORE_FLAGS, STORE_DESCRIPTION)
    .option('--server <fqdn>', 'which server of the topology this process is (required)')
    .option('--topology-version <n>', 'the published version the file is (0: never published)', '0')
    .option('--admin-listen <address:port>', 'serve the admin API (GET /status, /users, /metrics) here; port 0 picks one; token in --data-dir')
    .option('--tls-cert <file>', 'PEM certificate: listen for TLS on the pool\'s TLS port, and present it to other servers (subjectAltName: this server\'s FQDN; `dnslb certs issue`)')
    .option('--tls-key <file>', 'PEM key of --tls-cert')
    .option('--tls-ca <file>', 'PEM pool CA that signs every server\'s certificate (mutual TLS between servers, settings.interServer.transport: tls, the default)')
    .option('--idle-timeout-ms <ms>', 'close a SIP connection with no traffic for this long', '300000')
    .option('--connections-max <n>', 'SIP connections at most; more are reset at accept', '10000')
    .option('--tls-handshake-timeout-ms <ms>', 'drop an accepted TLS connection whose handshake has not finished by then', '10000')
    .option('--log-level <level>', 'pino level: fatal, error, warn, info, debug, silent', process.env['DNSLB_LOG_LEVEL'] ?? 'info')
    .action(async (options: ServerOptions, command: Command) => {
      // Not commander's requiredOption: that would also demand them of the admin subcommands (server drain …).
      if (options.server === undefined) throw new DnslbError('CLI_USAGE', 'dnslb server needs --server FQDN');
      checkLimits();
      const dataDir = dataDirOf(command);
      const logger = pino({ level: options.logLevel, base: { component: 'frontend', server: options.server } }, pino.destination(2));
      let store: Store | undefined;
      let snapshot: Snapshot | undefined;
      let topology: Topology;
      let topologyVersion = integer('--topology-version', options.topologyVersion, 0);
      const storeSpec = storeSpecOrDefault(command, options.topology);
      if (storeSpec !== undefined) {
        store = await openStore(storeSpec, { mustExist: true });
        snapshot = await store.snapshot();
      }
      if (snapshot?.current) {
        topology = snapshot.current.topology;
        topologyVersion = snapshot.current.version;
      } else if (options.topology !== undefined) {
        topology = await parseTopologyFile(options.topology);
      } else {
        await store?.close();
        throw new DnslbError('FRONTEND_NO_TOPOLOGY', `the store in ${storeSpec} has no published topology; publish one or give --topology FILE`);
      }
      const tls = await readTlsFiles({ cert: options.tlsCert, key: options.tlsKey, ca: options.tlsCa });
      // The user directory: the store's (a later version may turn settings.auth on); with --topology
      // alone, the file store of --data-dir when this topology turns it on (`dnslb user add --data-dir`).
      const users: Store | undefined = store ?? (topology.settings.auth.enabled ? await openFileStoreOf(command, { mustExist: false }) : undefined);
      const auth = users ? { secret: await users.authSecret(poolOf(topology, options.server), randomBytes(32)) } : undefined;
      if (!topology.settings.auth.enabled) logger.info('settings.auth is off: clients are not authenticated, anyone may register as any user');
      const serverOptions = {
        auth,
        topology,
        topologyVersion,
        server: options.server,
        tls,
        clock: systemClock,
        random: systemRandom,
        logger,
        idleTimeoutMs: integer('--idle-timeout-ms', options.idleTimeoutMs, 1),
        connectionsMax: Math.min(integer('--connections-max', options.connectionsMax, 1), limits.sipConnectionsMax),
        tlsHandshakeTimeoutMs: Math.min(integer('--tls-handshake-timeout-ms', options.tlsHandshakeTimeoutMs, 1), limits.sipTlsHandshakeTimeoutMsMax),
      };
      // An edge server is the same server in the Edge role, with its external interface (src/edge/).
      const edge = isEdgeServer(topology, options.server) ? new EdgeServer(serverOptions) : undefined;
      const server = edge?.server ?? new FrontEndServer(serverOptions);
      const bound = edge ? await edge.start() : { ...(await server.start()), external: [] as string[] };
      // The follower loads the user directory into the server's memory and keeps it current.
      const follower = store ? new StoreFollower({ store, server, clock: systemClock, logger }) : users ? new DirectoryFollower({ store: users, server, clock: systemClock, logger }) : undefined;
      await follower?.start(snapshot);
      const web = await startWebServices(server, topology, tls, store, logger);
      let admin: AdminApi | undefined;
      let adminUrl = '';
      if (options.adminListen !== undefined) {
        const parsed = endpoint.safeParse(options.adminListen.replace(/:0$/, ':1'));
        if (!parsed.success) throw new DnslbError('CLI_USAGE', `--admin-listen ${options.adminListen}: not ADDRESS:PORT`);
        const port = options.adminListen.endsWith(':0') ? 0 : parsed.data.port;
        const { token } = await ensureToken(dataDir);
        admin = new AdminApi(token)
          .route('GET', '/status', () => ({ body: server.status() }))
          .route('GET', '/users', (request) => ({
            body: server.users(Number(request.query.get('offset') ?? 0) || 0, Number(request.query.get('limit') ?? limits.frontendUsersPageMax) || limits.frontendUsersPageMax),
          }))
          .route('GET', '/users/:uri', (request) => ({ body: server.user(request.params['uri']!) }))
          .route('GET', '/web-services', () => ({ body: web?.status() ?? null }))
          // The most users that arrived here in any window of windowMs (default: the pool's rehome interval) since `since` (ms since the epoch).
          .route('GET', '/arrivals', (request) => ({
            body: {
              arrived: server.registrar.arrivals.arrived,
              peak: server.registrar.arrivals.peak(Number(request.query.get('windowMs')) || server.status().resilience.handover.intervalMs, Number(request.query.get('since')) || 0),
            },
          }));
        const registry = createRegistry();
        registerFrontendMetrics(registry, server);
        addMetricsRoute(admin, registry);
        try {
          adminUrl = await admin.listen(parsed.data.address, port);
        } catch (error) {
          // End the process with the error rather than run on without the admin API it was asked for.
          await follower?.stop();
          await server.stop();
          await store?.close();
          if (users !== store) await users?.close();
          throw error;
        }
        // Where this server's admin API is, for tools that know only the data dir.
        await mkdir(join(dataDir, 'servers'), { recursive: true });
        await writeFile(join(dataDir, 'servers', `${server.self}.json`), `${JSON.stringify({ url: adminUrl, pid: process.pid, startedAtMs: Date.now() }, null, 2)}\n`);
      }
      const webListening = Object.values(web?.status().listening ?? {}).map((address) => `https://${address}`);
      const where = [`tcp://${bound.tcp.host}:${bound.tcp.port}`, ...(bound.tls ? [`tls://${bound.tls.host}:${bound.tls.port}`] : []), ...bound.external.map((address) => `external ${address}`), ...(webListening.length > 0 ? [`web ${webListening.join(' ')}`] : []), ...(adminUrl ? [`admin ${adminUrl}`] : [])].join(' ');
      // The one line on stdout: tests and operators read where it listens (port 0 included).
      console.log(`dnslb server: ${server.self} listening ${where}`);
      logger.info({ tcp: bound.tcp, tls: bound.tls, admin: adminUrl || null }, 'frontend: listening');
      await untilStopSignal(logger, 'frontend: stopping');
      await admin?.close();
      await web?.stop();
      await follower?.stop();
      await (edge ?? server).stop();
      await store?.close();
      if (users !== store) await users?.close();
    });
}

function isEdgeServer(topology: Topology, server: string): boolean {
  const name = server.toLowerCase().replace(/\.$/, '');
  return topology.pools.some((pool) => pool.kind === 'edge' && pool.servers.some((entry) => entry.fqdn === name));
}

/** The pool `server` belongs to (its nonce secret is the pool's); the server's own name when the topology does not list it (FrontEndServer says so). */
function poolOf(topology: Topology, server: string): string {
  return topology.pools.find((pool) => pool.servers.some((entry) => entry.fqdn === server))?.fqdn ?? server;
}

/** The server's state as its Web services' health endpoint reports it: blocked (the store says) above its own. */
function webStateOf(server: FrontEndServer): WebServerState {
  const status = server.status();
  return status.resilience.adminState === 'blocked' ? 'blocked' : status.state;
}

/**
 * The Web services of a frontend or director server whose pool has `webServices` (src/webservices/),
 * on the server's own certificate; none without TLS (HTTPS needs one) or for other servers. A Web
 * site that cannot listen is reported and the SIP server keeps running: SIP is the pool's main job.
 */
async function startWebServices(server: FrontEndServer, topology: Topology, tls: Awaited<ReturnType<typeof readTlsFiles>>, store: Store | undefined, logger: Logger): Promise<WebServices | undefined> {
  if (!tls || !webServicesPoolOf(topology, server.self)) return undefined;
  // The health endpoint is read on every probe; the state is recomputed when the server says it changed.
  let state = webStateOf(server);
  let version = server.topologyVersion;
  const web = new WebServices({ topology, server: server.self, tls, state: () => state, logger });
  server.onChange(() => {
    state = webStateOf(server);
    if (server.topologyVersion === version || !store) return;
    version = server.topologyVersion;
    store.read(version).then(
      (published) => web.setTopology(published.topology),
      (error: unknown) => logger.warn({ err: error, version }, 'web services: cannot read the published topology; documents stay on the previous one'),
    );
  });
  try {
    await web.start();
  } catch (error) {
    logger.error({ err: error }, 'web services: not listening');
    console.error(`dnslb server: ${server.self} web services not listening: ${(error as Error).message}`);
    return undefined;
  }
  return web;
}
