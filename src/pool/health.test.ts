// The consensus rule as a table of cases (start-up, one reporter, a partitioned pair, a server cut off
// from all, stale reports, every reporter gone, clock skew), and a property: no reports from a
// minority, whatever they say and however they are dated, remove a server the majority sees up.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { LivenessRecord, MemberState } from '../store/store.ts';
import { consensus, isFresh, takesNewWork, type Alive } from './health.ts';

const NOW = 1_000_000;
const TTL = 3000;
const POOL = ['fe1', 'fe2', 'fe3'];

function r(reporter: string, server: string, state: MemberState, ageMs = 100, ttlMs = TTL): LivenessRecord {
  return { reporter, server, state, atMs: NOW - ageMs, ttlMs, topologyVersion: 1 };
}

/** Every server reports itself active and each peer in the given state ('-' for no report about it). */
function views(table: Record<string, Record<string, MemberState | '-'>>): LivenessRecord[] {
  const records: LivenessRecord[] = [];
  for (const [reporter, row] of Object.entries(table)) {
    for (const [server, state] of Object.entries(row)) if (state !== '-') records.push(r(reporter, server, state));
  }
  return records;
}

function verdicts(reports: LivenessRecord[], members = POOL, nowMs = NOW): Record<string, Alive> {
  return Object.fromEntries([...consensus(members, reports, nowMs)].map(([server, health]) => [server, health.alive]));
}

describe('consensus: the table of cases', () => {
  const cases: { name: string; reports: LivenessRecord[]; members?: string[]; nowMs?: number; expect: Record<string, Alive> }[] = [
    { name: 'start-up: no report at all → every server unknown (not down)', reports: [], expect: { fe1: 'unknown', fe2: 'unknown', fe3: 'unknown' } },
    {
      name: 'start-up: one server reported itself, the others not yet → the others unknown, not down',
      reports: [r('fe1', 'fe1', 'active')],
      expect: { fe1: 'up', fe2: 'unknown', fe3: 'unknown' },
    },
    {
      name: 'one reporter alone says a peer is down, the peer says itself up → a tie, up',
      reports: [r('fe1', 'fe1', 'active'), r('fe1', 'fe2', 'down'), r('fe2', 'fe2', 'active')],
      expect: { fe1: 'up', fe2: 'up', fe3: 'unknown' },
    },
    {
      name: 'one reporter says a silent peer is down (no other word) → down',
      reports: [r('fe1', 'fe1', 'active'), r('fe1', 'fe2', 'down')],
      expect: { fe1: 'up', fe2: 'down', fe3: 'unknown' },
    },
    {
      name: 'a server killed: its peers see it down, its own last report still fresh → down (2 of 3)',
      reports: views({ fe1: { fe1: 'active', fe2: 'active', fe3: 'down' }, fe2: { fe1: 'active', fe2: 'active', fe3: 'down' }, fe3: { fe1: 'active', fe2: 'active', fe3: 'active' } }),
      expect: { fe1: 'up', fe2: 'up', fe3: 'down' },
    },
    {
      name: 'partition of one pair (fe1 ⟷ fe2), fe3 sees both → all up',
      reports: views({ fe1: { fe1: 'active', fe2: 'down', fe3: 'active' }, fe2: { fe1: 'down', fe2: 'active', fe3: 'active' }, fe3: { fe1: 'active', fe2: 'active', fe3: 'active' } }),
      expect: { fe1: 'up', fe2: 'up', fe3: 'up' },
    },
    {
      name: 'partition of one server from all (fe3) → fe3 down, the others up',
      reports: views({ fe1: { fe1: 'active', fe2: 'active', fe3: 'down' }, fe2: { fe1: 'active', fe2: 'active', fe3: 'down' }, fe3: { fe1: 'down', fe2: 'down', fe3: 'active' } }),
      expect: { fe1: 'up', fe2: 'up', fe3: 'down' },
    },
    {
      name: 'a restarted server: it says up, its peers have not seen it answer yet (no word) → up',
      reports: [...views({ fe1: { fe1: 'active', fe2: 'active' }, fe2: { fe1: 'active', fe2: 'active' } }), r('fe3', 'fe3', 'active')],
      expect: { fe1: 'up', fe2: 'up', fe3: 'up' },
    },
    {
      name: 'stale reports: down reports past their TTL count for nothing',
      reports: [r('fe1', 'fe1', 'active'), r('fe2', 'fe2', 'active'), r('fe1', 'fe3', 'down', 5000), r('fe2', 'fe3', 'down', 5000)],
      expect: { fe1: 'up', fe2: 'up', fe3: 'unknown' },
    },
    {
      name: 'a reporter that is itself gone (own report expired) has no say',
      reports: [r('fe1', 'fe1', 'active', 5000), r('fe1', 'fe2', 'down'), r('fe2', 'fe2', 'active')],
      expect: { fe1: 'unknown', fe2: 'up', fe3: 'unknown' },
    },
    {
      name: 'a reporter that stopped (reported itself down) has no say, and is down by its own word',
      reports: [r('fe1', 'fe1', 'down'), r('fe1', 'fe2', 'down'), r('fe1', 'fe3', 'down'), r('fe2', 'fe2', 'active'), r('fe3', 'fe3', 'active')],
      expect: { fe1: 'down', fe2: 'up', fe3: 'up' },
    },
    {
      name: 'all reporters gone (every report expired) → unknown, not down',
      reports: views({ fe1: { fe1: 'active', fe2: 'down', fe3: 'down' } }).map((record) => ({ ...record, atMs: NOW - 10_000 })),
      expect: { fe1: 'unknown', fe2: 'unknown', fe3: 'unknown' },
    },
    {
      name: 'clock skew: a reporter 10 s behind is not heard (its reports look expired); it removes nobody',
      reports: [...views({ fe1: { fe1: 'active', fe3: 'active' }, fe3: { fe1: 'active', fe3: 'active' } }), r('fe2', 'fe2', 'active', 10_000), r('fe2', 'fe1', 'down', 10_000), r('fe2', 'fe3', 'down', 10_000)],
      expect: { fe1: 'up', fe2: 'unknown', fe3: 'up' },
    },
    {
      name: 'clock skew: a reporter 10 s ahead is not believed either (its reports would outlive it)',
      reports: [...views({ fe1: { fe1: 'active', fe3: 'active' }, fe3: { fe1: 'active', fe3: 'active' } }), r('fe2', 'fe2', 'active', -10_000), r('fe2', 'fe1', 'down', -10_000), r('fe2', 'fe3', 'down', -10_000)],
      expect: { fe1: 'up', fe2: 'unknown', fe3: 'up' },
    },
    {
      name: 'clock skew within the TTL: counted as it is',
      reports: [r('fe1', 'fe1', 'active', -1000), r('fe1', 'fe2', 'down', -1000), r('fe3', 'fe3', 'active', 2000), r('fe3', 'fe2', 'down', 2000)],
      expect: { fe1: 'up', fe2: 'down', fe3: 'up' },
    },
    {
      name: 'draining, drained and blocked peers are seen up (alive); suspect is not down yet',
      reports: views({ fe1: { fe1: 'active', fe2: 'draining', fe3: 'suspect' }, fe2: { fe1: 'blocked', fe2: 'draining', fe3: 'suspect' } }),
      expect: { fe1: 'up', fe2: 'up', fe3: 'up' },
    },
    {
      name: 'the newest report of one reporter about one server is its word (same clock)',
      reports: [r('fe1', 'fe1', 'active'), r('fe1', 'fe2', 'down', 2000), r('fe1', 'fe2', 'active', 500)],
      expect: { fe1: 'up', fe2: 'up', fe3: 'unknown' },
    },
    {
      name: 'reports from and about servers outside the pool are ignored; names compare without case',
      reports: [r('FE1', 'fe1', 'active'), r('fe9', 'fe9', 'active'), r('fe9', 'fe2', 'down'), r('fe1', 'FE2.', 'active')],
      expect: { fe1: 'up', fe2: 'up', fe3: 'unknown' },
    },
  ];
  for (const { name, reports, members, nowMs, expect } of cases) {
    test(name, () => assert.deepEqual(verdicts(reports, members, nowMs), expect));
  }

  test('draining or drained by its own word: alive, but takes no new work; unknown does', () => {
    const health = consensus(POOL, [r('fe1', 'fe1', 'draining'), r('fe2', 'fe2', 'drained'), r('fe2', 'fe1', 'draining')], NOW);
    assert.equal(health.get('fe1')!.alive, 'up');
    assert.equal(takesNewWork(health.get('fe1')), false);
    assert.equal(takesNewWork(health.get('fe2')), false);
    assert.equal(takesNewWork(health.get('fe3')), true, 'unknown is not down');
    assert.equal(takesNewWork(undefined), true);
  });

  test('the reason says how many saw what', () => {
    const health = consensus(POOL, views({ fe1: { fe1: 'active', fe3: 'down' }, fe2: { fe2: 'active', fe3: 'down' }, fe3: { fe3: 'active' } }), NOW);
    assert.equal(health.get('fe3')!.reason, '2 of 3 reporters see it down');
    assert.deepEqual([health.get('fe3')!.up, health.get('fe3')!.down], [1, 2]);
  });

  test('isFresh: until atMs + ttlMs, and not from further in the future than the TTL', () => {
    assert.equal(isFresh({ atMs: NOW - TTL, ttlMs: TTL }, NOW), false);
    assert.equal(isFresh({ atMs: NOW - TTL + 1, ttlMs: TTL }, NOW), true);
    assert.equal(isFresh({ atMs: NOW + TTL, ttlMs: TTL }, NOW), true);
    assert.equal(isFresh({ atMs: NOW + TTL + 1, ttlMs: TTL }, NOW), false);
  });
});

describe('consensus: a minority cannot remove a server the majority sees up', () => {
  const STATES: MemberState[] = ['active', 'suspect', 'down', 'draining', 'drained', 'blocked'];
  const record = (reporters: string[], servers: string[]) =>
    fc.record({
      reporter: fc.constantFrom(...reporters),
      server: fc.constantFrom(...servers),
      state: fc.constantFrom(...STATES),
      // Any age: fresh, expired, from the future (a skewed clock).
      ageMs: fc.integer({ min: -20_000, max: 20_000 }),
      ttlMs: fc.integer({ min: 1, max: 20_000 }),
    });

  test('property (seeded): any reports of a minority, S not down', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain((size) => {
          const members = Array.from({ length: size }, (_, index) => `fe${index + 1}`);
          return fc.tuple(
            fc.constant(members),
            fc.constantFrom(...members),
            fc.shuffledSubarray(members, { minLength: Math.floor(size / 2) + 1, maxLength: size }),
          );
        }).chain(([members, target, majority]) => {
          const minority = members.filter((member) => !majority.includes(member) && member !== target);
          return fc.tuple(
            fc.constant(members),
            fc.constant(target),
            fc.constant(majority),
            minority.length === 0 ? fc.constant([]) : fc.array(record(minority, [...members, 'outsider']), { maxLength: 60 }),
            // The target's own reports: anything but its own "down" (a stop is its own decision, not a minority's).
            fc.array(record([target], members).filter((entry) => entry.server !== target || entry.state !== 'down'), { maxLength: 5 }),
            fc.array(fc.integer({ min: 0, max: 2_999 }), { minLength: members.length, maxLength: members.length }),
          );
        }),
        ([members, target, majority, minorityReports, targetReports, ages]) => {
          // The majority: each alive (fresh own report) and sees the target up (fresh report), whatever else it says.
          const reports: LivenessRecord[] = [];
          majority.forEach((reporter, index) => {
            reports.push(r(reporter, reporter, reporter === target ? 'active' : 'active', ages[index]!));
            if (reporter !== target) reports.push(r(reporter, target, 'active', ages[index]!));
          });
          for (const entry of [...minorityReports, ...targetReports]) reports.push(r(entry.reporter, entry.server, entry.state, entry.ageMs, entry.ttlMs));
          // Shuffled order must not matter either: newest-per-pair, not last-wins.
          const health = consensus(members, reports.reverse(), NOW).get(target)!;
          assert.notEqual(health.alive, 'down', `${target} removed: ${health.reason}`);
        },
      ),
      { seed: 12, numRuns: 2000 },
    );
  });
});
