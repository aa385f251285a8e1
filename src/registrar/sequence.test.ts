// Tests of the logical registrar sequence: canonical URIs, the rendezvous properties (property
// tests), the spread of a failed server's users, redirect q-values and move plans.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isDnslbError } from '../shared/errors.ts';
import {
  Sequencer,
  canonicalUser,
  formatQ,
  formatRedirectContact,
  homeOf,
  nextAvailableAfter,
  planMoves,
  redirectContacts,
  redirectQValues,
  sequenceOf,
  weightOf,
} from './sequence.ts';

const fqdnArbitrary = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]\.[a-z]{2,6}\.com$/);
const serversArbitrary = fc.uniqueArray(fqdnArbitrary, { minLength: 1, maxLength: 12 });
const userArbitrary = fc.stringMatching(/^sips?:[A-Za-z0-9._-]{1,20}@[a-z]{1,10}\.(com|org)$/);

const users = (count: number): string[] => Array.from({ length: count }, (_, index) => `sip:user${index}@contoso.com`);

describe('canonicalUser', () => {
  test('folds scheme and host, keeps user case, drops password, port, parameters and headers', () => {
    assert.equal(canonicalUser('sips:Alice@Contoso.COM'), 'sip:Alice@contoso.com');
    assert.equal(canonicalUser('<sip:alice:secret@contoso.com.:5061;transport=tls?subject=x>'), 'sip:alice@contoso.com');
    assert.equal(canonicalUser('SIP:alice@[2001:DB8::1]:5060'), 'sip:alice@[2001:db8::1]');
    assert.equal(canonicalUser('sip:contoso.com'), 'sip:contoso.com');
    assert.notEqual(canonicalUser('sip:Alice@contoso.com'), canonicalUser('sip:alice@contoso.com'));
  });

  test('normalises escapes in the user part (RFC 3261 §19.1.4)', () => {
    assert.equal(canonicalUser('sip:%61lice@contoso.com'), 'sip:alice@contoso.com');
    assert.equal(canonicalUser('sip:al%2bice@contoso.com'), 'sip:al+ice@contoso.com');
    assert.equal(canonicalUser('sip:al%20ice@contoso.com'), canonicalUser('sip:al%20ice@contoso.com'));
    assert.equal(canonicalUser('sip:al%3aice@contoso.com'), 'sip:al%3Aice@contoso.com');
  });

  test('rejects what is not a sip URI with REGISTRAR_BAD_URI', () => {
    for (const bad of ['tel:+15551234', 'alice@contoso.com', 'sip:', 'sip:@contoso.com', 'sip:a%zz@contoso.com', 'sip:alice@[::1', 'sip:alice@con toso.com']) {
      assert.throws(() => canonicalUser(bad), (error: unknown) => isDnslbError(error, 'REGISTRAR_BAD_URI'), bad);
    }
  });
});

describe('sequenceOf', () => {
  test('is a permutation of the pool, and the same for every form of the same user', () => {
    const servers = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
    const sequence = sequenceOf('sip:alice@contoso.com', servers);
    assert.deepEqual([...sequence].sort(), servers);
    assert.deepEqual(sequenceOf('sips:alice@CONTOSO.com;transport=tls', servers), sequence);
    assert.deepEqual(sequenceOf('sip:alice@contoso.com', ['FE2.contoso.com.', 'fe3.contoso.com', 'fe1.contoso.com']), sequence);
  });

  test('the weight is fixed across processes and runs (a pinned value)', () => {
    // Pinned so that a change of the hash (which would re-home every user of every pool) fails here.
    assert.deepEqual(weightOf('sip:alice@contoso.com', 'fe1.contoso.com'), [3705310602, 140366780]);
    assert.deepEqual(
      ['alice', 'bob', 'carol', 'dave'].map((name) => sequenceOf(`sip:${name}@contoso.com`, ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'])[0]),
      PINNED_FIRST_SERVERS,
    );
  });

  test('property: permuting the server list does not change the sequence', () => {
    fc.assert(
      fc.property(userArbitrary, serversArbitrary.chain((servers) => fc.tuple(fc.constant(servers), fc.shuffledSubarray(servers, { minLength: servers.length }))), (user, [servers, shuffled]) => {
        assert.deepEqual(sequenceOf(user, shuffled), sequenceOf(user, servers));
      }),
    );
  });

  test('property: removing a server keeps the relative order of the others', () => {
    fc.assert(
      fc.property(userArbitrary, serversArbitrary.filter((s) => s.length >= 2), fc.nat(), (user, servers, pick) => {
        const removed = servers[pick % servers.length]!;
        const after = sequenceOf(user, servers.filter((server) => server !== removed));
        assert.deepEqual(after, sequenceOf(user, servers).filter((server) => server !== removed));
      }),
    );
  });

  test('property: removing a server moves only its users, each to its second server', () => {
    fc.assert(
      fc.property(fc.array(userArbitrary, { minLength: 1, maxLength: 30 }), serversArbitrary.filter((s) => s.length >= 2), fc.nat(), (userList, servers, pick) => {
        const removed = servers[pick % servers.length]!;
        const remaining = servers.filter((server) => server !== removed);
        for (const user of userList) {
          const before = sequenceOf(user, servers);
          const firstAfter = sequenceOf(user, remaining)[0];
          assert.equal(firstAfter, before[0] === removed ? before[1] : before[0]);
        }
      }),
    );
  });

  test('property: adding a server moves only the users whose first server becomes it', () => {
    fc.assert(
      fc.property(fc.array(userArbitrary, { minLength: 1, maxLength: 30 }), serversArbitrary.filter((s) => s.length <= 11), fqdnArbitrary, (userList, servers, added) => {
        fc.pre(!servers.includes(added));
        for (const user of userList) {
          const firstBefore = sequenceOf(user, servers)[0];
          const firstAfter = sequenceOf(user, [...servers, added])[0];
          assert.ok(firstAfter === firstBefore || firstAfter === added);
        }
      }),
    );
  });
});

describe('spread and moves (counts over many users)', () => {
  const three = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
  const many = users(30_000);

  test('a failed server’s users spread over both survivors, each taking 40–60 % of them', () => {
    for (const failed of three) {
      const plan = planMoves(many, { servers: three }, { servers: three, available: (server) => server !== failed });
      const orphans = plan.flows.reduce((sum, flow) => sum + flow.count, 0);
      assert.ok(orphans > 0);
      assert.ok(plan.flows.every((flow) => flow.from === failed && flow.to !== failed && flow.to !== null));
      assert.equal(plan.flows.length, 2);
      for (const flow of plan.flows) {
        const share = flow.count / orphans;
        assert.ok(share >= 0.4 && share <= 0.6, `${flow.to} took ${(100 * share).toFixed(1)} % of ${failed}'s users`);
      }
    }
  });

  test('each server is first for about a third of the users', () => {
    const sequencer = new Sequencer(three);
    const firsts = new Map<string, number>();
    for (const user of many) {
      const first = sequencer.sequenceOf(user)[0]!;
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    for (const server of three) {
      const share = (firsts.get(server) ?? 0) / many.length;
      assert.ok(share > 0.3 && share < 0.37, `${server} is first for ${(100 * share).toFixed(1)} %`);
    }
  });

  test('adding a 4th server moves about 1/4 of the users, all of them to it', () => {
    const four = [...three, 'fe4.contoso.com'];
    const plan = planMoves(many, { servers: three }, { servers: four });
    assert.ok(plan.flows.every((flow) => flow.to === 'fe4.contoso.com'));
    const share = plan.moved / plan.users;
    assert.ok(share > 0.23 && share < 0.27, `moved ${(100 * share).toFixed(1)} %`);
  });

  test('removing a server moves exactly its users (decommission)', () => {
    const plan = planMoves(many, { servers: three }, { servers: three.slice(0, 2) }, { listMoves: true });
    assert.ok(plan.moves!.every((move) => move.from === 'fe3.contoso.com'));
    const firstOnThree = many.filter((user) => sequenceOf(user, three)[0] === 'fe3.contoso.com').length;
    assert.equal(plan.moved, firstOnThree);
  });

  test('a plan with no change moves nobody; with nothing available everyone has no home', () => {
    assert.equal(planMoves(many.slice(0, 100), { servers: three }, { servers: [...three].reverse() }).moved, 0);
    const plan = planMoves(many.slice(0, 100), { servers: three }, { servers: three, available: new Set<string>() });
    assert.equal(plan.moved, 100);
    assert.ok(plan.flows.every((flow) => flow.to === null));
  });
});

describe('home, next server and redirect', () => {
  const servers = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
  const user = 'sip:alice@contoso.com';
  const sequence = sequenceOf(user, servers);
  const [first, second, third] = sequence as [string, string, string];

  test('homeOf: first available server, primary only when it is the first', () => {
    assert.deepEqual(homeOf(user, servers, new Set(servers)), { server: first, mode: 'primary', sequence });
    assert.deepEqual(homeOf(user, servers, (server) => server !== first), { server: second, mode: 'backup', sequence });
    assert.deepEqual(homeOf(user, servers, new Set([third])), { server: third, mode: 'backup', sequence });
    assert.equal(homeOf(user, servers, new Set()), null);
  });

  test('nextAvailableAfter: the home without the leaving server', () => {
    const all = new Set(servers);
    assert.equal(nextAvailableAfter(user, servers, all, first), second);
    assert.equal(nextAvailableAfter(user, servers, all, second), first);
    assert.equal(nextAvailableAfter(user, servers, new Set([first, third]), first), third);
    assert.equal(nextAvailableAfter(user, servers, new Set([first]), first), null);
  });

  test('redirectContacts: one per available server, home first, q 0.7 then 0.3 then lower', () => {
    assert.deepEqual(redirectContacts(user, servers, new Set(servers)), [
      { server: first, q: 0.7 },
      { server: second, q: 0.3 },
      { server: third, q: 0.15 },
    ]);
    assert.deepEqual(redirectContacts(user, servers, new Set([second, third])), [
      { server: second, q: 0.7 },
      { server: third, q: 0.3 },
    ]);
    assert.deepEqual(redirectContacts(user, servers, new Set()), []);
  });

  test('q-values fall strictly and stay positive, written with at most three decimals', () => {
    for (let count = 1; count <= 64; count++) {
      const values = redirectQValues(count);
      assert.equal(values.length, count);
      assert.equal(values[0], 0.7);
      if (count > 1) assert.equal(values[1], 0.3);
      for (let index = 1; index < count; index++) assert.ok(values[index]! < values[index - 1]! && values[index]! > 0);
      for (const q of values) assert.match(formatQ(q), /^0\.\d{1,3}$/);
    }
    assert.equal(formatQ(1), '1');
    assert.equal(formatRedirectContact({ server: 'fe2.contoso.com', q: 0.273 }, { port: 5061 }), '<sip:fe2.contoso.com:5061;transport=tls>;q=0.273');
    assert.equal(formatRedirectContact({ server: 'fe2.contoso.com', q: 0.7 }, { transport: 'tcp' }), '<sip:fe2.contoso.com;transport=tcp>;q=0.7');
    assert.equal(formatQ(0.7), '0.7');
  });
});

const PINNED_FIRST_SERVERS = ['fe1.contoso.com', 'fe1.contoso.com', 'fe2.contoso.com', 'fe2.contoso.com'];
