// `dnslb up` as a child process for whole-system tests: the example topology moved onto a loopback
// range of the test's own (127.0.0.x → 127.0.N.x) with the DNS on a free port, a temporary data dir,
// the admin API on a free port, and the CLI run against that data dir.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from './dns-process.ts';
import { freePort } from './free-port.ts';
import { start, waitUntil, type Running } from './process.ts';

const run = promisify(execFile);

export interface UpSystem {
  dataDir: string;
  topologyFile: string;
  /** The loopback /24 the system lives on, e.g. "127.0.11". */
  net: string;
  dns: { address: string; port: number };
  process: Running;
  /** Runs `dnslb --data-dir DIR ARGS…`; resolves with the exit code and output (never rejects). */
  cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** The example topology with every 127.0.0.x address moved to `net`.x and the DNS listening on `dnsPort`. */
export async function exampleTopology(net: string, dnsPort: number, edit: (text: string) => string = (text) => text): Promise<string> {
  const text = await readFile(join(REPO, 'examples/contoso.yaml'), 'utf8');
  const moved = text
    .replace(/127\.0\.0\.(\d+)/g, `${net}.$1`)
    .replace(`"${net}.1:5300"`, `"${net}.1:${dnsPort}"`)
    // The internal view is the test's own /24 and 127.0.0.1 (where the simulator's resolver asks
    // from); every other source (dig -b 127.0.1.1, say) is external.
    .replace(`clients: [${net}.0/24, 10.0.0.0/8, "::1/128"]`, `clients: [${net}.0/24, 127.0.0.1/32]`)
    // The example authenticates clients; these tests sign in users without passwords, so they say
    // explicitly that this copy does not (test/integration/frontend-auth.test.ts tests authentication).
    .replace('auth: { enabled: true,', 'auth: { enabled: false,');
  if (!moved.includes('auth: { enabled: false,')) throw new Error('examples/contoso.yaml no longer has the settings.auth line this helper turns off');
  return edit(moved);
}

/**
 * The example without its Director pool: the SIP SRV records then name the Front End pools, as in a
 * deployment without Directors (tests of what a client meets at the pool's own addresses).
 */
export function withoutDirectors(text: string): string {
  const edited = text.replace(/^ {2}- fqdn: dirpool\.contoso\.com\n(?: {4}.*\n|\s*\n)*?(?= {2}(?:#|- fqdn))/m, '');
  if (edited === text) throw new Error('examples/contoso.yaml no longer has the dirpool.contoso.com pool this helper removes');
  return edited;
}

/**
 * An edit for exampleTopology: plain TCP between servers, written in the topology as `dnslb up --no-tls`
 * requires (tests that run without certificates to start faster; not the default).
 */
export function tcpBetweenServers(text: string): string {
  if (!text.includes('\nsettings:\n')) throw new Error('the topology has no settings: block to add interServer to');
  return text.replace('\nsettings:\n', '\nsettings:\n  interServer: { transport: tcp }\n');
}

export async function startUp(net: string, options: { edit?: (text: string) => string; args?: string[] } = {}): Promise<UpSystem> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-up-'));
  const dnsPort = await freePort(`${net}.1`);
  const topologyFile = join(dataDir, 'topology.yaml');
  await writeFile(topologyFile, await exampleTopology(net, dnsPort, options.edit));
  const adminPort = await freePort('127.0.0.1');
  const process_ = start(process.execPath, ['bin/dnslb.js', '--data-dir', dataDir, 'up', topologyFile, '--admin-listen', `127.0.0.1:${adminPort}`, ...(options.args ?? [])], { cwd: REPO });
  // A bound, not a wait: ten SIP servers, DNS and three HAProxy start on a loaded 2-core machine.
  await waitUntil('dnslb up running', () => process_.output().includes('dnslb up: running'), { process: process_, timeoutMs: 180_000 });
  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, ['bin/dnslb.js', '--data-dir', dataDir, ...args], { cwd: REPO });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };
  return { dataDir, topologyFile, net, dns: { address: `${net}.1`, port: dnsPort }, process: process_, cli, stop: () => process_.stop(10_000) };
}

/** The DNS port exampleTopology gave the system on `net` (for an edit that replaces the text whole). */
export function dnsPortIn(text: string, net: string): number {
  const port = Number(new RegExp(`"${net.replaceAll('.', '\\.')}\\.1:(\\d+)"`).exec(text)?.[1]);
  if (!Number.isInteger(port)) throw new Error(`no DNS listen address ${net}.1:PORT in the topology`);
  return port;
}

/**
 * One Front End pool of `count` servers (fe1… on `net`.11…) with DNS load balancing rotating over all of
 * them, the DNS on `net`.1:`dnsPort`, and `settings` (YAML lines under `settings:`, indented by two).
 */
export function frontendPoolTopology(net: string, count: number, dnsPort: number, settings: string): string {
  const servers = Array.from({ length: count }, (_, index) => `      - { fqdn: fe${index + 1}.contoso.com, ipv4: ${net}.${11 + index} }`).join('\n');
  return `# a Front End pool of ${count} servers
schemaVersion: 1
sipDomains: [contoso.com]
sites: [{ name: redmond }]
pools:
  - fqdn: pool01.contoso.com
    kind: frontend
    site: redmond
    loadBalancing: dns
    servers:
${servers}
    webServices:
      internal: { fqdn: webint.contoso.com, vip: { ipv4: ${net}.201 }, port: 8443, serverPort: 8443 }
      external: { fqdn: webext.contoso.com, vip: { ipv4: ${net}.202 }, port: 4443, serverPort: 4443 }
    dns: { order: rotate, maxRecords: 0, ttl: 60, healthAware: true }
dns:
  servers: [{ fqdn: dns1.contoso.com, listen: ["${net}.1:${dnsPort}"] }]
  zones: [{ name: contoso.com, soa: { rname: hostmaster.contoso.com, minimumS: 60 } }]
settings:
${settings}
`;
}
