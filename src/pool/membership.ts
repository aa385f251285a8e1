// The pool membership table: everything one server knows of its pool's members — the topology's
// member list, its own state, the operator's admin states, the peers being commissioned, the
// heartbeat's view — as one immutable value, and the pure functions that say who is available
// (a home for users), reachable (takes calls, may hold bindings) and movable (a hand-over target).
import type { AdminState, LivenessRecord } from '../store/store.ts';
import { takesNewWork, type ServerHealth } from './health.ts';
import { isAvailable as isAvailableState, type MemberHealth, type ReportedState } from './member-state.ts';

/**
 * The inputs, each explicit, so that a new one (a consensus view of liveness, say) is one more field
 * and one more clause in the functions below. Build it with `createMembership`, change it with the
 * `with…` functions; never mutate it.
 */
export interface Membership {
  /** This server's FQDN (canonical: lower case, no trailing dot). */
  readonly self: string;
  /** The pool's members by the topology this server runs, self included, in topology order. */
  readonly members: readonly string[];
  readonly memberSet: ReadonlySet<string>;
  /** What this server says of itself (OPTIONS answers, liveness). */
  readonly ownState: ReportedState;
  /** This server's admin state as the store says (`active` without a store). */
  readonly adminState: AdminState;
  /** Servers an operator took out (blocked anywhere, draining peers): nobody's home. Never the same as unhealthy. */
  readonly adminUnavailable: ReadonlySet<string>;
  /** Peers added by a published version and not heard from yet: no home, no move target. */
  readonly commissioning: ReadonlySet<string>;
  /** The published topology no longer lists this server: it keeps its last pool view and drains. */
  readonly removedFromTopology: boolean;
  /**
   * The heartbeat's view of each peer (Heartbeat.view(): the scheduler replaces an entry on every
   * probe result, so the table reads the latest without being rebuilt per probe).
   */
  readonly heartbeat: ReadonlyMap<string, MemberHealth>;
  /**
   * The pool's consensus from the store's liveness reports (health.ts), empty until the store has
   * any: what the other members see. Used for one question: a peer this server's own heartbeat
   * holds down stays a home for users while the others see it up (a partition between the two of
   * them only: the clients still reach it, and every server then names the same home).
   */
  readonly consensus: ReadonlyMap<string, ServerHealth>;
}

const EMPTY: ReadonlySet<string> = new Set();

export function createMembership(input: { self: string; members: readonly string[]; heartbeat: ReadonlyMap<string, MemberHealth> }): Membership {
  return {
    self: canonical(input.self),
    members: input.members.map(canonical),
    memberSet: new Set(input.members.map(canonical)),
    ownState: 'active',
    adminState: 'active',
    adminUnavailable: EMPTY,
    commissioning: EMPTY,
    removedFromTopology: false,
    heartbeat: input.heartbeat,
    consensus: new Map(),
  };
}

function canonical(fqdn: string): string {
  return fqdn.toLowerCase().replace(/\.$/, '');
}

function isMember(table: Membership, fqdn: string): boolean {
  return table.memberSet.has(fqdn) || table.memberSet.has(canonical(fqdn));
}

/** Does this server take users now (its own state active, still in the topology)? */
function selfTakesUsers(table: Membership): boolean {
  return table.ownState === 'active' && !table.removedFromTopology;
}

/**
 * The physical registrar sequence: may `fqdn` take users now? Not when an operator took it out; this
 * server while it is active and in the topology; a peer the heartbeat holds active or suspect (a peer
 * never heard from is suspect, so at start every peer counts) — but a commissioned peer only after
 * its first answer (it may not run yet).
 */
export function isAvailable(table: Membership, fqdn: string): boolean {
  if (table.adminUnavailable.has(fqdn)) return false;
  if (fqdn === table.self) return selfTakesUsers(table);
  if (!isMember(table, fqdn)) return false;
  const health = table.heartbeat.get(fqdn);
  if (health?.unknown && table.commissioning.has(fqdn)) return false;
  return isAvailableState(health?.state ?? 'suspect') || seenUpByOthers(table, fqdn);
}

/**
 * This server's heartbeat holds `fqdn` down, but the consensus says up on the word of at least one
 * other member (not `fqdn` itself, not this server): this server is cut off from it, the pool is
 * not. A peer that has never answered here (it may not run) gets no such benefit of the doubt.
 */
function seenUpByOthers(table: Membership, fqdn: string): boolean {
  const verdict = table.consensus.get(fqdn);
  const health = table.heartbeat.get(fqdn);
  if (health?.state !== 'down' || health.lastAnswerAtMs === undefined) return false;
  if (verdict?.alive !== 'up' || !takesNewWork(verdict)) return false;
  // Its own fresh report is one of the up votes; at least one more must come from another member.
  return verdict.up - (verdict.own !== undefined ? 1 : 0) > 0;
}

/**
 * Does this server itself doubt that peer `fqdn` answers now? True unless its heartbeat's latest probe
 * of it was answered (`active`): a missed probe (`suspect`), `down`, never heard from, or not a member.
 * A client that could not reach `fqdn` either (UNANSWERED_HEADER) is then taken in backup mode rather
 * than sent back there (frontend/registrar-service.ts) — the client's word alone moves nobody, and
 * neither counts in the consensus (health.ts): it decides one REGISTER, never a server's liveness.
 */
export function isDoubted(table: Membership, fqdn: string): boolean {
  if (fqdn === table.self) return false;
  if (!isMember(table, fqdn)) return true;
  const health = table.heartbeat.get(fqdn);
  return health === undefined || health.unknown || health.state !== 'active';
}

/**
 * A peer that is up and may hold bindings a request can reach, whatever the admin state says (a
 * blocked server keeps its users until they leave): it has answered and says it is active or
 * draining (or missed fewer than failAfter probes). A draining server — by its heartbeat or by the
 * store — still counts: it accepts no new connections and starts no calls of its own users, but its
 * users wait there for their hand-over batch, and a new call to one of them is delivered through the
 * flow it still holds (DESIGN §1: taking a server offline without any loss of service). A drained
 * one holds nobody. Never this server.
 */
export function isReachable(table: Membership, fqdn: string): boolean {
  if (fqdn === table.self || !isMember(table, fqdn)) return false;
  const health = table.heartbeat.get(fqdn);
  return health !== undefined && !health.unknown && (health.state === 'active' || health.state === 'suspect' || health.state === 'draining');
}

/**
 * Where users may be moved to: as isAvailable, but a peer must have answered (a server that just
 * started knows nothing of its peers yet), and this server counts while it keeps its users —
 * blocked included (blocking redirects new registrations; it does not move anyone).
 */
export function isMovable(table: Membership, fqdn: string): boolean {
  if (fqdn === table.self) return selfTakesUsers(table);
  if (table.adminUnavailable.has(fqdn) || !isMember(table, fqdn)) return false;
  const health = table.heartbeat.get(fqdn);
  if (!health || health.unknown) return false;
  // A server that left the topology is no longer a server to its former peers (mutual TLS recognises
  // only servers of the published topology): they answer its probes as a client's, without their state,
  // and its heartbeat soon holds them down. Where its users may go is then the pool's word, the consensus.
  return isAvailableState(health.state) || (table.removedFromTopology && seenUpByOthers(table, fqdn));
}

/**
 * May `fqdn` be sent new server-to-server traffic now (pool/routing.ts `Routable`: a Director's 301
 * Contacts, a call to a user homed on another pool)? Never this server, nor a server an operator
 * took out (blocked anywhere, draining). A member of this pool: `isReachable` (the heartbeat). A
 * server of another pool: by the consensus of its own pool's reports (health.ts `takesNewWork`:
 * not down by a majority of its pool, not draining or drained by its own word); unknown (no store,
 * nothing reported yet) is not down. A server wrongly believed alive costs one failed try: the
 * caller moves on to the next server.
 */
export function isRoutable(table: Membership, fqdn: string): boolean {
  const server = canonical(fqdn);
  if (server === table.self || table.adminUnavailable.has(server)) return false;
  if (isMember(table, server)) return isReachable(table, server);
  return takesNewWork(table.consensus.get(server));
}

/** The members that may take users now, in topology order (`status().available`). */
export function availableMembers(table: Membership): string[] {
  return table.members.filter((fqdn) => isAvailable(table, fqdn));
}

/**
 * The store's admin states, read for this server (src/frontend/README.md "Resilience"): its own
 * state; `blocked` (any server) and `draining` (a peer) take a server out of the physical sequence.
 * A draining peer still holds its users' bindings until their hand-over (isReachable). Servers not
 * named are active.
 */
export function adminViewOf(self: string, states: ReadonlyMap<string, AdminState>): { own: AdminState; unavailable: string[] } {
  let own: AdminState = 'active';
  const unavailable: string[] = [];
  for (const [server, state] of states) {
    const fqdn = server.toLowerCase();
    if (fqdn === self) own = state;
    if (state === 'blocked' || (state === 'draining' && fqdn !== self)) unavailable.push(fqdn);
  }
  return { own, unavailable };
}

/** A new set of servers taken out by an operator; `returned` says one came back (it may be some users' home again). */
export function withAdminUnavailable(table: Membership, servers: Iterable<string>): { table: Membership; returned: boolean } {
  const next = new Set<string>();
  for (const server of servers) next.add(server.toLowerCase());
  let returned = false;
  for (const server of table.adminUnavailable) if (!next.has(server)) returned = true;
  return { table: { ...table, adminUnavailable: next }, returned };
}

export function withAdminState(table: Membership, own: AdminState): Membership {
  return { ...table, adminState: own };
}

export function withOwnState(table: Membership, ownState: ReportedState): Membership {
  return ownState === table.ownState ? table : { ...table, ownState };
}

/** The published topology left this server out: it keeps its last members and drains. */
export function withRemovedFromTopology(table: Membership): Membership {
  return table.removedFromTopology ? table : { ...table, removedFromTopology: true };
}

/**
 * A newly published member list that includes this server: peers it adds are commissioning until
 * they answer; peers it drops leave every set that is about members. `wasRemoved`: this server had
 * been left out by an earlier version and is listed again.
 */
export function withMembers(table: Membership, members: readonly string[]): { table: Membership; added: string[]; removed: string[]; wasRemoved: boolean } {
  const list = members.map(canonical);
  const memberSet = new Set(list);
  const added = list.filter((fqdn) => fqdn !== table.self && !table.memberSet.has(fqdn));
  const removed = table.members.filter((fqdn) => !memberSet.has(fqdn));
  const commissioning = new Set<string>();
  for (const fqdn of table.commissioning) if (memberSet.has(fqdn)) commissioning.add(fqdn);
  for (const fqdn of added) commissioning.add(fqdn);
  return { table: { ...table, members: list, memberSet, commissioning, removedFromTopology: false }, added, removed, wasRemoved: table.removedFromTopology };
}

/** The pool's consensus from the store's liveness reports (health.ts `consensus`), replaced whole. */
export function withConsensus(table: Membership, consensus: ReadonlyMap<string, ServerHealth>): Membership {
  return { ...table, consensus };
}

/** The heartbeat found `peer` available: a commissioned peer's first answer ends its commissioning. */
export function withPeerAvailable(table: Membership, peer: string): { table: Membership; commissioned: boolean } {
  if (!table.commissioning.has(peer)) return { table, commissioned: false };
  const commissioning = new Set(table.commissioning);
  commissioning.delete(peer);
  return { table: { ...table, commissioning }, commissioned: true };
}

/**
 * What this server reports to the store (DNS and `pool status` read them through the consensus,
 * health.ts): its own state (`blocked` when an operator blocked it and it is otherwise active), and
 * its heartbeat view of each peer it has heard from at least once. A peer that has never answered this
 * server is not reported, not even after `failAfter` misses: at start-up the servers come up one after
 * another, and a peer probed before it was running is not evidence of anything ("a server does not
 * report a peer down before it has probed it failAfter times after both were running"). Its misses
 * still count locally (isAvailable). A server left out of the topology reports only itself.
 */
export function livenessRecords(table: Membership, at: { atMs: number; ttlMs: number; topologyVersion: number }): LivenessRecord[] {
  const { atMs, ttlMs, topologyVersion } = at;
  const self = table.self;
  const ownState = table.ownState === 'active' ? (table.adminState === 'blocked' ? 'blocked' : 'active') : table.ownState;
  const records: LivenessRecord[] = [{ server: self, reporter: self, state: ownState, atMs, ttlMs, topologyVersion }];
  if (table.removedFromTopology) return records;
  for (const [peer, health] of table.heartbeat) {
    if (health.unknown || health.lastAnswerAtMs === undefined) continue;
    records.push({ server: peer, reporter: self, state: health.state, atMs, ttlMs, topologyVersion });
  }
  return records;
}
