// Why a listener could not bind, said for a person: "127.0.0.1:7300 is in use by node (pid 4242)".
// Every listener of dnslb (admin API, metrics, SIP, DNS) words its listen error with this.
import { execFile } from 'node:child_process';

export type ListenProtocol = 'tcp' | 'udp';

/** How long `ss` may take; a listen error is no place to hang. */
const SS_TIMEOUT_MS = 2000;

/** Addresses that cover every local address of their family. */
const WILDCARDS = new Set(['0.0.0.0', '*', '::', '[::]']);

/** `[::1]` → `::1`; `127.0.0.1%lo` → `127.0.0.1` (ss adds the interface to scoped addresses). */
function bare(host: string): string {
  return host.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
}

/**
 * The process that holds `host:port`, from the output of `ss -H -lnp` (`--tcp` or `--udp`): a
 * listener on exactly that address, or on a wildcard address covering it. Returns "name (pid N)"
 * (several joined with ", "), or undefined when no line matches or ss shows no process (ss shows
 * the processes of other users only to root).
 */
export function holderFromSs(text: string, host: string, port: number): string | undefined {
  const wanted = bare(host);
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // State Recv-Q Send-Q Local:Port Peer:Port [Process]
    const local = fields[3];
    if (local === undefined) continue;
    const colon = local.lastIndexOf(':');
    const address = bare(local.slice(0, colon));
    if (local.slice(colon + 1) !== String(port)) continue;
    if (address !== wanted && !WILDCARDS.has(address)) continue;
    const processes = [...line.matchAll(/\("([^"]+)",pid=(\d+)/g)].map((match) => `${match[1]} (pid ${match[2]})`);
    if (processes.length > 0) return [...new Set(processes)].join(', ');
  }
  return undefined;
}

/** Asks `ss` who listens on `host:port`; undefined when ss is missing, fails or does not say. */
export function holderOf(protocol: ListenProtocol, host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('ss', ['-H', '-lnp', protocol === 'tcp' ? '--tcp' : '--udp'], { timeout: SS_TIMEOUT_MS }, (error, stdout) => {
      resolve(error ? undefined : holderFromSs(stdout, host, port));
    });
  });
}

/**
 * What went wrong, for the message of a *_LISTEN error, after "cannot listen on ": the address, and
 * whether it is in use and by whom, not this machine's, or needs privileges; otherwise the
 * system's own words. E.g. "127.0.0.1:7300 (tcp): address in use by node (pid 4242)".
 */
export async function describeListenError(error: unknown, protocol: ListenProtocol, host: string, port: number): Promise<string> {
  const where = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port} (${protocol})`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') {
    const holder = await holderOf(protocol, host, port);
    return `${where}: address in use ${holder ? `by ${holder}` : '(ss names no process: one of another user, or one just closing)'}`;
  }
  if (code === 'EADDRNOTAVAIL') return `${where}: ${bare(host)} is not an address of this machine`;
  if (code === 'EACCES') return `${where}: port ${port} needs privileges (below 1024: root or CAP_NET_BIND_SERVICE)`;
  return `${where}: ${(error as Error | undefined)?.message ?? String(error)}`;
}
