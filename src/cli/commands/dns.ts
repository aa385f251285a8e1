// dnslb dns serve: runs the authoritative DNS server alone, from a topology file and/or a store.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { pino } from 'pino';
import { LiveZones } from '../../dns/live.ts';
import { exportZone } from '../../dns/export.ts';
import { parseTsigKey, parseTsigKeyFile } from '../../dns/tsig.ts';
import { push } from '../../dns/update.ts';
import { viewRecords } from '../../dns/zone.ts';
import { Notifier, secondarySerial } from '../../dns/notify.ts';
import { cluster, ForwardedZones, forwardChanges, WorkerStats, zonesMessage, type PrimaryMessage, type WorkerMessage } from '../../dns/cluster.ts';
import { registerDnsMetrics } from '../../admin/dns-metrics.ts';
import { createRegistry, listenMetrics, type MetricsListener } from '../../admin/metrics.ts';
import { DnsServer, type BoundAddresses, type DnsServerOptions } from '../../dns/server.ts';
import { udpEngines, type UdpEngineName } from '../../dns/udp.ts';
import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { systemClock, systemRandom } from '../../shared/clock.ts';
import type { Topology } from '../../topology/schema.ts';
import { assert } from '../../shared/assert.ts';
import { DnslbError } from '../../shared/errors.ts';
import { checkLimits, limits } from '../../shared/limits.ts';
import type { Store } from '../../store/store.ts';
import { endpoint, type Endpoint } from '../../topology/schema.ts';
import { DATA_DIR_DEFAULT, DATA_DIR_DESCRIPTION, DATA_DIR_FLAGS, STORE_DESCRIPTION, STORE_FLAGS, storeSpecOrDefault } from './store-options.ts';
import { untilStopSignal } from '../../shared/stop-signal.ts';

/** Reads a topology YAML file; the YAML parser is loaded only when one is given (a process `dnslb up` starts reads the store). */
async function parseTopologyFile(file: string): Promise<Topology> {
  return (await import('../../topology/parse.ts')).parseFile(file);
}

/** Opens the store a --store value names: a data directory or etcd://host:port[,host:port…][/prefix]. */
export type OpenStore = (value: string) => Promise<Store>;

interface ServeOptions {
  listen?: string[];
  server?: string;
  logLevel: string;
  tcpIdleTimeoutMs: string;
  tcpConnectionsMax: string;
  workers: string;
  udpEngine?: string;
  tsigKeyFile?: string;
  metricsListen?: string;
}

type ServerKnobs = Omit<DnsServerOptions, 'listen' | 'answers' | 'transfers'>;

/**
 * The primary of `--workers N`: forks the workers one after the other, forwards zone versions, and
 * re-forks a worker that dies. If one cannot listen, the others are stopped and the error is thrown.
 * TCP is node:cluster's shared handle, keyed by address and port as asked. UDP: with the batch
 * engine each worker binds its own socket with SO_REUSEPORT and the kernel spreads the datagrams,
 * so the workers after the first are given the first one's ports (port 0 picks once); with the
 * dgram engine node:cluster shares one socket, keyed as asked, so they are given the same request.
 */
async function startWorkers(zones: LiveZones, listen: Endpoint[], count: number, logger: Logger, stats?: WorkerStats): Promise<{ bound: BoundAddresses; stop(): Promise<void> }> {
  let stopping = false;
  let listenNext = listen;
  const fork = (): Promise<{ worker: Worker; bound: BoundAddresses }> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork();
      worker.on('message', (message: WorkerMessage | { kind: 'ready' }) => {
        if (message.kind === 'ready') {
          worker.send({ kind: 'listen', listen: listenNext, ...(stats ? { statsIntervalMs: limits.dnsWorkerStatsIntervalMs } : {}) } satisfies PrimaryMessage);
          worker.send(zonesMessage(zones, true));
          worker.send({ kind: 'rate-limit', settings: zones.rateLimit ?? null, share: 1 / count } satisfies PrimaryMessage);
        } else if (message.kind === 'stats') stats?.report(worker.id, message.stats, message.openConnections);
        else if (message.kind === 'listening') {
          if (message.udpEngine === 'batch') listenNext = message.udp;
          resolve({ worker, bound: { udp: message.udp, tcp: message.tcp, udpEngine: message.udpEngine } });
        }
        else reject(new DnslbError('DNS_LISTEN', `worker: ${message.message}`));
      });
      worker.once('exit', (code, signal) => {
        stats?.retire(worker.id);
        reject(new DnslbError('DNS_LISTEN', `worker exited (${code ?? signal}) before listening`));
        if (stopping) return;
        logger.error({ code, signal }, 'dns: a worker died; starting another');
        fork().catch((error: unknown) => logger.error({ err: error }, 'dns: a replacement worker failed'));
      });
    });
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      Object.values(cluster.workers ?? {}).map((worker) => {
        if (!worker || worker.isDead()) return undefined;
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.process.kill('SIGTERM');
        return exited;
      }),
    );
  };
  let bound: BoundAddresses | undefined;
  try {
    for (let i = 0; i < count; i++) {
      const started = await fork();
      bound ??= started.bound;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const workers = (): Worker[] => Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
  forwardChanges(zones, workers);
  zones.onRateLimitChange((settings) => {
    for (const worker of workers()) if (worker.isConnected()) worker.send({ kind: 'rate-limit', settings: settings ?? null, share: 1 / count } satisfies PrimaryMessage);
  });
  return { bound: bound!, stop };
}

/** A worker of `--workers N`: serves the zones the primary forwards, on the addresses it gives. */
async function serveWorker(knobs: ServerKnobs): Promise<void> {
  const zones = new ForwardedZones(systemRandom);
  let statsIntervalMs: number | undefined;
  // The rate limit may arrive before the server exists (it follows the zones): kept until then.
  let rateLimit: Extract<PrimaryMessage, { kind: 'rate-limit' }> | undefined;
  let applyRateLimit = (message: Extract<PrimaryMessage, { kind: 'rate-limit' }>): void => {
    rateLimit = message;
  };
  const listen = await new Promise<Endpoint[]>((resolve) => {
    let listenTo: Endpoint[] | undefined;
    let zonesSeen = false;
    process.on('message', (message: PrimaryMessage) => {
      if (message.kind === 'listen') {
        listenTo = message.listen;
        statsIntervalMs = message.statsIntervalMs;
      }
      else if (message.kind === 'rate-limit') applyRateLimit(message);
      else zones.apply(message);
      zonesSeen ||= message.kind === 'zones';
      if (listenTo && zonesSeen) resolve(listenTo);
    });
    process.send?.({ kind: 'ready' });
  });
  const server = new DnsServer({ listen, answers: zones, transfers: zones, udpReusePort: true, ...knobs });
  applyRateLimit = (message) => server.setRateLimit(message.settings ?? undefined, message.share);
  if (rateLimit) applyRateLimit(rateLimit);
  try {
    const bound = await server.start();
    process.send?.({ kind: 'listening', udp: bound.udp, tcp: bound.tcp, udpEngine: bound.udpEngine } satisfies WorkerMessage);
  } catch (error) {
    process.send?.({ kind: 'failed', message: (error as Error).message } satisfies WorkerMessage);
    throw error;
  }
  // Only when the primary serves metrics: its scrape reads the sum of these reports.
  const reporting =
    statsIntervalMs === undefined
      ? undefined
      : setInterval(() => {
          if (process.connected) process.send?.({ kind: 'stats', stats: server.stats, openConnections: server.openConnections } satisfies WorkerMessage);
        }, statsIntervalMs).unref();
  // The primary going away (disconnect) ends a worker as SIGTERM does.
  await Promise.race([untilStopSignal(knobs.logger!, 'dns: stopping'), new Promise<void>((resolve) => process.once('disconnect', () => resolve()))]);
  clearInterval(reporting);
  await server.close();
  process.disconnect?.();
}

/** Asks every secondary for each zone's SOA serial (at most dnsSecondarySerialTimeoutMs, in parallel) and serves above the highest. */
async function serveAboveSecondaries(zones: LiveZones, sourceAddress: string | undefined, logger: Logger): Promise<void> {
  await Promise.all(
    zones.served().map(async (version) => {
      const origin = version.content.origin;
      const serials = await Promise.all(zones.secondaries.map((secondary) => secondarySerial(secondary, origin, { sourceAddress, random: systemRandom })));
      for (const serial of serials) {
        if (serial === undefined) continue;
        const raised = zones.serveAbove(origin, serial);
        if (raised) logger.warn({ zone: origin, secondarySerial: serial, serial: raised.serial }, 'dns: a secondary holds a newer serial than ours (changes outran the clock before a restart); serving above it');
      }
    }),
  );
}

const isUdpEngine = (text: string): text is UdpEngineName => text === 'batch' || text === 'dgram';

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new DnslbError('CLI_USAGE', `${flag} ${text}: not a positive integer`);
  return value;
}

function parseListen(text: string, flag = '--listen'): Endpoint {
  const result = endpoint.safeParse(text.replace(/:0$/, ':1'));
  if (!result.success) throw new DnslbError('CLI_USAGE', `${flag} ${text}: not ADDRESS:PORT or [IPV6]:PORT`);
  // Port 0 (any free port) is accepted here though a topology may not use it.
  return text.endsWith(':0') ? { address: result.data.address, port: 0 } : result.data;
}

/**
 * `openStore` opens a `--store` value (src/store/open.ts: a file store data directory or an etcd
 * URL); without one (a build with no store wired in) `--store` is refused with a clear message.
 */
export function registerDns(program: Command, openStore?: OpenStore): void {
  const dns = program.command('dns').description('the authoritative DNS server');
  dns
    .command('serve')
    .description('serve the topology\'s zones over UDP and TCP until SIGTERM/SIGINT')
    .argument('[file]', 'topology YAML: given alone (no --store), served alone; with --store, served until the store has a published version')
    .option('--listen <address:port...>', 'where to listen (default: the topology\'s DNS servers\' listen addresses); port 0 picks a free port')
    .option('--server <fqdn>', 'listen only on this DNS server\'s addresses from the topology')
    .option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT)
    .option(STORE_FLAGS, STORE_DESCRIPTION)
    .option('--tcp-idle-timeout-ms <ms>', 'close a TCP connection with no complete query for this long', String(limits.dnsTcpIdleTimeoutMs))
    .option('--tcp-connections-max <n>', 'open TCP connections at most; more are closed at once', String(limits.dnsTcpConnectionsMax))
    .option('--log-level <level>', 'pino level: fatal, error, warn, info, debug, silent', process.env['DNSLB_LOG_LEVEL'] ?? 'info')
    .option('--workers <n>', 'answer in N node:cluster worker processes sharing the UDP port and TCP port (0: in this process)', '0')
    .option('--tsig-key-file <file>', 'zone transfers must be TSIG-signed (RFC 8945) with one of these keys, one NAME:hmac-sha256:BASE64SECRET per line, besides coming from a dns.secondaries address')
    .option('--udp-engine <engine>', `batch (recvmmsg/sendmmsg, native/udp-batch) or dgram (node:dgram); default ${udpEngines.preferred}`)
    .option('--metrics-listen <address:port>', 'serve Prometheus metrics at http://ADDRESS:PORT/metrics (no token: bind it to loopback or a management network); port 0 picks one')
    .action(async (file: string | undefined, options: ServeOptions, command: Command) => {
      checkLimits();
      const logger = pino({ level: options.logLevel, base: { component: 'dns' } }, pino.destination(2));
      const udpEngine = options.udpEngine ?? udpEngines.preferred;
      if (!isUdpEngine(udpEngine)) throw new DnslbError('CLI_USAGE', `--udp-engine ${udpEngine}: batch or dgram`);
      if (udpEngine === 'batch' && udpEngines.batchProblem) throw new DnslbError('CLI_USAGE', `--udp-engine batch: ${udpEngines.batchProblem}`);
      if (udpEngines.batchProblem && !cluster.isWorker) logger.warn(`dns: ${udpEngines.batchProblem}; UDP answers through node:dgram, at about half the speed`);
      const transferKeys = options.tsigKeyFile === undefined ? undefined : parseTsigKeyFile(await readFile(options.tsigKeyFile, 'utf8').catch((error: unknown) => {
        throw new DnslbError('CLI_USAGE', `--tsig-key-file ${options.tsigKeyFile}: ${(error as Error).message}`);
      }), options.tsigKeyFile);
      const serverOptions = {
        transferKeys,
        udpEngine,
        clock: systemClock,
        logger,
        tcpIdleTimeoutMs: positiveInteger('--tcp-idle-timeout-ms', options.tcpIdleTimeoutMs),
        tcpConnectionsMax: positiveInteger('--tcp-connections-max', options.tcpConnectionsMax),
      };
      if (cluster.isWorker) return serveWorker(serverOptions);
      const workers = Number(options.workers);
      if (!Number.isInteger(workers) || workers < 0 || workers > limits.dnsWorkersMax) throw new DnslbError('CLI_USAGE', `--workers ${options.workers}: not an integer from 0 to ${limits.dnsWorkersMax}`);
      const storeSpec = storeSpecOrDefault(command, file);
      const metricsAt = options.metricsListen === undefined ? undefined : parseListen(options.metricsListen, '--metrics-listen');
      const topology = file === undefined ? undefined : await parseTopologyFile(file);
      let store: Store | undefined;
      if (storeSpec !== undefined) {
        if (!openStore) throw new DnslbError('CLI_USAGE', '--store: this build has no file store backend wired into `dns serve` yet');
        store = await openStore(storeSpec);
      }
      const zones = new LiveZones({ topology, store, clock: systemClock, random: systemRandom, logger });
      await zones.start();
      const source = topology ?? (store ? (await store.read().catch(() => undefined))?.topology : undefined);
      let listen: Endpoint[];
      let bound: BoundAddresses;
      let stopServing: () => Promise<void>;
      let counters: Pick<DnsServer, 'stats' | 'openConnections'> | WorkerStats;
      try {
        const servers = (source?.dns.servers ?? []).filter((server) => options.server === undefined || server.fqdn === options.server.toLowerCase());
        listen = options.listen && options.listen.length > 0 ? options.listen.map((text) => parseListen(text)) : servers.flatMap((server) => server.listen);
        if (listen.length === 0) throw new DnslbError('CLI_USAGE', 'nothing to listen on: give --listen, or a topology whose dns.servers list listen addresses');
        if (workers === 0) {
          const server = new DnsServer({ listen, answers: zones, transfers: zones, ...serverOptions });
          server.setRateLimit(zones.rateLimit);
          zones.onRateLimitChange((settings) => server.setRateLimit(settings));
          bound = await server.start();
          stopServing = () => server.close();
          counters = server;
        } else {
          const workerStats = new WorkerStats();
          const pool = await startWorkers(zones, listen, workers, logger, metricsAt ? workerStats : undefined);
          bound = pool.bound;
          stopServing = pool.stop;
          counters = workerStats;
        }
      } catch (error) {
        // Let the process end with the error: the store watch would keep it alive, a silent
        // process that never listens (dnslb up would wait for it until its start timeout).
        await zones.close();
        await store?.close();
        throw error;
      }
      // NOTIFY goes out from our own listen address: secondaries accept it from their primary only.
      const sourceAddress = listen.map((e) => e.address).find((address) => address !== '0.0.0.0' && address !== '::');
      // NOTIFY is signed with the transfer key (the file's first, when it holds several): secondaries that
      // require TSIG for transfers may require it for NOTIFY too (RFC 8945 §5.1).
      const notifyKey = transferKeys === undefined ? undefined : [...transferKeys.values()][0];
      const notifier = new Notifier({ secondaries: () => zones.secondaries, sourceAddress, clock: systemClock, random: systemRandom, logger, ...(notifyKey ? { tsigKey: notifyKey } : {}) });
      await notifier.start();
      zones.onChange((changed) => notifier.notify(changed));
      // A restarted primary must not serve a serial below what its secondaries hold (changes that
      // outran the clock before the restart): ask them, and serve above (RFC 1982).
      await serveAboveSecondaries(zones, sourceAddress, logger);
      // A (re)started primary tells its secondaries too: they may have missed changes meanwhile.
      notifier.notify(zones.served());
      let metrics: MetricsListener | undefined;
      if (metricsAt) {
        const registry = createRegistry();
        registerDnsMetrics(registry, {
          stats: () => (counters instanceof WorkerStats ? counters.stats() : counters.stats),
          openConnections: () => (counters instanceof WorkerStats ? counters.openConnections() : counters.openConnections),
          notify: notifier.stats,
          serials: () => zones.current.serials,
          udpEngine: bound.udpEngine,
          workers,
        });
        try {
          metrics = await listenMetrics(registry, metricsAt.address, metricsAt.port);
        } catch (error) {
          await notifier.close();
          await stopServing();
          await zones.close();
          await store?.close();
          throw error;
        }
      }
      const where = [...bound.udp.map((e) => `udp://${e.address}:${e.port}`), ...bound.tcp.map((e) => `tcp://${e.address}:${e.port}`)].join(' ');
      // The one line on stdout: tests and operators read where it listens (port 0 included); new
      // parts go at the end so that readers of the older parts keep working.
      console.log(`dnslb dns: listening ${where} serials ${JSON.stringify(Object.fromEntries(zones.current.serials))}${workers > 0 ? ` workers ${workers}` : ''} udp-engine ${bound.udpEngine}${metrics ? ` metrics ${metrics.url}` : ''}`);
      logger.info({ udp: bound.udp, tcp: bound.tcp, workers, udpEngine: bound.udpEngine, metrics: metrics?.url ?? null }, 'dns: listening');
      const logRateLimit = (settings: Topology['dns']['rateLimit']): void => {
        if (settings) logger.info({ rateLimit: settings, perWorker: workers > 0 ? settings.responsesPerSecond / workers : settings.responsesPerSecond }, 'dns: response rate limiting on UDP');
        else logger.info('dns: response rate limiting off');
      };
      if (zones.rateLimit) logRateLimit(zones.rateLimit);
      zones.onRateLimitChange(logRateLimit);
      await untilStopSignal(logger, 'dns: stopping');
      await metrics?.close();
      await notifier.close();
      await stopServing();
      await zones.close();
      await store?.close();
    });

  registerPush(dns, openStore);
  dns
    .command('export')
    .description('print the RFC 1035 master file of a zone as served now (for an existing DNS server)')
    .argument('[file]', 'topology YAML: given alone (no --store), exported alone; with --store, used until the store has a published version')
    .requiredOption('--zone <zone>', 'the zone to export')
    .option('--view <view>', 'the view to export (default: the first view)')
    .option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT)
    .option(STORE_FLAGS, STORE_DESCRIPTION)
    .action(async (file: string | undefined, options: { zone: string; view?: string }, command: Command) => {
      const zones = await openZones(file, storeSpecOrDefault(command, file), openStore);
      try {
        const zone = options.zone.toLowerCase().replace(/\.$/, '');
        const version = zones.history(zone).at(-1);
        if (!version) throw new DnslbError('CLI_USAGE', `--zone ${options.zone}: not a zone of the topology (${zones.served().map((v) => v.content.origin).join(', ')})`);
        const view = options.view ?? zones.views[0];
        if (view === undefined || !zones.views.includes(view)) throw new DnslbError('CLI_USAGE', `--view ${options.view}: not a view of the topology (${zones.views.join(', ')})`);
        process.stdout.write(exportZone(version, view));
      } finally {
        await zones.close();
      }
    });
}

interface PushOptions {
  target: string;
  zone: string;
  tsig: string;
  view?: string;
}

/** `dns push`: RFC 2136 updates that bring an existing server's zone in line with the topology. */
function registerPush(dns: Command, openStore: OpenStore | undefined): void {
  dns
    .command('push')
    .description('bring an existing DNS server\'s zone in line with the topology (RFC 2136 updates signed with TSIG)')
    .argument('[file]', 'topology YAML: given alone (no --store), used alone; with --store, used until the store has a published version')
    .requiredOption('--target <address:port>', 'the DNS server to update (it must allow AXFR and UPDATE with the key)')
    .requiredOption('--zone <zone>', 'the zone to update')
    .requiredOption('--tsig <name:alg:secret>', 'TSIG key: NAME:hmac-sha256:BASE64SECRET (as tsig-keygen prints it)')
    .option('--view <view>', 'the view whose records the server should hold (default: the first view)')
    .option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT)
    .option(STORE_FLAGS, STORE_DESCRIPTION)
    .action(async (file: string | undefined, options: PushOptions, command: Command) => {
      const key = parseTsigKey(options.tsig);
      const parsed = endpoint.safeParse(options.target);
      if (!parsed.success) throw new DnslbError('CLI_USAGE', `--target ${options.target}: not ADDRESS:PORT or [IPV6]:PORT`);
      const zones = await openZones(file, storeSpecOrDefault(command, file), openStore);
      const zone = options.zone.toLowerCase().replace(/\.$/, '');
      const version = zones.history(zone).at(-1);
      if (!version) throw new DnslbError('CLI_USAGE', `--zone ${options.zone}: not a zone of the topology (${zones.served().map((v) => v.content.origin).join(', ')})`);
      const view = options.view ?? zones.views[0];
      if (view === undefined || !zones.views.includes(view)) throw new DnslbError('CLI_USAGE', `--view ${options.view}: not a view of the topology (${zones.views.join(', ')})`);
      const change = await push({ ...parsed.data, zone, key, clock: systemClock, random: systemRandom }, viewRecords(version, view));
      const total = change.adds.length + change.deletes.length;
      const where = `${zone} at ${parsed.data.address}:${parsed.data.port}`;
      if (total === 0) console.log(`dnslb dns push: 0 changes: ${where} is in line with the topology (view ${view})`);
      else console.log(`dnslb dns push: ${total} changes to ${where} (view ${view}): ${change.adds.length} added, ${change.deletes.length} deleted`);
    });
}

/** Zones built once from a topology file and/or the store (export and push read, they do not follow). */
async function openZones(file: string | undefined, storeDir: string | undefined, openStore: OpenStore | undefined): Promise<LiveZones> {
  assert(file !== undefined || storeDir !== undefined, 'a file, a store, or both');
  const topology: Topology | undefined = file === undefined ? undefined : await parseTopologyFile(file);
  let store: Store | undefined;
  if (storeDir !== undefined) {
    if (!openStore) throw new DnslbError('CLI_USAGE', '--store: this build has no file store backend wired in yet');
    store = await openStore(storeDir);
  }
  const zones = new LiveZones({ topology, store, clock: systemClock, random: systemRandom });
  await zones.start();
  // One snapshot is all a one-shot command needs: stop following at once.
  await zones.close();
  await store?.close();
  return zones;
}
