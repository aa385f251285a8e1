// The pool membership table of a running server (src/pool/membership.ts) and what the server does when
// it changes: a peer coming back or answering for the first time, an operator's admin state, a new
// member list — each hands users over (recovery, commission, decommission), starts or resumes the
// drain, and tells the liveness reporter.
import type { Logger } from 'pino';
import type { RehomeReason } from '../registrar/rehome.ts';
import { consensus } from '../pool/health.ts';
import type { MemberChange } from '../pool/heartbeat.ts';
import { isAvailable as isAvailableState, type MemberHealth } from '../pool/member-state.ts';
import * as membership from '../pool/membership.ts';
import type { AdminState, LivenessRecord } from '../store/store.ts';
import type { DrainCause, DrainPhase } from './drain.ts';
import type { OwnState } from './status.ts';

export interface MembershipControlOptions {
  self: string;
  members: readonly string[];
  heartbeat: ReadonlyMap<string, MemberHealth>;
  logger: Logger;
  /** Queue the users held here whose home is now elsewhere (Handover.reconcile). */
  reconcile: (reason: RehomeReason) => void;
  /** The server's drain (drain-control.ts), built after this table. */
  drain: () => { start: (cause: DrainCause) => void; resume: () => void; readonly phase: DrainPhase | undefined; readonly cause: DrainCause | undefined };
  /** Something liveness reports carry changed. */
  changed: () => void;
}

export class MembershipControl {
  /** The current table; replaced on every change, never mutated. */
  table: membership.Membership;
  /** The membership questions as functions made once, for the registrar, the proxy, the steps and the hand-over. */
  readonly available = (fqdn: string): boolean => membership.isAvailable(this.table, fqdn);
  readonly reachable = (fqdn: string): boolean => membership.isReachable(this.table, fqdn);
  readonly movable = (fqdn: string): boolean => membership.isMovable(this.table, fqdn);
  readonly doubted = (fqdn: string): boolean => membership.isDoubted(this.table, fqdn);
  readonly ownState = (): OwnState => this.table.ownState;
  /** May a server (of any pool) get new server-to-server traffic now (pool/routing.ts `Routable`)? */
  readonly routable = (fqdn: string): boolean => membership.isRoutable(this.table, fqdn);

  constructor(private readonly options: MembershipControlOptions) {
    this.table = membership.createMembership({ self: options.self, members: options.members, heartbeat: options.heartbeat });
  }

  /** The heartbeat changed a peer's state. */
  peerChanged(change: MemberChange): void {
    this.options.logger.info({ peer: change.peer, from: change.from, to: change.to, reason: change.health.lastReason }, 'heartbeat: peer changed state');
    if (isAvailableState(change.to)) {
      // A peer came back (recovery), answered for the first time after a commission, or resumed
      // from a drain: the users held here whose home it is go back in batches.
      const next = membership.withPeerAvailable(this.table, change.peer);
      this.table = next.table;
      this.options.reconcile(next.commissioned ? 'commission' : 'recovery');
    }
    this.options.changed();
  }

  /** This server's own state (the drain sets it; no liveness report of its own: the drain reports). */
  setOwnState(state: OwnState): void {
    this.table = membership.withOwnState(this.table, state);
  }

  /** Servers taken out by an operator, as one set (the store's admin states come through applyAdminStates). */
  setAdminUnavailable(servers: Iterable<string>): void {
    const next = membership.withAdminUnavailable(this.table, servers);
    this.table = next.table;
    // A server back from blocked (or from a drain) may be some users' home again.
    if (next.returned) this.options.reconcile('recovery');
    this.options.changed();
  }

  /**
   * The admin state of every server as the store says (src/frontend/README.md "Resilience"):
   * `blocked` (any server) and `draining` (a peer) take a server out of the physical sequence;
   * this server's own `draining` starts its drain and `active` resumes it. Blocking moves nobody.
   */
  applyAdminStates(states: ReadonlyMap<string, AdminState>): void {
    const admin = membership.adminViewOf(this.table.self, states);
    const ownBefore = this.table.adminState;
    this.table = membership.withAdminState(this.table, admin.own);
    if (admin.own !== ownBefore) this.options.logger.info({ from: ownBefore, to: admin.own }, 'frontend: admin state changed in the store');
    const drain = this.options.drain();
    if (admin.own === 'draining') drain.start('admin');
    else if (drain.phase !== 'resumed' && drain.cause === 'admin') drain.resume();
    this.setAdminUnavailable(admin.unavailable);
  }

  /** A published version lists this server with `members`: commissioned peers wait for their first answer, users whose home changed move. */
  setMembers(members: readonly string[], version: number): void {
    const next = membership.withMembers(this.table, members);
    this.table = next.table;
    this.options.logger.info({ version, added: next.added, removed: next.removed }, 'frontend: following a newly published topology');
    // Listed again: back to work unless an operator wants it drained.
    if (next.wasRemoved && this.options.drain().cause === 'decommission' && this.table.adminState !== 'draining') this.options.drain().resume();
    this.options.reconcile(next.removed.length > 0 && next.added.length === 0 ? 'decommission' : 'commission');
    this.options.changed();
  }

  /** A published version left this server out: it keeps its last members, hands every user over and drains. */
  removedFromTopology(version: number): void {
    if (!this.table.removedFromTopology) this.options.logger.warn({ version }, 'frontend: this server is no longer in the published topology; draining');
    this.table = membership.withRemovedFromTopology(this.table);
    this.options.drain().start('decommission');
    this.options.changed();
  }

  /**
   * The consensus from the store's liveness reports (pool/health.ts), each report judged current
   * (the store's watch removes the expired ones). A peer this server lost but the others see up stays
   * a home (membership.ts isAvailable); hand-overs still go only to peers it reaches. Servers of other
   * pools are judged by the same rule (isRoutable): every reporter reports on its own pool only, so
   * the votes about a server are its own pool's, and one consensus over every server named serves all.
   */
  applyLiveness(records: readonly LivenessRecord[], nowMs: number): void {
    const servers = new Set(this.table.members);
    for (const record of records) {
      servers.add(record.server.toLowerCase());
      servers.add(record.reporter.toLowerCase());
    }
    this.table = membership.withConsensus(this.table, consensus([...servers], records.map((record) => ({ ...record, atMs: nowMs })), nowMs));
  }

  livenessRecords(at: { atMs: number; ttlMs: number; topologyVersion: number }): LivenessRecord[] {
    return membership.livenessRecords(this.table, at);
  }
}
