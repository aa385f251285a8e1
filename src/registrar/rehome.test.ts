// Tests of re-home batching on a FakeClock: the rate limit (property), idempotence, progress, cancel.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { isDnslbError } from '../shared/errors.ts';
import { RehomeQueue } from './rehome.ts';
import type { RehomeItem, RehomeReason } from './rehome.ts';

const user = (index: number): string => `sip:user${index}@contoso.com`;
const items = (from: number, to: number, reason: RehomeReason = 'recovery'): RehomeItem[] =>
  Array.from({ length: to - from }, (_, offset) => ({ user: user(from + offset), reason }));

function harness(batchSize: number, intervalMs: number): { clock: FakeClock; queue: RehomeQueue; releases: { atMs: number; batch: RehomeItem[] }[] } {
  const clock = new FakeClock(0);
  const releases: { atMs: number; batch: RehomeItem[] }[] = [];
  const queue = new RehomeQueue({ clock, batchSize, intervalMs, onBatch: (batch) => releases.push({ atMs: clock.nowMs(), batch }) });
  return { clock, queue, releases };
}

describe('RehomeQueue', () => {
  test('releases batches of at most batchSize, intervalMs apart, first one at once', () => {
    const { clock, queue, releases } = harness(100, 1000);
    assert.equal(queue.enqueue(items(0, 250)), 250);
    assert.equal(releases.length, 0, 'nothing is released inside enqueue');
    clock.advance(0);
    assert.deepEqual(releases.map((r) => [r.atMs, r.batch.length]), [[0, 100]]);
    clock.advance(999);
    assert.equal(releases.length, 1);
    clock.advance(1);
    clock.advance(1000);
    assert.deepEqual(releases.map((r) => [r.atMs, r.batch.length]), [[0, 100], [1000, 100], [2000, 50]]);
    assert.deepEqual(releases.flatMap((r) => r.batch.map((item) => item.user)), items(0, 250).map((item) => item.user));
    assert.equal(clock.pendingCount(), 0);
  });

  test('property: in any window of intervalMs at most batchSize users are released, each exactly once, in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.record({ waitMs: fc.integer({ min: 0, max: 1500 }), count: fc.integer({ min: 0, max: 40 }), repeat: fc.boolean() }), { minLength: 1, maxLength: 15 }),
        (batchSize, intervalMs, arrivals) => {
          const { clock, queue, releases } = harness(batchSize, intervalMs);
          let next = 0;
          const expected: string[] = [];
          for (const arrival of arrivals) {
            clock.advance(arrival.waitMs);
            // Re-queue some users that are still queued: they must not be released twice.
            const batch = items(next, next + arrival.count);
            expected.push(...batch.map((item) => item.user));
            queue.enqueue(arrival.repeat ? [...batch, ...batch] : batch);
            next += arrival.count;
          }
          clock.advance(intervalMs * (next + 1));
          assert.deepEqual(releases.flatMap((r) => r.batch.map((item) => item.user)), expected);
          for (const release of releases) {
            const inWindow = releases.filter((other) => other.atMs >= release.atMs && other.atMs < release.atMs + intervalMs).reduce((sum, other) => sum + other.batch.length, 0);
            assert.ok(inWindow <= batchSize, `${inWindow} released in [${release.atMs}, ${release.atMs + intervalMs})`);
          }
          assert.equal(queue.progress().remaining, 0);
          assert.equal(clock.pendingCount(), 0);
        },
      ),
    );
  });

  test('perDestination: at most the limit per destination in a batch; users over it keep their place while others fill the batch', () => {
    const clock = new FakeClock(0);
    const releases: RehomeItem[][] = [];
    // Users 0–29 go to "a", 30–39 to "b", 40–44 nowhere (released without counting for anyone).
    const destinationOf = (item: RehomeItem) => {
      const index = Number(/user(\d+)@/.exec(item.user)![1]);
      return index < 30 ? 'a' : index < 40 ? 'b' : undefined;
    };
    const queue = new RehomeQueue({ clock, batchSize: 12, intervalMs: 1000, onBatch: (batch) => releases.push(batch), perDestination: { limit: 5, destinationOf } });
    queue.enqueue([...items(0, 30), ...items(30, 40), ...items(40, 45)]);
    clock.advance(0);
    const names = (batch: RehomeItem[]) => batch.map((item) => Number(/user(\d+)@/.exec(item.user)![1]));
    assert.deepEqual(names(releases[0]!), [0, 1, 2, 3, 4, 30, 31, 32, 33, 34, 40, 41], 'five to a, five to b, then the batch fills with users going nowhere');
    clock.advance(1000);
    assert.deepEqual(names(releases[1]!), [5, 6, 7, 8, 9, 35, 36, 37, 38, 39, 42, 43]);
    clock.advance(1000);
    assert.deepEqual(names(releases[2]!), [10, 11, 12, 13, 14, 44], 'a limited to five, even with room in the batch');
    queue.setRate(12, 1000, 10);
    clock.advance(1000);
    assert.deepEqual(names(releases[3]!), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24], 'a new limit applies to the next batch');
  });

  test('the same user queued twice (any URI form) moves once; after its release it may be queued again', () => {
    const { clock, queue, releases } = harness(10, 1000);
    assert.equal(queue.enqueue([{ user: 'sip:alice@contoso.com', reason: 'recovery' }, { user: 'sips:alice@CONTOSO.com', reason: 'drain' }]), 1);
    assert.equal(queue.enqueue([{ user: 'sip:alice@contoso.com', reason: 'commission' }]), 0);
    assert.ok(queue.isQueued('sip:alice@contoso.com'));
    assert.equal(queue.progress().duplicates, 2);
    clock.advance(0);
    assert.deepEqual(releases.map((r) => r.batch), [[{ user: 'sip:alice@contoso.com', reason: 'recovery' }]]);
    assert.equal(queue.enqueue([{ user: 'sip:alice@contoso.com', reason: 'drain' }]), 1);
    clock.advance(500);
    assert.equal(releases.length, 1, 'still held back by the interval');
    clock.advance(500);
    assert.equal(releases.length, 2);
  });

  test('progress: moved, remaining, per reason, started and finished', async () => {
    const { clock, queue } = harness(2, 1000);
    assert.deepEqual(queue.progress().startedAtMs, null);
    clock.advance(5000);
    queue.enqueue([...items(0, 3, 'recovery'), ...items(3, 5, 'decommission')]);
    const finished = queue.whenFinished();
    clock.advance(0);
    assert.deepEqual(
      (({ moved, remaining, startedAtMs, finishedAtMs, batches }) => ({ moved, remaining, startedAtMs, finishedAtMs, batches }))(queue.progress()),
      { moved: 2, remaining: 3, startedAtMs: 5000, finishedAtMs: null, batches: 1 },
    );
    clock.advance(2000);
    const progress = await finished;
    assert.equal(progress.moved, 5);
    assert.equal(progress.remaining, 0);
    assert.deepEqual(progress.movedByReason, { recovery: 3, commission: 0, decommission: 2, drain: 0, move: 0 });
    assert.equal(progress.finishedAtMs, 7000);
    assert.equal(progress.cancelled, false);
    // A new run starts afresh.
    clock.advance(10_000);
    queue.enqueue(items(10, 11, 'drain'));
    assert.deepEqual([queue.progress().moved, queue.progress().startedAtMs, queue.progress().finishedAtMs], [0, 17_000, null]);
  });

  test('cancel drops what is queued, stops the timer, and rejects waiters with REGISTRAR_REHOME_CANCELLED', async () => {
    const { clock, queue, releases } = harness(10, 1000);
    queue.enqueue(items(0, 35));
    const finished = queue.whenFinished();
    clock.advance(1000);
    queue.cancel();
    await assert.rejects(finished, (error: unknown) => isDnslbError(error, 'REGISTRAR_REHOME_CANCELLED'));
    clock.advance(10_000);
    assert.equal(releases.reduce((sum, r) => sum + r.batch.length, 0), 20);
    assert.deepEqual([queue.progress().remaining, queue.progress().cancelled, queue.progress().moved], [0, true, 20]);
    assert.equal(clock.pendingCount(), 0);
  });

  test('remove takes one user out of the queue', () => {
    const { clock, queue, releases } = harness(10, 1000);
    queue.enqueue(items(0, 3));
    assert.equal(queue.remove(user(1)), true);
    assert.equal(queue.remove(user(1)), false);
    clock.advance(0);
    assert.deepEqual(releases[0]?.batch.map((item) => item.user), [user(0), user(2)]);
  });

  test('a bad batch size or interval is a programmer error', () => {
    const clock = new FakeClock();
    assert.throws(() => new RehomeQueue({ clock, batchSize: 0, intervalMs: 1000, onBatch: () => {} }));
    assert.throws(() => new RehomeQueue({ clock, batchSize: 10, intervalMs: 0, onBatch: () => {} }));
  });
});
