// Re-home batching (DESIGN §3): users to move are released in batches of at most
// `rehome.batchSize`, at least `rehome.intervalMs` apart, on an injected Clock, so that a recovery,
// a commission or a drain never makes a whole server's users re-register at once.
import { assert } from '../shared/assert.ts';
import type { Clock, Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { canonicalUser } from './sequence.ts';

/** Why a user moves: its primary came back, a server was added or removed, or its server drains. */
export const REHOME_REASONS = ['recovery', 'commission', 'decommission', 'drain', 'move'] as const;
export type RehomeReason = (typeof REHOME_REASONS)[number];

export interface RehomeItem {
  /** The user (canonical form; any sip/sips form is accepted and made canonical). */
  user: string;
  reason: RehomeReason;
  /** Its new home when known (for the log and the dashboard); the client finds it by redirect anyway. */
  to?: string | null;
  /** When a release first found the user in a call and put it back (frontend/handover.ts). */
  busySinceMs?: number;
}

export interface RehomeProgress {
  /** Released in this run. */
  moved: number;
  /** Still queued. */
  remaining: number;
  /** Queued again while already queued (ignored) in this run. */
  duplicates: number;
  /** Released so far per reason in this run. */
  movedByReason: Record<RehomeReason, number>;
  /** When this run's first user was queued; null before any. */
  startedAtMs: number | null;
  /** When the queue last became empty (or was cancelled); null while running. */
  finishedAtMs: number | null;
  cancelled: boolean;
  batches: number;
}

export interface RehomeOptions {
  clock: Clock;
  /** At most this many users per batch (topology `settings.rehome.batchSize`, default 100). */
  batchSize: number;
  /** At least this long between two batches (topology `settings.rehome.intervalMs`, default 1000). Milliseconds. */
  intervalMs: number;
  /** Moves one batch: typically deactivate each user's bindings and NOTIFY `deactivated`. `atMs`: the release time the rate is kept on. */
  onBatch: (batch: RehomeItem[], atMs: number) => void;
  /**
   * With `perDestination`: at most that many users of one batch go to one destination (the server
   * `destinationOf` names at release time; undefined: the user goes nowhere and counts for no one).
   * Users over a destination's share wait, keeping their place, while others fill the batch.
   */
  perDestination?: { limit: number; destinationOf: (item: RehomeItem) => string | undefined };
}

/**
 * A rate-limited queue of users to move. Batches are released only from timers (never inside
 * `enqueue`), the first as soon as the queue fills, each next one `intervalMs` after the previous,
 * so in any window of `intervalMs` at most `batchSize` users are released. Queuing a user who is
 * already queued does nothing (it keeps its place and first reason); once released, a user may be
 * queued again (a new move). A run lasts from the first enqueue on an idle queue until it empties
 * or is cancelled.
 */
export class RehomeQueue {
  private readonly clock: Clock;
  private batchSize: number;
  private intervalMs: number;
  private readonly onBatch: (batch: RehomeItem[], atMs: number) => void;
  private perDestination: RehomeOptions['perDestination'];
  private readonly queued = new Map<string, RehomeItem>();
  private timer: Timer | undefined;
  private lastReleaseMs: number | null = null;
  private run: RehomeProgress = emptyProgress();
  private waiters: { resolve: (progress: RehomeProgress) => void; reject: (error: Error) => void }[] = [];

  constructor(options: RehomeOptions) {
    assert(Number.isInteger(options.batchSize) && options.batchSize >= 1 && options.batchSize <= limits.rehomeBatchSizeMax, `rehome batchSize out of range: ${options.batchSize}`);
    assert(Number.isFinite(options.intervalMs) && options.intervalMs > 0, `rehome intervalMs must be > 0: ${options.intervalMs}`);
    this.clock = options.clock;
    this.batchSize = options.batchSize;
    this.intervalMs = options.intervalMs;
    this.onBatch = options.onBatch;
    this.perDestination = options.perDestination;
  }

  /**
   * New rate (a newly published `settings.rehome`). Queued users keep their place, and the next batch
   * still waits for the new interval after the last release, so no window ever sees two batches.
   */
  setRate(batchSize: number, intervalMs: number, perDestinationLimit?: number): void {
    assert(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= limits.rehomeBatchSizeMax, `rehome batchSize out of range: ${batchSize}`);
    assert(Number.isFinite(intervalMs) && intervalMs > 0, `rehome intervalMs must be > 0: ${intervalMs}`);
    if (perDestinationLimit !== undefined && this.perDestination) this.perDestination = { ...this.perDestination, limit: perDestinationLimit };
    if (batchSize === this.batchSize && intervalMs === this.intervalMs) return;
    this.batchSize = batchSize;
    this.intervalMs = intervalMs;
    if (this.timer !== undefined) {
      this.timer.cancel();
      this.timer = undefined;
      this.schedule();
    }
  }

  /** Queues users to move; returns how many were newly queued (duplicates are not). */
  enqueue(items: Iterable<RehomeItem>): number {
    let added = 0;
    for (const item of items) {
      assert((REHOME_REASONS as readonly string[]).includes(item.reason), `unknown rehome reason ${item.reason}`);
      const user = canonicalUser(item.user);
      if (this.queued.has(user)) {
        this.run.duplicates++;
        continue;
      }
      if (this.queued.size === 0 && this.run.finishedAtMs !== null) this.run = emptyProgress();
      if (this.run.startedAtMs === null) this.run.startedAtMs = this.clock.nowMs();
      this.queued.set(user, { ...item, user });
      added++;
    }
    if (added > 0) this.schedule();
    return added;
  }

  /** Drops one queued user (it re-registered by itself, say); true when it was queued. */
  remove(userUri: string): boolean {
    const removed = this.queued.delete(canonicalUser(userUri));
    if (removed && this.queued.size === 0) this.finish(false);
    return removed;
  }

  /** Stops the run: queued users stay where they are. Waiters of `whenFinished` get REGISTRAR_REHOME_CANCELLED. */
  cancel(): void {
    if (this.queued.size === 0 && this.timer === undefined) return;
    this.queued.clear();
    this.finish(true);
  }

  isQueued(userUri: string): boolean {
    return this.queued.has(canonicalUser(userUri));
  }

  progress(): RehomeProgress {
    return { ...this.run, remaining: this.queued.size, movedByReason: { ...this.run.movedByReason } };
  }

  /** Resolves with the progress when the queue empties; rejects if the run is cancelled first. */
  whenFinished(): Promise<RehomeProgress> {
    if (this.queued.size === 0) return Promise.resolve(this.progress());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const nowMs = this.clock.nowMs();
    const dueMs = this.lastReleaseMs === null ? nowMs : Math.max(nowMs, this.lastReleaseMs + this.intervalMs);
    this.timer = this.clock.setTimer(dueMs - nowMs, () => this.release());
  }

  private release(): void {
    this.timer = undefined;
    // Timers may fire a millisecond early by the wall clock (node's timers run on a monotonic clock):
    // the rate is a promise on the clock people read, so wait out the rest.
    if (this.lastReleaseMs !== null && this.clock.nowMs() < this.lastReleaseMs + this.intervalMs) {
      this.schedule();
      return;
    }
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.lastReleaseMs = this.clock.nowMs();
    this.run.moved += batch.length;
    this.run.batches++;
    for (const item of batch) this.run.movedByReason[item.reason]++;
    // State first, then the callback: a throwing callback must not leave the queue half-updated.
    if (this.queued.size > 0) this.schedule();
    else this.finish(false);
    this.onBatch(batch, this.lastReleaseMs);
  }

  /** The next batch, oldest first: at most batchSize users, and at most the limit per destination. */
  private takeBatch(): RehomeItem[] {
    const batch: RehomeItem[] = [];
    const perDestination = this.perDestination;
    const counts = new Map<string, number>();
    for (const [user, item] of this.queued) {
      if (batch.length === this.batchSize) break;
      if (perDestination) {
        const destination = perDestination.destinationOf(item);
        if (destination !== undefined) {
          const count = counts.get(destination) ?? 0;
          if (count === perDestination.limit) continue;
          counts.set(destination, count + 1);
        }
      }
      batch.push(item);
      this.queued.delete(user);
    }
    return batch;
  }

  private finish(cancelled: boolean): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.run.finishedAtMs = this.clock.nowMs();
    this.run.cancelled = cancelled;
    const waiters = this.waiters;
    this.waiters = [];
    const progress = this.progress();
    for (const waiter of waiters) {
      if (cancelled) waiter.reject(new DnslbError('REGISTRAR_REHOME_CANCELLED', `re-home cancelled after ${progress.moved} users were moved`));
      else waiter.resolve(progress);
    }
  }
}

function emptyProgress(): RehomeProgress {
  return {
    moved: 0,
    remaining: 0,
    duplicates: 0,
    movedByReason: { recovery: 0, commission: 0, decommission: 0, drain: 0, move: 0 },
    startedAtMs: null,
    finishedAtMs: null,
    cancelled: false,
    batches: 0,
  };
}
