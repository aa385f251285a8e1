// Draining one Front End server (DESIGN §1 "Draining"): the state machine from `draining` to
// `drained` — drained when no binding and no dialog is left, or when the drain timeout passes (then
// what is left is ended and counted). The server does the work (302s, refusing connections, handing
// users over); this keeps the clock, the progress and the decision, so it is tested on a FakeClock.
import { assert } from '../shared/assert.ts';
import type { Clock, Timer } from '../shared/clock.ts';

export type DrainPhase = 'draining' | 'drained' | 'resumed';

/** Why the server drains: an operator set `draining` in the store, or it left the published topology. */
export type DrainCause = 'admin' | 'decommission';

export interface DrainLeft {
  bindings: number;
  dialogs: number;
}

export interface DrainProgress {
  phase: DrainPhase;
  cause: DrainCause;
  startedAtMs: number;
  /** When it became drained (or was resumed); null while draining. */
  finishedAtMs: number | null;
  bindingsLeft: number;
  dialogsLeft: number;
  /** Users handed to their next server by this drain so far. */
  handedOver: number;
  timedOut: boolean;
  /** What the timeout ended (null unless it timed out). */
  endedAtTimeout: DrainLeft | null;
  timeoutMs: number;
}

export interface DrainOptions {
  clock: Clock;
  cause: DrainCause;
  /** `settings.drain.timeoutMs`: the drain ends by then whatever is left. */
  timeoutMs: number;
  /** How often to look whether anything is left. Milliseconds. */
  checkIntervalMs: number;
  /** Bindings and dialogs still here. */
  left: () => DrainLeft;
  /** Users handed over by this drain so far. */
  handedOver: () => number;
  /** Ends what is left (the timeout passed); returns what it ended. */
  endLeft: () => DrainLeft;
  /** Called once when the drain ends (drained or timed out), never after resume(). */
  onDrained: (progress: DrainProgress) => void;
}

export class Drain {
  private progressValue: DrainProgress;
  private checkTimer: Timer | undefined;
  private timeoutTimer: Timer | undefined;

  constructor(private readonly options: DrainOptions) {
    assert(options.timeoutMs > 0 && options.checkIntervalMs > 0, 'drain timeout and check interval are positive');
    const left = options.left();
    this.progressValue = {
      phase: 'draining',
      cause: options.cause,
      startedAtMs: options.clock.nowMs(),
      finishedAtMs: null,
      bindingsLeft: left.bindings,
      dialogsLeft: left.dialogs,
      handedOver: 0,
      timedOut: false,
      endedAtTimeout: null,
      timeoutMs: options.timeoutMs,
    };
    this.timeoutTimer = options.clock.setTimer(options.timeoutMs, () => this.timeout());
    this.scheduleCheck();
  }

  get cause(): DrainCause {
    return this.progressValue.cause;
  }

  get phase(): DrainPhase {
    return this.progressValue.phase;
  }

  progress(): DrainProgress {
    if (this.progressValue.phase === 'draining') this.refresh();
    return { ...this.progressValue, endedAtTimeout: this.progressValue.endedAtTimeout && { ...this.progressValue.endedAtTimeout } };
  }

  /** Looks now (the server calls this when a binding or a dialog ends, to become drained at once). */
  check(): void {
    if (this.progressValue.phase !== 'draining') return;
    this.refresh();
    if (this.progressValue.bindingsLeft === 0 && this.progressValue.dialogsLeft === 0) this.finish();
  }

  /** The operator resumed: stop here; what is left stays. */
  resume(): void {
    if (this.progressValue.phase !== 'draining' && this.progressValue.phase !== 'drained') return;
    if (this.progressValue.phase === 'draining') this.refresh();
    this.stopTimers();
    this.progressValue.phase = 'resumed';
    this.progressValue.finishedAtMs ??= this.options.clock.nowMs();
  }

  private refresh(): void {
    const left = this.options.left();
    this.progressValue.bindingsLeft = left.bindings;
    this.progressValue.dialogsLeft = left.dialogs;
    this.progressValue.handedOver = this.options.handedOver();
  }

  private scheduleCheck(): void {
    this.checkTimer = this.options.clock.setTimer(this.options.checkIntervalMs, () => {
      this.checkTimer = undefined;
      this.check();
      if (this.progressValue.phase === 'draining') this.scheduleCheck();
    });
  }

  private timeout(): void {
    this.timeoutTimer = undefined;
    if (this.progressValue.phase !== 'draining') return;
    this.refresh();
    this.progressValue.timedOut = true;
    this.progressValue.endedAtTimeout = this.options.endLeft();
    this.refresh();
    this.finish();
  }

  private finish(): void {
    this.stopTimers();
    this.progressValue.phase = 'drained';
    this.progressValue.finishedAtMs = this.options.clock.nowMs();
    this.options.onDrained(this.progress());
  }

  private stopTimers(): void {
    this.checkTimer?.cancel();
    this.timeoutTimer?.cancel();
    this.checkTimer = this.timeoutTimer = undefined;
  }
}
