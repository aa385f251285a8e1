// Time as an injected dependency: every `now` and every timer goes through a Clock, so that
// heartbeat, drain and re-home logic is tested by advancing a FakeClock (test/helpers) instead of sleeping.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch (wall clock, for records people read). */
  nowMs(): number;
  /** Calls `callback` once after `delayMs`. */
  setTimer(delayMs: number, callback: () => void): Timer;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  setTimer(delayMs, callback) {
    const handle = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Randomness, injected the same way: returns a float in [0, 1). */
export type Random = () => number;
export const systemRandom: Random = Math.random;
