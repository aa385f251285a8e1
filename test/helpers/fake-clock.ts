// A Clock whose time moves only when a test says so; timers fire in due order as time advances.
import type { Clock, Timer } from '../../src/shared/clock.ts';

interface Pending {
  dueMs: number;
  sequence: number;
  callback: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  private currentMs: number;
  private sequence = 0;
  private pending: Pending[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.currentMs = startMs;
  }

  nowMs(): number {
    return this.currentMs;
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    const entry: Pending = { dueMs: this.currentMs + Math.max(0, delayMs), sequence: this.sequence++, callback, cancelled: false };
    this.pending.push(entry);
    return { cancel: () => { entry.cancelled = true; } };
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order (timers set by timers included). */
  advance(ms: number): void {
    const targetMs = this.currentMs + ms;
    for (;;) {
      this.pending = this.pending.filter((p) => !p.cancelled);
      const next = this.pending.filter((p) => p.dueMs <= targetMs).sort((a, b) => a.dueMs - b.dueMs || a.sequence - b.sequence)[0];
      if (!next) break;
      this.currentMs = next.dueMs;
      next.cancelled = true;
      next.callback();
    }
    this.currentMs = targetMs;
  }

  pendingCount(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }
}
