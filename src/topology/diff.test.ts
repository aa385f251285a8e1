// Tests of the topology diff (what an operator reads before publishing) and of toDocument, its round trip.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { validTopology } from '../../test/helpers/topology-arbitrary.ts';
import { diffTopologies, formatDiff } from './diff.ts';
import { formatEndpoint, toDocument } from './document.ts';
import { fromObject, parse } from './parse.ts';
import type { TopologyInput } from './schema.ts';

const contosoText = readFileSync(new URL('../../examples/contoso.yaml', import.meta.url), 'utf8');
const contoso = parse(contosoText, 'contoso.yaml');

/** contoso.yaml changed by `edit` on a mutable copy of its document. */
function edited(edit: (document: TopologyInput & { pools: Record<string, unknown>[] }) => void) {
  const document = toDocument(contoso) as TopologyInput & { pools: Record<string, unknown>[] };
  edit(document);
  return fromObject(document);
}

describe('toDocument', () => {
  test('endpoints go back to "address:port" and "[v6]:port"', () => {
    assert.equal(formatEndpoint({ address: '127.0.0.1', port: 5300 }), '127.0.0.1:5300');
    assert.equal(formatEndpoint({ address: '::1', port: 53 }), '[::1]:53');
  });

  test('property: fromObject(toDocument(t)) deep-equals t', () => {
    fc.assert(fc.property(validTopology, (topology) => assert.deepEqual(fromObject(toDocument(topology)), topology)), { numRuns: 100 });
  });
});

describe('diffTopologies', () => {
  test('a topology against itself: no changes', () => {
    const diff = diffTopologies(contoso, contoso);
    assert.deepEqual(diff.entries, []);
    assert.equal(formatDiff(diff), 'no changes');
  });

  test('a server added, one removed and an address changed are named with their pool', () => {
    const after = edited((document) => {
      const pool = document.pools[0] as { servers: { fqdn: string; ipv4?: string }[] };
      pool.servers = pool.servers.filter((server) => server.fqdn !== 'fe3.contoso.com');
      pool.servers.push({ fqdn: 'fe4.contoso.com', ipv4: '127.0.0.14' });
      (pool.servers[1] as { ipv4: string }).ipv4 = '127.0.0.15';
    });
    const diff = diffTopologies(contoso, after);
    assert.deepEqual(diff.summary.serversAdded, ['fe4.contoso.com']);
    assert.deepEqual(diff.summary.serversRemoved, ['fe3.contoso.com']);
    assert.deepEqual(diff.summary.serversChanged, ['fe2.contoso.com']);
    assert.deepEqual(diff.summary.poolsChanged, ['pool01.contoso.com']);
    const text = formatDiff(diff);
    assert.match(text, /^~ pools\[pool01\.contoso\.com\]\.servers\[fe2\.contoso\.com\]\.ipv4: "127\.0\.0\.12" → "127\.0\.0\.15"$/m);
    assert.match(text, /^- pools\[pool01\.contoso\.com\]\.servers\[fe3\.contoso\.com\]: 127\.0\.0\.13$/m);
    assert.match(text, /^\+ pools\[pool01\.contoso\.com\]\.servers\[fe4\.contoso\.com\]: 127\.0\.0\.14$/m);
    assert.match(text, /3 change\(s\): 1 pool\(s\) changed, 1 server\(s\) added, 1 server\(s\) removed, 1 server\(s\) changed$/);
  });

  test('reordering servers is a change (a fixed answer order follows it)', () => {
    const after = edited((document) => {
      (document.pools[0] as { servers: unknown[] }).servers.reverse();
    });
    assert.deepEqual(formatDiff(diffTopologies(contoso, after)).split('\n')[0], '~ pools[pool01.contoso.com].servers (order): ["fe1.contoso.com","fe2.contoso.com","fe3.contoso.com"] → ["fe3.contoso.com","fe2.contoso.com","fe1.contoso.com"]');
  });

  test('a pool added and one removed list their servers', () => {
    const after = edited((document) => {
      const mediation = document.pools.pop() as { fqdn: string; servers: { fqdn: string; ipv4: string }[] };
      document.pools.push({ ...mediation, fqdn: 'medpool2.contoso.com', servers: [{ fqdn: 'med3.contoso.com', ipv4: '127.0.0.63' }] });
      // The PSTN routes follow the renamed pool (a route to a pool that is gone is refused).
      const pstn = document.pstn as { routes: { pool: string }[] };
      for (const route of pstn.routes) route.pool = 'medpool2.contoso.com';
    });
    const diff = diffTopologies(contoso, after);
    assert.deepEqual(diff.summary.poolsRemoved, ['medpool.contoso.com']);
    assert.deepEqual(diff.summary.poolsAdded, ['medpool2.contoso.com']);
    assert.deepEqual(diff.summary.serversRemoved, ['med1.contoso.com', 'med2.contoso.com']);
    assert.deepEqual(diff.summary.serversAdded, ['med3.contoso.com']);
    assert.equal(diff.entries.filter((entry) => entry.path.startsWith('pools')).length, 2);
    assert.match(formatDiff(diff), /^\+ pools\[medpool2\.contoso\.com\]: mediation pool, dns load balancing, servers med3\.contoso\.com \(127\.0\.0\.63\)$/m);
  });

  test('settings, DNS listen addresses and pool policies appear with their path', () => {
    const after = edited((document) => {
      (document.settings as { heartbeat: { intervalMs: number } }).heartbeat.intervalMs = 500;
      (document.dns.servers[0] as { listen: string[] }).listen = ['127.0.0.1:5301'];
      (document.pools[0] as { dns: { ttl: number } }).dns.ttl = 30;
    });
    const lines = formatDiff(diffTopologies(contoso, after)).split('\n');
    assert.ok(lines.includes('~ pools[pool01.contoso.com].dns.ttl: 60 → 30'), lines.join('\n'));
    // Lists of plain values are compared as sets: what left, what came.
    assert.ok(lines.includes('- dns.servers[dns1.contoso.com].listen[127.0.0.1:5300]: "127.0.0.1:5300"'), lines.join('\n'));
    assert.ok(lines.includes('+ dns.servers[dns1.contoso.com].listen[127.0.0.1:5301]: "127.0.0.1:5301"'), lines.join('\n'));
    assert.ok(lines.includes('~ settings.heartbeat.intervalMs: 1000 → 500'), lines.join('\n'));
  });
});
