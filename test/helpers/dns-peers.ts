// Real DNS peers from Debian (Knot, NSD, BIND) run on loopback for interop tests and benchmarks.
// Each runs in its own temporary directory, in the foreground, and is stopped by PID.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { start, waitUntil, type Running } from './process.ts';

const run = promisify(execFile);

export interface PeerZone {
  name: string;
  /** Master file for a primary zone. */
  file?: string;
  /** For a secondary zone: the primary to transfer from. */
  primary?: { address: string; port: number };
  /** For a secondary zone: the copy it holds already when it starts (master-file text). */
  held?: string;
}

export interface DnsPeer {
  name: 'knot' | 'nsd' | 'bind';
  address: string;
  port: number;
  process: Running;
  directory: string;
  stop(): Promise<void>;
}

/** dig's answer section for one question (`+short`), or the whole output with `full`. */
export async function dig(address: string, port: number, args: readonly string[]): Promise<string> {
  const { stdout } = await run('dig', [`@${address}`, '-p', String(port), '+time=2', '+tries=1', ...args]);
  return stdout;
}

async function waitForSoa(peer: Omit<DnsPeer, 'stop'>, zone: string): Promise<void> {
  await waitUntil(
    `${peer.name} serving ${zone} on ${peer.address}:${peer.port}`,
    async () => (await dig(peer.address, peer.port, ['+short', zone, 'SOA'])).trim() !== '',
    { process: peer.process, timeoutMs: 20_000 },
  );
}

function peerOf(name: DnsPeer['name'], address: string, port: number, process: Running, directory: string): DnsPeer {
  return { name, address, port, process, directory, stop: () => process.stop() };
}

/** Knot DNS with the given zones (primary from a file, or secondary of a primary). */
export async function startKnot(options: { address: string; port: number; zones: PeerZone[]; taskset?: string; workers?: number; tsig?: { name: string; secret: string } }): Promise<DnsPeer> {
  const directory = await mkdtemp(join(tmpdir(), 'dnslb-knot-'));
  const workers = options.workers ?? 1;
  const remotes = options.zones
    .filter((zone) => zone.primary)
    // `via`: transfers and SOA queries leave from Knot's own address, so the primary's ACL and view
    // see that address (the kernel would otherwise pick 127.0.0.1 for any loopback destination).
    .map((zone, index) => `  - id: primary${index}\n    address: ${zone.primary!.address}@${zone.primary!.port}\n    via: ${options.address}\n${options.tsig ? `    key: ${options.tsig.name}\n` : ''}`)
    .join('');
  const acls = options.zones
    .filter((zone) => zone.primary)
    // With a key, NOTIFY must be signed with it too (dnslb signs NOTIFY with its transfer key).
    .map((zone, index) => `  - id: notify${index}\n    address: ${zone.primary!.address}\n${options.tsig ? `    key: ${options.tsig.name}\n` : ''}    action: notify\n`)
    .join('');
  // Tests compare a secondary's copy with the primary by AXFR from the secondary: allow it on loopback.
  const transferAcl = acls ? '  - id: transfer_loopback\n    address: 127.0.0.0/8\n    action: transfer\n' : '';
  let remoteIndex = 0;
  const zones = options.zones
    .map((zone) => {
      if (zone.primary) {
        const index = remoteIndex++;
        return `  - domain: ${zone.name}\n    storage: "${directory}"\n    file: "${zone.name}.zone"\n    master: primary${index}\n    acl: [notify${index}, transfer_loopback]\n    zonefile-sync: -1\n`;
      }
      return `  - domain: ${zone.name}\n    file: "${zone.file}"\n    storage: "${directory}"\n    zonefile-sync: -1\n    journal-content: none\n`;
    })
    .join('');
  const config = [
    'server:',
    `    rundir: "${directory}"`,
    `    listen: ${options.address}@${options.port}`,
    `    udp-workers: ${workers}`,
    `    tcp-workers: ${workers}`,
    '    background-workers: 1',
    'database:',
    `    storage: "${directory}/db"`,
    'log:',
    '  - target: stderr',
    '    any: info',
    // With a key, Knot signs its SOA queries and transfers from the primary (RFC 8945).
    options.tsig ? `key:\n  - id: ${options.tsig.name}\n    algorithm: hmac-sha256\n    secret: ${options.tsig.secret}\n` : '',
    remotes ? `remote:\n${remotes}` : '',
    acls ? `acl:\n${acls}${transferAcl}` : '',
    `zone:\n${zones}`,
  ].join('\n');
  // Knot does not create its database directory; a secondary stores IXFR changes in the journal there.
  await mkdir(join(directory, 'db'), { recursive: true });
  for (const zone of options.zones) if (zone.primary && zone.held !== undefined) await writeFile(join(directory, `${zone.name}.zone`), zone.held);
  await writeFile(join(directory, 'knot.conf'), config);
  const process = start('knotd', ['-c', join(directory, 'knot.conf')], { taskset: options.taskset });
  const peer = peerOf('knot', options.address, options.port, process, directory);
  // A secondary answers only after its first transfer; callers wait for that themselves.
  const primaryZone = options.zones.find((zone) => zone.file);
  if (primaryZone) await waitForSoa(peer, primaryZone.name);
  else await waitUntil('knotd started', () => /server started/.test(process.output()), { process });
  return peer;
}

/** NSD serving the given primary zones from files. */
export async function startNsd(options: { address: string; port: number; zones: PeerZone[]; taskset?: string }): Promise<DnsPeer> {
  const directory = await mkdtemp(join(tmpdir(), 'dnslb-nsd-'));
  const config = [
    'server:',
    `    ip-address: ${options.address}@${options.port}`,
    `    port: ${options.port}`,
    '    username: ""',
    `    zonesdir: "${directory}"`,
    '    database: ""',
    `    pidfile: "${directory}/nsd.pid"`,
    `    xfrdfile: "${directory}/xfrd.state"`,
    `    zonelistfile: "${directory}/zone.list"`,
    '    server-count: 1',
    '    verbosity: 1',
    // Debian's NSD limits responses per source (RRL, 200/s by default): off, or dnsperf sees losses.
    '    rrl-ratelimit: 0',
    'remote-control:',
    '    control-enable: no',
    ...options.zones.flatMap((zone) => ['zone:', `    name: ${zone.name}`, `    zonefile: "${zone.file}"`]),
  ].join('\n');
  await writeFile(join(directory, 'nsd.conf'), config);
  const process = start('nsd', ['-c', join(directory, 'nsd.conf'), '-d'], { taskset: options.taskset });
  const peer = peerOf('nsd', options.address, options.port, process, directory);
  await waitForSoa(peer, options.zones[0]!.name);
  return peer;
}

/**
 * BIND 9 serving primary zones; `updateKey` lets RFC 2136 updates signed with that TSIG key in.
 * BIND listens only on addresses configured on an interface, so on loopback use 127.0.0.1 and a free port.
 */
export async function startBind(options: {
  address: string;
  port: number;
  zones: PeerZone[];
  taskset?: string;
  threads?: number;
  updateKey?: { name: string; algorithm: string; secret: string };
}): Promise<DnsPeer> {
  const directory = await mkdtemp(join(tmpdir(), 'dnslb-bind-'));
  const key = options.updateKey;
  const config = [
    'options {',
    `    directory "${directory}";`,
    `    listen-on port ${options.port} { ${options.address}; };`,
    '    listen-on-v6 { none; };',
    `    pid-file "${directory}/named.pid";`,
    '    recursion no;',
    '    dnssec-validation no;',
    '    notify no;',
    '};',
    'controls { };',
    key ? `key "${key.name}" { algorithm ${key.algorithm}; secret "${key.secret}"; };` : '',
    ...options.zones.map(
      // With a key: updates and transfers (dns push reads the zone by AXFR first) signed with it only.
      (zone) => `zone "${zone.name}" { type primary; file "${zone.file}"; ${key ? `allow-update { key "${key.name}"; }; allow-transfer { key "${key.name}"; };` : ''} };`,
    ),
  ].join('\n');
  await writeFile(join(directory, 'named.conf'), config);
  const args = ['-c', join(directory, 'named.conf'), '-g'];
  if (options.threads) args.push('-n', String(options.threads));
  const process = start('named', args, { taskset: options.taskset });
  const peer = peerOf('bind', options.address, options.port, process, directory);
  await waitForSoa(peer, options.zones[0]!.name);
  return peer;
}
