// The rules of home pool rules, PSTN routes and gateways: a document that breaks each (code, YAML path,
// line:column) and a near miss that passes. Pools of BASE_YAML: 0 pool01 and 1 pool02 (frontend),
// 2 dirpool (director), 3 edgepool (edge), 4 medpool (mediation).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { validTopology } from '../../test/helpers/topology-arbitrary.ts';
import { assertOneProblem, BASE_YAML, edit, MULTI_POOL_FILE, positionOf, problemsOf } from '../../test/helpers/topology-text.ts';
import { toDocument } from './document.ts';
import { fromObject, parse, parseFile } from './parse.ts';

function rejects(text: string, code: string, path: readonly (string | number)[], needle: string, nth = 0): string {
  return assertOneProblem(text, { code, path, at: positionOf(text, needle, nth) }).message;
}

function accepts(text: string): void {
  assert.doesNotThrow(() => parse(text, 'test.yaml'));
}

const MED_SERVERS = `      - fqdn: med1.contoso.com
        ipv4: 127.0.1.61
`;
/** BASE_YAML with a gateway on the mediation pool. */
const WITH_GATEWAY = edit(BASE_YAML, MED_SERVERS, `${MED_SERVERS}    gateways:\n      - { endpoint: "127.0.1.90:5060" }\n`);

const home = (rules: string, extra = ''): string => `${BASE_YAML}homePools:\n${extra}  rules:\n${rules}`;
const routes = (lines: string, base = WITH_GATEWAY): string => `${base}pstn:\n  routes:\n${lines}`;

test('the multi-pool fixture validates, and survives the store round trip', async () => {
  const topology = await parseFile(MULTI_POOL_FILE);
  const kinds = topology.pools.map((pool) => `${pool.kind}:${pool.servers.length}`);
  assert.deepEqual(kinds, ['frontend:3', 'frontend:3', 'director:2', 'edge:1', 'mediation:2']);
  assert.equal(topology.homePools?.rules.length, 3);
  assert.equal(topology.pstn?.routes.length, 3);
  assert.equal(topology.pools[4]?.gateways?.length, 1);
  assert.deepEqual(fromObject(toDocument(topology)), topology);
  assert.ok(Object.isFrozen(topology.homePools?.rules[0]));
});

describe('home pool rules', () => {
  test('the default pool and rule pools are declared frontend pools', () => {
    accepts(home('    - { domain: contoso.com, pool: pool02.contoso.com }\n', '  default: pool01.contoso.com\n'));
    let text = home('    - { domain: contoso.com, pool: pool09.contoso.com }\n');
    let message = rejects(text, 'TOPOLOGY_UNKNOWN_REFERENCE', ['homePools', 'rules', 0, 'pool'], 'pool: »pool09');
    assert.match(message, /pool09\.contoso\.com is not a pool of the topology \(frontend pools: pool01\.contoso\.com, pool02\.contoso\.com\)/);
    text = home('    - { domain: contoso.com, pool: dirpool.contoso.com }\n');
    message = rejects(text, 'TOPOLOGY_POOL_KIND', ['homePools', 'rules', 0, 'pool'], 'pool: »dirpool.contoso.com }');
    assert.match(message, /is a director pool; it must be a frontend pool/);
    text = `${BASE_YAML}homePools:\n  default: medpool.contoso.com\n`;
    rejects(text, 'TOPOLOGY_POOL_KIND', ['homePools', 'default'], 'default: »medpool');
  });
  test('a malformed user pattern is TOPOLOGY_BAD_PATTERN at the pattern', () => {
    const text = home('    - { users: "sips:*@contoso.com", pool: pool02.contoso.com }\n');
    const message = rejects(text, 'TOPOLOGY_BAD_PATTERN', ['homePools', 'rules', 0, 'users'], 'users: »"sips');
    assert.match(message, /with sip:/);
  });
  test('a rule has exactly one of domain and users', () => {
    const both = home('    - { domain: contoso.com, users: "sip:*@contoso.com", pool: pool02.contoso.com }\n');
    rejects(both, 'TOPOLOGY_SCHEMA', ['homePools', 'rules', 0], '    - »{ domain');
    const neither = home('    - { pool: pool02.contoso.com }\n');
    rejects(neither, 'TOPOLOGY_SCHEMA', ['homePools', 'rules', 0], '    - »{ pool');
  });
  test('a rule that matches no SIP domain is unreachable', () => {
    const message = rejects(home('    - { domain: fabrikam.com, pool: pool02.contoso.com }\n'), 'TOPOLOGY_UNREACHABLE_RULE', ['homePools', 'rules', 0, 'domain'], 'domain: »fabrikam.com, pool');
    assert.match(message, /matches no SIP domain of the topology \(contoso\.com\)/);
    rejects(home('    - { users: "sip:*@*.fabrikam.com", pool: pool02.contoso.com }\n'), 'TOPOLOGY_UNREACHABLE_RULE', ['homePools', 'rules', 0, 'users'], 'users: »"sip:*@*.fabrikam');
    accepts(home('    - { users: "sip:*@contoso.*", pool: pool02.contoso.com }\n'));
  });
  test('a rule an earlier one hides is unreachable', () => {
    const hidden = home('    - { users: "sip:dub-*@contoso.com", pool: pool02.contoso.com }\n    - { users: "sip:dub-a*@contoso.com", pool: pool01.contoso.com }\n');
    const message = rejects(hidden, 'TOPOLOGY_UNREACHABLE_RULE', ['homePools', 'rules', 1], '    - »{ users: "sip:dub-a*');
    assert.match(message, /home rule 1 can never match: rule 0 \(homePools\.rules\[0\]\) comes first/);
    // A domain rule is sip:*@domain: it hides every later rule of that domain.
    const afterDomain = home('    - { domain: contoso.com, pool: pool02.contoso.com }\n    - { users: "sip:bob@contoso.com", pool: pool01.contoso.com }\n');
    rejects(afterDomain, 'TOPOLOGY_UNREACHABLE_RULE', ['homePools', 'rules', 1], '    - »{ users: "sip:bob');
    const sameDomain = home('    - { users: "sip:*@*", pool: pool02.contoso.com }\n    - { domain: contoso.com, pool: pool01.contoso.com }\n');
    rejects(sameDomain, 'TOPOLOGY_UNREACHABLE_RULE', ['homePools', 'rules', 1], '    - »{ domain: contoso.com');
  });
  test('the specific rule first, the general one after: both reachable', () => {
    accepts(home('    - { users: "sip:dub-a*@contoso.com", pool: pool01.contoso.com }\n    - { users: "sip:dub-*@contoso.com", pool: pool02.contoso.com }\n'));
  });
});

describe('PSTN routes', () => {
  test('a route leads to a declared mediation pool', () => {
    accepts(routes('    - { prefix: "+1425", pool: medpool.contoso.com }\n'));
    rejects(routes('    - { prefix: "+1425", pool: med9.contoso.com }\n'), 'TOPOLOGY_UNKNOWN_REFERENCE', ['pstn', 'routes', 0, 'pool'], 'pool: »med9');
    const message = rejects(routes('    - { prefix: "+1425", pool: pool01.contoso.com }\n'), 'TOPOLOGY_POOL_KIND', ['pstn', 'routes', 0, 'pool'], 'pool: »pool01.contoso.com }');
    assert.match(message, /is a frontend pool; it must be a mediation pool/);
  });
  test('a route to a mediation pool without gateways', () => {
    const message = rejects(routes('    - { prefix: "+1425", pool: medpool.contoso.com }\n', BASE_YAML), 'TOPOLOGY_NO_GATEWAY', ['pstn', 'routes', 0, 'pool'], 'pool: »medpool.contoso.com }');
    assert.match(message, /mediation pool medpool\.contoso\.com has no gateways/);
  });
  test('a malformed prefix is TOPOLOGY_BAD_PATTERN', () => {
    rejects(routes('    - { prefix: "1425", pool: medpool.contoso.com }\n'), 'TOPOLOGY_BAD_PATTERN', ['pstn', 'routes', 0, 'prefix'], 'prefix: »"1425"');
    rejects(routes('    - { prefix: "+1 425", pool: medpool.contoso.com }\n'), 'TOPOLOGY_BAD_PATTERN', ['pstn', 'routes', 0, 'prefix'], 'prefix: »"+1 425"');
  });
  test('digitsMin above digitsMax is a schema problem at digitsMin', () => {
    rejects(routes('    - { prefix: "+1", digitsMin: 12, digitsMax: 11, pool: medpool.contoso.com }\n'), 'TOPOLOGY_SCHEMA', ['pstn', 'routes', 0, 'digitsMin'], 'digitsMin: »12');
  });
  test('a prefix longer than digitsMax takes no number', () => {
    const message = rejects(routes('    - { prefix: "+1425555", digitsMax: 6, pool: medpool.contoso.com }\n'), 'TOPOLOGY_UNREACHABLE_RULE', ['pstn', 'routes', 0, 'digitsMax'], 'digitsMax: »6');
    assert.match(message, /at least 7 digits and at most 6, so none/);
  });
  test('the same prefix again, inside the earlier range, is never chosen', () => {
    const text = routes('    - { prefix: "+1-425", pool: medpool.contoso.com }\n    - { prefix: "+1(425)", digitsMin: 11, digitsMax: 11, pool: medpool.contoso.com }\n');
    const message = rejects(text, 'TOPOLOGY_UNREACHABLE_RULE', ['pstn', 'routes', 1], '    - »{ prefix: "+1(425)"');
    assert.match(message, /route 1 \(\+1425\) is never chosen: route 0 \(\+1425\) has the same prefix/);
  });
  test('the same prefix with overlapping lengths is TOPOLOGY_ROUTE_OVERLAP', () => {
    const text = routes('    - { name: a, prefix: "+1", digitsMax: 11, pool: medpool.contoso.com }\n    - { name: b, prefix: "+1", digitsMin: 10, pool: medpool.contoso.com }\n');
    const message = rejects(text, 'TOPOLOGY_ROUTE_OVERLAP', ['pstn', 'routes', 1], '    - »{ name: b');
    assert.match(message, /both take numbers of 10–11 digits/);
  });
  test('nested prefixes and disjoint lengths are fine (the most specific prefix wins)', () => {
    accepts(routes('    - { prefix: "+1", pool: medpool.contoso.com }\n    - { prefix: "+1425", pool: medpool.contoso.com }\n    - { prefix: "+", pool: medpool.contoso.com }\n'));
    accepts(routes('    - { prefix: "+1", digitsMax: 10, pool: medpool.contoso.com }\n    - { prefix: "+1", digitsMin: 11, pool: medpool.contoso.com }\n'));
  });
  test('route names are unique', () => {
    const text = routes('    - { name: us, prefix: "+1", pool: medpool.contoso.com }\n    - { name: us, prefix: "+1425", pool: medpool.contoso.com }\n');
    rejects(text, 'TOPOLOGY_DUPLICATE_NAME', ['pstn', 'routes', 1, 'name'], 'name: »us', 1);
  });
});

describe('gateways', () => {
  test('only on mediation pools', () => {
    const text = edit(BASE_YAML, '        ipv4: 127.0.1.31\n', '        ipv4: 127.0.1.31\n    gateways: [{ endpoint: "127.0.1.90:5060" }]\n');
    rejects(text, 'TOPOLOGY_KEY_NOT_ALLOWED', ['pools', 2, 'gateways'], 'gateways: »[');
  });
  test('a malformed endpoint and an unknown transport', () => {
    const bad = edit(WITH_GATEWAY, '"127.0.1.90:5060" }', '"gw.contoso.com:5060" }');
    rejects(bad, 'TOPOLOGY_BAD_ADDRESS', ['pools', 4, 'gateways', 0, 'endpoint'], 'endpoint: »"gw');
    const udp = edit(WITH_GATEWAY, '"127.0.1.90:5060" }', '"127.0.1.90:5060", transport: udp }');
    rejects(udp, 'TOPOLOGY_SCHEMA', ['pools', 4, 'gateways', 0, 'transport'], 'transport: »udp');
  });
  test('a gateway at a server address would loop', () => {
    const text = edit(WITH_GATEWAY, '"127.0.1.90:5060" }', '"127.0.1.11:5070" }');
    const message = rejects(text, 'TOPOLOGY_DUPLICATE_IP', ['pools', 4, 'gateways', 0, 'endpoint', 'address'], 'endpoint: »"127.0.1.11');
    assert.match(message, /127\.0\.1\.11 of a PSTN gateway is already used by server fe1\.contoso\.com/);
  });
  test('two gateways may share a host on different ports, not the same endpoint', () => {
    accepts(edit(WITH_GATEWAY, '"127.0.1.90:5060" }\n', '"127.0.1.90:5060" }\n      - { endpoint: "127.0.1.90:5070", transport: tls, fqdn: gw.contoso.com }\n'));
    const text = edit(WITH_GATEWAY, '"127.0.1.90:5060" }\n', '"127.0.1.90:5060" }\n      - { endpoint: "127.0.1.90:5060" }\n');
    rejects(text, 'TOPOLOGY_DUPLICATE_IP', ['pools', 4, 'gateways', 1, 'endpoint'], 'endpoint: »"127.0.1.90:5060"', 1);
  });
  test('an empty gateway list is a schema problem', () => {
    assert.equal(problemsOf(edit(WITH_GATEWAY, '    gateways:\n      - { endpoint: "127.0.1.90:5060" }\n', '    gateways: []\n'))[0]?.code, 'TOPOLOGY_SCHEMA');
  });
});

test('the arbitrary topologies of the property tests carry home rules, routes and gateways too', () => {
  const samples = fc.sample(validTopology, { numRuns: 200, seed: 42 });
  assert.ok(samples.some((topology) => topology.homePools !== undefined));
  assert.ok(samples.some((topology) => topology.pstn !== undefined && topology.pools.some((pool) => pool.gateways !== undefined)));
  for (const topology of samples) assert.deepEqual(fromObject(toDocument(topology)), topology);
});
