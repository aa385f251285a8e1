// What a Front End server shows of itself (`GET /status`, the metrics, `GET /users`): the types,
// documented in src/frontend/README.md, and the pure pieces that build them.
import type { AuthCounters } from '../auth/authenticate.ts';
import type { LimiterCounters } from '../auth/limiter.ts';
import type { BindingView, LocationCounts, LocationService } from '../registrar/location.ts';
import { canonicalUser, homeInSequence, type RegistrarMode } from '../registrar/sequence.ts';
import type { MemberHealth, MemberState, ReportedState } from '../pool/member-state.ts';
import type { AdminState } from '../store/store.ts';
import type { TransportStats } from '../sip/transport.ts';
import { limits } from '../shared/limits.ts';
import type { DrainProgress } from './drain.ts';
import type { HandoverStatus } from './handover.ts';
import type { PoolView } from './pool-view.ts';
import type { ProxyCounters } from './proxy.ts';
import type { RegistrarCounters } from './registrar-service.ts';
import type { StatusClass } from './register-answers.ts';

export type { StatusClass } from './register-answers.ts';
export { STATUS_CLASSES } from './register-answers.ts';

/** What a server says of itself in its OPTIONS answers (DESIGN §3 "Heartbeat"). */
export type OwnState = ReportedState;

export interface PeerStatus {
  state: MemberState;
  reportedState: ReportedState | null;
  topologyVersion: number | null;
  lastAnswerAtMs: number | null;
  misses: number;
  lastReason: string | null;
}

/** The JSON of `GET /status` (documented in src/frontend/README.md). */
export interface FrontEndStatus {
  server: string;
  pool: string;
  state: OwnState;
  topologyVersion: number;
  pid: number;
  startedAtMs: number;
  listening: { tcp: string | null; tls: string | null };
  bindings: LocationCounts;
  dialogs: { active: number; startedTotal: number; endedTotal: number };
  transactions: { pending: number };
  heartbeat: { intervalMs: number; peers: Record<string, PeerStatus> };
  /** The physical registrar sequence: the pool's servers that may take users now (self included). */
  available: string[];
  registrar: RegistrarCounters;
  /** Every REGISTER this server answered, by status class (draining's 302/503 and Require's 420 included). */
  registerAnswersByClass: Record<StatusClass, number>;
  proxy: ProxyCounters;
  links: { open: string[]; connectFailures: number };
  /** Pools in their roles (DESIGN §7): the role's path, home-pool redirects, requests from servers of other pools. */
  roles: RolesStatus;
  transport: TransportStats;
  memory: { rssBytes: number; heapUsedBytes: number };
  resilience: ResilienceStatus;
  /** Client authentication (src/auth/README.md "Metrics"); null when the server has no user directory. */
  auth: AuthStatus | null;
  /** An edge server's own part (src/edge/README.md "Status"); null for the other roles. */
  edge: Record<string, unknown> | null;
}

export interface AuthStatus {
  /** settings.auth.enabled: clients are challenged now. */
  enabled: boolean;
  /** Flows carrying a proven identity (RFC 5626). */
  boundFlows: number;
  /** Users in the directory this server holds in memory (src/auth/user-table.ts). */
  users: number;
  counters: AuthCounters;
  limiter: LimiterCounters;
}

export interface RolesStatus {
  /** The request path this server runs (request-path.ts). */
  role: string;
  /** Users with an explicit home pool in the store's user directory, as this server last read it. */
  assignments: number;
  /** Users with a telephone number in the user directory (calls from a PSTN gateway reach them), as this server last read it. */
  numbers: number;
  /** The redirect-home step: 301s to a home pool, 404s for users with no home, 503s for a home pool with no server up. */
  redirectHome: { redirected: number; noHome: number; homeUnavailable: number };
  /** Requests received from servers of other pools (a Director, an Edge, another pool's Front End). */
  fromOtherPools: number;
  /** The SIP servers of other pools this server sends nothing to now (down, drained or blocked by the store: pool/membership.ts isRoutable). */
  notRoutable: string[];
}

/** Drain, hand-over and store-driven state (src/frontend/README.md "Resilience"). */
export interface ResilienceStatus {
  /** This server's admin state as the store says (`active` without a store). */
  adminState: AdminState;
  /** Servers an operator took out of the pool (blocked anywhere, draining peers): no home for anyone. */
  adminUnavailable: string[];
  /** The published topology no longer lists this server: it drains and keeps its last pool view. */
  removedFromTopology: boolean;
  /** Peers added by a published version and not heard from yet (no home, no move target). */
  commissioning: string[];
  acceptingConnections: boolean;
  /** The current (or last) drain; null when this server never drained. */
  drain: DrainProgress | null;
  /** Out-of-dialog requests answered 302 while draining. */
  drainRedirects: number;
  handover: HandoverStatus;
  liveness: LivenessStats;
}

export interface LivenessStats {
  reportsWritten: number;
  failures: number;
  lastReportAtMs: number | null;
  lastError: string | null;
}

export interface UserEntry {
  user: string;
  mode: RegistrarMode;
  bindings: number;
  /** The user's home by this server's current view. */
  home: string | null;
}

/** The heartbeat's view as `status().heartbeat.peers`. */
export function peerStatuses(view: ReadonlyMap<string, MemberHealth>): Record<string, PeerStatus> {
  const peers: Record<string, PeerStatus> = {};
  for (const [peer, health] of view) {
    peers[peer] = {
      state: health.state,
      reportedState: health.reportedState ?? null,
      topologyVersion: health.topologyVersion ?? null,
      lastAnswerAtMs: health.lastAnswerAtMs ?? null,
      misses: health.misses,
      lastReason: health.lastReason ?? null,
    };
  }
  return peers;
}

/** The users registered here, with their mode and home by this server's view (`GET /users`). */
export function userPage(location: LocationService, view: PoolView, available: (fqdn: string) => boolean, offset: number, limit: number): { total: number; users: UserEntry[] } {
  const all = [...location.users()];
  const page = all.slice(offset, offset + Math.min(limit, limits.frontendUsersPageMax));
  const users: UserEntry[] = [];
  for (const user of page) {
    const bindings = location.bindingsOf(user);
    if (bindings.length === 0) continue;
    const home = homeInSequence(view.sequencer.sequenceOfCanonical(user), available);
    users.push({ user, mode: bindings[0]!.mode, bindings: bindings.length, home: home?.server ?? null });
  }
  return { total: all.length, users };
}

/** One user as `GET /users/:uri` shows it. */
export interface UserDetail {
  user: string;
  sequence: string[];
  home: string | null;
  mode: RegistrarMode | null;
  bindings: BindingView[];
}

/** One user: its sequence, its home by this server's view, its bindings here (`GET /users/:uri`). */
export function userDetail(uri: string, location: LocationService, view: PoolView, available: (fqdn: string) => boolean): UserDetail {
  const user = canonicalUser(uri);
  const sequence = view.sequencer.sequenceOfCanonical(user);
  const home = homeInSequence(sequence, available);
  return { user, sequence, home: home?.server ?? null, mode: home?.mode ?? null, bindings: location.bindingsOf(user) };
}
