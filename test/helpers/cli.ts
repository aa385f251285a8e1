// Runs the real `dnslb` command as a child process for CLI tests: exit code, stdout and stderr.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'dnslb.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `dnslb ARGS…` run to its end; resolves with its exit code and output whatever the code. Rejects
 * only when it could not run or was killed (by `timeoutMs`, 60 s by default): a hang is a failure.
 */
export function runDnslb(args: readonly string[], options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: options.cwd, ...(options.env ? { env: options.env } : {}), timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(new Error(`dnslb ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}
