// Users arriving at this server, counted where they arrive (DESIGN §3: re-homes are rate-limited
// per home): a recovery, commission or drain promises that no home receives more than
// `rehome.batchSize` users per `rehome.intervalMs`, and this is the home's own record of what it
// received, in 100 ms buckets over the last two minutes — not a sender's count, and not a sample
// of binding totals read from outside.
import { assert } from '../shared/assert.ts';
import type { Clock } from '../shared/clock.ts';

export interface ArrivalPeak {
  /** The most users that arrived in any window of `windowMs` (whole buckets) since `sinceMs`. */
  count: number;
  /** Where that window starts (the first such window); null when nobody arrived. */
  atMs: number | null;
  windowMs: number;
  /** The oldest instant the answer covers (the history is bounded). */
  sinceMs: number;
}

export class ArrivalLog {
  private readonly clock: Clock;
  private readonly bucketMs: number;
  /** A ring of counts; bucket k covers [k·bucketMs, (k+1)·bucketMs) of the clock. */
  private readonly counts: Uint32Array;
  /** The newest bucket number written to the ring (older ones wrap). */
  private newest = -1;
  private total = 0;

  constructor(options: { clock: Clock; bucketMs?: number; historyMs?: number }) {
    this.clock = options.clock;
    this.bucketMs = options.bucketMs ?? 100;
    const historyMs = options.historyMs ?? 120_000;
    assert(Number.isInteger(this.bucketMs) && this.bucketMs >= 1 && historyMs >= this.bucketMs, 'arrival buckets out of range');
    this.counts = new Uint32Array(Math.ceil(historyMs / this.bucketMs));
  }

  /** Users that arrived since start. */
  get arrived(): number {
    return this.total;
  }

  /** One user arrived now. */
  note(): void {
    const bucket = this.advanceTo(this.clock.nowMs());
    this.counts[bucket % this.counts.length]! += 1;
    this.total += 1;
  }

  /**
   * The largest number of arrivals in any window of `windowMs` (rounded up to whole buckets, so it
   * never under-reads a window of that length by more than one bucket's arrivals) starting at or
   * after `sinceMs` (clamped to the history kept).
   */
  peak(windowMs: number, sinceMs = 0): ArrivalPeak {
    const nowBucket = this.advanceTo(this.clock.nowMs());
    const width = Math.max(1, Math.ceil(windowMs / this.bucketMs));
    const oldest = Math.max(nowBucket - this.counts.length + 1, Math.floor(sinceMs / this.bucketMs));
    let best = 0;
    let bestStart: number | null = null;
    let sum = 0;
    for (let bucket = oldest; bucket <= nowBucket; bucket++) {
      sum += this.countOf(bucket);
      if (bucket - width >= oldest) sum -= this.countOf(bucket - width);
      if (sum > best) {
        best = sum;
        bestStart = Math.max(oldest, bucket - width + 1);
      }
    }
    return { count: best, atMs: bestStart === null ? null : bestStart * this.bucketMs, windowMs: width * this.bucketMs, sinceMs: oldest * this.bucketMs };
  }

  private countOf(bucket: number): number {
    return bucket < 0 || bucket > this.newest ? 0 : this.counts[bucket % this.counts.length]!;
  }

  /** Clears the buckets between the newest written and now's; returns now's bucket number. */
  private advanceTo(nowMs: number): number {
    const bucket = Math.floor(nowMs / this.bucketMs);
    if (bucket > this.newest) {
      const from = Math.max(this.newest + 1, bucket - this.counts.length + 1);
      for (let stale = from; stale <= bucket; stale++) this.counts[stale % this.counts.length] = 0;
      this.newest = bucket;
    }
    return Math.max(bucket, this.newest);
  }
}
