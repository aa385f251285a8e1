// The advisor's decision guide, one case per row (README "Advisor"), on a topology with one pool of each kind.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { BASE_YAML } from '../../test/helpers/topology-text.ts';
import { advise, detectionMs, LEGACY_CLIENTS_PERCENT_MAX, POOL_SERVERS_SUPPORTED_MAX, poolSizeWarnings, TTL_DETECTION_RATIO_MAX, ttlWarnings, validationWarnings, type GuideRow, type PoolAdvice } from './advise.ts';
import { parse } from './parse.ts';

/** BASE_YAML's pools: pool01 frontend/dns, pool02 frontend/hardware, dirpool director/dns, edgepool edge/dns, medpool mediation/dns. */
function adviceWith(facts: string, options?: { legacyClientsPercentMax?: number }): Record<string, PoolAdvice> {
  const advice = advise(parse(`${BASE_YAML}facts: ${facts}\n`), options);
  return Object.fromEntries(advice.pools.map((pool) => [pool.pool.split('.')[0], pool]));
}

function lostRows(pool: PoolAdvice | undefined): GuideRow[] {
  return pool?.lost.map((lost) => lost.row) ?? [];
}

function noteRows(pool: PoolAdvice | undefined): GuideRow[] {
  return pool?.notes.map((note) => note.row) ?? [];
}

describe('advise: the decision guide', () => {
  test('modern-only: no legacy anything, DNS load balancing recommended everywhere', () => {
    const advice = adviceWith('{}');
    for (const pool of Object.values(advice)) {
      assert.equal(pool.verdict, 'recommended', pool.pool);
      assert.deepEqual(pool.lost, []);
      assert.ok(noteRows(pool).includes('modern-only'));
    }
  });

  test('legacy-clients: a few pre-2010 clients lose client failover on client-facing pools', () => {
    const advice = adviceWith('{ legacyClientsPercent: 10 }');
    for (const name of ['pool01', 'dirpool', 'edgepool']) {
      assert.equal(advice[name]?.verdict, 'supported', name);
      assert.deepEqual(lostRows(advice[name]), ['legacy-clients']);
      assert.match(advice[name]?.lost[0]?.why ?? '', /10 %.*only the first address/);
    }
    assert.equal(advice['medpool']?.verdict, 'recommended', 'no clients connect to a mediation pool');
  });

  test(`legacy-clients-many: above ${LEGACY_CLIENTS_PERCENT_MAX} %, frontend and director pools are hardware-only`, () => {
    assert.equal(adviceWith(`{ legacyClientsPercent: ${LEGACY_CLIENTS_PERCENT_MAX} }`)['pool01']?.verdict, 'supported', 'the threshold itself is still supported');
    const advice = adviceWith(`{ legacyClientsPercent: ${LEGACY_CLIENTS_PERCENT_MAX + 1} }`);
    for (const name of ['pool01', 'dirpool']) {
      assert.equal(advice[name]?.verdict, 'hardware-only', name);
      assert.deepEqual(lostRows(advice[name]), ['legacy-clients-many']);
    }
    assert.equal(advice['edgepool']?.verdict, 'supported');
    assert.deepEqual(lostRows(advice['edgepool']), ['legacy-clients']);
    assert.ok(noteRows(advice['pool01']).includes('dns-configured-against-advice'));
  });

  test('legacy-clients-many: the threshold is an option', () => {
    const advice = adviceWith('{ legacyClientsPercent: 30 }', { legacyClientsPercentMax: 50 });
    assert.equal(advice['pool01']?.verdict, 'supported');
    assert.equal(advise(parse(BASE_YAML), { legacyClientsPercentMax: 5 }).legacyClientsPercentMax, 5);
  });

  test('pre-2010-servers: OCS 2007 / R2 interop loses failover on every pool', () => {
    const advice = adviceWith('{ pre2010Servers: true }');
    for (const pool of Object.values(advice)) {
      assert.equal(pool.verdict, 'supported', pool.pool);
      assert.deepEqual(lostRows(pool), ['pre-2010-servers']);
    }
  });

  test('exchange-um-frontend: Exchange UM before 2010 SP1 loses voice-mail playback and auto-attendant transfer', () => {
    for (const version of ['2007', '"2007-sp1"', '2010']) {
      const advice = adviceWith(`{ exchangeUm: ${version} }`);
      for (const name of ['pool01', 'dirpool']) {
        assert.equal(advice[name]?.verdict, 'supported', `${name} with ${version}`);
        assert.deepEqual(lostRows(advice[name]), ['exchange-um-frontend', 'exchange-um-frontend']);
        assert.match(advice[name]?.lost.map((lost) => lost.scenario).join('; ') ?? '', /voice-mail playback.*auto attendant/);
      }
      assert.equal(advice['medpool']?.verdict, 'recommended');
    }
    assert.equal(adviceWith('{ exchangeUm: "2010-sp1" }')['pool01']?.verdict, 'recommended');
  });

  test('exchange-um-edge: Exchange UM before 2013 loses remote users\u2019 UM failover on the edge', () => {
    const sp1 = adviceWith('{ exchangeUm: "2010-sp1" }');
    assert.equal(sp1['edgepool']?.verdict, 'supported');
    assert.deepEqual(lostRows(sp1['edgepool']), ['exchange-um-edge', 'exchange-um-edge']);
    assert.deepEqual(lostRows(adviceWith('{ exchangeUm: 2007 }')['edgepool']), ['exchange-um-edge', 'exchange-um-edge']);
    for (const version of ['2013', '2016', 'none']) assert.equal(adviceWith(`{ exchangeUm: ${version} }`)['edgepool']?.verdict, 'recommended', version);
  });

  test('federation-pre-2010: federating with pre-2010 servers loses edge failover', () => {
    const advice = adviceWith('{ federationWithPre2010: true }');
    assert.equal(advice['edgepool']?.verdict, 'supported');
    assert.deepEqual(lostRows(advice['edgepool']), ['federation-pre-2010']);
    assert.equal(advice['pool01']?.verdict, 'recommended');
  });

  test('public-im: public IM connectivity makes the edge hardware-only', () => {
    const advice = adviceWith('{ publicIm: true }');
    assert.equal(advice['edgepool']?.verdict, 'hardware-only');
    assert.deepEqual(lostRows(advice['edgepool']), ['public-im']);
    assert.ok(noteRows(advice['edgepool']).includes('dns-configured-against-advice'));
    assert.equal(advice['pool01']?.verdict, 'recommended');
  });

  test('xmpp: XMPP federation makes the edge hardware-only', () => {
    const advice = adviceWith('{ xmpp: true }');
    assert.equal(advice['edgepool']?.verdict, 'hardware-only');
    assert.deepEqual(lostRows(advice['edgepool']), ['xmpp']);
    assert.equal(advice['dirpool']?.verdict, 'recommended');
  });

  test('federation-pre-2010, public-im and xmpp say how to watch the loss: the simulator profile, the share for the pool\'s size, the test', async () => {
    const text = (await readFile(new URL('../../examples/contoso.yaml', import.meta.url), 'utf8')).replace('federationWithPre2010: false', 'federationWithPre2010: true').replace('xmpp: false', 'xmpp: true');
    const edge = advise(parse(text)).pools.find((pool) => pool.kind === 'edge')!;
    const see = Object.fromEntries(edge.lost.map((lost) => [lost.row, lost.see]));
    assert.match(see['federation-pre-2010'] ?? '', /^with 1 of the 2 edge servers down, about 50 % of these peers' requests fail .* --peers legacy-federation:N,federation:N, then dnslb server stop edge1\.contoso\.com \(test\/integration\/federation-failover\.test\.ts/);
    assert.match(see.xmpp ?? '', /--peers xmpp-gateway:N/);
    // One edge server: nothing fails over for anyone, and the hint says so instead of a share.
    assert.match(adviceWith('{ publicIm: true }')['edgepool']?.lost[0]?.see ?? '', /^with its only edge server down every request fails/);
    // Rows that are not about edge peers carry no hint.
    assert.equal(adviceWith('{ pre2010Servers: true }')['pool01']?.lost[0]?.see, undefined);
  });

  test('web-services: frontend and director pools are told Web services need a hardware load balancer', () => {
    const advice = adviceWith('{}');
    for (const name of ['pool01', 'pool02', 'dirpool']) assert.ok(noteRows(advice[name]).includes('web-services'), name);
    for (const name of ['edgepool', 'medpool']) assert.ok(!noteRows(advice[name]).includes('web-services'), name);
  });

  test('mediation-gateways: mediation pools are told their gateways must try the next address', () => {
    const advice = adviceWith('{}');
    assert.ok(noteRows(advice['medpool']).includes('mediation-gateways'));
    assert.ok(!noteRows(advice['pool01']).includes('mediation-gateways'));
  });

  test('hardware-configured: a hardware pool is told DNS load balancing is possible but not configured', () => {
    const pool02 = adviceWith('{}')['pool02'];
    assert.equal(pool02?.configured, 'hardware');
    assert.equal(pool02?.verdict, 'recommended');
    assert.match(pool02?.notes.find((note) => note.row === 'hardware-configured')?.text ?? '', /possible here \(recommended\) but not configured/);
    const many = adviceWith('{ legacyClientsPercent: 90 }')['pool02'];
    assert.equal(many?.verdict, 'hardware-only');
    assert.match(many?.notes.find((note) => note.row === 'hardware-configured')?.text ?? '', /as advised/);
    assert.ok(!noteRows(adviceWith('{}')['pool01']).includes('hardware-configured'));
  });

  test('findings add up: the worst row decides the verdict', () => {
    const advice = adviceWith('{ legacyClientsPercent: 5, pre2010Servers: true, exchangeUm: 2010, federationWithPre2010: true, publicIm: true, xmpp: true }');
    assert.equal(advice['edgepool']?.verdict, 'hardware-only');
    assert.deepEqual(lostRows(advice['edgepool']), ['legacy-clients', 'pre-2010-servers', 'exchange-um-edge', 'exchange-um-edge', 'federation-pre-2010', 'public-im', 'xmpp']);
    assert.equal(advice['pool01']?.verdict, 'supported');
    assert.deepEqual(lostRows(advice['pool01']), ['legacy-clients', 'pre-2010-servers', 'exchange-um-frontend', 'exchange-um-frontend']);
  });

  test('the example topology: every pool recommended', async () => {
    const { parseFile } = await import('./parse.ts');
    const advice = advise(await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname));
    assert.deepEqual(
      advice.pools.map((pool) => [pool.pool, pool.verdict]),
      [
        ['pool01.contoso.com', 'recommended'],
        ['pool02.contoso.com', 'recommended'],
        ['dirpool.contoso.com', 'recommended'],
        ['edgepool.contoso.com', 'recommended'],
        ['medpool.contoso.com', 'recommended'],
      ],
    );
  });
});

describe('TTL against failure detection', () => {
  test('a pool TTL more than 20× the detection time is warned, with the worst case a client waits; hardware pools never', () => {
    const topology = parse(BASE_YAML);
    assert.equal(detectionMs(topology.settings), (topology.settings.heartbeat.failAfter + 1) * topology.settings.heartbeat.intervalMs);
    const warnings = ttlWarnings(topology);
    const dnsPools = topology.pools.filter((pool) => pool.loadBalancing === 'dns' && pool.dns.ttl * 1000 > TTL_DETECTION_RATIO_MAX * detectionMs(topology.settings));
    assert.ok(dnsPools.length > 0, 'the base topology keeps the default TTL (300 s)');
    assert.deepEqual(warnings.map((warning) => warning.pool), dnsPools.map((pool) => pool.fqdn));
    for (const warning of warnings) {
      assert.equal(warning.worstCaseMs, warning.detectionMs + warning.ttlS * 1000 + 2000);
      assert.match(warning.text, /^dns\.ttl 300 s is more than 20× the time to detect a dead server \(4 s: heartbeat 1000 ms × \(failAfter 3 \+ 1\)\); a client may hold a dead server's address for 306 s/);
    }
    const advice = advise(topology);
    for (const pool of advice.pools) assert.equal(noteRows(pool).includes('ttl-detection'), warnings.some((warning) => warning.pool === pool.pool), pool.pool);
  });

  test('the example (TTL 60 s, detection 4 s: 66 s worst case) is not warned', async () => {
    const example = parse(await readFile(new URL('../../examples/contoso.yaml', import.meta.url), 'utf8'));
    assert.deepEqual(ttlWarnings(example), []);
  });
});

describe('pool size against Lync 2013\'s 12 Front End servers', () => {
  /** One DNS-load-balanced Front End pool of `count` servers (and a director pool of `directors`). */
  const pools = (count: number, directors = 2) => {
    const servers = (prefix: string, octet: number, n: number) => Array.from({ length: n }, (_, index) => `      - { fqdn: ${prefix}${index + 1}.contoso.com, ipv4: 10.0.${octet}.${index + 1} }`).join('\n');
    return parse(`schemaVersion: 1
sipDomains: [contoso.com]
sites: [{ name: redmond }]
pools:
  - fqdn: pool01.contoso.com
    kind: frontend
    site: redmond
    loadBalancing: dns
    servers:
${servers('fe', 1, count)}
    webServices:
      internal: { fqdn: webint.contoso.com, vip: { ipv4: 10.0.9.1 } }
      external: { fqdn: webext.contoso.com, vip: { ipv4: 10.0.9.2 } }
    dns: { ttl: 60 }
  - fqdn: dirpool.contoso.com
    kind: director
    site: redmond
    loadBalancing: dns
    servers:
${servers('dir', 2, directors)}
    webServices:
      internal: { fqdn: dirweb.contoso.com, vip: { ipv4: 10.0.9.3 } }
      external: { fqdn: dirwebext.contoso.com, vip: { ipv4: 10.0.9.4 } }
    dns: { ttl: 60 }
dns:
  servers: [{ fqdn: dns1.contoso.com, listen: ["10.0.9.53:53"] }]
  zones: [{ name: contoso.com }]
`);
  };

  test('12 Front End servers: valid, no warning; 13: valid, warned by validate and as an advisor note', () => {
    assert.deepEqual(poolSizeWarnings(pools(POOL_SERVERS_SUPPORTED_MAX)), []);
    assert.deepEqual(validationWarnings(pools(POOL_SERVERS_SUPPORTED_MAX)), []);
    const thirteen = pools(POOL_SERVERS_SUPPORTED_MAX + 1);
    const warnings = validationWarnings(thirteen);
    assert.deepEqual(warnings.map((warning) => warning.pool), ['pool01.contoso.com']);
    assert.match(warnings[0]!.text, /^13 Front End servers: Lync Server 2013 supports at most 12 per pool/);
    const advice = advise(thirteen);
    assert.deepEqual(noteRows(advice.pools[0]).filter((row) => row === 'pool-size'), ['pool-size']);
    assert.equal(advice.pools[0]!.verdict, advise(pools(POOL_SERVERS_SUPPORTED_MAX)).pools[0]!.verdict, 'the size changes no verdict');
  });

  test('the limit is the Front End pool\'s: a director pool of 13 is not warned about it', () => {
    assert.deepEqual(poolSizeWarnings(pools(2, 13)), []);
  });
});
