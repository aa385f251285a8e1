// Topology-aware routing: servers to try in the callee's home pool (table), and the Mediation choice by
// Call-ID (table, and properties: even spread, and taking a server out moves only its calls).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MULTI_POOL_FILE } from '../../test/helpers/topology-text.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { Sequencer } from '../registrar/sequence.ts';
import { toDocument } from '../topology/document.ts';
import { fromObject, parseFile } from '../topology/parse.ts';
import type { Topology } from '../topology/schema.ts';
import { mediationServersFor, serversToTry, type NoTargets, type Routable, type Targets } from './routing.ts';

const topology = await parseFile(MULTI_POOL_FILE);
const everyone: Routable = () => true;
const except = (...servers: string[]): Routable => (server) => !servers.includes(server);

function servers(result: Targets | NoTargets): string[] {
  assert.ok(!('none' in result), JSON.stringify(result));
  return result.targets.map((target) => target.server);
}

function reason(result: Targets | NoTargets): string {
  assert.ok('none' in result, JSON.stringify(result));
  return result.reason;
}

describe('serversToTry: the callee in its home pool', () => {
  // pool02: fe4, fe5, fe6. The sequence order is the callee's; the function keeps it.
  const sequence = ['fe5.contoso.com', 'fe4.contoso.com', 'fe6.contoso.com'];
  const cases: [string, readonly string[], Routable, string[]][] = [
    ['all routable: the whole sequence, home first', sequence, everyone, ['fe5.contoso.com', 'fe4.contoso.com', 'fe6.contoso.com']],
    ['the home server down: its backup first', sequence, except('fe5.contoso.com'), ['fe4.contoso.com', 'fe6.contoso.com']],
    ['two of three out: the last one', sequence, except('fe5.contoso.com', 'fe6.contoso.com'), ['fe4.contoso.com']],
    ['a server no longer in the topology is skipped', ['fe9.contoso.com', ...sequence], everyone, ['fe5.contoso.com', 'fe4.contoso.com', 'fe6.contoso.com']],
    ['a server of another pool is skipped', ['fe1.contoso.com', ...sequence], everyone, ['fe5.contoso.com', 'fe4.contoso.com', 'fe6.contoso.com']],
    ['repeats are tried once, names are compared in canonical form', ['FE5.contoso.com.', ...sequence], everyone, ['fe5.contoso.com', 'fe4.contoso.com', 'fe6.contoso.com']],
  ];
  for (const [name, order, routable, expected] of cases) {
    test(name, () => assert.deepEqual(servers(serversToTry(topology, 'pool02.contoso.com', order, routable)), expected));
  }

  test('each target carries the address and ports from the topology', () => {
    const result = serversToTry(topology, 'pool02.contoso.com', sequence, everyone);
    assert.ok(!('none' in result));
    assert.deepEqual(result.targets[0], { server: 'fe5.contoso.com', address: '127.0.2.15', tcpPort: 5060, tlsPort: 5061 });
    assert.equal(result.pool, 'pool02.contoso.com');
  });

  test('never more tries than the pool has servers', () => {
    const long = [...sequence, ...sequence, ...sequence];
    assert.equal(servers(serversToTry(topology, 'pool02.contoso.com', long, everyone)).length, 3);
  });

  test('nothing routable: a reason, never a dead server', () => {
    assert.match(reason(serversToTry(topology, 'pool02.contoso.com', sequence, () => false)), /no server of pool02\.contoso\.com can be reached: all 3 are down, blocked or out of the topology/);
    assert.match(reason(serversToTry(topology, 'pool09.contoso.com', sequence, everyone)), /home pool pool09\.contoso\.com is not a pool of the published topology/);
  });

  test('with the registrar\'s sequence: the callee\'s home server is first', () => {
    const pool02 = topology.pools[1];
    assert.ok(pool02);
    const calleeSequence = new Sequencer(pool02.servers.map((server) => server.fqdn)).sequenceOf('sip:bob@dublin.contoso.com');
    const result = servers(serversToTry(topology, 'pool02.contoso.com', calleeSequence, everyone));
    assert.deepEqual(result, calleeSequence);
  });
});

describe('mediationServersFor: the Call-ID picks the server', () => {
  test('the same Call-ID gets the same order (retransmissions, the dialog)', () => {
    const first = servers(mediationServersFor('a84b4c76e66710@pc33.contoso.com', topology, 'medpool.contoso.com', everyone));
    assert.equal(first.length, 2);
    assert.deepEqual(new Set(first), new Set(['med1.contoso.com', 'med2.contoso.com']));
    for (let attempt = 0; attempt < 3; attempt++) {
      assert.deepEqual(servers(mediationServersFor('a84b4c76e66710@pc33.contoso.com', topology, 'medpool.contoso.com', everyone)), first);
    }
  });
  test('the chosen server down: the next one', () => {
    const [chosen, next] = servers(mediationServersFor('call-1@contoso.com', topology, 'medpool.contoso.com', everyone));
    assert.ok(chosen && next);
    assert.deepEqual(servers(mediationServersFor('call-1@contoso.com', topology, 'medpool.contoso.com', except(chosen))), [next]);
  });
  test('bad requests get reasons', () => {
    assert.match(reason(mediationServersFor('x', topology, 'pool01.contoso.com', everyone)), /pool01\.contoso\.com is a frontend pool, not a mediation pool/);
    assert.match(reason(mediationServersFor('x', topology, 'med9.contoso.com', everyone)), /not a pool of the published topology/);
    assert.match(reason(mediationServersFor('', topology, 'medpool.contoso.com', everyone)), /without a Call-ID/);
    assert.match(reason(mediationServersFor('x', topology, 'medpool.contoso.com', () => false)), /no server of mediation pool medpool\.contoso\.com can be reached/);
  });
});

/** Call-IDs as user agents make them: random hex, an @ and a host (RFC 3261 §8.1.1.4). */
function callIds(count: number, seed: number): string[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const hex = Array.from({ length: 4 }, () => Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0')).join('');
    return `${hex}@ua${Math.floor(random() * 1000)}.contoso.com`;
  });
}

/** The fixture with a mediation pool of these servers (addresses made up). */
function withMediationServers(names: readonly string[]): Topology {
  const document = toDocument(topology) as unknown as { pools: { kind: string; servers: { fqdn: string; ipv4: string }[] }[] };
  const mediation = document.pools.find((pool) => pool.kind === 'mediation');
  assert.ok(mediation);
  mediation.servers = names.map((fqdn, index) => ({ fqdn, ipv4: `127.0.3.${index + 1}` }));
  return fromObject(document);
}

const mediationName = fc.stringMatching(/^med[a-z0-9]{1,8}\.contoso\.com$/);

describe('properties of the Call-ID choice', () => {
  test('two servers share 10,000 Call-IDs evenly (each 40–60 %), whatever their names', () => {
    fc.assert(
      fc.property(fc.uniqueArray(mediationName, { minLength: 2, maxLength: 2 }), fc.integer(), (names, seed) => {
        const pool = withMediationServers(names);
        const counts = new Map<string, number>();
        for (const callId of callIds(10_000, seed)) {
          const [first] = servers(mediationServersFor(callId, pool, 'medpool.contoso.com', everyone));
          counts.set(first ?? '', (counts.get(first ?? '') ?? 0) + 1);
        }
        for (const name of names) {
          const share = (counts.get(name) ?? 0) / 10_000;
          assert.ok(share >= 0.4 && share <= 0.6, `${name} takes ${(100 * share).toFixed(1)} %`);
        }
      }),
      { numRuns: 10 },
    );
  });

  test('taking a server out moves only the Call-IDs that were on it, each to its next server', () => {
    fc.assert(
      fc.property(fc.uniqueArray(mediationName, { minLength: 2, maxLength: 6 }), fc.nat(), fc.integer(), (names, pick, seed) => {
        const pool = withMediationServers(names);
        const gone = names[pick % names.length] ?? '';
        for (const callId of callIds(500, seed)) {
          const before = servers(mediationServersFor(callId, pool, 'medpool.contoso.com', everyone));
          const after = servers(mediationServersFor(callId, pool, 'medpool.contoso.com', except(gone)));
          if (before[0] === gone) assert.equal(after[0], before[1]);
          else assert.equal(after[0], before[0]);
          // The rest of the order is kept too: the fail-over path does not reshuffle either.
          assert.deepEqual(after, before.filter((server) => server !== gone));
        }
      }),
      { numRuns: 30 },
    );
  });
});
