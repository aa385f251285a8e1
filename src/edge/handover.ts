// Handing an Edge's remote users over when it drains (DESIGN §1 "Draining", issue 14 item 3): in
// rate-limited batches (`settings.rehome.batchSize` users per `intervalMs`), the Edge closes the
// connection of each remote user that is not in a call through it. The client sees its flow end
// (RFC 5626 §4.5) and signs in again at once through the next Access Edge address — the draining Edge
// accepts no new connection and DNS no longer answers it — and its home server replaces the binding
// (same instance and reg-id) with one through the other Edge. A user in a call is passed over until its
// call ends. An Edge is not the notifier of the user's `reg` event (its home server is), so it cannot
// send the `deactivated` NOTIFY a Front End uses; closing the flow is the one signal it owns. New
// requests on a draining Edge's connections get 302 to the other Access Edges meanwhile (the drain step).
import type { Logger } from 'pino';
import type { Clock, Timer } from '../shared/clock.ts';
import type { Flow } from '../sip/flow.ts';

export interface EdgeHandoverOptions {
  clock: Clock;
  logger: Logger;
  /** The remote users' connections, oldest first. */
  users: () => Iterable<{ flow: Flow; user: string }>;
  /** Is the user in a call through this Edge? */
  busy: (user: string) => boolean;
  batchSize: () => number;
  intervalMs: () => number;
}

export interface EdgeHandoverBatch {
  atMs: number;
  handedOver: number;
  /** In a call: left for a later batch. */
  deferred: number;
}

export interface EdgeHandoverStatus {
  running: boolean;
  handedOverTotal: number;
  batchesTotal: number;
  /** The newest batches, oldest first. */
  batches: EdgeHandoverBatch[];
}

const BATCHES_KEPT = 64;

export class EdgeHandover {
  private timer: Timer | null = null;
  private handedOverTotal = 0;
  private batchesTotal = 0;
  private readonly batches: EdgeHandoverBatch[] = [];

  constructor(private readonly options: EdgeHandoverOptions) {}

  get handedOver(): number {
    return this.handedOverTotal;
  }

  /** Starts releasing batches: the first at once, then one per interval until stopped. Idempotent. */
  start(): void {
    if (this.timer !== null) return;
    this.batch();
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Lets go of every remote user at once (the drain timed out). */
  releaseAll(reason: string): number {
    let released = 0;
    for (const { flow } of [...this.options.users()]) {
      flow.close('local', reason);
      released++;
    }
    this.handedOverTotal += released;
    return released;
  }

  status(): EdgeHandoverStatus {
    return { running: this.timer !== null, handedOverTotal: this.handedOverTotal, batchesTotal: this.batchesTotal, batches: [...this.batches] };
  }

  private batch(): void {
    const size = this.options.batchSize();
    let handedOver = 0;
    let deferred = 0;
    let waiting = 0;
    for (const { flow, user } of [...this.options.users()]) {
      if (this.options.busy(user)) {
        deferred++;
        waiting++;
        continue;
      }
      if (handedOver >= size) {
        waiting++;
        continue;
      }
      flow.close('local', 'edge draining: hand-over');
      handedOver++;
    }
    if (handedOver > 0 || deferred > 0) {
      this.handedOverTotal += handedOver;
      this.batchesTotal++;
      this.batches.push({ atMs: this.options.clock.nowMs(), handedOver, deferred });
      if (this.batches.length > BATCHES_KEPT) this.batches.shift();
      this.options.logger.info({ handedOver, deferred, waiting }, 'edge: hand-over batch');
    }
    // Keep going while users are left (a user in a call is looked at again next interval); a user that
    // registers meanwhile (it cannot on a new connection) would be picked up too.
    this.timer = waiting > 0 ? this.options.clock.setTimer(this.options.intervalMs(), () => this.batch()) : null;
  }
}
