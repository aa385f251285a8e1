// What the pool benchmarks (bench/failover.ts, bench/pool12.ts) read from a running `dnslb up`: every
// server's own status through the supervisor's GET /status, sampled until a condition holds, and each
// receiving server's own count of arrivals (GET /arrivals). Moves are counted at the servers: the
// receivers' bindings and the senders' hand-over counters, never predicted from the plan.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { callAdmin } from '../src/admin/http-api.ts';
import type { PoolStatus } from '../src/cli/commands/admin-client.ts';
import { stopAll } from '../test/helpers/process.ts';

export const POLL_MS = 100;

export interface ServerSample {
  primary: number;
  backup: number;
  state: string;
  topologyVersion: number;
  /** Since the server started: users it handed over (deactivated), per reason (src/frontend/handover.ts). */
  handedOver: Record<string, number>;
  /** Users still queued in its hand-over queue. */
  queued: number;
  /** Peers added by a published version that it has not heard from yet. */
  commissioning: number;
  rssBytes: number;
  /** SIP messages received on all its flows (requests and answers), since it started. */
  messagesReceived: number;
  /** Liveness reports it wrote to the store, since it started. */
  livenessWrites: number;
  /** REGISTERs it answered with a redirect (3xx), since it started. */
  redirects: number;
  pid: number | undefined;
}

export interface Sample {
  atMs: number;
  bindings: Map<string, ServerSample>;
}

/** The part of a server's own GET /status (src/frontend/server.ts FrontEndStatus) that the benchmarks read. */
interface OwnStatus {
  state: string;
  topologyVersion: number;
  bindings: { bindingsPrimary: number; bindingsBackup: number };
  memory?: { rssBytes: number };
  transport?: { messagesReceived: number };
  registerAnswersByClass?: Record<string, number>;
  resilience?: { commissioning: string[]; handover: { handedOverTotal: Record<string, number>; run: { remaining: number } }; liveness?: { reportsWritten: number } };
}

export class PoolSampler {
  constructor(
    private readonly admin: { url: string; token: string; dataDir: string },
    private readonly pool: string,
  ) {}

  async sample(): Promise<Sample> {
    const status = (await callAdmin(this.admin.url, this.admin.token, 'GET', '/status')) as PoolStatus;
    const bindings = new Map<string, ServerSample>();
    for (const entry of status.servers) {
      if (entry.pool !== this.pool) continue;
      const own = entry.status as OwnStatus | undefined;
      bindings.set(entry.server, {
        primary: own?.bindings.bindingsPrimary ?? 0,
        backup: own?.bindings.bindingsBackup ?? 0,
        state: own?.state ?? entry.process?.state ?? 'unknown',
        topologyVersion: own?.topologyVersion ?? 0,
        handedOver: own?.resilience?.handover.handedOverTotal ?? {},
        queued: own?.resilience?.handover.run.remaining ?? 0,
        commissioning: own?.resilience?.commissioning.length ?? 0,
        rssBytes: own?.memory?.rssBytes ?? 0,
        messagesReceived: own?.transport?.messagesReceived ?? 0,
        livenessWrites: own?.resilience?.liveness?.reportsWritten ?? 0,
        redirects: own?.registerAnswersByClass?.['3xx'] ?? 0,
        pid: entry.process?.pid,
      });
    }
    return { atMs: Date.now(), bindings };
  }

  /** Samples until `done`; returns every sample (the last one satisfied `done`). */
  async until(what: string, done: (sampled: Sample) => boolean, timeoutMs = 300_000): Promise<Sample[]> {
    const samples: Sample[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const sampled = await this.sample();
      samples.push(sampled);
      if (done(sampled)) return samples;
      if (Date.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs} ms: ${JSON.stringify([...sampled.bindings])}`);
      await sleep(POLL_MS);
    }
  }

  /**
   * The most users that arrived at `server` in any 1 s window since `sinceMs`, by the server's own
   * record (GET /arrivals on its admin API: 100 ms buckets, src/registrar/arrivals.ts).
   */
  async peakPerSecond(server: string, sinceMs: number): Promise<number> {
    const record = JSON.parse(await readFile(join(this.admin.dataDir, 'servers', `${server}.json`), 'utf8')) as { url: string };
    const answer = (await callAdmin(record.url, this.admin.token, 'GET', `/arrivals?windowMs=1000&since=${sinceMs}`)) as { peak: { count: number } };
    return answer.peak.count;
  }

  /** "fe1 95/s, fe3 97/s" */
  async peaks(servers: readonly string[], sinceMs: number): Promise<string> {
    const counts = await Promise.all(servers.map((server) => this.peakPerSecond(server, sinceMs)));
    return servers.map((server, index) => `${short(server)} ${counts[index]}/s`).join(', ');
  }
}

/** "fe1" of "fe1.contoso.com". */
export const short = (server: string) => server.split('.')[0]!;
export const on = (sampled: Sample, server: string) => (sampled.bindings.get(server)?.primary ?? 0) + (sampled.bindings.get(server)?.backup ?? 0);
export const total = (sampled: Sample, servers: readonly string[]) => servers.reduce((sum, server) => sum + on(sampled, server), 0);
/** Users the `senders` handed over for `reason` between two samples, by their own counters. */
export const handedOver = (from: Sample, to: Sample, senders: readonly string[], reason: string) =>
  senders.reduce((sum, server) => sum + (to.bindings.get(server)?.handedOver[reason] ?? 0) - (from.bindings.get(server)?.handedOver[reason] ?? 0), 0);
/** Every server's hand-over queue is empty. */
export const queuesEmpty = (sampled: Sample, servers: readonly string[]) => servers.every((server) => sampled.bindings.get(server)?.queued === 0);

/** One failover round, counted at the servers. */
export interface FailRound {
  /** From the SIGKILL until the survivors hold `registered` users. */
  ms: number;
  /** Users the victim held when it was killed. */
  orphans: number;
  /** Users each survivor gained (in the order of `survivors`). */
  gained: number[];
  /** The first sample in which a survivor held a backup binding (detection, consensus, the first client back), null if none did. */
  detectedMs: number | null;
  /** The survivors' peak arrivals/s (peaks()). */
  peaks: string;
}

/**
 * SIGKILLs `victim` (kept down: the topology's supervisor must not restart it) and samples until the
 * `survivors` hold `registered` users between them: the fail round of bench:failover and bench:pool12.
 */
export async function failOne(sampler: PoolSampler, victim: string, survivors: readonly string[], registered: number): Promise<FailRound> {
  const before = await sampler.sample();
  const orphans = on(before, victim);
  const pid = before.bindings.get(victim)?.pid;
  if (pid === undefined) throw new Error(`${victim} has no process to kill`);
  const killedAtMs = Date.now();
  process.kill(pid, 'SIGKILL');
  let detectedMs: number | null = null;
  const fail = await sampler.until('failover', (sampled) => {
    if (detectedMs === null && survivors.some((server) => (sampled.bindings.get(server)?.backup ?? 0) > 0)) detectedMs = sampled.atMs - killedAtMs;
    return total(sampled, survivors) >= registered;
  });
  const failed = fail.at(-1)!;
  return { ms: failed.atMs - killedAtMs, orphans, gained: survivors.map((server) => on(failed, server) - on(before, server)), detectedMs, peaks: await sampler.peaks(survivors, killedAtMs) };
}

/** Runs a benchmark's main(); interrupted (Ctrl-C, timeout), it stops every process the benchmark started before leaving. */
export async function runBenchmark(main: () => Promise<void>): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void stopAll().finally(() => process.exit(130));
    });
  }
  await main();
}
