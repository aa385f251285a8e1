// Startup benchmark: how soon the CLI answers and how soon `dnslb up` serves. Two parts:
//   cli  `dnslb --help` and `dnslb topology validate examples/contoso.yaml`, each timed by hyperfine
//        (Debian's hyperfine; the part is skipped, and says so, where it is missing);
//   up   `dnslb up` on the example topology (moved onto 127.0.21.x): from the spawn until the DNS
//        answers the pool name, and until every SIP server (frontend, director, mediation, edge: on its internal address) answers
//        OPTIONS over TCP and over TLS; each run twice: a first start in a fresh data dir (it
//        publishes the topology and makes the TLS certificates), then a restart on that data dir.
// Run: npm run bench:startup [-- --runs N] [-- --bin PATH]  (PATH: another checkout's bin/dnslb.js,
// to compare builds). Not a test: the figures depend on the machine.
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import dnsPacket from 'dns-packet';
import { RUNNABLE_KINDS } from '../src/cli/commands/certs.ts';
import { parseFile } from '../src/topology/parse.ts';
import { REPO } from '../test/helpers/dns-process.ts';
import { freePort } from '../test/helpers/free-port.ts';
import { start, stopAll, waitUntil } from '../test/helpers/process.ts';
import { exampleTopology } from '../test/helpers/up.ts';
import { machineLine, median, writeSection } from './results.ts';

const NET = '127.0.21';
const argument = (name: string, fallback: string) => {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1]! : fallback;
};
const RUNS = Number(argument('runs', '5'));
const BIN = argument('bin', join(REPO, 'bin/dnslb.js'));
const POLL_MS = 10;
/** A start that takes longer than this is reported as failed, not waited for. */
const GIVE_UP_MS = 60_000;

const seconds = (ms: number) => (ms / 1000).toFixed(2);
const spread = (values: readonly number[]) => `${seconds(Math.min(...values))}–${seconds(Math.max(...values))}`;

/** True when the DNS answers the pool name with at least one A record (RFC 1035 §4.1.1: RCODE 0). */
async function dnsAnswers(port: number): Promise<boolean> {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const id = Math.floor(Math.random() * 0xffff);
    socket.send(dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name: 'pool01.contoso.com' }] }), port, `${NET}.1`);
    const reply = await Promise.race([once(socket, 'message').then(([message]) => dnsPacket.decode(message as Buffer) as dnsPacket.DecodedPacket & { rcode: string }), sleep(200).then(() => undefined)]);
    return reply !== undefined && reply.id === id && reply.rcode === 'NOERROR' && (reply.answers ?? []).some((answer) => answer.type === 'A');
  } finally {
    socket.close();
  }
}

/** True when `socket` (connected) answers an OPTIONS with any SIP response (RFC 3261 §11). */
async function sipAnswers(socket: Socket, address: string, transport: 'TCP' | 'TLS'): Promise<boolean> {
  const callId = `startup-${Math.random().toString(36).slice(2)}`;
  const tag = Math.random().toString(36).slice(2);
  socket.write(
    [
      `OPTIONS sip:${address} SIP/2.0`,
      `Via: SIP/2.0/${transport} 127.0.0.1:${socket.localPort ?? 0};branch=z9hG4bK${tag}`,
      'Max-Forwards: 70',
      `From: <sip:bench@contoso.com>;tag=${tag}`,
      `To: <sip:${address}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
  let received = '';
  const answered = new Promise<boolean>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (/^SIP\/2\.0 \d{3} /.test(received) && received.includes(callId)) resolve(true);
    });
    socket.on('close', () => resolve(false));
    socket.on('error', () => resolve(false));
  });
  return Promise.race([answered, sleep(500).then(() => false)]);
}

async function tcpAnswers(address: string, port: number): Promise<boolean> {
  const socket = tcpConnect({ host: address, port, localAddress: '127.0.0.1' });
  try {
    const connected = await Promise.race([once(socket, 'connect').then(() => true), once(socket, 'error').then(() => false)]);
    return connected && (await sipAnswers(socket, address, 'TCP'));
  } finally {
    socket.destroy();
  }
}

async function tlsAnswers(address: string, port: number, fqdn: string, caFile: string): Promise<boolean> {
  const ca = await readFile(caFile, 'utf8').catch(() => undefined);
  if (ca === undefined) return false; // the certificates are not made yet
  const socket = tlsConnect({ host: address, port, servername: fqdn, ca });
  try {
    const connected = await Promise.race([once(socket, 'secureConnect').then(() => true), once(socket, 'error').then(() => false)]);
    return connected && (await sipAnswers(socket, address, 'TLS'));
  } finally {
    socket.destroy();
  }
}

/** Polls `ready` every POLL_MS; resolves with the ms since `t0` at which it first held. */
async function firstTrue(t0: number, ready: () => Promise<boolean>): Promise<number> {
  for (;;) {
    if (await ready().catch(() => false)) return performance.now() - t0;
    if (performance.now() - t0 > GIVE_UP_MS) throw new Error(`not ready after ${GIVE_UP_MS} ms`);
    await sleep(POLL_MS);
  }
}

interface UpRun {
  dnsMs: number;
  /** Per server, the later of its TCP and TLS answers. */
  sipMs: Map<string, number>;
  allMs: number;
  /** CPU (user + system) when everything answered: the whole tree (`up`, its children, and the processes it ran and reaped: openssl, haproxy -c), and the mean of the node children (SIP servers and DNS). */
  cpu: { totalMs: number; perNodeChildMs: number };
}

/** CPU ms (user + system) of `pid` from /proc, and of its reaped children. */
async function cpuOf(pid: number): Promise<{ ppid: number; ownMs: number; reapedMs: number; commandLine: string } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  const commandLine = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
  return { ppid: fields[1]!, ownMs: (fields[11]! + fields[12]!) * tick, reapedMs: (fields[13]! + fields[14]!) * tick, commandLine };
}

/** The CPU `up` (pid) and everything under it used so far. */
async function treeCpu(pid: number): Promise<UpRun['cpu']> {
  const all = new Map<number, NonNullable<Awaited<ReturnType<typeof cpuOf>>>>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const figures = await cpuOf(Number(entry));
    if (figures) all.set(Number(entry), figures);
  }
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [candidate, figures] of all) if (!tree.has(candidate) && tree.has(figures.ppid)) grew = tree.add(candidate).size > 0;
  }
  let totalMs = all.get(pid)?.reapedMs ?? 0;
  const nodeChildren: number[] = [];
  for (const member of tree) {
    const figures = all.get(member);
    if (!figures) continue;
    totalMs += figures.ownMs;
    if (member !== pid && / (server|dns serve) /.test(figures.commandLine) && figures.commandLine.includes('dnslb')) nodeChildren.push(figures.ownMs);
  }
  return { totalMs, perNodeChildMs: nodeChildren.length > 0 ? nodeChildren.reduce((sum, ms) => sum + ms, 0) / nodeChildren.length : 0 };
}

/** Processes still running with `dataDir` on their command line (children left behind by a killed `up`). */
async function leftBehind(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.split('\0').includes(dataDir)) pids.push(Number(entry));
  }
  return pids;
}

async function upOnce(dataDir: string, dnsPort: number): Promise<UpRun> {
  const topologyFile = join(dataDir, 'topology.yaml');
  const topology = await parseFile(topologyFile);
  const servers = topology.pools.filter((pool) => RUNNABLE_KINDS.has(pool.kind)).flatMap((pool) => pool.servers.map((server) => ({ fqdn: server.fqdn, address: server.ipv4!, tcpPort: pool.sip?.tcpPort ?? 5060, tlsPort: pool.sip?.tlsPort ?? 5061 })));
  const caFile = join(dataDir, 'tls', 'ca.pem');
  const t0 = performance.now();
  const up = start(process.execPath, [BIN, '--data-dir', dataDir, 'up', topologyFile, '--admin-listen', '127.0.0.1:0'], { cwd: REPO });
  try {
    const exited = once(up.child, 'exit').then(() => {
      throw new Error(`dnslb up exited early:\n${up.output()}`);
    });
    const sipMs = new Map<string, number>();
    const [dnsMs] = await Promise.race([
      Promise.all([
        firstTrue(t0, () => dnsAnswers(dnsPort)),
        ...servers.map(async (server) => {
          const tcpMs = await firstTrue(t0, () => tcpAnswers(server.address, server.tcpPort));
          const tlsMs = await firstTrue(t0, () => tlsAnswers(server.address, server.tlsPort, server.fqdn, caFile));
          sipMs.set(server.fqdn, Math.max(tcpMs, tlsMs));
        }),
      ]),
      exited,
    ]);
    const cpu = await treeCpu(up.child.pid!);
    return { dnsMs: dnsMs!, sipMs, allMs: Math.max(dnsMs!, ...sipMs.values()), cpu };
  } finally {
    // `dnslb up` installs its SIGTERM handler (which stops the children) once it has printed that it
    // runs; a SIGTERM before that ends it alone and leaves its children behind.
    await waitUntil('dnslb up running', () => up.output().includes('dnslb up: running'), { process: up, timeoutMs: 30_000 }).catch(() => undefined);
    await up.stop(10_000);
    // The supervisor stops its children on SIGTERM; should it have been killed instead, they would
    // be left running on the benchmark's addresses: stop them by PID and say so.
    const left = await leftBehind(dataDir);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    if (left.length > 0) console.warn(`dnslb up left ${left.length} processes running after it stopped (killed: ${left.join(' ')})`);
  }
}

/** hyperfine's median and spread of `command` (run from the repository), or undefined without hyperfine. */
async function hyperfine(command: string): Promise<{ medianS: number; minS: number; maxS: number; userS: number; systemS: number; runs: number } | undefined> {
  const exportFile = join(tmpdir(), `dnslb-bench-startup-${process.pid}.json`);
  const result = spawnSync('hyperfine', ['--warmup', '2', '--runs', '15', '--export-json', exportFile, '--style', 'none', command], { cwd: REPO, encoding: 'utf8' });
  if (result.error || result.status !== 0) return undefined;
  const report = JSON.parse(await readFile(exportFile, 'utf8')) as { results: { median: number; min: number; max: number; user: number; system: number; times: number[] }[] };
  await rm(exportFile, { force: true });
  const [entry] = report.results;
  return entry && { medianS: entry.median, minS: entry.min, maxS: entry.max, userS: entry.user, systemS: entry.system, runs: entry.times.length };
}

async function main(): Promise<void> {
  const lines: string[] = [];
  const cliRows: string[] = [];
  for (const args of ['--help', 'topology validate examples/contoso.yaml']) {
    const figures = await hyperfine(`node ${BIN} ${args}`);
    cliRows.push(figures ? `| \`dnslb ${args}\` | ${figures.medianS.toFixed(3)} | ${figures.minS.toFixed(3)}–${figures.maxS.toFixed(3)} | ${(figures.userS + figures.systemS).toFixed(3)} | ${figures.runs} |` : `| \`dnslb ${args}\` | hyperfine not installed (apt-get install hyperfine) | | | |`);
    console.log(cliRows.at(-1));
  }
  const runs: UpRun[] = [];
  const restarts: UpRun[] = [];
  const describeRun = (result: UpRun) => `DNS ${seconds(result.dnsMs)} s, every SIP server ${seconds(result.allMs)} s, CPU ${seconds(result.cpu.totalMs)} s (${seconds(result.cpu.perNodeChildMs)} s per node child) (${[...result.sipMs].map(([fqdn, ms]) => `${fqdn.split('.')[0]} ${seconds(ms)}`).join(', ')})`;
  for (let run = 0; run < RUNS; run++) {
    const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-bench-startup-'));
    try {
      const dnsPort = await freePort(`${NET}.1`);
      await writeFile(join(dataDir, 'topology.yaml'), await exampleTopology(NET, dnsPort));
      runs.push(await upOnce(dataDir, dnsPort));
      console.log(`up run ${run + 1}, first start: ${describeRun(runs.at(-1)!)}`);
      restarts.push(await upOnce(dataDir, dnsPort));
      console.log(`up run ${run + 1}, restart:     ${describeRun(restarts.at(-1)!)}`);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  const dns = runs.map((run) => run.dnsMs);
  const all = runs.map((run) => run.allMs);
  const restartDns = restarts.map((run) => run.dnsMs);
  const restartAll = restarts.map((run) => run.allMs);
  const cpuRow = (label: string, of: (run: UpRun) => number) => {
    const first = runs.map(of);
    const again = restarts.map(of);
    return `| ${label} | ${seconds(median(first))} | ${spread(first)} | ${seconds(median(again))} | ${spread(again)} |`;
  };
  lines.push(
    machineLine() + '.',
    `Command: \`npm run bench:startup\`${BIN === join(REPO, 'bin/dnslb.js') ? '' : ` with --bin ${BIN}`}. The CLI through \`hyperfine --warmup 2 --runs 15\` (wall time; CPU is user + system, the mean per run).`,
    '',
    '| command | median (s) | min–max (s) | CPU (s) | runs |',
    '|---|---:|---:|---:|---:|',
    ...cliRows,
    '',
    `\`dnslb up\` on examples/contoso.yaml (moved to ${NET}.x): from the spawn until the DNS answers \`pool01.contoso.com A\`, and until each of the ${runs[0]?.sipMs.size ?? 0} SIP servers answers OPTIONS over TCP and TLS (polled every ${POLL_MS} ms). ${RUNS} runs of each: a first start in a fresh data dir (publishes the topology, makes the CA and a certificate per server with openssl), then a restart on that data dir. CPU: user + system time from /proc when everything answered, of \`up\`, every process under it and those it ran and reaped (openssl, haproxy -c); per node child: the mean of the SIP servers and the DNS (the work they did after listening until the last one answered included).`,
    '',
    '| | first start: median (s) | min–max (s) | restart: median (s) | min–max (s) |',
    '|---|---:|---:|---:|---:|',
    `| DNS answers | ${seconds(median(dns))} | ${spread(dns)} | ${seconds(median(restartDns))} | ${spread(restartDns)} |`,
    `| DNS and every SIP server answer | ${seconds(median(all))} | ${spread(all)} | ${seconds(median(restartAll))} | ${spread(restartAll)} |`,
    cpuRow('CPU by then, all processes (s)', (run) => run.cpu.totalMs),
    cpuRow('CPU by then, per node child (s)', (run) => run.cpu.perNodeChildMs),
    `| goal (≤ 2 s for everything) | ${median(all) <= 2000 ? 'met' : `missed by ${seconds(median(all) - 2000)} s`} | | ${median(restartAll) <= 2000 ? 'met' : `missed by ${seconds(median(restartAll) - 2000)} s`} | |`,
  );
  console.log(lines.join('\n'));
  // Another build's figures are for comparing, printed only: the section holds this checkout's.
  if (BIN === join(REPO, 'bin/dnslb.js')) await writeSection('Startup', lines.join('\n'));
}

try {
  await main();
} finally {
  await stopAll();
}
