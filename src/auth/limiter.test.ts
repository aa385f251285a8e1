// The brute-force limiter on a fake clock: slowed, then refused, forgotten after a quiet while; and
// the rule that one attacker cannot lock a real user out (src/auth/README.md "Brute force").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { limits } from '../shared/limits.ts';
import { BruteForceLimiter, LIMITER_DEFAULTS } from './limiter.ts';

const ATTACKER = '192.0.2.66';
const ALICE_HOME = '198.51.100.7';
const ALICE = 'sip:alice@contoso.com';

test('one source: answers at once, then delayed (doubling, capped), then refused with 403 for sourceRefuseMs; a quiet while forgets it', () => {
  const clock = new FakeClock();
  const limiter = new BruteForceLimiter();
  // [failure number, delay of its answer] with the defaults: 3 free, then 0.5 s doubling to 8 s.
  const table: Array<[number, number]> = [
    [1, 0],
    [2, 0],
    [3, 0],
    [4, 500],
    [5, 1000],
    [6, 2000],
    [7, 4000],
    [8, 8000],
    [9, 8000],
  ];
  for (const [failure, delayMs] of table) {
    assert.deepEqual(limiter.admit(ATTACKER, ALICE, clock.nowMs()), { kind: 'go' }, `before failure ${failure}`);
    assert.deepEqual(limiter.failed(ATTACKER, `sip:user${failure}@contoso.com`, clock.nowMs()), { delayMs }, `failure ${failure}`);
    clock.advance(1000);
  }
  limiter.failed(ATTACKER, 'sip:user10@contoso.com', clock.nowMs()); // the 10th: refused from now
  const refusedAtMs = clock.nowMs();
  const refused = limiter.admit(ATTACKER, ALICE, clock.nowMs());
  assert.deepEqual(refused, { kind: 'refuse', who: 'source', status: 403, untilMs: refusedAtMs + LIMITER_DEFAULTS.sourceRefuseMs });
  clock.advance(LIMITER_DEFAULTS.sourceRefuseMs - 1);
  assert.equal(limiter.admit(ATTACKER, ALICE, clock.nowMs()).kind, 'refuse');
  clock.advance(1);
  assert.equal(limiter.admit(ATTACKER, ALICE, clock.nowMs()).kind, 'go', 'the refusal ends');
  assert.equal(limiter.failed(ATTACKER, ALICE, clock.nowMs()).delayMs, 8000, 'failures are still remembered: the next one is slow…');
  assert.equal(limiter.admit(ATTACKER, ALICE, clock.nowMs()).kind, 'refuse', '…and refused again at once');
  clock.advance(LIMITER_DEFAULTS.sourceRefuseMs + LIMITER_DEFAULTS.forgetAfterMs + 1);
  assert.equal(limiter.admit(ATTACKER, ALICE, clock.nowMs()).kind, 'go');
  assert.equal(limiter.failed(ATTACKER, ALICE, clock.nowMs()).delayMs, 0, 'after a quiet forgetAfterMs, a fresh start');
  assert.deepEqual(limiter.counters, { failures: 12, delayed: 8, refusedSource: 3, refusedUser: 0 });
});

test('the rule: one attacker address alone never locks a user out, however long it tries', () => {
  const clock = new FakeClock();
  const limiter = new BruteForceLimiter();
  let attempts = 0;
  let checked = 0;
  // 24 hours of one attempt a second against alice from one address.
  for (let second = 0; second < 86_400; second++) {
    attempts++;
    if (limiter.admit(ATTACKER, ALICE, clock.nowMs()).kind === 'go') {
      checked++;
      limiter.failed(ATTACKER, ALICE, clock.nowMs());
    }
    if (second % 600 === 0) assert.deepEqual(limiter.admit(ALICE_HOME, ALICE, clock.nowMs()), { kind: 'go' }, `alice from home at ${second} s`);
    clock.advance(1000);
  }
  assert.equal(attempts, 86_400);
  // 10 at first, then one each time a 5-minute refusal ends: the password was tried ~300 times a day, not 86 400.
  assert.ok(checked <= 10 + 86_400 / 300 + 1, `${checked} passwords checked`);
  assert.deepEqual(limiter.admit('203.0.113.9', ALICE, clock.nowMs()), { kind: 'go' }, 'alice from a new address too');
});

test('many attacker addresses lock a user for userRefuseMs (503 Retry-After), but not from an address the user signed in from', () => {
  const clock = new FakeClock();
  const limiter = new BruteForceLimiter();
  limiter.succeeded(ALICE_HOME, ALICE, clock.nowMs());
  clock.advance(60_000);
  const sources = Array.from({ length: LIMITER_DEFAULTS.userRefuseAfterSources }, (_, index) => `192.0.2.${index + 1}`);
  for (let failure = 0; failure < LIMITER_DEFAULTS.userRefuseAfterFailures; failure++) {
    const source = sources[failure % sources.length] as string;
    assert.equal(limiter.admit(source, ALICE, clock.nowMs()).kind, 'go', `failure ${failure}`);
    limiter.failed(source, ALICE, clock.nowMs());
  }
  const lockedAtMs = clock.nowMs();
  assert.deepEqual(limiter.admit('203.0.113.9', ALICE, clock.nowMs()), { kind: 'refuse', who: 'user', status: 503, retryAfterS: LIMITER_DEFAULTS.userRefuseMs / 1000, untilMs: lockedAtMs + LIMITER_DEFAULTS.userRefuseMs });
  assert.deepEqual(limiter.admit(ALICE_HOME, ALICE, clock.nowMs()), { kind: 'go' }, 'a known address of alice still gets in');
  assert.deepEqual(limiter.admit('203.0.113.9', 'sip:bob@contoso.com', clock.nowMs()), { kind: 'go' }, 'other users are not affected');
  clock.advance(100_000);
  const later = limiter.admit('203.0.113.9', ALICE, clock.nowMs());
  assert.equal(later.kind === 'refuse' && later.who === 'user' && later.retryAfterS, 200);
  clock.advance(200_000);
  assert.equal(limiter.admit('203.0.113.9', ALICE, clock.nowMs()).kind, 'go', 'the lock ends by itself');
  // A known address expires after knownSourceMs.
  clock.advance(LIMITER_DEFAULTS.knownSourceMs);
  assert.equal(limiter.isKnownSource(ALICE, ALICE_HOME, clock.nowMs()), false);
});

test('a success forgets the user\'s failures but not the source\'s (an attacker with an account of its own cannot reset its count)', () => {
  const clock = new FakeClock();
  const limiter = new BruteForceLimiter({ sourceRefuseAfterFailures: 4 });
  for (let failure = 0; failure < 3; failure++) limiter.failed(ATTACKER, ALICE, clock.nowMs());
  limiter.succeeded(ATTACKER, 'sip:mallory@contoso.com', clock.nowMs());
  limiter.failed(ATTACKER, ALICE, clock.nowMs());
  assert.equal(limiter.admit(ATTACKER, ALICE, clock.nowMs()).kind, 'refuse');
});

test('bounded memory: at most authLimiterEntriesMax sources tracked, the least recent forgotten first', () => {
  const limiter = new BruteForceLimiter();
  const clock = new FakeClock();
  for (let index = 0; index < limits.authLimiterEntriesMax + 10; index++) limiter.failed(`10.${index >> 16}.${(index >> 8) & 255}.${index & 255}`, undefined, clock.nowMs());
  assert.equal(limiter.tracked.sources, limits.authLimiterEntriesMax);
});

test('a configuration where one source could lock a user is refused at start', () => {
  assert.throws(() => new BruteForceLimiter({ userRefuseAfterSources: 1 }), /never be enough to lock a user/);
});
