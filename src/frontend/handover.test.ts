// The hand-over on a FakeClock with a real LocationService: on recovery exactly the users whose
// primary came back leave, never more than batchSize per interval; on commission exactly the users
// planMoves says; users whose home is here again when their batch comes are left alone.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { limits } from '../shared/limits.ts';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { LocationService } from '../registrar/location.ts';
import { homeOf, planMoves, Sequencer } from '../registrar/sequence.ts';
import { Handover, paced, rehomeShare } from './handover.ts';

const POOL = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];

function users(count: number): string[] {
  return Array.from({ length: count }, (_, n) => `sip:user${n}@contoso.com`);
}

function setUp(self: string, servers: string[], movable: Set<string>, batch = { batchSize: 20, intervalMs: 1000 }, busy?: (user: string) => boolean, clock = new FakeClock(), homedOnOtherPool?: (user: string) => boolean) {
  const location = new LocationService({ clock });
  let sequencer = new Sequencer(servers);
  const deactivated: { user: string; atMs: number }[] = [];
  const handover = new Handover({
    clock,
    logger: pino({ level: 'silent' }),
    location,
    self: () => self,
    sequencer: () => sequencer,
    movable,
    deactivate: (user) => {
      location.deactivateUser(user);
      deactivated.push({ user, atMs: clock.nowMs() });
    },
    ...batch,
    poolSize: servers.length,
    ...(busy ? { busy } : {}),
    ...(homedOnOtherPool ? { homedOnOtherPool } : {}),
  });
  const register = (user: string, mode: 'primary' | 'backup'): void => {
    const outcome = location.register({ aor: user, callId: `c-${user}`, cseq: 1, contacts: [{ uri: `${user.replace('@contoso.com', '@10.0.0.9')}` }], flowId: `f-${user}` }, mode);
    assert.equal(outcome.kind, 'ok');
  };
  return { clock, location, handover, deactivated, register, setSequencer: (next: Sequencer) => (sequencer = next) };
}

/** The most users released in any window of `intervalMs` (a sliding window over the release times). */
function mostInAnyWindow(times: number[], intervalMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j < sorted.length && sorted[j]! < sorted[i]! + intervalMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

describe('Handover', () => {
  test('recovery: fe1 comes back; fe2 hands back exactly fe1\'s users, at most batchSize per interval', () => {
    const movable = new Set(['fe2.contoso.com', 'fe3.contoso.com']);
    const { clock, handover, deactivated, register } = setUp('fe2.contoso.com', POOL, movable);
    const all = users(600);
    const heldHere = all.filter((user) => homeOf(user, POOL, movable)!.server === 'fe2.contoso.com');
    for (const user of heldHere) register(user, homeOf(user, POOL, movable)!.mode);
    const orphansOfFe1 = heldHere.filter((user) => homeOf(user, POOL, new Set(POOL))!.server === 'fe1.contoso.com');
    assert.ok(orphansOfFe1.length > 30, `enough orphans for several batches (${orphansOfFe1.length})`);
    assert.equal(handover.reconcile('recovery'), 0, 'fe1 still down: nobody moves');
    movable.add('fe1.contoso.com');
    assert.equal(handover.reconcile('recovery'), orphansOfFe1.length);
    assert.equal(handover.reconcile('recovery'), 0, 'queued users are not queued twice');
    assert.equal(deactivated.length, 0, 'nothing is released inside reconcile');
    clock.advance(60_000);
    assert.deepEqual(deactivated.map((d) => d.user).sort(), [...orphansOfFe1].sort());
    assert.ok(mostInAnyWindow(deactivated.map((d) => d.atMs), 1000) <= 10, 'at most its share (batchSize 20 / 2 senders) in any interval');
    const status = handover.status();
    assert.equal(status.handedOverTotal.recovery, orphansOfFe1.length);
    assert.equal(status.run.remaining, 0);
    // Paced: the share of 10 per second goes out as one user every 100 ms, not ten at once.
    assert.ok(mostInAnyWindow(deactivated.map((d) => d.atMs), 100) <= 1, 'one slice per 100 ms');
    assert.equal(status.run.batches, orphansOfFe1.length);
    assert.equal(status.batches.at(-1)!.handedOver, 1);
  });

  test('a user whose home is here again when its batch comes (fe1 failed again) is skipped, not moved', () => {
    const movable = new Set(['fe2.contoso.com', 'fe3.contoso.com']);
    const { clock, handover, deactivated, register } = setUp('fe2.contoso.com', POOL, movable, { batchSize: 10, intervalMs: 1000 });
    const orphans = users(400).filter((user) => homeOf(user, POOL, new Set(POOL))!.server === 'fe1.contoso.com' && homeOf(user, POOL, movable)!.server === 'fe2.contoso.com');
    for (const user of orphans) register(user, 'backup');
    movable.add('fe1.contoso.com');
    handover.reconcile('recovery');
    clock.advance(1900); // two intervals' shares out (5 per second, paced one per 200 ms: 10 slices)
    assert.equal(deactivated.length, 10);
    movable.delete('fe1.contoso.com');
    clock.advance(60_000);
    assert.equal(deactivated.length, 10, 'the rest stay here');
    assert.equal(handover.status().skippedTotal, orphans.length - 10);
  });

  test('commission: adding fe4 moves exactly the users planMoves names, from this server', () => {
    const after = [...POOL, 'fe4.contoso.com'];
    const movable = new Set(POOL);
    const { clock, handover, deactivated, register, setSequencer } = setUp('fe1.contoso.com', POOL, movable, { batchSize: 50, intervalMs: 500 });
    const all = users(2000);
    const here = all.filter((user) => homeOf(user, POOL, movable)!.server === 'fe1.contoso.com');
    for (const user of here) register(user, 'primary');
    setSequencer(new Sequencer(after));
    assert.equal(handover.reconcile('commission'), 0, 'fe4 not heard from yet: not a move target');
    movable.add('fe4.contoso.com');
    handover.reconcile('commission');
    clock.advance(60_000);
    const plan = planMoves(all, { servers: POOL }, { servers: after }, { listMoves: true });
    const planned = plan.moves!.filter((move) => move.from === 'fe1.contoso.com').map((move) => move.user);
    assert.ok(plan.moves!.every((move) => move.to === 'fe4.contoso.com'), 'rendezvous hashing: every move goes to the new server');
    assert.deepEqual(deactivated.map((d) => d.user).sort(), planned.sort());
    assert.ok(mostInAnyWindow(deactivated.map((d) => d.atMs), 500) <= 25, 'its share: 50 / 2 senders');
    assert.equal(handover.status().handedOverTotal.commission, planned.length);
  });

  test('setRate: a new rate applies to the next batch, and no window sees two batches', () => {
    const movable = new Set(['fe2.contoso.com', 'fe3.contoso.com']);
    const { clock, handover, deactivated, register } = setUp('fe2.contoso.com', POOL, movable, { batchSize: 20, intervalMs: 1000 });
    const orphans = users(600).filter((user) => homeOf(user, POOL, new Set(POOL))!.server === 'fe1.contoso.com' && homeOf(user, POOL, movable)!.server === 'fe2.contoso.com');
    for (const user of orphans) register(user, 'backup');
    movable.add('fe1.contoso.com');
    handover.reconcile('recovery');
    clock.advance(0);
    assert.equal(deactivated.length, 1, 'the first slice (10 per second paced: one per 100 ms)');
    handover.setRate(6, 2000, 3); // a share of 3 per 2 s, paced: one every 667 ms
    clock.advance(666);
    assert.equal(deactivated.length, 1, 'the new interval counts from the last release');
    clock.advance(1);
    assert.equal(deactivated.length, 2);
    clock.advance(2000);
    assert.equal(deactivated.length, 5);
  });

  test('a user in a call waits for the call to end, behind the others', () => {
    const movable = new Set(['fe2.contoso.com', 'fe3.contoso.com']);
    const inCall = new Set<string>();
    const { clock, handover, deactivated, register } = setUp('fe2.contoso.com', POOL, movable, { batchSize: 8, intervalMs: 1000 }, (user) => inCall.has(user));
    const orphans = users(300).filter((user) => homeOf(user, POOL, new Set(POOL))!.server === 'fe1.contoso.com' && homeOf(user, POOL, movable)!.server === 'fe2.contoso.com').slice(0, 10);
    for (const user of orphans) register(user, 'backup');
    const caller = 'sip:' + orphans[0]!.slice(4);
    inCall.add(orphans[0]!);
    movable.add('fe1.contoso.com');
    handover.reconcile('recovery');
    clock.advance(10_000);
    assert.deepEqual(deactivated.map((d) => d.user).sort(), orphans.slice(1).sort(), 'everyone but the caller');
    assert.ok(handover.status().deferredTotal >= 1);
    inCall.delete(orphans[0]!);
    clock.advance(1000);
    assert.equal(deactivated.at(-1)!.user, caller, 'handed over once its call ended');
    assert.equal(handover.status().handedOverTotal.recovery, orphans.length);
  });

  test('a user counted in a call for longer than limits.rehomeBusyWaitMs is handed over anyway (a call whose end never passed here)', () => {
    const movable = new Set(['fe2.contoso.com', 'fe3.contoso.com']);
    const { clock, handover, deactivated, register, location } = setUp('fe2.contoso.com', POOL, movable, { batchSize: 8, intervalMs: 1000 }, () => true);
    const orphan = users(300).find((user) => homeOf(user, POOL, new Set(POOL))!.server === 'fe1.contoso.com' && homeOf(user, POOL, movable)!.server === 'fe2.contoso.com')!;
    register(orphan, 'backup');
    movable.add('fe1.contoso.com');
    handover.reconcile('recovery');
    // Its client refreshes the registration meanwhile (each half hour, before it expires).
    for (let cseq = 2; cseq <= 3; cseq++) {
      clock.advance(limits.rehomeBusyWaitMs / 2 - 1000);
      location.register({ aor: orphan, callId: `c-${orphan}`, cseq, contacts: [{ uri: orphan.replace('@contoso.com', '@10.0.0.9') }], flowId: `f-${orphan}` }, 'backup');
    }
    assert.equal(deactivated.length, 0, 'it waits while the call may still be up');
    clock.advance(2000);
    assert.deepEqual(deactivated.map((d) => d.user), [orphan]);
    assert.equal(handover.status().busyWaitEndedTotal, 1);
  });

  test('drain alone: the pool\'s whole rate in all, never more than the share to any one home per interval', () => {
    // fe2 drains: it is no longer movable, so each of its users goes to its next server, fe1 or fe3.
    const movable = new Set(['fe1.contoso.com', 'fe3.contoso.com']);
    const { clock, handover, deactivated, register } = setUp('fe2.contoso.com', POOL, movable, { batchSize: 20, intervalMs: 1000 });
    const here = users(600).filter((user) => homeOf(user, POOL, new Set(POOL))!.server === 'fe2.contoso.com');
    for (const user of here) register(user, 'primary');
    handover.reconcile('drain');
    clock.advance(600_000);
    assert.deepEqual(deactivated.map((d) => d.user).sort(), [...here].sort());
    const byHome = new Map<string, number[]>();
    for (const { user, atMs } of deactivated) {
      const home = homeOf(user, POOL, movable)!.server;
      byHome.set(home, [...(byHome.get(home) ?? []), atMs]);
    }
    for (const [home, times] of byHome) assert.ok(mostInAnyWindow(times, 1000) <= 10, `${home}: at most the share (20 / 2 senders) per interval`);
    assert.ok(mostInAnyWindow(deactivated.map((d) => d.atMs), 1000) <= 20, 'at most batchSize per interval in all');
    const larger = Math.max(...[...byHome.values()].map((times) => times.length));
    // Paced into 100 ms slices of one user per home: done when the larger home has its users.
    assert.equal(handover.status().run.batches, larger, 'both homes fed at once: done when the larger one has its users (not at one share per interval in all)');
  });

  test('paced: the largest k ≤ 10 dividing the batch and the share per home, with slices ≥ 100 ms apart', () => {
    const table: [{ batchSize: number; intervalMs: number; perHome?: number }, { batchSize: number; intervalMs: number; perHome?: number }][] = [
      [{ batchSize: 100, intervalMs: 1000, perHome: 50 }, { batchSize: 10, intervalMs: 100, perHome: 5 }],
      [{ batchSize: 20, intervalMs: 250, perHome: 20 }, { batchSize: 10, intervalMs: 125, perHome: 10 }],
      [{ batchSize: 99, intervalMs: 1000, perHome: 33 }, { batchSize: 33, intervalMs: 1000 / 3, perHome: 11 }], // a pool of 4: 33 per home, three slices
      [{ batchSize: 7, intervalMs: 1000, perHome: 7 }, { batchSize: 1, intervalMs: 1000 / 7, perHome: 1 }],
      [{ batchSize: 22, intervalMs: 1000, perHome: 11 }, { batchSize: 22, intervalMs: 1000, perHome: 11 }], // 11: no divisor ≤ 10 but 1
      [{ batchSize: 1, intervalMs: 1000, perHome: 1 }, { batchSize: 1, intervalMs: 1000, perHome: 1 }],
      [{ batchSize: 50, intervalMs: 150 }, { batchSize: 50, intervalMs: 150 }], // slices would be < 100 ms
      [{ batchSize: 40, intervalMs: 2000 }, { batchSize: 4, intervalMs: 200 }],
    ];
    for (const [rate, slice] of table) assert.deepEqual(paced(rate), slice, JSON.stringify(rate));
  });

  test('rehomeShare: each of the n−1 possible senders gets ⌊batchSize/(n−1)⌋ per interval, or one user per longer interval', () => {
    const table: [batchSize: number, intervalMs: number, poolSize: number, share: { batchSize: number; intervalMs: number }][] = [
      [100, 1000, 1, { batchSize: 100, intervalMs: 1000 }],
      [100, 1000, 2, { batchSize: 100, intervalMs: 1000 }],
      [100, 1000, 3, { batchSize: 50, intervalMs: 1000 }],
      [100, 1000, 4, { batchSize: 33, intervalMs: 1000 }],
      [40, 250, 4, { batchSize: 13, intervalMs: 250 }],
      [3, 1000, 4, { batchSize: 1, intervalMs: 1000 }],
      [2, 1000, 4, { batchSize: 1, intervalMs: 2000 }],
      [1, 500, 12, { batchSize: 1, intervalMs: 5500 }],
    ];
    for (const [batchSize, intervalMs, poolSize, share] of table) assert.deepEqual(rehomeShare(batchSize, intervalMs, poolSize), share, `${batchSize}/${intervalMs} ms in a pool of ${poolSize}`);
  });

  // Found by test/integration/pool-resilience.test.ts: with each server releasing the whole
  // batchSize on its own timer, the returning server received (n−1) × batchSize per interval.
  test('two backup servers handing users back to one returning server together send it at most batchSize per interval', () => {
    const clock = new FakeClock();
    const down = new Set(['fe2.contoso.com', 'fe3.contoso.com']);
    const all = users(1200);
    const senders = ['fe2.contoso.com', 'fe3.contoso.com'].map((self) => {
      const movable = new Set(down);
      const sender = setUp(self, POOL, movable, { batchSize: 30, intervalMs: 1000 }, undefined, clock);
      for (const user of all) if (homeOf(user, POOL, new Set(POOL))!.server === 'fe1.contoso.com' && homeOf(user, POOL, down)!.server === self) sender.register(user, 'backup');
      return { ...sender, movable };
    });
    // The two learn of fe1's return at different moments, so their timers are out of phase.
    senders[0]!.movable.add('fe1.contoso.com');
    senders[0]!.handover.reconcile('recovery');
    clock.advance(370);
    senders[1]!.movable.add('fe1.contoso.com');
    senders[1]!.handover.reconcile('recovery');
    clock.advance(60_000);
    const arrivals = senders.flatMap((sender) => sender.deactivated.map((d) => d.atMs));
    assert.ok(arrivals.length > 200, `${arrivals.length} users handed back`);
    assert.ok(senders.every((sender) => sender.deactivated.length > 60), 'both hand users back');
    assert.ok(mostInAnyWindow(arrivals, 1000) <= 30, `fe1 received ${mostInAnyWindow(arrivals, 1000)} users within one interval (batchSize 30)`);
  });

  test('moves to another pool: exactly the users homed there leave, ⌊batchSize/n⌋ per interval from each of the n servers; a user in a call waits', () => {
    const moved = new Set(users(300).filter((_, n) => n % 3 !== 0));
    const inCall = new Set(['sip:user1@contoso.com']);
    const { clock, handover, deactivated, register } = setUp('fe1.contoso.com', POOL, new Set(POOL), { batchSize: 30, intervalMs: 1000 }, (user) => inCall.has(user), new FakeClock(), (user) => moved.has(user));
    for (const user of users(300)) register(user, 'primary');
    assert.equal(handover.reconcileMoves(), moved.size);
    assert.equal(handover.reconcileMoves(), 0, 'idempotent');
    assert.deepEqual(handover.status().moves.perServer, { batchSize: 10, intervalMs: 1000 }, 'three senders share batchSize 30');
    clock.advance(3500);
    assert.ok(deactivated.length <= 40, `${deactivated.length} after 3.5 intervals`);
    inCall.clear();
    clock.advance(60_000);
    assert.deepEqual(new Set(deactivated.map((entry) => entry.user)), moved, 'exactly the moved users, the one in a call too once it ended');
    assert.ok(mostInAnyWindow(deactivated.map((entry) => entry.atMs), 1000) <= 10);
    assert.equal(handover.status().handedOverTotal.move, moved.size);
  });
});
