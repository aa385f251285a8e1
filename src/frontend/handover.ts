// Handing users over to their homes (DESIGN §3 recovery, commission, drain): when the pool changes,
// the users held here whose home is now another server are queued and released in rate-limited
// batches (RehomeQueue); each released user is `deactivated` (RFC 3680) and re-registers at its home.
// Users moved to another pool (`dnslb user move`: their home pool is no longer this one) go the same
// way through a queue of their own, whose share counts every server of this pool as a sender.
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import type { LocationService } from '../registrar/location.ts';
import { RehomeQueue, type RehomeItem, type RehomeProgress, type RehomeReason } from '../registrar/rehome.ts';
import { homeInSequence, type Availability, type Sequencer } from '../registrar/sequence.ts';

/** The last batches kept for status() (enough to check the rate over a recovery, slices included). */
export const HANDOVER_BATCHES_KEPT = 256;

export interface HandoverBatch {
  atMs: number;
  /** Users released by the queue in this batch. */
  released: number;
  /** Of those, deactivated (handed over). */
  handedOver: number;
  /** Of those, left alone at release time: home is here again, no binding left, or nowhere to go. */
  skipped: number;
  /** Of those, in a call: queued again. */
  deferred: number;
}

/**
 * One server's share of the pool's re-home rate. `settings.rehome` bounds the re-registrations any
 * one home receives per `intervalMs` (the knob protects the home from a REGISTER storm); but up to
 * n−1 servers hand users to the same home at once — every other member after a recovery or a
 * commission — each on its own timer. So each sends at most ⌊batchSize/(n−1)⌋ users per interval
 * to any one home: a window of `intervalMs` holds at most one batch of each sender, hence at most
 * `batchSize` arrivals at any home. A sender whose users go to several homes (a drain, a
 * decommission) sends that share to each of them, up to (n−1) shares ≤ `batchSize` per interval in
 * all: alone, it uses the pool's whole rate without any home receiving more than its bound, whoever
 * else is sending. When batchSize < n−1 a sender sends one user per home every ⌈(n−1)/batchSize⌉
 * intervals; the bound then holds on average over that many intervals.
 */
export function rehomeShare(batchSize: number, intervalMs: number, poolSize: number): { batchSize: number; intervalMs: number } {
  const senders = Math.max(1, poolSize - 1);
  const share = Math.floor(batchSize / senders);
  if (share >= 1) return { batchSize: share, intervalMs };
  return { batchSize: 1, intervalMs: intervalMs * Math.ceil(senders / batchSize) };
}

/** What one sender's queue releases per interval in all: its share to each of the n−1 other servers, paced. */
function senderRate(batchSize: number, intervalMs: number, poolSize: number): { batchSize: number; intervalMs: number; perHome: number } {
  const share = rehomeShare(batchSize, intervalMs, poolSize);
  return paced({ batchSize: share.batchSize * Math.max(1, poolSize - 1), intervalMs: share.intervalMs, perHome: share.batchSize });
}

/** Most slices per interval, and the shortest time between two (below it the timers cost more than the smoothing gives). */
const SLICES_MAX = 10;
const SLICE_MS_MIN = 100;

/**
 * A sender's rate cut into k equal slices released evenly through the interval: k divides the batch
 * and the share per home, k ≤ 10, slices ≥ 100 ms apart (k = 1, the rate itself, when nothing
 * divides; the slice interval may be a fraction of a millisecond: the queue never releases early). Any window of the interval still holds at most k slices, so the bound on what a
 * home receives is unchanged; what changes is its shape. Released as one burst per interval, each
 * sender's users reach the home bunched, and the clients' own delays between the NOTIFY and their
 * REGISTER let one second at the home catch parts of two bursts: 143–150 arrivals/s were counted at
 * a recovering server against the pool's 100/s (bench:failover, before). Paced, the home sees a stream.
 */
export function paced<Rate extends { batchSize: number; intervalMs: number; perHome?: number }>(rate: Rate): Rate {
  for (let k = SLICES_MAX; k > 1; k--) {
    if (rate.batchSize % k !== 0 || (rate.perHome ?? 0) % k !== 0 || rate.intervalMs / k < SLICE_MS_MIN) continue;
    return { ...rate, batchSize: rate.batchSize / k, intervalMs: rate.intervalMs / k, ...(rate.perHome === undefined ? {} : { perHome: rate.perHome / k }) };
  }
  return rate;
}

export interface HandoverStatus {
  /** The pool's rate (`settings.rehome`): what any one home receives at most per interval. */
  batchSize: number;
  intervalMs: number;
  /** This server's share of it (rehomeShare): what its queue sends to any one home per interval. */
  perServer: { batchSize: number; intervalMs: number };
  /** The current (or last) run of the queue. */
  run: RehomeProgress;
  /** Since start: users deactivated per reason, and users skipped at release. */
  handedOverTotal: Record<RehomeReason, number>;
  skippedTotal: number;
  /** Releases put back in the queue because the user was in a call. */
  deferredTotal: number;
  /** Users handed over although still counted in a call, after waiting limits.rehomeBusyWaitMs. */
  busyWaitEndedTotal: number;
  /** Batches released since start (`batches` keeps only the newest). */
  batchesTotal: number;
  /** Users queued by the last reconcile, and why. */
  lastReconcile: { atMs: number; reason: RehomeReason; queued: number; homedElsewhere: number } | null;
  /** The newest batches, oldest first (moves to other pools included). */
  batches: HandoverBatch[];
  /** Users moving to another pool: this server's share of the rate (every server of this pool is a sender) and the queue's run. */
  moves: { perServer: { batchSize: number; intervalMs: number }; run: RehomeProgress };
}

/**
 * This server's share of `settings.rehome` for users moving to another pool: all n servers of this
 * pool may hand users to the same home in the other pool at once, so each releases ⌊batchSize/n⌋
 * per interval (rehomeShare with n senders) and a home there receives at most batchSize per interval.
 */
export function moveShareOf(batchSize: number, intervalMs: number, poolSize: number): { batchSize: number; intervalMs: number } {
  return rehomeShare(batchSize, intervalMs, poolSize + 1);
}

export interface HandoverOptions {
  clock: Clock;
  logger: Logger;
  location: LocationService;
  self: () => string;
  sequencer: () => Sequencer;
  /**
   * Where users may be moved now: servers that are up, heard from and not taken out by an operator.
   * This server counts as long as it keeps its users (blocked does; draining does not).
   */
  movable: Availability;
  /** Ends the user's bindings here with a `deactivated` NOTIFY. */
  deactivate: (user: string) => void;
  /**
   * Is the user in a call through this server? Then it waits: a client that re-registers elsewhere
   * leaves its flow here, and the call with it. It is queued again behind the others, for at most
   * limits.rehomeBusyWaitMs (then it is handed over: the call may be one whose end never passed here).
   */
  busy?: (user: string) => boolean;
  /** The pool's `settings.rehome`; this server releases its share (rehomeShare). */
  batchSize: number;
  intervalMs: number;
  /** Servers in the pool (this one included), for the share. */
  poolSize: number;
  /** Is the user's home pool another pool now (moved by `dnslb user move`, or a rule changed)? Default: never. */
  homedOnOtherPool?: (user: string) => boolean;
}

export class Handover {
  private readonly queue: RehomeQueue;
  private readonly handedOverTotal: Record<RehomeReason, number> = { recovery: 0, commission: 0, decommission: 0, drain: 0, move: 0 };
  /** Users moving to another pool: every server of this pool may send to the same home there at once. */
  private readonly moveQueue: RehomeQueue;
  private moveShare: { batchSize: number; intervalMs: number };
  private skippedTotal = 0;
  private deferredTotal = 0;
  private busyWaitEndedTotal = 0;
  private batchesTotal = 0;
  private lastReconcile: HandoverStatus['lastReconcile'] = null;
  private readonly batches: HandoverBatch[] = [];
  private batchSize: number;
  private intervalMs: number;
  private perServer: { batchSize: number; intervalMs: number };

  constructor(private readonly options: HandoverOptions) {
    this.batchSize = options.batchSize;
    this.intervalMs = options.intervalMs;
    this.perServer = rehomeShare(options.batchSize, options.intervalMs, options.poolSize);
    const rate = senderRate(options.batchSize, options.intervalMs, options.poolSize);
    this.queue = new RehomeQueue({
      clock: options.clock,
      batchSize: rate.batchSize,
      intervalMs: rate.intervalMs,
      onBatch: (batch, atMs) => this.release(batch, atMs),
      perDestination: { limit: rate.perHome, destinationOf: (item) => this.destinationOf(item.user) },
    });
    this.moveShare = moveShareOf(options.batchSize, options.intervalMs, options.poolSize);
    this.moveQueue = new RehomeQueue({ clock: options.clock, ...paced(this.moveShare), onBatch: (batch, atMs) => this.releaseMoves(batch, atMs) });
  }

  /** A new `settings.rehome` or a new pool size (published topology); applies to the next batch. */
  setRate(batchSize: number, intervalMs: number, poolSize: number): void {
    this.batchSize = batchSize;
    this.intervalMs = intervalMs;
    this.perServer = rehomeShare(batchSize, intervalMs, poolSize);
    const rate = senderRate(batchSize, intervalMs, poolSize);
    this.queue.setRate(rate.batchSize, rate.intervalMs, rate.perHome);
    this.moveShare = moveShareOf(batchSize, intervalMs, poolSize);
    const movePace = paced(this.moveShare);
    this.moveQueue.setRate(movePace.batchSize, movePace.intervalMs);
  }

  /**
   * Queues every user held here whose home pool is another one (reason `move`). Idempotent. Returns
   * how many were newly queued.
   */
  reconcileMoves(): number {
    const homedOnOtherPool = this.options.homedOnOtherPool;
    if (!homedOnOtherPool) return 0;
    const items: RehomeItem[] = [];
    for (const user of this.options.location.users()) if (homedOnOtherPool(user)) items.push({ user, reason: 'move', to: null });
    const queued = this.moveQueue.enqueue(items);
    this.lastReconcile = { atMs: this.options.clock.nowMs(), reason: 'move', queued, homedElsewhere: items.length };
    if (queued > 0) this.options.logger.info({ queued, remaining: this.moveQueue.progress().remaining }, 'handover: users queued to move to their new home pool');
    return queued;
  }

  /** As reconcileMoves, for these users only (one user's home pool changed): no walk over every binding. */
  reconcileMovesOf(users: readonly string[]): number {
    const homedOnOtherPool = this.options.homedOnOtherPool;
    if (!homedOnOtherPool) return 0;
    const items: RehomeItem[] = [];
    for (const user of users) if (this.options.location.has(user) && homedOnOtherPool(user)) items.push({ user, reason: 'move', to: null });
    if (items.length === 0) return 0;
    const queued = this.moveQueue.enqueue(items);
    if (queued > 0) this.options.logger.info({ queued, remaining: this.moveQueue.progress().remaining }, 'handover: users queued to move to their new home pool');
    return queued;
  }

  /**
   * Queues every user held here whose home, by `movable`, is another server. Idempotent: users
   * already queued keep their place. Returns how many were newly queued.
   */
  reconcile(reason: RehomeReason): number {
    const moves = this.options.location.usersHomedElsewhere(this.options.self(), this.options.sequencer(), this.options.movable);
    // A user with no home at all stays: deactivating it would only make it fail to register anywhere.
    const items = moves.filter((move) => move.home !== null).map((move) => ({ user: move.user, reason, to: move.home }));
    const queued = this.queue.enqueue(items);
    this.lastReconcile = { atMs: this.options.clock.nowMs(), reason, queued, homedElsewhere: items.length };
    if (queued > 0) this.options.logger.info({ reason, queued, remaining: this.queue.progress().remaining }, 'handover: users queued to move to their homes');
    return queued;
  }

  /** Stops the current run (a drain resumed: its users stay). */
  cancel(): void {
    this.queue.cancel();
    this.moveQueue.cancel();
  }

  /** Users deactivated for `reason` since start. */
  handedOver(reason: RehomeReason): number {
    return this.handedOverTotal[reason];
  }

  get remaining(): number {
    return this.queue.progress().remaining + this.moveQueue.progress().remaining;
  }

  status(): HandoverStatus {
    return {
      batchSize: this.batchSize,
      intervalMs: this.intervalMs,
      perServer: { ...this.perServer },
      run: this.queue.progress(),
      handedOverTotal: { ...this.handedOverTotal },
      skippedTotal: this.skippedTotal,
      deferredTotal: this.deferredTotal,
      busyWaitEndedTotal: this.busyWaitEndedTotal,
      batchesTotal: this.batchesTotal,
      lastReconcile: this.lastReconcile,
      batches: [...this.batches],
      moves: { perServer: { ...this.moveShare }, run: this.moveQueue.progress() },
    };
  }

  /** Where the user would go if released now (release looks again: the batch is taken first). */
  private destinationOf(user: string): string | undefined {
    const home = homeInSequence(this.options.sequencer().sequenceOfCanonical(user), this.options.movable);
    return home === null || home.server === this.options.self() ? undefined : home.server;
  }

  /** A batch of users moving to another pool: still homed elsewhere, still bound here, not in a call → deactivated. */
  private releaseMoves(items: readonly RehomeItem[], atMs: number): void {
    let handedOver = 0;
    let skipped = 0;
    const deferred: RehomeItem[] = [];
    for (const item of items) {
      if (!this.options.homedOnOtherPool?.(item.user) || this.options.location.bindingsOf(item.user).length === 0) {
        skipped++;
        continue;
      }
      if (this.waitsForCall(item, atMs)) {
        deferred.push({ ...item, busySinceMs: item.busySinceMs ?? atMs });
        continue;
      }
      this.options.deactivate(item.user);
      handedOver++;
      this.handedOverTotal.move++;
    }
    this.record({ atMs, released: items.length, handedOver, skipped, deferred: deferred.length });
    if (deferred.length > 0) this.moveQueue.enqueue(deferred);
  }

  /** Is the user in a call, and has it waited less than limits.rehomeBusyWaitMs for it to end? */
  private waitsForCall(item: RehomeItem, atMs: number): boolean {
    if (!(this.options.busy?.(item.user) ?? false)) return false;
    if (item.busySinceMs === undefined || atMs - item.busySinceMs < limits.rehomeBusyWaitMs) return true;
    this.busyWaitEndedTotal++;
    return false;
  }

  private record(batch: HandoverBatch): void {
    this.skippedTotal += batch.skipped;
    this.deferredTotal += batch.deferred;
    this.batchesTotal++;
    this.batches.push(batch);
    if (this.batches.length > HANDOVER_BATCHES_KEPT) this.batches.shift();
  }

  /** One batch from the queue: the pool may have changed since the users were queued, so look again. */
  private release(items: readonly RehomeItem[], atMs: number): void {
    const self = this.options.self();
    const sequencer = this.options.sequencer();
    let handedOver = 0;
    let skipped = 0;
    const deferred: RehomeItem[] = [];
    for (const item of items) {
      const { user, reason } = item;
      const home = homeInSequence(sequencer.sequenceOfCanonical(user), this.options.movable);
      if (home === null || home.server === self || this.options.location.bindingsOf(user).length === 0) {
        skipped++;
        continue;
      }
      if (this.waitsForCall(item, atMs)) {
        deferred.push({ ...item, busySinceMs: item.busySinceMs ?? atMs });
        continue;
      }
      this.options.deactivate(user);
      handedOver++;
      this.handedOverTotal[reason]++;
    }
    this.record({ atMs, released: items.length, handedOver, skipped, deferred: deferred.length });
    if (deferred.length > 0) this.queue.enqueue(deferred);
  }
}
