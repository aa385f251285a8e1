// The store (Lync's Central Management Store): published topology versions, per-server admin state,
// liveness, and a watchable stream of changes. One interface; the file backend (embedded default)
// and the etcd backend implement it, so callers never know which one they hold.
import type { TopologyDiff } from '../topology/diff.ts';
import type { Topology } from '../topology/schema.ts';
import type { UserDirectory, UserRecord } from './users.ts';

/** What an operator set: "disabled by an operator" is never the same as "unhealthy" (STYLE). */
export type AdminState = 'active' | 'draining' | 'blocked';

export interface AdminStateRecord {
  server: string;
  state: AdminState;
  /** Who set it (user@host, or the CLI/admin API caller). */
  by: string;
  atMs: number;
  reason: string;
}

/** A member's state as seen by heartbeat (DESIGN §3 "Heartbeat"). */
export type MemberState = 'active' | 'suspect' | 'down' | 'draining' | 'drained' | 'blocked';

/**
 * One server's word about one pool member (itself included): one entry of a LivenessReport. Believed
 * until `atMs + ttlMs`; after that it has expired (the etcd backend uses a lease with that TTL).
 */
export interface LivenessRecord {
  /** The server the report is about. */
  server: string;
  /** The server that reported it. */
  reporter: string;
  state: MemberState;
  atMs: number;
  ttlMs: number;
  /** The topology version the reporter runs. */
  topologyVersion: number;
}

/**
 * One reporter's whole view, stored as one record that replaces its previous one: a pool of N costs
 * N writes per interval, not N×N. Believed until `atMs + ttlMs` (etcd: a lease with that TTL).
 */
export interface LivenessReport {
  reporter: string;
  atMs: number;
  ttlMs: number;
  /** The topology version the reporter runs. */
  topologyVersion: number;
  /** The reporter's word on each server it has one on: itself first, then its peers. */
  states: { server: string; state: MemberState }[];
}

/** A report as one record per server it names (what `liveness()`, snapshots and watches hand out). */
export function recordsOf(report: LivenessReport): LivenessRecord[] {
  const { reporter, atMs, ttlMs, topologyVersion } = report;
  return report.states.map(({ server, state }) => ({ server, reporter, state, atMs, ttlMs, topologyVersion }));
}

/** A report that names one server (its reporter's whole view is that one word). */
export function reportOf(record: LivenessRecord): LivenessReport {
  const { server, reporter, state, atMs, ttlMs, topologyVersion } = record;
  return { reporter, atMs, ttlMs, topologyVersion, states: [{ server, state }] };
}

export interface PublishedVersion {
  version: number;
  /** The store revision that published it (etcd: the key's mod revision). */
  revision: number;
  publishedAtMs: number;
  by: string;
  comment: string;
  topology: Topology;
}

export type VersionSummary = Omit<PublishedVersion, 'topology'>;

/**
 * A change, with the store revision it happened at; watch() resumes after any revision.
 * 'published' and 'admin-state' are durable and replayed on resume. Liveness is ephemeral
 * (a lease in etcd): a watch first reports every unexpired record once, then each change of
 * state or topology version, and 'liveness-expired' when a report outlives its TTL unrenewed;
 * their `revision` is the store revision when they were seen, not a resume point of their own.
 * 'user' is a change of the user directory: the user's record as it is now (undefined: removed).
 * Replayed on resume; two changes of one user arrive in the order they were made, so the last
 * event of a user is its current record. 'users-reset' says that user changes after the resume
 * point can no longer be replayed one by one (compacted away): read the whole directory again
 * (`users()`); the events after it apply on top of what that read returns.
 */
export type StoreEvent =
  | { kind: 'published'; revision: number; version: number }
  | { kind: 'admin-state'; revision: number; record: AdminStateRecord }
  | { kind: 'liveness'; revision: number; record: LivenessRecord }
  | { kind: 'liveness-expired'; revision: number; server: string; reporter: string }
  | { kind: 'user'; revision: number; uri: string; record: UserRecord | undefined }
  | { kind: 'users-reset'; revision: number };

/** Everything a consumer (DNS, a Front End) needs to start; then watch from `revision`. */
export interface Snapshot {
  revision: number;
  /** undefined when nothing has been published yet. */
  current: PublishedVersion | undefined;
  adminStates: ReadonlyMap<string, AdminStateRecord>;
  liveness: readonly LivenessRecord[];
}

export interface WatchOptions {
  /** Deliver the events after this revision (a resume point); the current revision when absent. */
  afterRevision?: number;
  signal?: AbortSignal;
  /**
   * Deliver 'user' and 'users-reset' events (default true). Consumers that hold no user directory
   * (DNS, the HLB follower, the supervisor) pass false: the file store then reads no user record for them.
   */
  users?: boolean;
}

/**
 * The store. Its user directory (users.ts) is watched: each change is a 'user' event, so a server
 * loads the directory once (`users()`) and then follows it. Pool secrets are not watched.
 */
export interface Store extends UserDirectory {
  /**
   * Publishes `topology` as version baseVersion + 1. Compare-and-swap: throws DnslbError
   * STORE_STALE_VERSION when the current version is not `baseVersion` (0 = nothing published yet).
   */
  publish(topology: Topology, baseVersion: number, meta: { by: string; comment?: string }): Promise<PublishedVersion>;
  /** The latest version number, 0 when nothing is published. */
  currentVersion(): Promise<number>;
  /** A version (the latest when absent); throws STORE_NOT_FOUND. */
  read(version?: number): Promise<PublishedVersion>;
  /** Every published version, oldest first. */
  listVersions(): Promise<VersionSummary[]>;
  /** What changed from one version to another (src/topology/diff.ts); throws STORE_NOT_FOUND. */
  diff(fromVersion: number, toVersion: number): Promise<TopologyDiff>;

  /** Throws STORE_UNKNOWN_SERVER when `server` is not in the current version. */
  setAdminState(server: string, state: AdminState, meta: { by: string; reason: string }): Promise<AdminStateRecord>;
  adminStates(): Promise<ReadonlyMap<string, AdminStateRecord>>;

  /** Replaces `report.reporter`'s previous report with this one (its whole view). */
  reportLiveness(report: LivenessReport): Promise<void>;
  /** Every unexpired report, one record per (server, reporter). */
  liveness(): Promise<LivenessRecord[]>;

  snapshot(): Promise<Snapshot>;
  /** Changes after a revision, in order, until the signal aborts or close(). */
  watch(options?: WatchOptions): AsyncIterable<StoreEvent>;
  close(): Promise<void>;
}
