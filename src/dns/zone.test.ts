// Zone building from the example topology and live state, and RFC 1982 serial arithmetic.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseFile } from '../topology/parse.ts';
import type { AdminState, LivenessRecord } from '../store/store.ts';
import { answeringServers, buildZones, fingerprint, nextSerial, serialGreater, type LiveState, type RRset } from './zone.ts';

const topology = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);
const NOW = 1_700_000_000_000;

function live(admin: Record<string, AdminState> = {}, liveness: LivenessRecord[] = []): LiveState {
  return { adminStates: new Map(Object.entries(admin)), liveness, nowMs: NOW };
}

function report(server: string, state: LivenessRecord['state'], atMs = NOW - 100, ttlMs = 3000): LivenessRecord {
  return { server, reporter: 'fe1.contoso.com', state, atMs, ttlMs, topologyVersion: 1 };
}

function rrsets(state: LiveState, view: string): RRset[] {
  const [zone] = buildZones(topology, state);
  return [...(zone?.views.get(view) ?? [])];
}

function values(sets: RRset[], name: string, type: RRset['type']): string[] {
  const set = sets.find((rrset) => rrset.name === name && rrset.type === type);
  return (set?.records ?? []).map((record) => ('address' in record ? record.address : JSON.stringify(record)));
}

describe('buildZones: what each view carries', () => {
  const internal = rrsets(live(), 'internal');
  const external = rrsets(live(), 'external');

  test('the pool FQDN answers one record per server, with the pool policy', () => {
    assert.deepEqual(values(internal, 'pool01.contoso.com', 'A'), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    const pool = internal.find((rrset) => rrset.name === 'pool01.contoso.com');
    assert.deepEqual([pool?.policy, pool?.ttl, pool?.maxRecords], ['rotate', 60, 0]);
  });

  test('server FQDNs, Web services VIPs and the edge internal pool are inside names', () => {
    assert.deepEqual(values(internal, 'fe2.contoso.com', 'A'), ['127.0.0.12']);
    assert.deepEqual(values(internal, 'pool02.contoso.com', 'A'), ['127.0.0.17', '127.0.0.18', '127.0.0.19']);
    assert.deepEqual(values(internal, 'webint02.contoso.com', 'A'), ['127.0.0.25']);
    assert.deepEqual(values(internal, 'webint.contoso.com', 'A'), ['127.0.0.21']);
    assert.deepEqual(values(internal, 'webext.contoso.com', 'A'), ['127.0.0.22']);
    assert.deepEqual(values(internal, 'edgepool.contoso.com', 'A'), ['127.0.0.41', '127.0.0.42']);
    assert.deepEqual(values(internal, 'lyncdiscoverinternal.contoso.com', 'A'), ['127.0.0.21']);
    assert.deepEqual(values(external, 'fe2.contoso.com', 'A'), [], 'servers are not published outside');
    assert.deepEqual(values(external, 'webint.contoso.com', 'A'), []);
  });

  test('edge services answer one record per edge server, outside only', () => {
    assert.deepEqual(values(external, 'sip.contoso.com', 'A'), ['127.0.0.51', '127.0.0.52']);
    assert.deepEqual(values(external, 'webconf.contoso.com', 'A'), ['127.0.0.53', '127.0.0.54']);
    assert.deepEqual(values(external, 'av.contoso.com', 'A'), ['127.0.0.55', '127.0.0.56']);
    assert.deepEqual(values(internal, 'sip.contoso.com', 'A'), []);
    assert.deepEqual(values(external, 'lyncdiscover.contoso.com', 'A'), ['127.0.0.22']);
  });

  test('SRV records: the Director pool inside, the Front End pools behind it; Access Edge outside', () => {
    for (const domain of ['contoso.com', 'dublin.contoso.com']) {
      assert.deepEqual(values(internal, `_sipinternaltls._tcp.${domain}`, 'SRV').map((text) => JSON.parse(text)), [
        { type: 'SRV', priority: 0, weight: 0, port: 5061, target: 'dirpool.contoso.com' },
        { type: 'SRV', priority: 10, weight: 0, port: 5061, target: 'pool01.contoso.com' },
        { type: 'SRV', priority: 10, weight: 0, port: 5061, target: 'pool02.contoso.com' },
      ]);
      assert.deepEqual(values(internal, `_sipinternal._tcp.${domain}`, 'SRV').map((text) => JSON.parse(text).target), ['dirpool.contoso.com', 'pool01.contoso.com', 'pool02.contoso.com']);
    }
    // Without Directors, the Front End pools alone, all first.
    const [zone] = buildZones({ ...topology, pools: topology.pools.filter((pool) => pool.kind !== 'director') }, live());
    const inside = [...(zone?.views.get('internal') ?? [])];
    assert.deepEqual(values(inside, '_sipinternaltls._tcp.contoso.com', 'SRV').map((text) => JSON.parse(text)), [
      { type: 'SRV', priority: 0, weight: 0, port: 5061, target: 'pool01.contoso.com' },
      { type: 'SRV', priority: 0, weight: 0, port: 5061, target: 'pool02.contoso.com' },
    ]);
    assert.deepEqual(values(external, '_sip._tls.contoso.com', 'SRV').map((text) => JSON.parse(text)), [{ type: 'SRV', priority: 0, weight: 0, port: 4443, target: 'sip.contoso.com' }]);
    assert.deepEqual(values(external, '_sipfederationtls._tcp.contoso.com', 'SRV').map((text) => JSON.parse(text)), [{ type: 'SRV', priority: 0, weight: 0, port: 5061, target: 'sip.contoso.com' }]);
  });

  test('NS, the name server glue, and static records limited to their views', () => {
    assert.deepEqual(values(internal, 'contoso.com', 'NS').map((text) => JSON.parse(text).target), ['dns1.contoso.com']);
    assert.deepEqual(values(external, 'dns1.contoso.com', 'A'), ['127.0.0.1']);
    assert.deepEqual(values(external, 'www.contoso.com', 'A'), ['127.0.0.80']);
    assert.deepEqual(values(internal, 'www.contoso.com', 'A'), []);
  });
});

describe('buildZones: live state', () => {
  test('a blocked server leaves the pool answer and its own name stops resolving', () => {
    const sets = rrsets(live({ 'fe2.contoso.com': 'blocked' }), 'internal');
    assert.deepEqual(values(sets, 'pool01.contoso.com', 'A'), ['127.0.0.11', '127.0.0.13']);
    assert.equal(sets.some((rrset) => rrset.name === 'fe2.contoso.com'), false);
  });

  test('a blocked edge server leaves the external service answers too', () => {
    assert.deepEqual(values(rrsets(live({ 'edge1.contoso.com': 'blocked' }), 'external'), 'sip.contoso.com', 'A'), ['127.0.0.52']);
  });

  test('health-aware: draining and dead servers leave the pool answer but keep their own names', () => {
    const sets = rrsets(live({ 'fe1.contoso.com': 'draining' }, [report('fe1.contoso.com', 'active'), report('fe2.contoso.com', 'down'), report('fe3.contoso.com', 'active')]), 'internal');
    assert.deepEqual(values(sets, 'pool01.contoso.com', 'A'), ['127.0.0.13']);
    assert.deepEqual(values(sets, 'fe2.contoso.com', 'A'), ['127.0.0.12']);
  });

  test('fail open: when no healthy server is left, every unblocked server answers', () => {
    const fromFe3 = (server: string, state: LivenessRecord['state']): LivenessRecord => ({ ...report(server, state), reporter: 'fe3.contoso.com' });
    const state = live({ 'fe3.contoso.com': 'blocked' }, [fromFe3('fe3.contoso.com', 'blocked'), fromFe3('fe1.contoso.com', 'down'), fromFe3('fe2.contoso.com', 'down')]);
    assert.deepEqual(values(rrsets(state, 'internal'), 'pool01.contoso.com', 'A'), ['127.0.0.11', '127.0.0.12']);
  });

  test('liveness by consensus (src/pool/health.ts): a majority of reporters that are up removes a server; unknown is not down', () => {
    const pool = topology.pools[0]!;
    const names = (state: LiveState): string[] => answeringServers(pool, state).map((server) => server.fqdn);
    const by = (reporter: string, server: string, state: LivenessRecord['state'], atMs = NOW - 100, ttlMs = 3000): LivenessRecord => ({ ...report(server, state, atMs, ttlMs), reporter });
    const all = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
    assert.deepEqual(names(live()), all, 'no reports at all: the full pool (start-up)');
    assert.deepEqual(names(live({}, [by('fe1.contoso.com', 'fe1.contoso.com', 'active')])), all, 'fe2, fe3 not reported yet: unknown, not down');
    assert.deepEqual(names(live({}, [by('fe1.contoso.com', 'fe1.contoso.com', 'active'), by('fe1.contoso.com', 'fe2.contoso.com', 'down'), by('fe2.contoso.com', 'fe2.contoso.com', 'active')])), all, 'one reporter against the server itself: a tie keeps it');
    const pair = [
      ...['fe1', 'fe2', 'fe3'].map((name) => by(`${name}.contoso.com`, `${name}.contoso.com`, 'active')),
      by('fe1.contoso.com', 'fe2.contoso.com', 'down', NOW - 50),
      by('fe2.contoso.com', 'fe1.contoso.com', 'down', NOW - 50),
      by('fe3.contoso.com', 'fe1.contoso.com', 'active', NOW - 500),
      by('fe3.contoso.com', 'fe2.contoso.com', 'active', NOW - 500),
    ];
    assert.deepEqual(names(live({}, pair)), all, 'a partitioned pair: the newer down reports do not win');
    const isolated = [
      ...['fe1', 'fe2', 'fe3'].map((name) => by(`${name}.contoso.com`, `${name}.contoso.com`, 'active')),
      by('fe1.contoso.com', 'fe3.contoso.com', 'down'),
      by('fe2.contoso.com', 'fe3.contoso.com', 'down'),
      by('fe3.contoso.com', 'fe1.contoso.com', 'down', NOW - 10),
      by('fe3.contoso.com', 'fe2.contoso.com', 'down', NOW - 10),
    ];
    assert.deepEqual(names(live({}, isolated)), ['fe1.contoso.com', 'fe2.contoso.com'], 'cut off from all: out');
    assert.deepEqual(names(live({}, [by('fe2.contoso.com', 'fe2.contoso.com', 'active'), by('fe2.contoso.com', 'fe1.contoso.com', 'down', NOW - 5000, 3000)])), all, 'an expired report does not count');
    assert.deepEqual(names(live({}, [by('fe1.contoso.com', 'fe1.contoso.com', 'draining')])), ['fe2.contoso.com', 'fe3.contoso.com'], 'draining by its own word');
  });

  test('a pool without healthAware ignores liveness but not blocking', () => {
    const pool = { ...topology.pools[0]!, dns: { ...topology.pools[0]!.dns, healthAware: false } };
    const names = answeringServers(pool, live({ 'fe1.contoso.com': 'blocked', 'fe2.contoso.com': 'draining' }, [report('fe3.contoso.com', 'down')])).map((server) => server.fqdn);
    assert.deepEqual(names, ['fe2.contoso.com', 'fe3.contoso.com']);
  });

  test('the content is a pure function of its inputs: same inputs, same fingerprint; a change, another', () => {
    const [a] = buildZones(topology, live());
    const [b] = buildZones(topology, live());
    const [c] = buildZones(topology, live({ 'fe1.contoso.com': 'draining' }));
    assert.equal(fingerprint(a!), fingerprint(b!));
    assert.notEqual(fingerprint(a!), fingerprint(c!));
  });
});

describe('serials (RFC 1982)', () => {
  test('serialGreater wraps around 2^32', () => {
    const table: [number, number, boolean][] = [
      [2, 1, true],
      [1, 2, false],
      [0, 4_294_967_295, true],
      [4_294_967_295, 0, false],
      [2 ** 31 - 1, 0, true],
      [5, 5, false],
    ];
    for (const [a, b, expected] of table) assert.equal(serialGreater(a, b), expected, `${a} > ${b}`);
  });

  test('nextSerial: Unix seconds, or previous + 1 when that is not greater', () => {
    assert.equal(nextSerial(undefined, 1_700_000_000_500), 1_700_000_000);
    assert.equal(nextSerial(1_600_000_000, 1_700_000_000_500), 1_700_000_000);
    assert.equal(nextSerial(1_700_000_000, 1_700_000_000_900), 1_700_000_001, 'two changes in one second');
    assert.equal(nextSerial(1_700_000_005, 1_700_000_000_000), 1_700_000_006, 'clock behind the serial');
    assert.equal(nextSerial(4_294_967_295, 2 ** 31 * 1000), 0, 'wraps: 0 follows 2^32 - 1');
    assert.equal(nextSerial(4_294_967_295, 1_000), 1, 'the clock serial 1 is already greater than 2^32 - 1');
  });
});
