// The supervisor of `dnslb up` (DESIGN §4): one child process per server and one for DNS. A child that
// dies is a server failure: the others keep running, and the supervisor restarts it after
// `restartDelayMs` (recovery). An operator can stop and start one child by hand. A child is *ready*
// once it has said where it listens (its spec's `ready` recognises the line); `whenReady` waits for
// every child and, when one cannot come up, says which and why. Children end with the supervisor,
// even when it is killed (SETPRIV below).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { systemClock, type Clock, type Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';

export interface ChildSpec {
  /** Unique: the server FQDN, or "dns". */
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /**
   * Recognises the output line by which the child says it is ready (listening) and returns what to
   * show for it (its addresses); undefined for every other line. Without it a child is ready once spawned.
   */
  ready?: (line: string) => string | undefined;
}

export type ChildState = 'starting' | 'running' | 'restarting' | 'stopped' | 'stopping';

export interface ChildStatus {
  name: string;
  state: ChildState;
  pid: number | undefined;
  restarts: number;
  startedAtMs: number | undefined;
  /** How the last run ended: "exit 1", "signal SIGKILL", … */
  lastExit: string | undefined;
  lastExitAtMs: number | undefined;
  /** The current run has said it is ready (reset at every start). */
  ready: boolean;
  /** What the ready line said (where it listens), for the current run. */
  listening: string | undefined;
}

export interface SupervisorOptions {
  restartDelayMs: number;
  clock?: Clock;
  /** Where a child's output goes (a line at a time, prefixed with its name); by default, the supervisor's stderr. */
  output?: (name: string, line: string) => void;
  /** SIGTERM, then SIGKILL after this. */
  stopGraceMs?: number;
}

/** Where `command` is on PATH (or itself, when it is a path), or undefined when it is not there to run. */
function executable(command: string): string | undefined {
  const candidates = isAbsolute(command) || command.includes('/') ? [command] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/**
 * util-linux's setpriv (part of every Debian system), when present: a child started through
 * `setpriv --pdeathsig TERM` is sent SIGTERM by the kernel when the supervisor dies, however it dies
 * (SIGKILL, a crash, an out-of-memory kill). Without it, servers and HAProxy would go on running with
 * nobody to stop them, holding the pool's addresses so that the next `dnslb up` cannot listen there.
 */
const SETPRIV = process.platform === 'linux' ? executable('setpriv') : undefined;

/** The command line that starts `spec`: through setpriv (see SETPRIV) when it can, else as it is. */
function commandLine(spec: ChildSpec): { command: string; args: string[] } {
  const command = executable(spec.command);
  // A command not found is started as it is, so that spawn's own error names it.
  if (SETPRIV === undefined || command === undefined) return { command: spec.command, args: [...spec.args] };
  return { command: SETPRIV, args: ['--pdeathsig', 'TERM', '--', command, ...spec.args] };
}

interface Child {
  spec: ChildSpec;
  status: ChildStatus;
  process: ChildProcess | undefined;
  restartTimer: Timer | undefined;
  /** An operator stopped it: do not restart. */
  held: boolean;
  /** The last lines it wrote (stdout and stderr), for saying why it did not come up. */
  recentLines: string[];
}

/** Lines of output kept per child for start-up failure messages. */
const RECENT_LINES_MAX = 5;

function newChild(spec: ChildSpec): Child {
  return {
    spec,
    status: { name: spec.name, state: 'stopped', pid: undefined, restarts: 0, startedAtMs: undefined, lastExit: undefined, lastExitAtMs: undefined, ready: false, listening: undefined },
    process: undefined,
    restartTimer: undefined,
    held: false,
    recentLines: [],
  };
}

export class Supervisor {
  private readonly children = new Map<string, Child>();
  private readonly clock: Clock;
  private shuttingDown = false;
  private readonly listeners = new Set<(status: ChildStatus) => void>();

  constructor(specs: readonly ChildSpec[], private readonly options: SupervisorOptions) {
    this.clock = options.clock ?? systemClock;
    for (const spec of specs) {
      if (this.children.has(spec.name)) throw new DnslbError('SUPERVISOR_CHILD', `two children named ${spec.name}`);
      this.children.set(spec.name, newChild(spec));
    }
  }

  /** Called with a child's status every time it changes. */
  onChange(listener: (status: ChildStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adds a child (a server commissioned by a new topology version) and starts it. */
  add(spec: ChildSpec): ChildStatus {
    if (this.children.has(spec.name)) throw new DnslbError('SUPERVISOR_CHILD', `two children named ${spec.name}`);
    const child = newChild(spec);
    this.children.set(spec.name, child);
    this.launch(child);
    return { ...child.status };
  }

  /** Stops a child for good and forgets it (a server decommissioned and drained). */
  async remove(name: string): Promise<void> {
    await this.stop(name);
    this.children.delete(name);
  }

  names(): string[] {
    return [...this.children.keys()];
  }

  startAll(): void {
    for (const child of this.children.values()) this.launch(child);
  }

  status(): ChildStatus[] {
    return [...this.children.values()].map((child) => ({ ...child.status }));
  }

  /**
   * Resolves once every child is ready. Rejects with SUPERVISOR_START, naming the child and why
   * (how it ended, its last lines), as soon as a child exits before it was ever ready (a port in
   * use or a bad certificate does not heal by restarting), or when `timeoutMs` passes first
   * (naming every child not ready yet and what it last said).
   */
  whenReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const everReady = new Set<string>();
      const why = (child: Child) => {
        const lines = child.recentLines.length > 0 ? `; its last output: ${child.recentLines.join(' | ')}` : '; no output';
        const ended = child.status.lastExit ? `, last run ended with ${child.status.lastExit}` : '';
        return `${child.spec.name} (${child.status.state}${ended}${lines})`;
      };
      const finish = (error?: DnslbError) => {
        unsubscribe();
        timer.cancel();
        if (error) reject(error);
        else resolve();
      };
      const check = (changed?: ChildStatus) => {
        if (this.shuttingDown) return finish(new DnslbError('SUPERVISOR_START', 'shut down before every child was ready'));
        if (changed?.ready) everReady.add(changed.name);
        if (changed && (changed.state === 'restarting' || changed.state === 'stopped') && changed.lastExit && !everReady.has(changed.name)) {
          const child = this.children.get(changed.name);
          if (child && !child.held) return finish(new DnslbError('SUPERVISOR_START', `${changed.name} exited before it was ready: ${why(child)}`));
        }
        const waiting = [...this.children.values()].filter((child) => !child.status.ready && !child.held);
        if (waiting.length === 0) finish();
      };
      const unsubscribe = this.onChange(check);
      const timer = this.clock.setTimer(timeoutMs, () => {
        const waiting = [...this.children.values()].filter((child) => !child.status.ready && !child.held);
        finish(new DnslbError('SUPERVISOR_START', `not ready after ${timeoutMs} ms: ${waiting.map(why).join('; ')}`));
      });
      for (const child of this.children.values()) if (child.status.ready) everReady.add(child.spec.name);
      check();
    });
  }

  private childNamed(name: string): Child {
    const child = this.children.get(name);
    if (!child) throw new DnslbError('SUPERVISOR_CHILD', `no child named ${name}; known: ${[...this.children.keys()].join(', ')}`);
    return child;
  }

  /** Stops a child by hand; it stays stopped until start(). */
  async stop(name: string): Promise<ChildStatus> {
    const child = this.childNamed(name);
    child.held = true;
    child.restartTimer?.cancel();
    child.restartTimer = undefined;
    await this.terminate(child);
    this.update(child, { state: 'stopped' });
    return { ...child.status };
  }

  /** Starts a child stopped by hand (or waiting for its restart) now. */
  start(name: string): ChildStatus {
    const child = this.childNamed(name);
    child.held = false;
    child.restartTimer?.cancel();
    child.restartTimer = undefined;
    if (!child.process) this.launch(child);
    return { ...child.status };
  }

  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        child.restartTimer?.cancel();
        await this.terminate(child);
        this.update(child, { state: 'stopped' });
      }),
    );
  }

  private update(child: Child, change: Partial<ChildStatus>): void {
    Object.assign(child.status, change);
    for (const listener of this.listeners) listener({ ...child.status });
  }

  private launch(child: Child): void {
    if (this.shuttingDown || child.held) return;
    const { command, args } = commandLine(child.spec);
    const process_ = spawn(command, args, { env: child.spec.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.process = process_;
    const forward = (stream: NodeJS.ReadableStream | null) => {
      let pending = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (text: string) => {
        pending += text;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          child.recentLines.push(line);
          if (child.recentLines.length > RECENT_LINES_MAX) child.recentLines.shift();
          const listening = child.status.ready || child.process !== process_ ? undefined : child.spec.ready?.(line);
          if (listening !== undefined) this.update(child, { ready: true, listening });
          if (this.options.output) this.options.output(child.spec.name, line);
          else process.stderr.write(`[${child.spec.name}] ${line}\n`);
        }
      });
    };
    forward(process_.stdout);
    forward(process_.stderr);
    process_.once('error', (error) => {
      this.update(child, { lastExit: `could not start: ${error.message}` });
    });
    process_.once('exit', (code, signal) => this.exited(child, process_, code, signal));
    child.recentLines = [];
    this.update(child, { state: 'running', pid: process_.pid, startedAtMs: this.clock.nowMs(), ready: child.spec.ready === undefined, listening: undefined });
  }

  private exited(child: Child, process_: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child.process !== process_) return;
    child.process = undefined;
    const lastExit = signal ? `signal ${signal}` : `exit ${code}`;
    if (this.shuttingDown || child.held || child.status.state === 'stopping') {
      this.update(child, { state: 'stopped', pid: undefined, lastExit, lastExitAtMs: this.clock.nowMs(), ready: false, listening: undefined });
      return;
    }
    this.update(child, { state: 'restarting', pid: undefined, lastExit, lastExitAtMs: this.clock.nowMs(), ready: false, listening: undefined });
    child.restartTimer = this.clock.setTimer(this.options.restartDelayMs, () => {
      child.restartTimer = undefined;
      child.status.restarts++;
      this.launch(child);
    });
  }

  private async terminate(child: Child): Promise<void> {
    const process_ = child.process;
    if (!process_ || process_.exitCode !== null || process_.signalCode !== null) return;
    this.update(child, { state: 'stopping' });
    const exited = once(process_, 'exit');
    process_.kill('SIGTERM');
    const timer = setTimeout(() => process_.kill('SIGKILL'), this.options.stopGraceMs ?? 5000);
    await exited;
    clearTimeout(timer);
  }
}
