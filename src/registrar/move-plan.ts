// Who moves where when users are moved between pools (`dnslb plan move`, the Move-CsUser of dnslb):
// each user's home server now (home pool → registrar sequence in it) and after the move. Pure.
import { homePoolOf } from '../topology/home-pool.ts';
import { aPoolOf, type Pool, type Topology } from '../topology/schema.ts';
import { DnslbError } from '../shared/errors.ts';
import { canonicalUser, homeInSequence, Sequencer, type Availability } from './sequence.ts';

/** One requested move: the user and its new pool; `null` drops the explicit assignment (back to the rules and the default). */
export interface MoveRequest {
  user: string;
  pool: string | null;
  /** Where the request was written (`moves.csv:7`), for messages. */
  source?: string;
}

/** A user's home: its pool and its home server there (null when no server of the pool is available). */
export interface HomePlace {
  pool: string;
  server: string | null;
}

export interface PlannedMove {
  user: string;
  /** Null when the user has no home now (the reason is in `fromReason`). */
  from: HomePlace | null;
  fromReason?: string;
  to: HomePlace;
}

export interface MoveFlow {
  fromPool: string | null;
  from: string | null;
  toPool: string;
  to: string | null;
  count: number;
}

export interface MovePlan {
  users: number;
  /** Users whose home server changes. */
  moved: number;
  /** Users already homed where they are asked to go (same pool and server). */
  unchanged: number;
  /** Moved users per (from → to), largest first. */
  flows: MoveFlow[];
  /** Each user, in input order. */
  moves: PlannedMove[];
}

export interface MovePlanOptions {
  /** The explicit assignment the store holds for a user now (user directory), if any. */
  assignmentOf?: (canonicalUser: string) => string | undefined;
  /** Which servers count as available (all when left out). */
  available?: Availability;
}

/**
 * Plans the moves: every request is checked first (a malformed URI, a user outside the SIP domains,
 * a pool that is not a frontend pool of the topology, the same user twice), and all problems are
 * thrown together as one `CLI_BAD_INPUT`, so that nothing half-checked is ever planned.
 */
export function planPoolMoves(topology: Topology, requests: readonly MoveRequest[], options: MovePlanOptions = {}): MovePlan {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  const checked: { user: string; pool: string | null }[] = [];
  for (const request of requests) {
    const where = request.source === undefined ? '' : `${request.source}: `;
    let user: string;
    try {
      user = canonicalUser(request.user);
    } catch (error) {
      problems.push(`${where}${(error as Error).message}`);
      continue;
    }
    const earlier = seen.get(user);
    if (earlier !== undefined) {
      problems.push(`${where}${user} is already moved${earlier === '' ? '' : ` at ${earlier}`}; one move per user`);
      continue;
    }
    seen.set(user, request.source ?? '');
    let pool: string | null = null;
    if (request.pool !== null) {
      pool = request.pool.toLowerCase().replace(/\.$/, '');
      const target = topology.pools.find((candidate) => candidate.fqdn === pool);
      if (!target || target.kind !== 'frontend') {
        const frontends = topology.pools.filter((candidate) => candidate.kind === 'frontend').map((candidate) => candidate.fqdn).join(', ');
        problems.push(`${where}${pool} is ${target ? aPoolOf(target.kind) : 'not a pool of the topology'}; users move to frontend pools (${frontends})`);
        continue;
      }
    }
    // The target must give a home: an unassigned user needs a rule or a default, any user a served domain.
    const after = homePoolOf(user, topology, pool ?? undefined);
    if ('none' in after) {
      problems.push(`${where}${after.reason}`);
      continue;
    }
    checked.push({ user, pool });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? `\n… and ${problems.length - shown.length} more` : '';
    throw new DnslbError('CLI_BAD_INPUT', `${problems.length} bad move${problems.length === 1 ? '' : 's'}; nothing was planned:\n${shown.join('\n')}${more}`);
  }

  const sequencers = new Map<string, Sequencer>();
  const available = options.available ?? (() => true);
  const homeServer = (pool: Pool, user: string): string | null => {
    let sequencer = sequencers.get(pool.fqdn);
    if (!sequencer) {
      sequencer = new Sequencer(pool.servers.map((server) => server.fqdn));
      sequencers.set(pool.fqdn, sequencer);
    }
    return homeInSequence(sequencer.sequenceOfCanonical(user), available)?.server ?? null;
  };
  const placeIn = (poolFqdn: string, user: string): HomePlace => {
    const pool = topology.pools.find((candidate) => candidate.fqdn === poolFqdn);
    return { pool: poolFqdn, server: pool ? homeServer(pool, user) : null };
  };

  const moves: PlannedMove[] = [];
  const counts = new Map<string, MoveFlow>();
  let unchanged = 0;
  for (const { user, pool } of checked) {
    const before = homePoolOf(user, topology, options.assignmentOf?.(user));
    const afterPool = homePoolOf(user, topology, pool ?? undefined);
    if ('none' in afterPool) continue; // checked above
    const to = placeIn(afterPool.pool, user);
    const from = 'none' in before ? null : placeIn(before.pool, user);
    moves.push('none' in before ? { user, from, fromReason: before.reason, to } : { user, from, to });
    if (from !== null && from.pool === to.pool && from.server === to.server) {
      unchanged++;
      continue;
    }
    const key = [from?.pool, from?.server, to.pool, to.server].join('\u0000');
    const flow = counts.get(key);
    if (flow) flow.count++;
    else counts.set(key, { fromPool: from?.pool ?? null, from: from?.server ?? null, toPool: to.pool, to: to.server, count: 1 });
  }
  const flows = [...counts.values()].sort((a, b) => b.count - a.count || String(a.from).localeCompare(String(b.from)) || String(a.to).localeCompare(String(b.to)));
  return { users: checked.length, moved: checked.length - unchanged, unchanged, flows, moves };
}

/**
 * Reads a move list: one `user,pool` a line (`sip:alice@contoso.com,pool02.contoso.com`); an empty
 * pool drops the user's explicit assignment; blank lines, `#` comments and a `user,pool` header are
 * skipped. Malformed lines are collected into one `CLI_BAD_INPUT` naming file:line.
 */
export function parseMoveList(text: string, file: string): MoveRequest[] {
  const requests: MoveRequest[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const source = `${file}:${index + 1}`;
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(',').map((field) => field.trim());
    if (index === 0 && fields[0]?.toLowerCase() === 'user') return;
    if (fields.length !== 2 || fields[0] === '') {
      problems.push(`${source}: expected "user,pool" (e.g. sip:alice@contoso.com,pool02.contoso.com), got ${JSON.stringify(line.slice(0, 120))}`);
      return;
    }
    requests.push({ user: fields[0] ?? '', pool: fields[1] === '' ? null : (fields[1] ?? null), source });
  });
  if (problems.length > 0) throw new DnslbError('CLI_BAD_INPUT', `${problems.length} malformed line${problems.length === 1 ? '' : 's'} in ${file}:\n${problems.slice(0, 20).join('\n')}`);
  return requests;
}
