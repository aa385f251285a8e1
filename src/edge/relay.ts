// Where an Edge relays a remote user's requests (DESIGN §7 "Edge"): over its internal interface to the
// Director pool — the servers in the order of the user's rendezvous hash over that pool, so every
// request of one user reaches the same Director while it is up (it holds the user's authenticated flow)
// and users spread evenly — or, with no Director pool (or none of its servers routable), to the user's
// home pool in the user's registrar sequence there. By the published topology and live state, never
// DNS: pool/routing.ts serversToTry, the proxy trying the next server on connect failure, timeout or 503.
import { sequencerOf, serversToTry, type NoTargets, type Routable, type Targets } from '../pool/routing.ts';
import type { UserHomes } from '../frontend/homes.ts';
import type { PoolView } from '../frontend/pool-view.ts';

export function relayTargets(view: PoolView, homes: UserHomes, routable: Routable, user: string): Targets | NoTargets {
  const directors = view.topology.pools.filter((pool) => pool.kind === 'director');
  // A Director pool of the Edge's own site first (Lync pairs an Edge pool with a next hop in its site).
  directors.sort((a, b) => Number(b.site === view.pool.site) - Number(a.site === view.pool.site));
  const reasons: string[] = [];
  for (const pool of directors) {
    const route = serversToTry(view.topology, pool.fqdn, sequencerOf(pool).sequenceOfCanonical(user), routable);
    if (!('none' in route)) return route;
    reasons.push(route.reason);
  }
  const home = homes.homeOf(view, user);
  if ('none' in home) return { none: true, reason: `no home pool for ${user}: ${home.reason}` };
  const route = serversToTry(view.topology, home.pool, home.sequence, routable);
  if ('none' in route) return { none: true, reason: [...reasons, route.reason].join('; ') };
  return route;
}
