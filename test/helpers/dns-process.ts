// Integration helpers for the DNS server: run `dnslb dns serve` as a child process (stopped by PID),
// and query with the real dig / kdig, parsing their text output.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface RunningDns {
  child: ChildProcess;
  address: string;
  port: number;
  /** `http://ADDRESS:PORT/metrics` when started with `--metrics-listen`. */
  metricsUrl: string | undefined;
  /** The whole "dnslb dns: listening …" line. */
  line: string;
  stderr: () => string;
  stop(): Promise<number | null>;
}

/** Starts `dnslb dns serve ARGS…` and waits for its "listening" line. */
export async function startDns(args: string[]): Promise<RunningDns> {
  const child = spawn(process.execPath, ['bin/dnslb.js', 'dns', 'serve', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DNSLB_LOG_LEVEL: 'warn' } });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = await new Promise<{ address: string; port: number; metricsUrl: string | undefined; line: string }>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // The whole line: its parts after udp:// (metrics …) may come in a later chunk.
      const line = /^dnslb dns: listening .*$/m.exec(stdout);
      const match = /udp:\/\/([0-9.]+):(\d+)/.exec(line && stdout.includes('\n', line.index) ? line[0] : '');
      if (match) resolve({ address: match[1]!, port: Number(match[2]), metricsUrl: / metrics (http:\/\/\S+)/.exec(line![0])?.[1], line: line![0] });
    });
    child.once('exit', (code) => reject(new Error(`dns serve exited ${code} before listening: ${stderr}`)));
  });
  return {
    child,
    ...listening,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

export interface DigRecord {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigResult {
  status: string;
  flags: string[];
  answer: DigRecord[];
  authority: DigRecord[];
  /** The EDNS line ("version: 0, flags: do; udp: 1232"), or undefined when no OPT came back. */
  edns: string | undefined;
  question: string;
  text: string;
}

function records(text: string, section: string): DigRecord[] {
  const match = new RegExp(`;; ${section} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(text);
  if (!match?.[1]) return [];
  return match[1]
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith(';'))
    .map((line) => {
      const [name = '', ttl = '0', , type = '', ...data] = line.trim().split(/\s+/);
      return { name, ttl: Number(ttl), type, data: data.join(' ') };
    });
}

/** Parses dig's or kdig's default output (both print the same section headers). */
export function parseDig(text: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? '';
  const flags = (/;; [Ff]lags: ([a-z ]*);/.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const edns = /; EDNS: (.*)/.exec(text)?.[1];
  const question = (/;; QUESTION SECTION:\n;;?\s*(.*)/.exec(text)?.[1] ?? '').trim();
  return { status, flags, answer: records(text, 'ANSWER'), authority: records(text, 'AUTHORITY'), edns, question, text };
}

/** dig @server -p port ARGS… (+norec, one try); `source` picks the view. */
export async function dig(server: { address: string; port: number }, args: string[], source = '127.0.0.1'): Promise<DigResult> {
  const { stdout } = await run('dig', ['+norec', '+time=2', '+tries=1', '-b', source, '-p', String(server.port), `@${server.address}`, ...args]);
  return parseDig(stdout);
}

export async function kdig(server: { address: string; port: number }, args: string[], source = '127.0.0.1'): Promise<DigResult> {
  const { stdout } = await run('kdig', ['+norec', '+time=2', '+retry=0', '-b', source, '-p', String(server.port), `@${server.address}`, ...args]);
  return parseDig(stdout);
}
