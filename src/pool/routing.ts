// Topology-aware routing between pools (DESIGN §7): which servers of another pool a server sends a
// request to, in which order — by the published topology and live membership, never by DNS.
// Pure: the membership table answers "is S routable", the registrar gives the callee's sequence.
import { Sequencer } from '../registrar/sequence.ts';
import { aPoolOf, type Pool, type Topology } from '../topology/schema.ts';

/**
 * The membership table's answer for one server: may it be sent new server-to-server traffic now?
 * Not down, not blocked, not drained (a draining server still reaches the callees bound to it:
 * whether it is routable for a given request is the caller's decision, encoded in this predicate).
 */
export type Routable = (serverFqdn: string) => boolean;

/** One server to try, with what the topology says about reaching it (no DNS lookup on this path). */
export interface RouteTarget {
  server: string;
  /** The server's IPv4 address, else its IPv6 address. */
  address: string;
  tcpPort: number;
  tlsPort: number;
}

export interface Targets {
  pool: string;
  /** Best first; try the next on connect failure, timeout or 503. Never longer than the pool. */
  targets: RouteTarget[];
}

export interface NoTargets {
  none: true;
  /** For the reason phrase of the 480/503 the caller gets, and for logs. */
  reason: string;
}

function targetOf(pool: Pool, server: string): RouteTarget | null {
  const entry = pool.servers.find((candidate) => candidate.fqdn === server);
  const address = entry?.ipv4 ?? entry?.ipv6;
  if (!entry || address === undefined) return null;
  return { server: entry.fqdn, address, tcpPort: pool.sip.tcpPort, tlsPort: pool.sip.tlsPort };
}

function poolOf(topology: Topology, fqdn: string): Pool | undefined {
  const name = fqdn.toLowerCase().replace(/\.$/, '');
  return topology.pools.find((pool) => pool.fqdn === name);
}

/**
 * Filters an order of servers down to the routable members of `pool`, at most one entry per server
 * and never more entries than the pool has servers (the bound on tries per request).
 */
function routableTargets(pool: Pool, order: readonly string[], routable: Routable): RouteTarget[] {
  const targets: RouteTarget[] = [];
  const seen = new Set<string>();
  for (const name of order) {
    if (targets.length >= pool.servers.length) break;
    const server = name.toLowerCase().replace(/\.$/, '');
    if (seen.has(server)) continue;
    seen.add(server);
    // Present in the published topology: a server removed from it gets no server-to-server traffic,
    // even from a sequence computed before the removal.
    const target = targetOf(pool, server);
    if (target && routable(server)) targets.push(target);
  }
  return targets;
}

/**
 * The servers of the callee's home pool to send a request to: the callee's registrar sequence in that
 * pool (registrar/sequence.ts, computed over that pool's servers), without the servers that are not
 * routable or not in the published pool. The first is the callee's home server; the others are where
 * its bindings go when the home fails (backup mode), so trying them in order reaches the callee.
 */
export function serversToTry(topology: Topology, homePool: string, calleeSequence: readonly string[], routable: Routable): Targets | NoTargets {
  const pool = poolOf(topology, homePool);
  if (!pool) return { none: true, reason: `home pool ${homePool} is not a pool of the published topology` };
  const targets = routableTargets(pool, calleeSequence, routable);
  if (targets.length > 0) return { pool: pool.fqdn, targets };
  return { none: true, reason: `no server of ${pool.fqdn} can be reached: all ${pool.servers.length} are down, blocked or out of the topology` };
}

// A published topology is frozen, so a pool object stands for one server list: one sequencer each.
const sequencers = new WeakMap<Pool, Sequencer>();

/** The registrar sequencer over a pool's servers (one per published pool object). */
export function sequencerOf(pool: Pool): Sequencer {
  let sequencer = sequencers.get(pool);
  if (!sequencer) {
    sequencer = new Sequencer(pool.servers.map((server) => server.fqdn));
    sequencers.set(pool, sequencer);
  }
  return sequencer;
}

/**
 * The Mediation servers for a call, best first: the pool's servers ordered by rendezvous hashing of
 * the Call-ID (the registrar's hash, with the Call-ID in place of the user), without the ones that are
 * not routable. The same Call-ID gets the same order, so retransmissions and the dialog's requests land
 * on one server; taking a server out moves only the calls that were on it (to their next server), and
 * the calls spread evenly over the servers. Call-IDs are compared byte for byte (RFC 3261 §20.8).
 */
export function mediationServersFor(callId: string, topology: Topology, mediationPool: string, routable: Routable): Targets | NoTargets {
  const pool = poolOf(topology, mediationPool);
  if (!pool) return { none: true, reason: `mediation pool ${mediationPool} is not a pool of the published topology` };
  if (pool.kind !== 'mediation') return { none: true, reason: `${pool.fqdn} is ${aPoolOf(pool.kind)}, not a mediation pool` };
  if (callId === '') return { none: true, reason: 'a call without a Call-ID cannot be placed on a mediation server' };
  const targets = routableTargets(pool, sequencerOf(pool).sequenceOfCanonical(callId), routable);
  if (targets.length > 0) return { pool: pool.fqdn, targets };
  return { none: true, reason: `no server of mediation pool ${pool.fqdn} can be reached: all ${pool.servers.length} are down, blocked or out of the topology` };
}
