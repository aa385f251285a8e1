// dnslb topology validate|show|advise|schema: checking, reading and advising on topology documents.
// (publish and diff, which talk to the store, register themselves from the store's side.)
import { InvalidArgumentError, type Command } from 'commander';
import * as z from 'zod';
import { advise, LEGACY_CLIENTS_PERCENT_MAX, validationWarnings, type Advice } from '../../topology/advise.ts';
import { formatEndpoint } from '../../topology/document.ts';
import { defaultHomePool } from '../../topology/home-pool.ts';
import { formatDigitRange, routeDigits } from '../../topology/pstn-route.ts';
import { parseFile } from '../../topology/parse.ts';
import { TopologyError } from '../../topology/problem.ts';
import { topologySchema, type AddressPair, type Topology } from '../../topology/schema.ts';
import { DnslbError } from '../../shared/errors.ts';
import { DATA_DIR_DEFAULT, DATA_DIR_DESCRIPTION, DATA_DIR_FLAGS, readPublished, STORE_DESCRIPTION, STORE_FLAGS, storeLabelOf, versionNumber } from './store-options.ts';

function addresses(pair: AddressPair | undefined): string {
  return [pair?.ipv4, pair?.ipv6].filter((address) => address !== undefined).join(', ') || '-';
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The human summary printed by `topology show`. */
export function formatSummary(topology: Topology, file: string): string {
  const lines: string[] = [];
  const serverCount = topology.pools.reduce((sum, pool) => sum + pool.servers.length, 0);
  lines.push(`${file}: ${plural(topology.pools.length, 'pool')}, ${plural(serverCount, 'server')}`);
  lines.push(`SIP domains: ${topology.sipDomains.join(', ')}`);
  lines.push(`Sites: ${topology.sites.map((site) => (site.description ? `${site.name} (${site.description})` : site.name)).join(', ')}`);
  if (topology.users) lines.push(`Users: ${topology.users.length} listed`);
  lines.push('', 'Pools:');
  for (const pool of topology.pools) {
    const policy = pool.dns;
    const answers = pool.loadBalancing === 'dns' ? `, answers ${policy.order}, ${policy.maxRecords === 0 ? 'all records' : `at most ${policy.maxRecords}`}, TTL ${policy.ttl} s${policy.healthAware ? ', health-aware' : ''}` : `, VIP ${addresses(pool.vip)}`;
    lines.push(`  ${pool.fqdn}  ${pool.kind}, site ${pool.site}, ${pool.loadBalancing} load balancing${answers}; SIP tcp ${pool.sip.tcpPort}, tls ${pool.sip.tlsPort}`);
    for (const server of pool.servers) {
      const external = server.external ? `  external: access ${addresses(server.external.accessEdge)}, web conferencing ${addresses(server.external.webConferencing)}, A/V ${addresses(server.external.av)}` : '';
      lines.push(`    ${server.fqdn}  ${addresses(server)}${external}`);
    }
    const { internal, external } = pool.webServices ?? {};
    if (internal) lines.push(`    Web services internal ${internal.fqdn} -> VIP ${addresses(internal.vip)} port ${internal.port} -> servers' port ${internal.serverPort}`);
    if (external) lines.push(`    Web services external ${external.fqdn} -> VIP ${addresses(external.vip)} port ${external.port} -> servers' port ${external.serverPort}`);
    if (pool.webServices?.hlb === 'haproxy') lines.push('    Web services load balancer: HAProxy, run by dnslb up');
    if (pool.edge) {
      const edge = pool.edge;
      lines.push(`    external interface: ${edge.externalLoadBalancing} load balancing`);
      lines.push(`    Access Edge ${edge.accessEdge.fqdn}${edge.accessEdge.port ? `:${edge.accessEdge.port}` : ''} (federation ${edge.accessEdge.federationPort})${edge.accessEdge.vip ? `, VIP ${addresses(edge.accessEdge.vip)}` : ''}`);
      lines.push(`    Web Conferencing Edge ${edge.webConferencing.fqdn}${edge.webConferencing.port ? `:${edge.webConferencing.port}` : ''}${edge.webConferencing.vip ? `, VIP ${addresses(edge.webConferencing.vip)}` : ''}`);
      lines.push(`    A/V Edge ${edge.av.fqdn}${edge.av.port ? `:${edge.av.port}` : ''}${edge.av.vip ? `, VIP ${addresses(edge.av.vip)}` : ''}`);
    }
    for (const gateway of pool.gateways ?? []) lines.push(`    gateway ${formatEndpoint(gateway.endpoint)} ${gateway.transport}${gateway.fqdn ? ` (${gateway.fqdn})` : ''}`);
  }
  lines.push('', 'Home pools (first matching rule, else the default):');
  (topology.homePools?.rules ?? []).forEach((rule, index) => lines.push(`  ${index}  ${rule.domain !== undefined ? `domain ${rule.domain}` : `users ${rule.users}`} -> ${rule.pool}`));
  lines.push(`  default -> ${defaultHomePool(topology) ?? 'none (users no rule matches have no home)'}`);
  const routes = topology.pstn?.routes ?? [];
  lines.push('', `PSTN routes (longest prefix wins): ${routes.length === 0 ? 'none' : ''}`.trimEnd());
  routes.forEach((route, index) => lines.push(`  ${route.name ?? index}  ${route.prefix}, ${formatDigitRange(routeDigits(route))} digits -> ${route.pool}`));
  lines.push('', 'DNS servers:');
  for (const server of topology.dns.servers) lines.push(`  ${server.fqdn}  listen ${server.listen.map((at) => (at.address.includes(':') ? `[${at.address}]:${at.port}` : `${at.address}:${at.port}`)).join(', ')}`);
  lines.push('', 'Zones:');
  for (const zone of topology.dns.zones) lines.push(`  ${zone.name}  ${plural(zone.records.length, 'static record')}, negative TTL ${zone.soa.minimumS} s`);
  lines.push('', 'Views (first match wins):');
  for (const view of topology.dns.views) lines.push(`  ${view.name}  ${view.clients.join(', ')}`);
  lines.push('', `Secondaries: ${topology.dns.secondaries.length === 0 ? 'none' : topology.dns.secondaries.map((at) => `${at.address}:${at.port}`).join(', ')}`);
  return lines.join('\n');
}

/** The human form printed by `topology advise`. */
export function formatAdvice(advice: Advice): string {
  const lines: string[] = [];
  for (const pool of advice.pools) {
    lines.push(`${pool.pool} (${pool.kind}, configured ${pool.configured}): DNS load balancing ${pool.verdict}`);
    for (const lost of pool.lost) {
      lines.push(`  lost: ${lost.scenario} [${lost.row}]: ${lost.why}`);
      if (lost.see !== undefined) lines.push(`    see: ${lost.see}`);
    }
    for (const note of pool.notes) lines.push(`  note: ${note.text} [${note.row}]`);
  }
  lines.push(`(legacy clients above ${advice.legacyClientsPercentMax} % make frontend and director pools hardware-only)`);
  return lines.join('\n');
}

/** The JSON Schema of the document as written (input shape: defaults optional), for editors. */
export function topologyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(topologySchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'dnslb topology', description: 'A dnslb topology document (src/topology/README.md describes every key).' };
}

function percent(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number < 0 || number > 100) throw new InvalidArgumentError('a percentage from 0 to 100');
  return number;
}

export function registerTopology(program: Command): void {
  const topology = program.command('topology').description('validate, inspect and advise on topology documents');
  topology
    .command('validate')
    .description('check a topology document; prints every problem as file:line:col: CODE at path: message (exit 1)')
    .argument('<file>', 'topology YAML')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (file: string, options: { json?: boolean }) => {
      let parsed: Topology;
      try {
        parsed = await parseFile(file);
      } catch (error) {
        if (options.json && error instanceof TopologyError) console.log(JSON.stringify({ valid: false, file, problems: error.problems }, null, 2));
        throw error; // main prints the problems on stderr and exits 1
      }
      const servers = parsed.pools.reduce((sum, pool) => sum + pool.servers.length, 0);
      // Valid, but worth a word: a pool TTL much longer than failure detection, a pool above Lync's 12 servers (stderr; exit 0).
      const warnings = validationWarnings(parsed);
      if (options.json) console.log(JSON.stringify({ valid: true, file, pools: parsed.pools.length, servers, warnings }, null, 2));
      else console.log(`${file}: valid (${plural(parsed.pools.length, 'pool')}, ${plural(servers, 'server')})`);
      if (!options.json) for (const warning of warnings) console.error(`${file}: warning: ${warning.pool}: ${warning.text}`);
    });
  topology
    .command('show')
    .description('print a summary: domains, sites, pools with servers and addresses, DNS servers, zones, views (of FILE, else of the published version)')
    .argument('[file]', 'topology YAML (default: the published version of the store)')
    .option('--version <n>', 'an older published version (default: the current one)', versionNumber)
    .option('--json', 'print the validated topology, defaults filled in, as JSON')
    .option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT)
    .option(STORE_FLAGS, STORE_DESCRIPTION)
    .action(async (file: string | undefined, options: { json?: boolean; version?: number }, command: Command) => {
      if (file !== undefined && options.version !== undefined) throw new DnslbError('CLI_USAGE', 'topology show: --version reads the store; give it or a FILE, not both');
      let parsed: Topology;
      let label: string;
      if (file !== undefined) {
        parsed = await parseFile(file);
        label = file;
      } else {
        const published = await readPublished(command, options.version);
        parsed = published.topology;
        label = `version ${published.version} in ${storeLabelOf(command)}`;
      }
      console.log(options.json ? JSON.stringify(parsed, null, 2) : formatSummary(parsed, label));
    });
  topology
    .command('advise')
    .description('per pool: is DNS load balancing recommended, supported (which failover is lost) or hardware-only')
    .argument('<file>', 'topology YAML')
    .option('--json', 'print the advice as JSON')
    .option('--legacy-clients-max <percent>', 'share of pre-2010 clients above which frontend and director pools are hardware-only', percent, LEGACY_CLIENTS_PERCENT_MAX)
    .action(async (file: string, options: { json?: boolean; legacyClientsMax: number }) => {
      const advice = advise(await parseFile(file), { legacyClientsPercentMax: options.legacyClientsMax });
      console.log(options.json ? JSON.stringify(advice, null, 2) : formatAdvice(advice));
    });
  topology
    .command('schema')
    .description('print the JSON Schema of topology documents (for editors: yaml-language-server, VS Code)')
    .action(() => {
      console.log(JSON.stringify(topologyJsonSchema(), null, 2));
    });
}
