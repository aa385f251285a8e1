// Child processes for tests and benchmarks: start, wait until ready, and always stop by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Running {
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Running>();

/** Stops every process this module started and has not stopped yet (for after() hooks and exits). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((process) => process.stop()));
}

/**
 * `netns`: run inside that network namespace (`ip netns exec NS …`, which execs the command: the PID
 * is the command's own).
 */
export function start(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; taskset?: string; netns?: string } = {}): Running {
  const [pinned, pinnedArgs] = options.taskset ? ['taskset', ['-c', options.taskset, command, ...args]] : [command, [...args]];
  const [file, argv] = options.netns ? ['ip', ['netns', 'exec', options.netns, pinned, ...pinnedArgs]] : [pinned, pinnedArgs];
  const child = spawn(file, argv, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = once(child, 'exit').then(() => undefined);
  const handle: Running = {
    child,
    pid: child.pid,
    output: () => output,
    async stop(graceMs = 3000) {
      running.delete(handle);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(handle);
  return handle;
}

/** Polls `ready` until it returns true; fails with the process output after `timeoutMs`. */
export async function waitUntil(what: string, ready: () => Promise<boolean> | boolean, options: { timeoutMs?: number; process?: Running } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (options.process && (options.process.child.exitCode !== null || options.process.child.signalCode !== null)) {
      throw new Error(`${what}: the process exited early:\n${options.process.output()}`);
    }
    try {
      if (await ready()) return;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${options.timeoutMs ?? 15_000} ms\n${options.process?.output() ?? ''}`);
    await sleep(50);
  }
}
