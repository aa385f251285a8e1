// A SIP REGISTER load generator for the benchmarks, over many TCP or TLS connections (Debian's sipp
// has no TLS, and one sipp process cannot drive thousands of sockets fast: bench/RESULTS.md).
// Each connection is one client: user <prefix><n>, its own Call-ID, one REGISTER in flight, the next
// sent (CSeq + 1) as soon as the previous one is answered — a client refreshing its registration as
// fast as the server lets it. Connections are set up (TCP connect, TLS handshake, a first REGISTER
// answered, then idle until all are up) before the warm-up and the measured window, so the figure is
// REGISTER/s on established connections.
//
// sipLoad() runs `processes` worker processes (this file run as a program, each with its share of the
// connections, pinned with taskset), starts and ends the measured window in all of them at once, and
// reports the answers counted inside it with the CPU time the workers used meanwhile — so a caller can
// show that the generator was not the bottleneck (its CPU against the core it had, and the server's).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { treeCpuSeconds, treeRunDelaySeconds } from './results.ts';

export interface LoadOptions {
  host: string;
  port: number;
  /** Connections in all (each its own user). */
  connections: number;
  /** TLS with this CA file (PEM) and server name; absent: plain TCP. */
  tls?: { caFile: string; servername: string };
  /** User names are `${prefix}${n}` (n from 0) in `domain`. */
  prefix?: string;
  domain?: string;
  /** Worker processes (default 1), each pinned to `core` when given. */
  processes?: number;
  core?: string;
  /** Runs after every connection is set up, before the window, and after the window: time between the two. */
  warmupMs?: number;
  windowMs: number;
  /** A process (tree) whose CPU time over the window is reported beside the generator's: the server. */
  serverPid?: number;
  /**
   * Source addresses to connect from, shared round robin between the connections (a loopback address
   * has about 28,000 ephemeral ports; more connections than that need several). Default: the kernel's choice.
   */
  localAddresses?: string[];
  /** Called just before the window opens (e.g. to start a profiler in the server). */
  onWindow?: () => void;
}

export interface LoadResult {
  /** 2xx answers per second inside the window. */
  perSecond: number;
  ok: number;
  /** Other final answers inside the window (a sign something is wrong: the caller should fail). */
  failed: number;
  /** Connections that closed or failed during the run. */
  lost: number;
  /** CPU seconds of the workers over the window, and the window itself (s): their ratio is the share of a core used. */
  generatorCpuS: number;
  serverCpuS: number | undefined;
  /**
   * Seconds the server's threads waited for a CPU while runnable over the window (results.ts
   * treeRunDelaySeconds): when the server used less than its core, a large value means other work
   * took the core; a small one, that the server waited for requests.
   */
  serverRunDelayS: number | undefined;
  windowS: number;
  /** Setting up every connection (connect, handshake, first answer), ms. */
  setupMs: number;
  /** Connections tried again during set-up (refused or reset: a busy server's accept queue). */
  setupRetries: number;
  /** The TLS protocol and cipher negotiated (of one connection), e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384". */
  tlsSession: string | undefined;
}

type ToWorker = { type: 'go' } | { type: 'measure' } | { type: 'stop' };
type FromWorker =
  | { type: 'ready'; setupMs: number; setupRetries: number; tlsSession?: string }
  | { type: 'done'; ok: number; failed: number; lost: number; cpuUs: number }
  | { type: 'error'; message: string };

interface WorkerConfig {
  host: string;
  port: number;
  first: number;
  count: number;
  tls?: { ca: string; servername: string };
  prefix: string;
  domain: string;
  localAddresses?: string[];
}

const SELF = fileURLToPath(import.meta.url);

function nextMessage(child: ChildProcess): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromWorker) => {
      child.off('exit', onExit);
      if (message.type === 'error') reject(new Error(`sip-load worker: ${message.message}`));
      else resolve(message);
    };
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`sip-load worker exited (${code}) before answering`));
    };
    child.once('message', onMessage);
    child.once('exit', onExit);
  });
}

export async function sipLoad(options: LoadOptions): Promise<LoadResult> {
  const processes = options.processes ?? 1;
  const workers: ChildProcess[] = [];
  try {
    for (let index = 0; index < processes; index++) {
      const first = Math.floor((index * options.connections) / processes);
      const config: WorkerConfig = {
        host: options.host,
        port: options.port,
        first,
        count: Math.floor(((index + 1) * options.connections) / processes) - first,
        tls: options.tls && { ca: readFileSync(options.tls.caFile, 'utf8'), servername: options.tls.servername },
        prefix: options.prefix ?? 'load',
        domain: options.domain ?? 'contoso.com',
        ...(options.localAddresses ? { localAddresses: options.localAddresses } : {}),
      };
      const node = [process.execPath, ...process.execArgv, SELF, JSON.stringify(config)];
      const [file, argv] = options.core === undefined ? [node[0]!, node.slice(1)] : ['taskset', ['-c', options.core, ...node]];
      workers.push(spawn(file, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    }
    const ready = (await Promise.all(workers.map(nextMessage))) as Array<Extract<FromWorker, { type: 'ready' }>>;
    // Every connection is set up and idle: now all of them start sending, and the warm-up runs.
    for (const worker of workers) worker.send({ type: 'go' } satisfies ToWorker);
    await new Promise((resolve) => setTimeout(resolve, options.warmupMs ?? 1000));
    const serverBefore = options.serverPid === undefined ? undefined : await treeCpuSeconds(options.serverPid);
    const delayBefore = options.serverPid === undefined ? undefined : await treeRunDelaySeconds(options.serverPid);
    options.onWindow?.();
    const startedMs = performance.now();
    for (const worker of workers) worker.send({ type: 'measure' } satisfies ToWorker);
    await new Promise((resolve) => setTimeout(resolve, options.windowMs));
    const done = Promise.all(workers.map(nextMessage));
    for (const worker of workers) worker.send({ type: 'stop' } satisfies ToWorker);
    const windowS = (performance.now() - startedMs) / 1000;
    const serverAfter = options.serverPid === undefined ? undefined : await treeCpuSeconds(options.serverPid);
    const delayAfter = options.serverPid === undefined ? undefined : await treeRunDelaySeconds(options.serverPid);
    const results = (await done) as Array<Extract<FromWorker, { type: 'done' }>>;
    const sum = (key: 'ok' | 'failed' | 'lost' | 'cpuUs') => results.reduce((total, result) => total + result[key], 0);
    return {
      perSecond: sum('ok') / windowS,
      ok: sum('ok'),
      failed: sum('failed'),
      lost: sum('lost'),
      generatorCpuS: sum('cpuUs') / 1e6,
      serverCpuS: serverBefore === undefined ? undefined : serverAfter! - serverBefore,
      serverRunDelayS: delayBefore === undefined ? undefined : delayAfter! - delayBefore,
      windowS,
      setupMs: Math.max(...ready.map((message) => message.setupMs)),
      setupRetries: ready.reduce((sum, message) => sum + message.setupRetries, 0),
      tlsSession: ready[0]?.tlsSession,
    };
  } finally {
    for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    await Promise.all(workers.map((worker) => (worker.exitCode === null && worker.signalCode === null ? once(worker, 'exit') : undefined)));
  }
}

/** How many connections a worker opens at once while setting up (TLS handshakes cost the server). */
const SETUP_PARALLEL = 50;
const SETUP_ATTEMPTS = 5;

/** The worker: opens its connections, keeps one REGISTER in flight on each, counts answers while measuring. */
async function worker(config: WorkerConfig): Promise<void> {
  const send = (message: FromWorker) => process.send!(message);
  let measuring = false;
  let stopped = false;
  // Set-up sends one REGISTER per connection and waits for its answer; the connections start
  // sending in a loop only on 'go', when every one of them is up. Were each connection to loop as
  // soon as it was answered, the ones already up would keep the server busy while the others still
  // connect: each new connection then waits behind all the traffic of the earlier ones, and set-up
  // time grows with the square of the connections (5,000 over TCP never finished set-up).
  let going = false;
  const idle: Array<() => void> = [];
  const counts = { ok: 0, failed: 0, lost: 0 };
  let cpuAtStart = process.cpuUsage();
  const startedMs = performance.now();
  let tlsSession: string | undefined;

  const client = (n: number): Promise<void> => {
    const user = `${config.prefix}${n}`;
    const aor = `sip:${user}@${config.domain}`;
    const transport = config.tls ? 'tls' : 'tcp';
    const callId = `${user}-${process.pid}@load`;
    let cseq = 0;
    let socket: Socket | TLSSocket;
    let local = '';
    let pending = '';
    const register = () => {
      cseq++;
      socket.write(
        `REGISTER sip:${config.domain} SIP/2.0\r\nVia: SIP/2.0/${transport.toUpperCase()} ${local};branch=z9hG4bK-${n}-${cseq}\r\nMax-Forwards: 70\r\n` +
          `From: <${aor}>;tag=${n}\r\nTo: <${aor}>\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\n` +
          `Contact: <sip:${user}@${local};transport=${transport}>\r\nExpires: 3600\r\nUser-Agent: dnslb-bench\r\nContent-Length: 0\r\n\r\n`,
      );
    };
    return new Promise((resolve, reject) => {
      let answered = false;
      const onConnected = () => {
        local = `${socket.localAddress}:${socket.localPort}`;
        if (config.tls && tlsSession === undefined) {
          const tls = socket as TLSSocket;
          tlsSession = `${tls.getProtocol()} ${tls.getCipher().standardName}`;
        }
        register();
      };
      const localAddress = config.localAddresses?.[n % config.localAddresses.length];
      socket = config.tls
        ? connectTls({ host: config.host, port: config.port, ca: config.tls.ca, servername: config.tls.servername, ...(localAddress ? { localAddress } : {}) }, onConnected)
        : connectTcp({ host: config.host, port: config.port, ...(localAddress ? { localAddress } : {}) }, onConnected);
      socket.setNoDelay(true);
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        pending += chunk;
        for (;;) {
          const end = pending.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = pending.slice(0, end);
          const length = /\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)/i.exec(head);
          const total = end + 4 + (length ? Number(length[1]) : 0);
          if (pending.length < total) return;
          pending = pending.slice(total);
          const status = head.slice(8, 11);
          if (status[0] === '1') continue;
          if (!answered) {
            answered = true;
            if (status[0] === '2') resolve();
            else reject(new Error(`${user}: first REGISTER answered ${head.split('\r\n')[0]}`));
          } else if (measuring) {
            if (status[0] === '2') counts.ok++;
            else counts.failed++;
          }
          if (stopped) continue;
          if (going) register();
          else idle.push(register);
        }
      });
      socket.on('error', (error) => {
        if (!answered) reject(error);
      });
      socket.on('close', () => {
        if (answered && !stopped) counts.lost++;
        if (!answered) reject(new Error(`${user}: connection closed before the first answer`));
      });
    });
  };

  let next = config.first;
  const end = config.first + config.count;
  let setupRetries = 0;
  // A connection refused or reset while a thousand handshakes are under way (a busy server's accept
  // queue) is tried again, as a client would; only a connection that keeps failing ends the run.
  const setupOne = async (): Promise<void> => {
    while (next < end) {
      const n = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          await client(n);
          break;
        } catch (error) {
          if (attempt >= SETUP_ATTEMPTS) throw error;
          setupRetries++;
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SETUP_PARALLEL, config.count) }, setupOne));
  send({ type: 'ready', setupMs: Math.round(performance.now() - startedMs), setupRetries, ...(tlsSession ? { tlsSession } : {}) });
  process.on('message', (message: ToWorker) => {
    if (message.type === 'go') {
      going = true;
      for (const next of idle.splice(0)) next();
    } else if (message.type === 'measure') {
      cpuAtStart = process.cpuUsage();
      measuring = true;
    } else {
      measuring = false;
      stopped = true;
      const cpu = process.cpuUsage(cpuAtStart);
      process.send!({ type: 'done', ...counts, cpuUs: cpu.user + cpu.system } satisfies FromWorker, () => process.exit(0));
    }
  });
}

if (process.argv[1] === SELF && process.send) {
  try {
    await worker(JSON.parse(process.argv[2]!) as WorkerConfig);
  } catch (error) {
    process.send({ type: 'error', message: error instanceof Error ? error.message : String(error) } satisfies FromWorker, () => process.exit(1));
  }
}
