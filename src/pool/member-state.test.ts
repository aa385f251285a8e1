// The heartbeat hysteresis as a table: each row is a sequence of probe results and the states it must pass through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initialHealth, isAvailable, nextHealth, type MemberHealth, type ProbeResult } from './member-state.ts';

const settings = { failAfter: 3, riseAfter: 2 };
const answer = (reportedState: 'active' | 'draining' | 'drained' = 'active'): ProbeResult => ({ ok: true, reportedState, topologyVersion: 7 });
const miss: ProbeResult = { ok: false, reason: 'timeout' };

function run(results: ProbeResult[], start: MemberHealth = initialHealth(0)): string[] {
  let health = start;
  return results.map((result, index) => {
    health = nextHealth(health, result, settings, (index + 1) * 1000);
    return health.state;
  });
}

test('hysteresis table', () => {
  const rows: [string, ProbeResult[], string[]][] = [
    ['first answer: up at once', [answer()], ['active']],
    ['never answers: down after failAfter', [miss, miss, miss], ['suspect', 'suspect', 'down']],
    ['one miss is only suspect, an answer clears it', [answer(), miss, answer()], ['active', 'suspect', 'active']],
    ['two misses then an answer: never down', [answer(), miss, miss, answer(), miss, miss], ['active', 'suspect', 'suspect', 'active', 'suspect', 'suspect']],
    ['down then riseAfter answers to come back', [answer(), miss, miss, miss, answer(), answer()], ['active', 'suspect', 'suspect', 'down', 'down', 'active']],
    ['a flapping member stays down', [answer(), miss, miss, miss, answer(), miss, answer(), miss], ['active', 'suspect', 'suspect', 'down', 'down', 'down', 'down', 'down']],
    ['draining and drained are what the member says', [answer('draining'), answer('drained'), answer()], ['draining', 'drained', 'active']],
  ];
  for (const [name, results, expected] of rows) assert.deepEqual(run(results), expected, name);
});

test('the answer carries the topology version and the time of the change is kept', () => {
  let health = initialHealth(0);
  health = nextHealth(health, answer(), settings, 1000);
  assert.equal(health.topologyVersion, 7);
  assert.equal(health.lastChangeAtMs, 1000);
  health = nextHealth(health, answer(), settings, 2000);
  assert.equal(health.lastChangeAtMs, 1000, 'no change, no new timestamp');
  health = nextHealth(health, miss, settings, 3000);
  assert.equal(health.lastReason, 'timeout');
});

test('available: active and suspect only', () => {
  assert.deepEqual(
    (['active', 'suspect', 'down', 'draining', 'drained', 'blocked'] as const).filter(isAvailable),
    ['active', 'suspect'],
  );
});
