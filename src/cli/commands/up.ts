// dnslb up FILE: for now, validate the topology and publish it into the file store of --data-dir
// (skipped when the current version already holds exactly this document), then say what runs.
// The supervisor (one child per server and one for DNS, DESIGN §4) will start from here.
import type { Command } from 'commander';
import type { PublishedVersion } from '../../store/store.ts';
import { formatEndpoint, toDocument } from '../../topology/document.ts';
import { parseFile } from '../../topology/parse.ts';
import type { Topology } from '../../topology/schema.ts';
import { dataDirOf, defaultActor, openStoreOf } from './store-options.ts';

/** JSON with keys sorted, so that two equal documents compare equal as text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner) ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : inner,
  );
}

function describe(topology: Topology) {
  return {
    pools: topology.pools.map((pool) => ({
      fqdn: pool.fqdn,
      kind: pool.kind,
      loadBalancing: pool.loadBalancing,
      servers: pool.servers.map((server) => ({ fqdn: server.fqdn, ...(server.ipv4 ? { ipv4: server.ipv4 } : {}), ...(server.ipv6 ? { ipv6: server.ipv6 } : {}) })),
    })),
    dns: topology.dns.servers.map((server) => ({ fqdn: server.fqdn, listen: server.listen.map(formatEndpoint) })),
  };
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('validate a topology and publish it into the embedded store (--data-dir); prints what it published')
    .argument('<file>', 'topology YAML')
    .option('--by <who>', 'who publishes (default: user@host)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, options: { by?: string; json?: boolean }, command: Command) => {
      const parsed = await parseFile(file);
      const store = await openStoreOf(command, { mustExist: false });
      let version: PublishedVersion;
      let published: boolean;
      try {
        const current = await store.currentVersion();
        const existing = current > 0 ? await store.read(current) : undefined;
        published = !existing || canonical(toDocument(existing.topology)) !== canonical(toDocument(parsed));
        version = published ? await store.publish(parsed, current, { by: options.by ?? defaultActor(), comment: `dnslb up ${file}` }) : (existing as PublishedVersion);
      } finally {
        await store.close();
      }
      const what = describe(version.topology);
      if (options.json) {
        console.log(JSON.stringify({ published, version: version.version, dataDir: dataDirOf(command), ...what }));
        return;
      }
      console.log(published ? `published ${file} as version ${version.version} in ${dataDirOf(command)}` : `${file} is already version ${version.version} in ${dataDirOf(command)}: nothing to publish`);
      for (const pool of what.pools) {
        console.log(`pool ${pool.fqdn} (${pool.kind}, ${pool.loadBalancing} load balancing)`);
        for (const server of pool.servers) console.log(`  ${server.fqdn}  ${[server.ipv4, server.ipv6].filter(Boolean).join(' ')}`);
      }
      for (const server of what.dns) console.log(`dns ${server.fqdn} listens on ${server.listen.join(', ')}`);
    });
}
