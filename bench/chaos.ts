// Chaos soak (issue 12 item 8): the example topology under `dnslb up --store etcd://…` (a copy on a
// loopback /24 of its own, etcd from Debian beside it), 2,000 simulated users placing calls, for N
// minutes, while faults are injected one at a time, at random and reproducibly from a seed:
//   kill       SIGKILL of a Front End server (the supervisor restarts it after restartDelayMs)
//   stop       SIGSTOP of a Front End server for longer than failAfter heartbeats, then SIGCONT
//   pair       a partition between two Front End servers (loopback iptables DROP, both ways)
//   isolate    a partition of one Front End server from every other server of the topology
//   dns        a DNS server restart (SIGKILL; the supervisor starts it again)
//   store      a store write stall: the etcd process SIGSTOPped for a few seconds, then SIGCONT —
//              every write (liveness, admin state) and every watch waits meanwhile
// The kinds come in a seeded shuffled cycle (each kind once before any repeats); targets, durations
// and the quiet gaps are drawn from the same seed. A fault is undone, then the next waits until the
// system has recovered (every user registered, every Front End in the pool answer) or 90 s.
// Checked all along (DNS dug 4×/s in-process, the simulator sampled every second): users registered
// (minimum, time below 99 %), calls dropped and setups failed per fault kind and outside faults,
// healthy servers missing from a pool answer (must be 0), flaps per server (answer membership
// changes), redirect loops and 482 Loop Detected (both must be 0), time to full recovery after each fault.
// Every iptables rule is removed and every stopped process continued on exit, error or signal.
// Run under the integration lock: npm run chaos [-- --minutes 10 --seed 1 --users 2000]; writes the
// table to bench/RESULTS.md ("Chaos soak"). test/integration/chaos-short.test.ts runs 60 s of it.
import { execFile, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { readEndpoint, readToken } from '../src/admin/credentials.ts';
import { callAdmin } from '../src/admin/http-api.ts';
import type { PoolStatus } from '../src/cli/commands/admin-client.ts';
import { Simulator, type SimulationSummary } from '../src/client/simulate.ts';
import { startEtcd, type EtcdServer } from '../test/helpers/etcd.ts';
import { startUp, type UpSystem } from '../test/helpers/up.ts';
import { machineLine, writeSection } from './results.ts';

const run = promisify(execFile);

export const FAULT_KINDS = ['kill', 'stop', 'pair', 'isolate', 'dns', 'store'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
const FRONTENDS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
/** Servers of the example topology besides the Front Ends (an isolated server is cut off from these too). */
const OTHER_SERVERS = [31, 32, 41, 42, 61, 62];
const RECOVERY_CAP_MS = 90_000;

export interface ChaosOptions {
  /** Loopback /24 of the run, e.g. "127.0.86". */
  net: string;
  durationMs: number;
  seed: number;
  users: number;
  callsPerMinute: number;
  /** Print progress lines. */
  log?: (line: string) => void;
}

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  injectedAtMs: number;
  /** When it was undone (kill/dns: the same as injected; the supervisor does the rest). */
  undoneAtMs: number;
  /**
   * Time from undo to full recovery (every user registered, every Front End answered and seen up by
   * all, a killed process replaced by a new one); null: not within the cap.
   */
  recoveryMs: number | null;
}

export interface ChaosResult {
  seed: number;
  durationMs: number;
  users: number;
  registeredMin: number;
  /** The minimum of registered users by the fault active when it was sampled ("none" outside faults). */
  registeredMinBy: Record<string, number>;
  /** Time with fewer than 99 % of the users registered, after the first time all were. */
  below99Ms: number;
  /** Calls dropped / setups failed, by the fault active when they were counted ("none" outside faults). */
  dropped: Record<string, number>;
  failed: Record<string, number>;
  failedBy: Record<string, number>;
  callsAttempted: number;
  callsUp: number;
  /** Pool answers that left out a server that was healthy (not faulted, not recovering) at the time. */
  healthyMissing: number;
  healthyMissingExamples: string[];
  answers: number;
  /** Membership changes of each Front End in the pool answers. */
  flaps: Record<string, number>;
  /**
   * Sign-ins given up after more than 2 redirects, by the fault active when they were counted, and
   * calls whose INVITE was redirected more often than a client follows.
   */
  redirectLoops: Record<string, number>;
  callRedirectLoops: number;
  /** Call setups that failed with 482 Loop Detected (a request handed back to a server it came through): must be 0. */
  loopDetected: number;
  faults: FaultRecord[];
}

/** Mulberry32: a small seeded generator (the same seed gives the same faults, targets and gaps). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Everything that must be undone whatever happens: DROP rules inserted, processes stopped. */
class Undo {
  private readonly rules = new Set<string>();
  private readonly stopped = new Set<number>();
  private readonly onExit = () => this.allSync();
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.allSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor() {
    process.on('exit', this.onExit);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /**
   * DROP rules for every (from, to) pair, inserted in one iptables-restore transaction: the partition
   * starts at one moment, not rule by rule (16 iptables runs for an isolation took a second or more).
   */
  async drop(pairs: readonly (readonly [string, string])[]): Promise<void> {
    if (pairs.some(([from, to]) => !from.startsWith('127.') || !to.startsWith('127.'))) throw new Error('partitions only on loopback');
    const rules = pairs.map(([from, to]) => ['INPUT', '-s', `${from}/32`, '-d', `${to}/32`, '-j', 'DROP'].join(' '));
    for (const rule of rules) this.rules.add(rule);
    await restore(rules.map((rule) => `-I ${rule}`));
  }

  /** Removes every DROP rule in one transaction: the partition ends at one moment (the recovery clock starts then). */
  async heal(): Promise<void> {
    const rules = [...this.rules];
    if (rules.length === 0) return;
    try {
      await restore(rules.map((rule) => `-D ${rule}`));
    } catch {
      for (const rule of rules) await run('iptables', ['-D', ...rule.split(' ')]).catch(() => {});
    }
    this.rules.clear();
  }

  pause(pid: number): void {
    this.stopped.add(pid);
    process.kill(pid, 'SIGSTOP');
  }

  resume(pid: number): void {
    this.stopped.delete(pid);
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }

  allSync(): void {
    for (const rule of this.rules) {
      try {
        execFileSync('iptables', ['-D', ...rule.split(' ')], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    this.rules.clear();
    for (const pid of this.stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    this.stopped.clear();
  }

  dispose(): void {
    this.allSync();
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/** Applies `-I`/`-D` lines to the filter table in one `iptables-restore --noflush` run (atomic). */
async function restore(lines: readonly string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('iptables-restore', ['--noflush'], (error) => (error ? reject(error) : resolve()));
    child.stdin?.end(`*filter\n${lines.join('\n')}\nCOMMIT\n`);
  });
}

/** One A query for the pool, in-process (no dig per query: 4 a second for minutes). */
async function poolAnswer(socket: dgram.Socket, server: { address: string; port: number }): Promise<string[] | null> {
  const id = Math.floor(Math.random() * 0xffff);
  socket.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'pool01.contoso.com' }] }), server.port, server.address);
  const deadline = Date.now() + 1000;
  while (Date.now() < deadline) {
    const reply = await Promise.race([once(socket, 'message').then(([message]) => message as Buffer), sleep(deadline - Date.now()).then(() => null)]);
    if (reply === null) return null;
    const packet = dnsPacket.decode(reply) as dnsPacket.DecodedPacket & { rcode?: string };
    if (packet.id !== id) continue;
    if (packet.rcode !== 'NOERROR') return null;
    return (packet.answers ?? []).flatMap((answer) => (answer.type === 'A' ? [String(answer.data)] : [])).sort();
  }
  return null;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => {});
  const random = seeded(options.seed);
  const between = (lowMs: number, highMs: number) => Math.round(lowMs + random() * (highMs - lowMs));
  const { net } = options;
  const feAddress = (index: number) => `${net}.${11 + index}`;
  const undo = new Undo();
  let etcd: EtcdServer | undefined;
  let system: UpSystem | undefined;
  let simulator: Simulator | undefined;
  const socket = dgram.createSocket('udp4');
  try {
    etcd = await startEtcd({ address: `${net}.90` });
    // The example as it is (heartbeat 1 s × failAfter 3, rehome 100 per second), on its own /24.
    system = await startUp(net, { args: ['--store', `${etcd.url}/dnslb-chaos/`] });
    const url = (await readEndpoint(system.dataDir)).url;
    const token = await readToken(system.dataDir);
    const status = async (): Promise<PoolStatus> => (await callAdmin(url, token, 'GET', '/status')) as PoolStatus;
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));

    simulator = new Simulator({
      domain: 'contoso.com',
      dnsServers: [`${system.dns.address}:${system.dns.port}`],
      users: options.users,
      callsPerMinute: options.callsPerMinute,
      callHoldMs: 10_000,
      random: seeded(options.seed + 1),
      // A dead flow is noticed within ~20 s (the simulator's defaults: keep-alive 30 s, pong 10 s) — shorter here.
      userAgent: { keepAliveIntervalMs: 10_000, pongTimeoutMs: 5000 },
    });
    simulator.start();
    const sim = simulator;
    const everyone = () => sim.summary().registered === options.users;
    for (const deadline = Date.now() + 120_000; !everyone(); ) {
      if (Date.now() > deadline) throw new Error(`not every user signed in within 120 s: ${JSON.stringify(sim.summary())}`);
      await sleep(500);
    }
    log(`chaos: ${options.users} users signed in; faults for ${Math.round(options.durationMs / 1000)} s, seed ${options.seed}`);

    // --- what is faulted when: servers (by address) that may be missing from answers ---
    const excused = new Map<string, number>(); // address → count of faults excusing it
    const excuse = (address: string) => excused.set(address, (excused.get(address) ?? 0) + 1);
    const forgive = (address: string) => excused.set(address, (excused.get(address) ?? 1) - 1);
    let activeKind: string = 'none';
    const result: ChaosResult = {
      seed: options.seed,
      durationMs: options.durationMs,
      users: options.users,
      registeredMin: options.users,
      registeredMinBy: {},
      below99Ms: 0,
      dropped: {},
      failed: {},
      failedBy: {},
      callsAttempted: 0,
      callsUp: 0,
      healthyMissing: 0,
      healthyMissingExamples: [],
      answers: 0,
      flaps: Object.fromEntries(FRONTENDS.map((fqdn) => [fqdn, 0])),
      redirectLoops: {},
      callRedirectLoops: 0,
      loopDetected: 0,
      faults: [],
    };
    const frontendAddresses = FRONTENDS.map((_, index) => feAddress(index));
    let lastAnswer: string[] = frontendAddresses;
    let running = true;

    // --- DNS, 4 times a second ---
    const digger = (async () => {
      while (running) {
        const startedMs = Date.now();
        const answer = await poolAnswer(socket, system!.dns).catch(() => null);
        if (answer !== null) {
          result.answers++;
          for (const [index, address] of frontendAddresses.entries()) {
            if (answer.includes(address) !== lastAnswer.includes(address)) result.flaps[FRONTENDS[index]!]!++;
            if (!answer.includes(address) && (excused.get(address) ?? 0) === 0) {
              result.healthyMissing++;
              if (result.healthyMissingExamples.length < 10) result.healthyMissingExamples.push(`${new Date().toISOString()} ${address} missing (${answer.join(' ')}) during ${activeKind}`);
            }
          }
          lastAnswer = answer;
        }
        await sleep(Math.max(0, 250 - (Date.now() - startedMs)));
      }
    })();

    // --- the simulator, every second: registered users and call counts by the fault active ---
    let previous: SimulationSummary = sim.summary();
    const add = (record: Record<string, number>, key: string, count: number) => {
      if (count > 0) record[key] = (record[key] ?? 0) + count;
    };
    const sampler = (async () => {
      while (running) {
        await sleep(1000);
        const now = sim.summary();
        result.registeredMin = Math.min(result.registeredMin, now.registered);
        result.registeredMinBy[activeKind] = Math.min(result.registeredMinBy[activeKind] ?? options.users, now.registered);
        if (now.registered < options.users * 0.99) result.below99Ms += 1000;
        add(result.dropped, activeKind, now.calls.dropped - previous.calls.dropped);
        add(result.failed, activeKind, now.calls.failed - previous.calls.failed);
        add(result.redirectLoops, activeKind, now.redirectLoops - previous.redirectLoops);
        previous = now;
      }
    })();

    /** A process killed by the fault (kill, dns): recovered only once another runs in its place. */
    let killed: { server: string; pid: number } | null = null;
    const recovered = async (): Promise<boolean> => {
      if (!everyone()) return false;
      if (frontendAddresses.some((address) => !lastAnswer.includes(address))) return false;
      const now = await status();
      if (killed) {
        const { server, pid: old } = killed;
        const pid = server === 'dns' ? now.dns?.pid : now.servers.find((entry) => entry.server === server)?.process?.pid;
        if (pid === undefined || pid === old) return false;
      }
      const servers = now.servers.filter((entry) => FRONTENDS.includes(entry.server));
      return servers.every((entry) => entry.health?.alive === 'up' && entry.health.down === 0);
    };
    const pidOf = async (server: string): Promise<number> => {
      const entry = (await status()).servers.find((candidate) => candidate.server === server);
      const pid = entry?.process?.pid;
      if (pid === undefined) throw new Error(`${server} has no running process: ${JSON.stringify(entry?.process)}`);
      return pid;
    };

    const endMs = Date.now() + options.durationMs;
    const order: FaultKind[] = [];
    while (Date.now() < endMs) {
      await sleep(Math.min(between(5000, 15_000), Math.max(0, endMs - Date.now())));
      if (Date.now() >= endMs) break;
      if (order.length === 0) {
        // A seeded shuffle of every kind: each comes once before any repeats.
        const kinds = [...FAULT_KINDS];
        for (let index = kinds.length - 1; index > 0; index--) {
          const other = Math.floor(random() * (index + 1));
          [kinds[index], kinds[other]] = [kinds[other]!, kinds[index]!];
        }
        order.push(...kinds);
      }
      const kind = order.shift()!;
      const index = Math.floor(random() * FRONTENDS.length);
      const server = FRONTENDS[index]!;
      const address = feAddress(index);
      const holdMs = between(4000, 9000); // failAfter 3 × 1 s heartbeat = 3 s: every hold is longer
      const record: FaultRecord = { kind, target: '', injectedAtMs: Date.now(), undoneAtMs: 0, recoveryMs: null };
      activeKind = kind;
      try {
        switch (kind) {
          case 'kill': {
            record.target = server;
            excuse(address);
            killed = { server, pid: await pidOf(server) };
            process.kill(killed.pid, 'SIGKILL');
            break;
          }
          case 'stop': {
            record.target = `${server} for ${holdMs} ms`;
            excuse(address);
            const pid = await pidOf(server);
            undo.pause(pid);
            await sleep(holdMs);
            undo.resume(pid);
            break;
          }
          case 'pair': {
            const other = (index + 1 + Math.floor(random() * 2)) % 3;
            record.target = `${server} ⟷ ${FRONTENDS[other]} for ${holdMs} ms`;
            await undo.drop([
              [address, feAddress(other)],
              [feAddress(other), address],
            ]);
            await sleep(holdMs);
            await undo.heal();
            break;
          }
          case 'isolate': {
            record.target = `${server} from all for ${holdMs} ms`;
            excuse(address);
            const peers = [...frontendAddresses.filter((candidate) => candidate !== address), ...OTHER_SERVERS.map((host) => `${net}.${host}`)];
            await undo.drop(peers.flatMap((peer) => [[address, peer] as const, [peer, address] as const]));
            await sleep(holdMs);
            await undo.heal();
            break;
          }
          case 'dns': {
            record.target = 'dns1.contoso.com';
            const pid = (await status()).dns?.pid;
            if (pid === undefined) throw new Error('the DNS server has no running process');
            killed = { server: 'dns', pid };
            process.kill(pid, 'SIGKILL');
            break;
          }
          case 'store': {
            record.target = `etcd for ${holdMs} ms`;
            undo.pause(etcd.process.pid);
            await sleep(holdMs);
            undo.resume(etcd.process.pid);
            break;
          }
        }
      } catch (error) {
        // A target not there to fault (a server still not restarted after the recovery cap): say so, go on.
        await undo.heal();
        record.target += ` (not injected: ${(error as Error).message})`;
      }
      record.undoneAtMs = Date.now();
      log(`chaos: ${kind} ${record.target}`);
      for (const deadline = Date.now() + RECOVERY_CAP_MS; Date.now() < deadline; ) {
        if (await recovered().catch(() => false)) {
          record.recoveryMs = Date.now() - record.undoneAtMs;
          break;
        }
        await sleep(250);
      }
      killed = null;
      if (kind === 'kill' || kind === 'stop' || kind === 'isolate') forgive(address);
      activeKind = 'none';
      result.faults.push(record);
      log(`chaos: ${kind} recovered ${record.recoveryMs === null ? 'not within 90 s' : `in ${record.recoveryMs} ms`}`);
    }
    running = false;
    await Promise.all([digger, sampler]);
    const final = sim.summary();
    result.callsAttempted = final.calls.attempted;
    result.callsUp = final.calls.up;
    result.failedBy = final.calls.failedBy;
    // A call whose INVITE was redirected more often than a client follows is a loop too.
    result.callRedirectLoops = Object.entries(final.calls.failedBy).filter(([why]) => /^rejected 30[12]/.test(why)).reduce((sum, [, count]) => sum + count, 0);
    result.loopDetected = final.calls.failedBy['rejected 482 Loop Detected'] ?? 0;
    return result;
  } finally {
    undo.dispose();
    await simulator?.stop().catch(() => {});
    socket.close();
    await system?.stop();
    await etcd?.dispose();
  }
}

const seconds = (ms: number | null) => (ms === null ? 'not within 90 s' : `${(ms / 1000).toFixed(1)} s`);

/** The soak's table, as bench/RESULTS.md holds it. */
export function formatChaos(result: ChaosResult): string {
  const faultKinds = ['none', ...FAULT_KINDS];
  const counts = (record: Record<string, number>) => faultKinds.filter((kind) => record[kind]).map((kind) => `${kind === 'none' ? 'outside faults' : kind} ${record[kind]}`).join(', ') || '0';
  const lines = [
    `| measure | value |`,
    `|---|---|`,
    `| users registered, minimum | ${result.registeredMin} of ${result.users} (by fault active: ${faultKinds.filter((kind) => result.registeredMinBy[kind] !== undefined).map((kind) => `${kind === 'none' ? 'outside faults' : kind} ${result.registeredMinBy[kind]}`).join(', ')}) |`,
    `| time below 99 % registered | ${seconds(result.below99Ms)} |`,
    `| calls placed / answered | ${result.callsAttempted} / ${result.callsUp} |`,
    `| calls dropped, by fault active | ${counts(result.dropped)} |`,
    `| call setups failed, by fault active | ${counts(result.failed)} |`,
    `| healthy servers missing from DNS answers (must be 0) | ${result.healthyMissing} of ${result.answers} answers |`,
    `| flaps per server (answer membership changes) | ${Object.entries(result.flaps).map(([server, count]) => `${server.split('.')[0]} ${count}`).join(', ')} |`,
    `| redirect loops (must be 0): sign-ins given up after 2 redirects, by fault active; calls | ${counts(result.redirectLoops)}; calls ${result.callRedirectLoops} |`,
    `| call setups failed 482 Loop Detected (must be 0) | ${result.loopDetected} |`,
    '',
    '| # | fault | target | full recovery after undo |',
    '|---|---|---|---|',
    ...result.faults.map((fault, index) => `| ${index + 1} | ${fault.kind} | ${fault.target} | ${seconds(fault.recoveryMs)} |`),
  ];
  if (Object.keys(result.failedBy).length > 0) lines.push('', `Failed setups by final status: ${JSON.stringify(result.failedBy)}.`);
  if (result.healthyMissingExamples.length > 0) lines.push('', 'Healthy servers missing:', ...result.healthyMissingExamples.map((example) => `- ${example}`));
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argument = (name: string, fallback: number) => {
    const index = process.argv.indexOf(`--${name}`);
    const value = index > 0 ? Number(process.argv[index + 1]) : fallback;
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
    return value;
  };
  const minutes = argument('minutes', 10);
  const seed = argument('seed', 1);
  const users = argument('users', 2000);
  const result = await runChaos({ net: '127.0.86', durationMs: minutes * 60_000, seed, users, callsPerMinute: 600, log: (line) => console.log(line) });
  const table = formatChaos(result);
  console.log(table);
  await writeSection(
    'Chaos soak',
    `\`npm run chaos -- --minutes ${minutes} --seed ${seed} --users ${users}\` — the example topology under \`dnslb up --store etcd://\` (heartbeat 1 s × failAfter 3), ${users} simulated users, 600 calls/min of 10 s; one fault at a time from a seeded shuffle (kill, stop, pair, isolate, dns, store), the next after full recovery. Store write stall = the etcd process SIGSTOPped. ${machineLine()}\n\n${table}`,
  );
  if (result.healthyMissing > 0 || Object.keys(result.redirectLoops).length > 0 || result.callRedirectLoops > 0 || result.loopDetected > 0) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
