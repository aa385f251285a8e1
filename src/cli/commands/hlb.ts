// dnslb hlb export: a pool's Web services VIPs as a load balancer configuration (HAProxy), from a
// topology file or the published version in the store, for a load balancer dnslb does not run.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { haproxyCheck } from '../../hlb/check.ts';
import { haproxyConfig } from '../../hlb/haproxy-config.ts';
import { DnslbError } from '../../shared/errors.ts';
import { parseFile } from '../../topology/parse.ts';
import type { Topology } from '../../topology/schema.ts';
import { dataDirOf, openStoreOf, storeLabelOf, withStoreOption } from './store-options.ts';

interface ExportOptions {
  pool: string;
  format: string;
  socket?: string;
  ca?: string;
  output?: string;
  check?: boolean;
}

/** `haproxy -c` on the text; HLB_CONFIG with HAProxy's own words when it refuses it. */
async function checkWithHaproxy(text: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dnslb-hlb-check-'));
  try {
    const file = join(dir, 'haproxy.cfg');
    await writeFile(file, text);
    await haproxyCheck(file, 'the configuration');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function registerHlb(program: Command): void {
  const hlb = program.command('hlb').description('the hardware load balancer of the Web services (HTTPS) VIPs');
  withStoreOption(
    hlb
      .command('export')
      .description('print a load balancer configuration for a pool\'s Web services VIPs (HAProxy: TLS passed through, health checks on each server\'s /health)')
      .argument('[file]', 'topology YAML (default: the published version in the store)')
      .requiredOption('--pool <fqdn>', 'the frontend or director pool')
      .option('--format <format>', 'the load balancer: haproxy', 'haproxy')
      .option('--socket <path>', 'HAProxy\'s runtime API socket, which dnslb drives (default: DATA/hlb/POOL.sock)')
      .option('--ca <file>', 'the pool CA that signs the servers\' certificates, for the health checks (default: DATA/tls/ca.pem)')
      .option('--output <file>', 'write here instead of stdout')
      .option('--check', 'run haproxy -c on the result first (HLB_CONFIG when it refuses)'),
  ).action(async (file: string | undefined, options: ExportOptions, command: Command) => {
    if (options.format !== 'haproxy') throw new DnslbError('HLB_CONFIG', `--format ${options.format}: the formats are: haproxy`);
    let topology: Topology;
    let version: number | undefined;
    if (file !== undefined) topology = await parseFile(file);
    else {
      const store = await openStoreOf(command, { mustExist: true });
      try {
        if ((await store.currentVersion()) === 0) throw new DnslbError('HLB_CONFIG', `nothing is published in ${storeLabelOf(command)}; give a topology FILE or publish one`);
        const published = await store.read();
        topology = published.topology;
        version = published.version;
      } finally {
        await store.close();
      }
    }
    const dataDir = resolve(dataDirOf(command));
    const pool = options.pool.toLowerCase().replace(/\.$/, '');
    const text = haproxyConfig(topology, pool, {
      socketPath: resolve(options.socket ?? join(dataDir, 'hlb', `${pool}.sock`)),
      caFile: resolve(options.ca ?? join(dataDir, 'tls', 'ca.pem')),
      ...(version === undefined ? {} : { topologyVersion: version }),
    });
    if (options.check) await checkWithHaproxy(text);
    if (options.output !== undefined) await writeFile(options.output, text);
    else process.stdout.write(text);
  });
}
