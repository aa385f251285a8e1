// `dnslb topology validate|show|advise|schema` run as the real command (node bin/dnslb.js) in a child process.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runDnslb, type CliRun } from '../helpers/cli.ts';
import { BASE_YAML, edit, MULTI_POOL_FILE, positionOf } from '../helpers/topology-text.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLE = 'examples/contoso.yaml';

const dnslb = (...args: string[]): Promise<CliRun> => runDnslb(args, { cwd: ROOT });

let directory = '';
let invalidFile = '';
let invalidText = '';
let factsFile = '';

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'dnslb-cli-topology-'));
  invalidFile = join(directory, 'invalid.yaml');
  invalidText = edit(edit(BASE_YAML, 'site: dublin', 'site: paris'), 'ipv4: 127.0.1.12', 'ipv4: 127.0.1.11');
  await writeFile(invalidFile, invalidText);
  factsFile = join(directory, 'facts.yaml');
  await writeFile(factsFile, `${BASE_YAML}facts: { publicIm: true, exchangeUm: 2010 }\n`);
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('dnslb topology validate', () => {
  test('a valid file: exit 0 and a one-line summary', async () => {
    const run = await dnslb('topology', 'validate', EXAMPLE);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `${EXAMPLE}: valid (5 pools, 12 servers)`);
  });

  test('a valid file with --json', async () => {
    const run = await dnslb('topology', 'validate', '--json', EXAMPLE);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { valid: true, file: EXAMPLE, pools: 5, servers: 12, warnings: [] });
  });

  test('a pool TTL much longer than failure detection: valid, with a warning on stderr naming the worst case', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'dnslb-ttl-'));
    const file = join(directory, 'topology.yaml');
    await writeFile(file, (await readFile(EXAMPLE, 'utf8')).replace('dns: { order: rotate, maxRecords: 0, ttl: 60, healthAware: true }', 'dns: { order: rotate, maxRecords: 0, ttl: 300, healthAware: true }'));
    const run = await dnslb('topology', 'validate', file);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `${file}: valid (5 pools, 12 servers)`);
    assert.match(run.stderr, /warning: pool01\.contoso\.com: dns\.ttl 300 s is more than 20× the time to detect a dead server \(4 s: .*\); a client may hold a dead server's address for 306 s/);
    const json = JSON.parse((await dnslb('topology', 'validate', '--json', file)).stdout) as { warnings: { pool: string }[] };
    assert.deepEqual(json.warnings.map((warning) => warning.pool), ['pool01.contoso.com']);
    const advice = await dnslb('topology', 'advise', file);
    assert.match(advice.stdout, /note: dns\.ttl 300 s .* \[ttl-detection\]/);
  });

  test('an invalid file: exit 1, one line per problem with file:line:col, CODE and path', async () => {
    const run = await dnslb('topology', 'validate', invalidFile);
    assert.equal(run.code, 1);
    const ip = positionOf(invalidText, 'ipv4: »127.0.1.11', 1);
    const site = positionOf(invalidText, 'site: »paris');
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 3, run.stderr);
    assert.match(lines[0] ?? '', new RegExp(`^${invalidFile}:${ip.line}:${ip.column}: TOPOLOGY_DUPLICATE_IP at pools\\[0\\]\\.servers\\[1\\]\\.ipv4: `));
    assert.match(lines[1] ?? '', new RegExp(`^${invalidFile}:${site.line}:${site.column}: TOPOLOGY_UNKNOWN_REFERENCE at pools\\[1\\]\\.site: `));
    assert.equal(lines[2], `2 problems in ${invalidFile}; nothing was published`);
  });

  test('an invalid file with --json: the problems as JSON on stdout, exit 1', async () => {
    const run = await dnslb('topology', 'validate', '--json', invalidFile);
    assert.equal(run.code, 1);
    const result = JSON.parse(run.stdout) as { valid: boolean; problems: { code: string; line: number }[] };
    assert.equal(result.valid, false);
    assert.deepEqual(result.problems.map((problem) => problem.code), ['TOPOLOGY_DUPLICATE_IP', 'TOPOLOGY_UNKNOWN_REFERENCE']);
    assert.ok(result.problems.every((problem) => problem.line > 0));
  });

  test('a missing file: exit 1 with TOPOLOGY_FILE', async () => {
    const run = await dnslb('topology', 'validate', join(directory, 'missing.yaml'));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /TOPOLOGY_FILE/);
  });

  test('usage errors exit 2', async () => {
    for (const args of [['topology', 'validate'], ['topology', 'frobnicate'], ['topology', 'advise', '--legacy-clients-max', 'many', EXAMPLE], ['topology', 'show', EXAMPLE, 'extra']]) {
      const run = await dnslb(...args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    }
  });

  test('--help on every verb exits 0', async () => {
    for (const verb of ['validate', 'show', 'advise', 'schema']) {
      const run = await dnslb('topology', verb, '--help');
      assert.equal(run.code, 0, verb);
      assert.match(run.stdout, new RegExp(`Usage: dnslb topology ${verb}`));
    }
  });
});

describe('dnslb topology show', () => {
  test('prints domains, sites, pools with servers and addresses, DNS servers and views', async () => {
    const run = await dnslb('topology', 'show', EXAMPLE);
    assert.equal(run.code, 0, run.stderr);
    for (const expected of ['SIP domains: contoso.com', 'Sites: redmond (Head office)', 'pool01.contoso.com  frontend', 'fe2.contoso.com  127.0.0.12', 'Access Edge sip.contoso.com:4443', 'dns1.contoso.com  listen 127.0.0.1:5300', 'internal  127.0.0.0/24']) {
      assert.ok(run.stdout.includes(expected), `missing "${expected}" in:\n${run.stdout}`);
    }
  });

  test('a multi-pool topology: gateways, home pool rules and PSTN routes', async () => {
    const run = await dnslb('topology', 'show', MULTI_POOL_FILE);
    assert.equal(run.code, 0, run.stderr);
    for (const expected of [
      '    gateway 127.0.2.90:5060 tcp (gw1.contoso.com)',
      '  1  users sip:dub-*@contoso.com -> pool02.contoso.com',
      '  default -> pool01.contoso.com',
      '  redmond  +1425, 11 digits -> medpool.contoso.com',
      '  international  +, 8–15 digits -> medpool.contoso.com',
    ]) {
      assert.ok(run.stdout.includes(expected), `missing "${expected}" in:\n${run.stdout}`);
    }
    const example = await dnslb('topology', 'show', EXAMPLE);
    assert.match(example.stdout, /^ {2}default -> pool01\.contoso\.com$/m);
    assert.match(example.stdout, /^ {2}0 {2}domain dublin\.contoso\.com -> pool02\.contoso\.com$/m);
    assert.match(example.stdout, /^ {2}redmond {2}\+1425, 11 digits -> medpool\.contoso\.com$/m);
  });

  test('--json prints the validated topology with defaults filled in', async () => {
    const run = await dnslb('topology', 'show', '--json', EXAMPLE);
    assert.equal(run.code, 0, run.stderr);
    const topology = JSON.parse(run.stdout) as { pools: { fqdn: string; servers: { fqdn: string; ipv4: string }[]; sip: { tlsPort: number } }[]; dns: { servers: { listen: unknown[] }[] } };
    assert.deepEqual(topology.pools.map((pool) => pool.fqdn), ['pool01.contoso.com', 'pool02.contoso.com', 'dirpool.contoso.com', 'edgepool.contoso.com', 'medpool.contoso.com']);
    assert.deepEqual(topology.pools[0]?.servers[2], { fqdn: 'fe3.contoso.com', ipv4: '127.0.0.13' });
    assert.equal(topology.pools[0]?.sip.tlsPort, 5061);
    assert.deepEqual(topology.dns.servers[0]?.listen, [{ address: '127.0.0.1', port: 5300 }]);
  });
});

describe('dnslb topology advise', () => {
  test('prints each pool with its verdict and the lost scenarios', async () => {
    const run = await dnslb('topology', 'advise', factsFile);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^pool01\.contoso\.com \(frontend, configured dns\): DNS load balancing supported$/m);
    assert.match(run.stdout, /^ {2}lost: Exchange UM voice-mail playback \[exchange-um-frontend\]/m);
    assert.match(run.stdout, /^edgepool\.contoso\.com \(edge, configured dns\): DNS load balancing hardware-only$/m);
    assert.match(run.stdout, /^ {2}lost: public IM connectivity/m);
    assert.match(run.stdout, /^medpool\.contoso\.com \(mediation, configured dns\): DNS load balancing recommended$/m);
  });

  test('--json, with the legacy-clients threshold passed through', async () => {
    const run = await dnslb('topology', 'advise', '--json', '--legacy-clients-max', '35', factsFile);
    assert.equal(run.code, 0, run.stderr);
    const advice = JSON.parse(run.stdout) as { legacyClientsPercentMax: number; pools: { pool: string; verdict: string }[] };
    assert.equal(advice.legacyClientsPercentMax, 35);
    assert.deepEqual(advice.pools.map((pool) => pool.verdict), ['supported', 'supported', 'supported', 'hardware-only', 'recommended']);
  });

  test('an invalid file: exit 1', async () => {
    assert.equal((await dnslb('topology', 'advise', invalidFile)).code, 1);
  });
});

describe('dnslb topology schema', () => {
  test('prints a JSON Schema of the document', async () => {
    const run = await dnslb('topology', 'schema');
    assert.equal(run.code, 0, run.stderr);
    const schema = JSON.parse(run.stdout) as { $schema: string; type: string; properties: Record<string, { properties?: Record<string, unknown> }>; required: string[]; additionalProperties: boolean };
    assert.match(schema.$schema, /json-schema\.org/);
    assert.equal(schema.type, 'object');
    assert.deepEqual(Object.keys(schema.properties).sort(), ['dns', 'facts', 'homePools', 'pools', 'pstn', 'schemaVersion', 'settings', 'sipDomains', 'sites', 'users']);
    assert.deepEqual(schema.required.sort(), ['dns', 'pools', 'sipDomains', 'sites']);
    assert.equal(schema.additionalProperties, false);
    assert.ok(schema.properties['dns']?.properties?.['zones']);
    // Names carry a pattern editors can check as you type; it agrees with the parser on these.
    const pools = schema.properties['pools'] as unknown as { items: { properties: { fqdn: { pattern: string }; vip: { properties: { ipv4: { format: string } } } } } };
    const pattern = new RegExp(pools.items.properties.fqdn.pattern);
    assert.ok(pattern.test('Pool01.contoso.com.'));
    assert.ok(!pattern.test('pool_01.contoso.com'));
    assert.ok(!pattern.test('localhost'));
    assert.equal(pools.items.properties.vip.properties.ipv4.format, 'ipv4');
    // The role keys carry their patterns too, in agreement with the parser.
    const pstn = schema.properties['pstn'] as unknown as { properties: { routes: { items: { properties: { prefix: { pattern: string } } } } } };
    const prefix = new RegExp(pstn.properties.routes.items.properties.prefix.pattern);
    assert.ok(prefix.test('+1-425') && prefix.test('+') && !prefix.test('1425'));
    const home = schema.properties['homePools'] as unknown as { properties: { rules: { items: { properties: { users: { pattern: string } } } } } };
    const users = new RegExp(home.properties.rules.items.properties.users.pattern);
    assert.ok(users.test('sip:*@contoso.com') && !users.test('*@contoso.com'));
  });
});
