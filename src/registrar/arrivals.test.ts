// ArrivalLog on a FakeClock: the peak over sliding windows of whole buckets, the bounded history,
// and a property test against a brute-force count of the same arrivals.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { ArrivalLog } from './arrivals.ts';

describe('ArrivalLog', () => {
  test('the peak is the busiest window of whole buckets, and where it starts', () => {
    const clock = new FakeClock(10_000);
    const log = new ArrivalLog({ clock });
    assert.deepEqual(log.peak(1000), { count: 0, atMs: null, windowMs: 1000, sinceMs: 0 });
    for (let i = 0; i < 30; i++) log.note(); // 30 in [10.0, 10.1)
    clock.advance(950);
    for (let i = 0; i < 40; i++) log.note(); // 40 in [10.9, 11.0)
    clock.advance(100);
    for (let i = 0; i < 50; i++) log.note(); // 50 in [11.0, 11.1)
    assert.equal(log.arrived, 120);
    assert.deepEqual(log.peak(1000), { count: 90, atMs: 10_100, windowMs: 1000, sinceMs: 0 });
    assert.equal(log.peak(100).count, 50);
    assert.equal(log.peak(2000).count, 120);
    assert.equal(log.peak(1000, 11_000).count, 50, 'windows starting at or after sinceMs only');
  });

  test('arrivals older than the history are forgotten, and a long silence clears the ring', () => {
    const clock = new FakeClock(0);
    const log = new ArrivalLog({ clock, bucketMs: 100, historyMs: 1000 });
    for (let i = 0; i < 7; i++) log.note();
    clock.advance(999);
    assert.equal(log.peak(1000).count, 7);
    clock.advance(1);
    assert.equal(log.peak(1000).count, 0, 'the first bucket left the history');
    log.note();
    clock.advance(3_600_000);
    log.note();
    assert.equal(log.peak(1000).count, 1);
    assert.equal(log.arrived, 9);
  });

  test('property: the peak equals a brute-force count over windows aligned to buckets', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 200 }), fc.integer({ min: 1, max: 30 }), (gaps, windowBuckets) => {
        const clock = new FakeClock(0);
        const log = new ArrivalLog({ clock, bucketMs: 10, historyMs: 100_000 });
        const times: number[] = [];
        for (const gap of gaps) {
          clock.advance(gap);
          log.note();
          times.push(clock.nowMs());
        }
        let expected = 0;
        const lastBucket = Math.floor(clock.nowMs() / 10);
        for (let start = 0; start <= lastBucket; start++) {
          const from = start * 10;
          const to = from + windowBuckets * 10;
          expected = Math.max(expected, times.filter((time) => time >= from && time < to).length);
        }
        assert.equal(log.peak(windowBuckets * 10).count, expected);
      }),
    );
  });
});
