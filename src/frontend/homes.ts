// Where a user lives (DESIGN §7): its home pool — the store's explicit assignment (the user
// directory, `dnslb user move`), then the topology's home rules, then the default pool
// (topology/home-pool.ts) — and its registrar sequence over that pool's servers.
import { defaultHomePool, homePoolOf, type HomePoolFound, type NoHomePool } from '../topology/home-pool.ts';
import type { Topology } from '../topology/schema.ts';
import { UserTable } from '../auth/user-table.ts';
import { sequencerOf } from '../pool/routing.ts';
import type { PoolView } from './pool-view.ts';

export interface UserHome extends HomePoolFound {
  /** The home pool is this server's pool. */
  local: boolean;
  /** The user's registrar sequence over the home pool's servers (logical: nobody left out). */
  sequence: readonly string[];
}

/** Users' homes: the user directory's explicit assignments (kept current by the store follower) over the topology's rules. */
export class UserHomes {
  constructor(private readonly directory: Pick<UserTable, 'homePoolOf' | 'userOfNumber' | 'assigned' | 'numbered'> = new UserTable()) {}

  /** The user whose number this is (E.164 normal form), if any: where a call from a PSTN gateway goes. */
  userOfNumber(number: string): string | undefined {
    return this.directory.userOfNumber(number);
  }

  assignmentOf(user: string): string | undefined {
    return this.directory.homePoolOf(user);
  }

  /** How many users have a number. */
  get numbered(): number {
    return this.directory.numbered;
  }

  get assigned(): number {
    return this.directory.assigned;
  }

  /** The home pool of a canonical user URI by `view`'s topology (no sequence: the cheap question for users of this pool), or why it has none. */
  homePoolOf(view: PoolView, user: string): HomePoolFound | NoHomePool {
    const assigned = this.directory.homePoolOf(user);
    if (assigned === undefined) {
      // Every REGISTER and call asks: a topology without home rules gives every unassigned user its
      // default pool, worked out once per published topology (the caller has checked the SIP domain).
      const fallback = this.fallbackOf(view.topology);
      if (fallback !== null) return fallback;
    }
    return homePoolOf(user, view.topology, assigned);
  }

  private readonly fallbacks = new WeakMap<Topology, HomePoolFound | null>();

  private fallbackOf(topology: Topology): HomePoolFound | null {
    let fallback = this.fallbacks.get(topology);
    if (fallback === undefined) {
      const pool = (topology.homePools?.rules.length ?? 0) === 0 ? defaultHomePool(topology) : null;
      fallback = pool === null ? null : { pool, source: 'default' };
      this.fallbacks.set(topology, fallback);
    }
    return fallback;
  }

  /** The home of a canonical user URI by `view`'s topology, with its sequence there, or why it has none. */
  homeOf(view: PoolView, user: string): UserHome | NoHomePool {
    const found = this.homePoolOf(view, user);
    if ('none' in found) return found;
    const local = found.pool === view.pool.fqdn;
    if (local) return { ...found, local, sequence: view.sequencer.sequenceOfCanonical(user) };
    const pool = view.topology.pools.find((candidate) => candidate.fqdn === found.pool);
    if (!pool) return { none: true, reason: `home pool ${found.pool} is not a pool of the published topology` };
    return { ...found, local, sequence: sequencerOf(pool).sequenceOfCanonical(user) };
  }
}
