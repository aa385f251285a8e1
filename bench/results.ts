// bench/RESULTS.md: each benchmark owns one "## Name" section and replaces it on every run, so the
// file always holds the latest figures of every benchmark, each with its date and machine.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = join(fileURLToPath(new URL('.', import.meta.url)), 'RESULTS.md');

/** "2026-11-21T23:50:52Z; 2 cores, Intel(R) Xeon(R) Processor, 24 GiB; node v20.20.2; load 0.50 0.40 0.30" */
export function machineLine(): string {
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const model = cpus()[0]?.model ?? 'unknown CPU';
  const load = loadavg().map((value) => value.toFixed(2)).join(' ');
  return `${date}; ${cpus().length} cores, ${model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; load average at the end ${load}`;
}

/** The middle value (the mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Replaces the section headed `## ${title}` (up to the next "## ") with `body`, or appends it. */
export async function writeSection(title: string, body: string): Promise<void> {
  const existing = await readFile(RESULTS, 'utf8').catch(() => '# Benchmark results\n');
  const heading = `## ${title}`;
  const escaped = heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const without = existing.replace(new RegExp(`\\n*${escaped}\\n[\\s\\S]*?(?=\\n## |$)`), '').trimEnd();
  await writeFile(RESULTS, `${without}\n\n${heading}\n\n${body.trim()}\n`);
}

const TICKS_PER_SECOND = 100; // Linux USER_HZ, what /proc/PID/stat counts in

/** CPU seconds (user + system) used so far by `pid` and every process below it. */
export async function treeCpuSeconds(pid: number): Promise<number> {
  const stats = new Map<number, { parent: number; ticks: number }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces) start at "state": ppid is the 2nd, utime the 12th, stime the 13th.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (fields.length > 13) stats.set(Number(entry), { parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  let ticks = 0;
  const below = [pid];
  while (below.length > 0) {
    const current = below.pop()!;
    ticks += stats.get(current)?.ticks ?? 0;
    for (const [child, stat] of stats) if (stat.parent === current) below.push(child);
  }
  return ticks / TICKS_PER_SECOND;
}

/**
 * Seconds the threads of `pid` and of every process below it spent runnable but waiting for a CPU
 * (/proc/PID/task/TID/schedstat, its second field: run delay, ns). Over a window in which a pinned
 * server used less than its whole core, this tells other work on that core (the delay grows) from a
 * server that had nothing to do (it does not).
 */
export async function treeRunDelaySeconds(pid: number): Promise<number> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (fields.length > 1) parents.set(Number(entry), Number(fields[1]));
  }
  let delayNs = 0;
  const below = [pid];
  while (below.length > 0) {
    const current = below.pop()!;
    for (const task of await readdir(`/proc/${current}/task`).catch(() => [] as string[])) {
      const schedstat = await readFile(`/proc/${current}/task/${task}/schedstat`, 'utf8').catch(() => '');
      delayNs += Number(schedstat.split(' ')[1] ?? 0) || 0;
    }
    for (const [child, parent] of parents) if (parent === current) below.push(child);
  }
  return delayNs / 1e9;
}

/**
 * A sentence on how busy the machine was, judged by the 1-minute load average when the benchmark
 * started (`startLoad`, loadavg()[0] before it started anything: other work, and what ran just
 * before); busy = above half the cores. The load at the end is given too, but it counts the
 * benchmark's own processes.
 */
export function loadNote(startLoad: number): string {
  const now = loadavg()[0]!;
  const cores = cpus().length;
  return startLoad > cores / 2
    ? `**Taken on a busy machine**: load average ${startLoad.toFixed(1)} when the benchmark started (other work on ${cores} cores; ${now.toFixed(1)} at the end, its own processes included), so the figures are lower and more spread than a quiet machine gives; the ratios of runs taken side by side suffer less.`
    : `Load average ${startLoad.toFixed(1)} when the benchmark started (${now.toFixed(1)} at the end, its own processes included) on ${cores} cores.`;
}
