// sipp (Debian sip-tester) as a real SIP peer over TCP: start a UAS scenario from test/fixtures/sipp
// on a loopback address, wait until it listens, stop it by PID.
import { mkdtemp } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, waitUntil, type Running } from './process.ts';

export const SIPP_SCENARIOS = fileURLToPath(new URL('../fixtures/sipp/', import.meta.url));

export interface Sipp {
  address: string;
  port: number;
  process: Running;
  stop(): Promise<void>;
}

/** A TCP port free on every one of `addresses` (so one SRV port fits a whole pool of sipp servers). */
export async function freePortOn(addresses: readonly string[]): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(
      addresses.map(
        (address) =>
          new Promise<boolean>((resolve) => {
            const server = createServer();
            server.once('error', () => resolve(false));
            server.listen(port, address, () => server.close(() => resolve(true)));
          }),
      ),
    );
    if (free.every(Boolean)) return port;
  }
  throw new Error(`no common free port on ${addresses.join(', ')}`);
}

/**
 * `-deadcall_wait 1`: sipp keeps a finished call's Call-ID for 33 s by default and silently absorbs
 * anything that reuses it, but a client REGISTERs again with the same Call-ID (RFC 3261 §10.2).
 *
 * Starts `sipp -sf <scenario> -t t1` listening on address:port. `set` fills the scenario's global
 * variables (`-set name value`); `calls` ends sipp after that many calls (`-m`), which closes its
 * connections: how a test makes a server go away.
 */
export async function startSipp(options: { scenario: string; address: string; port: number; set?: Record<string, string>; calls?: number }): Promise<Sipp> {
  const directory = await mkdtemp(join(tmpdir(), 'dnslb-sipp-'));
  const args = ['-sf', join(SIPP_SCENARIOS, options.scenario), '-t', 't1', '-i', options.address, '-p', String(options.port), '-nostdin', '-max_socket', '10000', '-deadcall_wait', '1'];
  for (const [name, value] of Object.entries(options.set ?? {})) args.push('-set', name, value);
  if (options.calls !== undefined) args.push('-m', String(options.calls));
  const process = start('sipp', args, { cwd: directory });
  await waitUntil(
    `sipp ${options.scenario} on ${options.address}:${options.port}`,
    () =>
      new Promise<boolean>((resolve) => {
        const socket = connect({ host: options.address, port: options.port }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      }),
    { process, timeoutMs: 10_000 },
  );
  return { address: options.address, port: options.port, process, stop: () => process.stop() };
}
