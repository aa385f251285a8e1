// A pool member's state as one server sees it: the hysteresis of DESIGN §3 "Heartbeat" as a pure
// function from (what we knew, what the last probe said) to what we know now.
import type { MemberState } from '../store/store.ts';

export type { MemberState };

/** What a member says of itself in its OPTIONS answer. */
export type ReportedState = 'active' | 'draining' | 'drained';

export type ProbeResult =
  | { ok: true; reportedState: ReportedState; topologyVersion: number }
  /** `refused`: the peer's host answered that nothing listens (connection refused): evidence, not silence. */
  | { ok: false; reason: string; refused?: boolean };

export interface HysteresisSettings {
  /** Consecutive misses before a member is down. */
  failAfter: number;
  /** Consecutive answers before a down member is up again. */
  riseAfter: number;
}

export interface MemberHealth {
  state: MemberState;
  /** True until the first probe result: nothing is known yet. */
  unknown: boolean;
  misses: number;
  answers: number;
  reportedState: ReportedState | undefined;
  topologyVersion: number | undefined;
  lastAnswerAtMs: number | undefined;
  lastChangeAtMs: number;
  lastReason: string | undefined;
}

export function initialHealth(nowMs: number): MemberHealth {
  return {
    state: 'suspect',
    unknown: true,
    misses: 0,
    answers: 0,
    reportedState: undefined,
    topologyVersion: undefined,
    lastAnswerAtMs: undefined,
    lastChangeAtMs: nowMs,
    lastReason: undefined,
  };
}

function stateOfAnswer(reported: ReportedState): MemberState {
  return reported === 'active' ? 'active' : reported;
}

/**
 * The member's health after one probe. Going down takes `failAfter` misses in a row (one miss makes
 * an up member `suspect`, still available); coming back from down takes `riseAfter` answers in a row.
 * A member never seen before is up on its first answer and down after `failAfter` misses.
 */
export function nextHealth(health: MemberHealth, result: ProbeResult, settings: HysteresisSettings, nowMs: number): MemberHealth {
  let next: MemberHealth;
  if (result.ok) {
    const answers = health.answers + 1;
    const wasDown = health.state === 'down' && !health.unknown;
    const state = wasDown && answers < settings.riseAfter ? 'down' : stateOfAnswer(result.reportedState);
    next = { ...health, state, unknown: false, misses: 0, answers, reportedState: result.reportedState, topologyVersion: result.topologyVersion, lastAnswerAtMs: nowMs, lastReason: undefined };
  } else {
    const misses = health.misses + 1;
    const state = misses >= settings.failAfter ? 'down' : health.state === 'down' && !health.unknown ? 'down' : 'suspect';
    next = { ...health, state, unknown: misses >= settings.failAfter ? false : health.unknown, misses, answers: 0, lastReason: result.reason };
  }
  if (next.state !== health.state) next.lastChangeAtMs = nowMs;
  return next;
}

/**
 * May this member take new users? Suspect members still count (one lost probe must not move users);
 * down, draining, drained and blocked members do not.
 */
export function isAvailable(state: MemberState): boolean {
  return state === 'active' || state === 'suspect';
}
