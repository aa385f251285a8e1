// The brute-force limiter: failed digest checks per source address and per user, answered more and
// more slowly, then refused for a while, so that guessing passwords is slow and bounded while one
// attacker cannot lock a real user out (the rule: src/auth/README.md "Brute force"). Pure state and
// arithmetic on times the caller passes in (the injected clock's nowMs).
import { assert } from '../shared/assert.ts';
import { limits } from '../shared/limits.ts';

export interface LimiterConfig {
  /** Failures of a source answered at once; later ones are delayed. */
  slowAfterFailures: number;
  /** The delay of the first slowed answer; it doubles with each failure after, up to delayMsMax. */
  delayMsBase: number;
  delayMsMax: number;
  /** A source with this many failures is refused (403) for sourceRefuseMs. */
  sourceRefuseAfterFailures: number;
  sourceRefuseMs: number;
  /** A user is refused (503 Retry-After) for userRefuseMs once it has this many failures … */
  userRefuseAfterFailures: number;
  /** … coming from at least this many different sources (so that one source alone never locks a user). */
  userRefuseAfterSources: number;
  userRefuseMs: number;
  /** A counter with no new failure for this long starts again from zero. */
  forgetAfterMs: number;
  /** A source the user signed in from within this long is exempt from the user's refusal. */
  knownSourceMs: number;
}

export const LIMITER_DEFAULTS: LimiterConfig = {
  slowAfterFailures: 3,
  delayMsBase: 500, // 0.5 s
  delayMsMax: 8_000, // 8 s
  sourceRefuseAfterFailures: 10,
  sourceRefuseMs: 300_000, // 5 min
  userRefuseAfterFailures: 20,
  userRefuseAfterSources: 3,
  userRefuseMs: 300_000, // 5 min
  forgetAfterMs: 900_000, // 15 min
  knownSourceMs: 86_400_000, // 24 h
};

export type Admission =
  | { kind: 'go' }
  | { kind: 'refuse'; who: 'source'; status: 403; untilMs: number }
  | { kind: 'refuse'; who: 'user'; status: 503; retryAfterS: number; untilMs: number };

interface Counter {
  failures: number;
  lastFailureMs: number;
  refusedUntilMs: number;
  /** Users only: the sources the failures came from (at most userRefuseAfterSources kept). */
  sources: Set<string> | undefined;
}

export interface LimiterCounters {
  failures: number;
  delayed: number;
  refusedSource: number;
  refusedUser: number;
}

export class BruteForceLimiter {
  readonly config: LimiterConfig;
  readonly counters: LimiterCounters = { failures: 0, delayed: 0, refusedSource: 0, refusedUser: 0 };
  private readonly sources = new Map<string, Counter>();
  private readonly users = new Map<string, Counter>();
  /** user → source → when it last signed in from there. */
  private readonly known = new Map<string, Map<string, number>>();

  constructor(config: Partial<LimiterConfig> = {}) {
    this.config = { ...LIMITER_DEFAULTS, ...config };
    const c = this.config;
    assert(c.slowAfterFailures >= 0 && c.delayMsBase >= 0 && c.delayMsMax >= c.delayMsBase, 'limiter delays out of range');
    assert(c.sourceRefuseAfterFailures >= 1 && c.userRefuseAfterFailures >= 1 && c.userRefuseAfterSources >= 2, 'one source alone must never be enough to lock a user (userRefuseAfterSources >= 2)');
    assert(c.sourceRefuseMs > 0 && c.userRefuseMs > 0 && c.forgetAfterMs > 0 && c.knownSourceMs >= 0, 'limiter durations out of range');
  }

  /** Before a password is checked: refuse a refused source, or a refused user from a source it never signed in from. */
  admit(source: string, user: string | undefined, nowMs: number): Admission {
    const bySource = this.current(this.sources, source, nowMs);
    if (bySource && bySource.refusedUntilMs > nowMs) {
      this.counters.refusedSource++;
      return { kind: 'refuse', who: 'source', status: 403, untilMs: bySource.refusedUntilMs };
    }
    if (user !== undefined) {
      const byUser = this.current(this.users, user, nowMs);
      if (byUser && byUser.refusedUntilMs > nowMs && !this.isKnownSource(user, source, nowMs)) {
        this.counters.refusedUser++;
        return { kind: 'refuse', who: 'user', status: 503, retryAfterS: Math.ceil((byUser.refusedUntilMs - nowMs) / 1000), untilMs: byUser.refusedUntilMs };
      }
    }
    return { kind: 'go' };
  }

  /** A failed check (wrong password, unknown user, replayed count); returns how long to hold the answer back. */
  failed(source: string, user: string | undefined, nowMs: number): { delayMs: number } {
    const c = this.config;
    this.counters.failures++;
    const bySource = this.bump(this.sources, source, nowMs, false);
    if (bySource.failures >= c.sourceRefuseAfterFailures) bySource.refusedUntilMs = nowMs + c.sourceRefuseMs;
    if (user !== undefined) {
      const byUser = this.bump(this.users, user, nowMs, true);
      const sources = byUser.sources as Set<string>;
      if (sources.size < c.userRefuseAfterSources) sources.add(source);
      if (byUser.failures >= c.userRefuseAfterFailures && sources.size >= c.userRefuseAfterSources) byUser.refusedUntilMs = nowMs + c.userRefuseMs;
    }
    const over = bySource.failures - c.slowAfterFailures;
    if (over <= 0) return { delayMs: 0 };
    this.counters.delayed++;
    return { delayMs: Math.min(c.delayMsMax, c.delayMsBase * 2 ** Math.min(over - 1, 30)) };
  }

  /** A successful sign-in: the user's failures are forgotten and the source becomes known for it. The source's are not (an attacker with an account of its own could otherwise reset them). */
  succeeded(source: string, user: string, nowMs: number): void {
    this.users.delete(user);
    let sources = this.known.get(user);
    if (sources === undefined) {
      if (this.known.size >= limits.authLimiterEntriesMax) this.known.delete(this.known.keys().next().value as string);
      sources = new Map();
    } else {
      this.known.delete(user);
    }
    this.known.set(user, sources);
    sources.delete(source);
    sources.set(source, nowMs);
    while (sources.size > limits.authKnownSourcesPerUserMax) sources.delete(sources.keys().next().value as string);
  }

  isKnownSource(user: string, source: string, nowMs: number): boolean {
    const at = this.known.get(user)?.get(source);
    return at !== undefined && nowMs - at <= this.config.knownSourceMs;
  }

  /** The counter of a key, or undefined once forgotten (no failure for forgetAfterMs and no refusal running). */
  private current(map: Map<string, Counter>, key: string, nowMs: number): Counter | undefined {
    const counter = map.get(key);
    if (counter === undefined) return undefined;
    if (nowMs - counter.lastFailureMs > this.config.forgetAfterMs && counter.refusedUntilMs <= nowMs) {
      map.delete(key);
      return undefined;
    }
    return counter;
  }

  private bump(map: Map<string, Counter>, key: string, nowMs: number, isUser: boolean): Counter {
    let counter = this.current(map, key, nowMs);
    if (counter === undefined) {
      // Bounded memory: the least recently failing key is forgotten first.
      if (map.size >= limits.authLimiterEntriesMax) map.delete(map.keys().next().value as string);
      counter = { failures: 0, lastFailureMs: nowMs, refusedUntilMs: 0, sources: isUser ? new Set() : undefined };
    } else {
      map.delete(key);
    }
    map.set(key, counter);
    counter.failures++;
    counter.lastFailureMs = nowMs;
    return counter;
  }

  /** Sources and users tracked now (for metrics and the memory bound test). */
  get tracked(): { sources: number; users: number } {
    return { sources: this.sources.size, users: this.users.size };
  }
}
