// Health by consensus (DESIGN §7): one pure function decides "is server S alive" from the pool
// members' liveness reports, for DNS answers (src/dns/zone.ts), `pool status` and the dashboard
// (src/admin/pool-api.ts) and the membership table (membership.ts). "The newest report wins" is not
// a health rule: a partitioned pair would take turns removing each other, a restarted server would
// be kept out by its peers' old reports, and a server nobody has reported yet would count as dead.
import type { LivenessRecord, MemberState } from '../store/store.ts';

/** `unknown`: nobody whose word counts has said anything about it. Never the same as `down`. */
export type Alive = 'up' | 'down' | 'unknown';

export interface ServerHealth {
  server: string;
  alive: Alive;
  /** What the server says of itself in a fresh report (`active`, `draining`, `drained`, `blocked`, …), if it has one. */
  own: MemberState | undefined;
  /** Counted votes: reporters (the server itself included while its report is fresh) that see it up, and that see it down. */
  up: number;
  down: number;
  /** Why, in words (pool status, logs). */
  reason: string;
}

/**
 * Is a report believed at `nowMs`? Until `atMs + ttlMs` (by the reader's clock: a reporter whose clock
 * runs behind by more than the TTL is simply not heard, which makes its word count for nothing — never
 * a removal); a report dated more than its TTL in the future comes from a clock that is off, and is
 * not believed either (it would otherwise outlive the reporter by the skew).
 */
export function isFresh(record: Pick<LivenessRecord, 'atMs' | 'ttlMs'>, nowMs: number): boolean {
  return nowMs < record.atMs + record.ttlMs && record.atMs - nowMs <= record.ttlMs;
}

function canonical(fqdn: string): string {
  return fqdn.toLowerCase().replace(/\.$/, '');
}

/** The states a reporter may hold a peer in that mean "it answers" (suspect: a miss or two, not down yet). */
const SEEN_UP: ReadonlySet<MemberState> = new Set(['active', 'suspect', 'draining', 'drained', 'blocked']);

/**
 * The consensus about every member of one pool, from every report at hand (any pool's; only the
 * members' count). The rule:
 * 1. Only fresh reports count (isFresh), the newest per (reporter, server).
 * 2. A reporter's word counts while it is itself alive: its fresh report about itself is not `down`.
 *    A stopped reporter (its last report says down) or a vanished one (its reports expired) has no say.
 * 3. About S: each counted reporter's view of S is a vote, up (active, suspect, draining, drained,
 *    blocked) or down; S's own fresh report is one vote for up. A reporter with nothing to say about S
 *    (it has not given up on S, nor heard from it) does not vote.
 * 4. S is `down` when its own fresh report says so (a clean stop), or when the down votes are a strict
 *    majority of the votes; `unknown` when there are no votes; otherwise `up`. A tie is `up`: two
 *    servers that cannot see each other cannot tell which one is cut off, and neither is removed.
 * Hence a minority can never remove a server the majority sees up, whatever it reports and however
 * often (a pair partition in a pool of three: each of the pair has one vote down, two up), and a
 * server cut off from all is down (every peer votes down; its own vote is one).
 */
export function consensus(members: readonly string[], reports: readonly LivenessRecord[], nowMs: number): Map<string, ServerHealth> {
  const memberSet = new Set(members.map(canonical));
  // The newest fresh report per (reporter, server), members only.
  const views = new Map<string, Map<string, LivenessRecord>>();
  for (const record of reports) {
    if (!isFresh(record, nowMs)) continue;
    const reporter = canonical(record.reporter);
    const server = canonical(record.server);
    if (!memberSet.has(reporter) || !memberSet.has(server)) continue;
    let view = views.get(reporter);
    if (!view) views.set(reporter, (view = new Map()));
    const seen = view.get(server);
    if (!seen || record.atMs > seen.atMs) view.set(server, record);
  }
  const counted = [...views].filter(([reporter, view]) => {
    const own = view.get(reporter);
    return own !== undefined && own.state !== 'down';
  });
  const result = new Map<string, ServerHealth>();
  for (const server of memberSet) {
    const own = views.get(server)?.get(server)?.state;
    let up = 0;
    let down = 0;
    for (const [reporter, view] of counted) {
      const state = view.get(server)?.state;
      if (state === undefined) continue;
      if (reporter === server || SEEN_UP.has(state)) up++;
      else down++;
    }
    let alive: Alive;
    let reason: string;
    if (own === 'down') {
      alive = 'down';
      reason = 'it reported itself down (stopped)';
    } else if (up + down === 0) {
      alive = 'unknown';
      reason = 'no report from a member that is itself up';
    } else if (down * 2 > up + down) {
      alive = 'down';
      reason = `${down} of ${up + down} reporters see it down`;
    } else {
      alive = 'up';
      reason = `${up} of ${up + down} reporters see it up`;
    }
    result.set(server, { server, alive, own, up, down, reason });
  }
  return result;
}

/**
 * May S be given new users and new traffic, by health alone (admin states are the caller's)? Not when
 * the consensus says down, nor when S says itself it is draining or drained. Unknown is not down.
 */
export function takesNewWork(health: ServerHealth | undefined): boolean {
  if (!health) return true;
  return health.alive !== 'down' && health.own !== 'draining' && health.own !== 'drained';
}
