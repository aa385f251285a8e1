// The etcd v3 store (DESIGN §4 distributed mode): published versions and admin state as keys under
// a prefix, publish as a compare-and-swap transaction, liveness as keys on leases, and watch as an
// etcd watch from a revision (src/store/README.md, "The etcd v3 backend").
import { isIP } from 'node:net';
import tls from 'node:tls';
import { Etcd3, Range, SortOrder, SortTarget, type ICompare, type IKeyValue, type IRangeRequest, type IRequestOp, type IResponseOp, type Watcher } from 'etcd3';
import * as z from 'zod';
import { assert } from '../shared/assert.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import { DnslbError, isDnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { diffTopologies, type TopologyDiff } from '../topology/diff.ts';
import { fromObject } from '../topology/validate.ts';
import { TopologyError } from '../topology/problem.ts';
import type { Topology } from '../topology/schema.ts';
import { adminRecordFields, checkText, escapeName, livenessReportFields, livenessReportSchema, publishedDocument, storedText, unescapeName } from './checks.ts';
import { recordsOf, type AdminState, type AdminStateRecord, type LivenessRecord, type LivenessReport, type PublishedVersion, type Snapshot, type Store, type StoreEvent, type VersionSummary, type WatchOptions } from './store.ts';
import { authSecretSchema, checkedUser, checkHomePool, unknownUser, updatedUser, userExists, userRecordFields, type NewUser, type UserRecord, type UserUpdate } from './users.ts';

export interface EtcdStoreOptions {
  /** Client endpoints, `host:port`. */
  endpoints: readonly string[];
  /**
   * TLS (the etcds:// scheme): `ca` verifies etcd's certificate (the system's roots when absent),
   * `cert` + `key` are the client certificate for etcd's --client-cert-auth. PEM contents.
   */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** An etcd user (RBAC, `etcdctl auth enable`): the client trades it for a token, renewed when it expires. */
  auth?: { user: string; password: string };
  /** Every key lives under this prefix; several systems can share one etcd cluster. */
  prefix?: string;
  /** Timestamps of changes (publishedAtMs, admin atMs) and the expiry test of liveness reports. */
  clock?: Clock;
  /** Bound on one etcd call; past it the call fails with STORE_UNAVAILABLE. */
  requestTimeoutMs?: number;
  /** Users read per range by users() (pages at one revision). */
  usersPageKeys?: number;
}

export const ETCD_STORE_DEFAULTS = {
  prefix: '/dnslb/',
  requestTimeoutMs: limits.storeEtcdRequestTimeoutMs, // 5 s
  usersPageKeys: 2000, // ≈ 0.6 MB of records per answer, well under gRPC's 4 MiB
} as const;

const FORMAT = 1;
/** How long the diagnostic TLS handshake of a failed open waits for etcd. */
const TLS_PROBE_MS = 3000;
const VERSION_DIGITS = 16;
const VERSION_NAME = /^\d{16}$/;
/** Times setAdminState re-reads the current version when a publish slips in between its read and its commit. */
const ADMIN_ATTEMPTS_MAX = 20;

const text = storedText;
const count = z.number().int().min(1);
const summarySchema = z.strictObject({ format: z.literal(FORMAT), version: count, publishedAtMs: z.number(), by: text, comment: text });
const topologyValueSchema = z.strictObject({ format: z.literal(FORMAT), version: count, topology: z.unknown() });
const adminValueSchema = z.strictObject({ format: z.literal(FORMAT), ...adminRecordFields });
const livenessValueSchema = z.strictObject({ format: z.literal(FORMAT), ...livenessReportFields });
const userValueSchema = z.strictObject({ format: z.literal(FORMAT), ...userRecordFields });
const secretValueSchema = authSecretSchema.extend({ format: z.literal(FORMAT) });



function versionName(version: number): string {
  return String(version).padStart(VERSION_DIGITS, '0');
}

/** The whole-second lease TTL for a report's ttlMs: rounded up, at least 1 s (etcd's granularity). */
export function leaseTtlSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

/** A revision as etcd sends it (an int64 in a string) as a number; 2^53 revisions are out of reach. */
function revisionOf(value: string | number | undefined): number {
  return Number(value ?? 0);
}

type Kind = 'versions' | 'topologies' | 'admin' | 'liveness' | 'users' | 'secrets';

export class EtcdStore implements Store {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  private readonly client: Etcd3;
  private readonly clock: Clock;
  private readonly requestTimeoutMs: number;
  private readonly usersPageKeys: number;
  private readonly secure: boolean;
  private readonly etcdUser: string | undefined;
  private closed = false;
  /** One per running watch: ends it (and cancels its etcd watcher) on close(). */
  private readonly releases = new Set<() => void>();

  private constructor(options: EtcdStoreOptions) {
    assert(options.endpoints.length > 0, 'an etcd store needs at least one endpoint');
    this.endpoints = options.endpoints;
    this.prefix = options.prefix ?? ETCD_STORE_DEFAULTS.prefix;
    assert(this.prefix.startsWith('/') && this.prefix.endsWith('/'), 'the etcd prefix starts and ends with /');
    this.clock = options.clock ?? systemClock;
    this.requestTimeoutMs = options.requestTimeoutMs ?? ETCD_STORE_DEFAULTS.requestTimeoutMs;
    assert(this.requestTimeoutMs > 0, 'requestTimeoutMs > 0');
    this.usersPageKeys = options.usersPageKeys ?? ETCD_STORE_DEFAULTS.usersPageKeys;
    assert(Number.isInteger(this.usersPageKeys) && this.usersPageKeys > 0, 'usersPageKeys > 0');
    this.secure = options.tls !== undefined;
    this.etcdUser = options.auth?.user;
    const tls = options.tls;
    this.client = new Etcd3({
      hosts: this.endpoints.map((endpoint) => `${tls ? 'https' : 'http'}://${endpoint}`),
      // grpc-js takes null for "the system's roots" (the type says Buffer).
      ...(tls ? { credentials: { rootCertificate: tls.ca ?? (null as unknown as Buffer), ...(tls.key ? { privateKey: tls.key } : {}), ...(tls.cert ? { certChain: tls.cert } : {}) } } : {}),
      ...(options.auth ? { auth: { username: options.auth.user, password: options.auth.password } } : {}),
      dialTimeout: this.requestTimeoutMs,
      // Every unary call carries a gRPC deadline; streams (watch) are bounded by our own handling.
      // waitForReady: a call made while the connection is being re-established (etcd restarting,
      // a blip) waits for it until the deadline instead of failing at once.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.requestTimeoutMs, waitForReady: true }),
    });
  }

  /** Opens the store and checks that etcd answers (STORE_UNAVAILABLE otherwise), as the file store reads itself through on open. */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(options);
    try {
      await store.range('versions', { limit: 1, keys_only: true });
    } catch (error) {
      store.client.close();
      // gRPC says only "No connection established" when TLS fails: find out why with a handshake of our own.
      const why = options.tls && isDnslbError(error, 'STORE_UNAVAILABLE') && /No connection established/.test(error.message) ? await tlsProblem(options.endpoints, options.tls) : undefined;
      if (why) throw new DnslbError('STORE_UNAVAILABLE', `${store.where()}: ${why}`, { cause: error });
      throw error;
    }
    return store;
  }

  private where(): string {
    return `etcd${this.secure ? 's' : ''} ${this.endpoints.join(',')}${this.etcdUser === undefined ? '' : ` as user ${this.etcdUser}`}`;
  }

  private key(kind: Kind, name = ''): Buffer {
    return Buffer.from(`${this.prefix}${kind}/${name}`);
  }

  private keyName(kv: IKeyValue): string {
    return kv.key.toString();
  }

  /**
   * Runs one etcd call, bounded by requestTimeoutMs whatever the client's own retries do (the
   * gRPC deadline is on real time, as the network is: the injected Clock only stamps changes).
   */
  private async call<T>(what: string, operation: () => Promise<T>): Promise<T> {
    assert(!this.closed, 'etcd store used after close()');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DnslbError('STORE_UNAVAILABLE', `${this.where()}: ${what}: no answer within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
    });
    try {
      return await Promise.race([operation(), timeout]);
    } catch (error) {
      throw this.failure(what, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private failure(what: string, error: unknown): DnslbError {
    if (error instanceof DnslbError) return error;
    const message = (error as Error | undefined)?.message ?? String(error);
    // etcd refuses a request over its --max-request-bytes (1.5 MiB by default).
    if (/request is too large/i.test(message)) return new DnslbError('STORE_TOO_LARGE', `${this.where()}: ${what}: ${message} (raise etcd's --max-request-bytes above ${limits.topologyBytesMax} bytes)`, { cause: error });
    return new DnslbError('STORE_UNAVAILABLE', `${this.where()}: ${what}: ${plainMessage(message)}`, { cause: error });
  }

  private corrupt(key: string, what: string, cause?: unknown): DnslbError {
    return new DnslbError('STORE_CORRUPT', `${this.where()} key ${key}: ${what}`, { cause });
  }

  private rangeRequest(kind: Kind, request: Omit<IRangeRequest, 'key' | 'range_end'> = {}): IRangeRequest {
    const range = Range.prefix(this.key(kind));
    return { key: range.start, range_end: range.end, ...request };
  }

  private async range(kind: Kind, request: Omit<IRangeRequest, 'key' | 'range_end'> = {}): Promise<{ revision: number; kvs: IKeyValue[] }> {
    const response = await this.call(`read ${this.prefix}${kind}/`, () => this.client.kv.range(this.rangeRequest(kind, { limit: limits.storeEtcdRangeKeysMax + 1, ...request })));
    const kvs = this.bounded(kind, response.kvs);
    return { revision: revisionOf(response.header.revision), kvs };
  }

  private bounded(kind: Kind, kvs: IKeyValue[]): IKeyValue[] {
    if (kvs.length > limits.storeEtcdRangeKeysMax) throw this.corrupt(`${this.prefix}${kind}/`, `more than ${limits.storeEtcdRangeKeysMax} keys`);
    return kvs;
  }

  /** Parses and shape-checks a value; anything wrong is STORE_CORRUPT naming the key. */
  private checked<T>(kv: IKeyValue, schema: z.ZodType<T>): T {
    const key = this.keyName(kv);
    if (kv.value.length > limits.storeEtcdValueBytesMax) throw this.corrupt(key, `${kv.value.length} bytes, more than the limit of ${limits.storeEtcdValueBytesMax}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(kv.value.toString('utf8'));
    } catch (cause) {
      throw this.corrupt(key, `not JSON (written by something else than dnslb?): ${(cause as Error).message}`, cause);
    }
    const result = schema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw this.corrupt(key, `unexpected content at ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? 'invalid'}`);
    }
    return result.data;
  }

  private versionOfKey(kv: IKeyValue, kind: 'versions' | 'topologies'): number {
    const key = this.keyName(kv);
    const name = key.slice(this.key(kind).length);
    if (!VERSION_NAME.test(name) || Number(name) < 1) throw this.corrupt(key, 'not a version key (16 digits expected)');
    return Number(name);
  }

  private summaryOf(kv: IKeyValue): VersionSummary {
    const value = this.checked(kv, summarySchema);
    const version = this.versionOfKey(kv, 'versions');
    if (value.version !== version) throw this.corrupt(this.keyName(kv), `holds version ${value.version}, its key says ${version}`);
    return { version, revision: revisionOf(kv.mod_revision), publishedAtMs: value.publishedAtMs, by: value.by, comment: value.comment };
  }

  private topologyOf(kv: IKeyValue, version: number): Topology {
    const key = this.keyName(kv);
    const value = this.checked(kv, topologyValueSchema);
    if (value.version !== version || this.versionOfKey(kv, 'topologies') !== version) throw this.corrupt(key, `should hold the topology of version ${version}`);
    try {
      return fromObject(value.topology, key);
    } catch (cause) {
      if (cause instanceof TopologyError) throw this.corrupt(key, `the stored topology of version ${version} does not validate:\n${cause.message}`, cause);
      throw cause;
    }
  }

  private adminOf(kv: IKeyValue): AdminStateRecord {
    const { format: _format, ...record } = this.checked(kv, adminValueSchema);
    if (this.keyName(kv) !== this.key('admin', escapeName(record.server)).toString()) throw this.corrupt(this.keyName(kv), `holds the admin state of ${record.server}, its key says otherwise`);
    return record;
  }

  private livenessOf(kv: IKeyValue): LivenessReport {
    const { format: _format, ...report } = this.checked(kv, livenessValueSchema);
    if (this.keyName(kv) !== this.livenessKey(report.reporter).toString()) throw this.corrupt(this.keyName(kv), `holds the report of ${report.reporter}, its key says otherwise`);
    return report;
  }

  /** One key per reporter (its whole view). */
  private livenessKey(reporter: string): Buffer {
    return this.key('liveness', escapeName(reporter));
  }

  /** The records of the reports read from `kvs` that have not expired; keys in the older one-per-pair layout are skipped. */
  private livenessRecordsOf(kvs: readonly IKeyValue[]): LivenessRecord[] {
    const reports = kvs.filter((kv) => !this.keyName(kv).includes('~')).map((kv) => this.livenessOf(kv));
    return this.unexpired(reports.flatMap(recordsOf));
  }

  private unexpired(records: LivenessRecord[]): LivenessRecord[] {
    const nowMs = this.clock.nowMs();
    return records.filter((record) => nowMs < record.atMs + record.ttlMs);
  }

  /** The newest version's key, or undefined when nothing is published. Versions sort by key: 16 digits. */
  private latestRequest(kind: 'versions' | 'topologies'): IRangeRequest {
    return this.rangeRequest(kind, { limit: 1, sort_order: SortOrder.Descend, sort_target: SortTarget.Key });
  }

  // ---- versions --------------------------------------------------------------------------

  /**
   * One transaction: if versions/<base+1> does not exist and (base > 0) versions/<base> does, put
   * the summary and the topology of base+1. Versions are never deleted, so "current == base" is
   * exactly that compare; of two publishers on one base, etcd's serial transactions let one win.
   */
  async publish(topology: Topology, baseVersion: number, meta: { by: string; comment?: string }): Promise<PublishedVersion> {
    assert(Number.isInteger(baseVersion) && baseVersion >= 0, 'baseVersion is a version number');
    const comment = meta.comment ?? '';
    const document = publishedDocument(topology, { by: meta.by, comment });
    const version = baseVersion + 1;
    const publishedAtMs = this.clock.nowMs();
    const compare: ICompare[] = [{ key: this.key('versions', versionName(version)), target: 'Create', result: 'Equal', create_revision: 0 }];
    if (baseVersion > 0) compare.push({ key: this.key('versions', versionName(baseVersion)), target: 'Create', result: 'Greater', create_revision: 0 });
    const success: IRequestOp[] = [
      { request_put: { key: this.key('topologies', versionName(version)), value: Buffer.from(JSON.stringify({ format: FORMAT, version, topology: document })) } },
      { request_put: { key: this.key('versions', versionName(version)), value: Buffer.from(JSON.stringify({ format: FORMAT, version, publishedAtMs, by: meta.by, comment })) } },
    ];
    const response = await this.call(`publish version ${version}`, () => this.client.kv.txn({ compare, success, failure: [{ request_range: this.latestRequest('versions') }] }));
    if (!response.succeeded) {
      const latest = (response.responses[0] as IResponseOp | undefined)?.response_range.kvs[0];
      const current = latest ? this.versionOfKey(latest, 'versions') : 0;
      throw new DnslbError('STORE_STALE_VERSION', `the current version is ${current}, not the base version ${baseVersion}: someone published meanwhile; diff against version ${current} and publish again`);
    }
    return { version, revision: revisionOf(response.header.revision), publishedAtMs, by: meta.by, comment, topology };
  }

  async currentVersion(): Promise<number> {
    const response = await this.call('read the current version', () => this.client.kv.range({ ...this.latestRequest('versions'), keys_only: true }));
    const latest = response.kvs[0];
    return latest ? this.versionOfKey(latest, 'versions') : 0;
  }

  async listVersions(): Promise<VersionSummary[]> {
    const { kvs } = await this.range('versions');
    const summaries = kvs.map((kv) => this.summaryOf(kv));
    summaries.forEach((summary, index) => {
      if (summary.version !== index + 1) throw this.corrupt(this.key('versions', versionName(index + 1)).toString(), 'missing: the versions have a hole (deleted by hand?)');
    });
    return summaries;
  }

  async read(version?: number): Promise<PublishedVersion> {
    // Both keys of a version in one read; for the latest, the newest of each (written together).
    const [summaryRequest, topologyRequest] =
      version === undefined
        ? [this.latestRequest('versions'), this.latestRequest('topologies')]
        : [{ key: this.key('versions', versionName(version)) }, { key: this.key('topologies', versionName(version)) }];
    const response = await this.call(`read version ${version ?? 'latest'}`, () =>
      this.client.kv.txn({ compare: [], success: [{ request_range: summaryRequest }, { request_range: topologyRequest }, { request_range: { ...this.latestRequest('versions'), keys_only: true } }] }),
    );
    const [summaries, topologies, latest] = response.responses.map((op) => op.response_range.kvs);
    const summaryKv = summaries?.[0];
    if (!summaryKv) {
      const current = latest?.[0] ? this.versionOfKey(latest[0], 'versions') : 0;
      if (current === 0) throw new DnslbError('STORE_NOT_FOUND', `nothing has been published in ${this.where()} under ${this.prefix} yet`);
      throw new DnslbError('STORE_NOT_FOUND', `version ${version} does not exist (the versions are 1 to ${current})`);
    }
    const summary = this.summaryOf(summaryKv);
    const topologyKv = topologies?.[0];
    if (!topologyKv) throw this.corrupt(this.key('topologies', versionName(summary.version)).toString(), `missing: version ${summary.version} has no topology`);
    return { ...summary, topology: this.topologyOf(topologyKv, summary.version) };
  }

  async diff(fromVersion: number, toVersion: number): Promise<TopologyDiff> {
    const before = await this.read(fromVersion);
    const after = await this.read(toVersion);
    return diffTopologies(before.topology, after.topology);
  }

  // ---- admin state -----------------------------------------------------------------------

  /**
   * Reads the current version, checks the server is in it, then puts the record in a transaction
   * guarded by "no newer version exists": a publish between the read and the put makes the
   * compare fail, and the check runs again on the new version.
   */
  async setAdminState(server: string, adminState: AdminState, meta: { by: string; reason: string }): Promise<AdminStateRecord> {
    checkText('by', meta.by);
    checkText('reason', meta.reason);
    for (let attempt = 0; attempt < ADMIN_ATTEMPTS_MAX; attempt++) {
      let current: PublishedVersion | undefined;
      try {
        current = await this.read();
      } catch (error) {
        if (!(error instanceof DnslbError && error.code === 'STORE_NOT_FOUND')) throw error;
      }
      const known = current?.topology.pools.flatMap((pool) => pool.servers.map((candidate) => candidate.fqdn)) ?? [];
      if (!known.includes(server)) {
        throw new DnslbError('STORE_UNKNOWN_SERVER', `${server} is not a server of the current topology${current === undefined ? ' (nothing is published yet)' : ` (version ${current.version})`}`);
      }
      assert(current);
      const record: AdminStateRecord = { server, state: adminState, by: meta.by, atMs: this.clock.nowMs(), reason: meta.reason };
      const response = await this.call(`set the admin state of ${server}`, () =>
        this.client.kv.txn({
          compare: [{ key: this.key('versions', versionName((current as PublishedVersion).version + 1)), target: 'Create', result: 'Equal', create_revision: 0 }],
          success: [{ request_put: { key: this.key('admin', escapeName(server)), value: Buffer.from(JSON.stringify({ format: FORMAT, ...record })) } }],
        }),
      );
      if (response.succeeded) return record;
    }
    throw new DnslbError('STORE_LOCKED', `gave up setting the admin state of ${server} after ${ADMIN_ATTEMPTS_MAX} attempts: new versions kept being published meanwhile`);
  }

  async adminStates(): Promise<ReadonlyMap<string, AdminStateRecord>> {
    const { kvs } = await this.range('admin');
    return new Map(kvs.map((kv) => this.adminOf(kv)).map((record) => [record.server, record]));
  }

  // ---- liveness --------------------------------------------------------------------------

  /**
   * A put on a fresh lease of the report's TTL (whole seconds, rounded up) under the reporter's key:
   * one lease and one put per reporter per report, whatever the pool's size. etcd deletes the key when
   * the reporter stops renewing, which a watch sees as 'liveness-expired' for each server it named.
   * Each report takes a new lease; the one it replaces expires with no key on it.
   */
  async reportLiveness(report: LivenessReport): Promise<void> {
    const parsed = livenessReportSchema.safeParse(report);
    assert(parsed.success, `invalid liveness report: ${parsed.error?.issues[0]?.message ?? ''}`);
    const value = Buffer.from(JSON.stringify({ format: FORMAT, ...parsed.data }));
    if (value.length > limits.storeLivenessBytesMax) throw new DnslbError('STORE_TOO_LARGE', `the liveness report of ${report.reporter} is ${value.length} bytes, more than the limit of ${limits.storeLivenessBytesMax}`);
    const key = this.livenessKey(report.reporter);
    const lease = await this.call(`grant a lease for ${key.toString()}`, () => this.client.leaseClient.leaseGrant({ TTL: leaseTtlSeconds(report.ttlMs) }));
    await this.call(`report liveness to ${key.toString()}`, () => this.client.kv.put({ key, value, lease: lease.ID }));
  }

  /**
   * Every report whose key still exists (its lease is alive) and that is not past atMs + ttlMs: a
   * lease lasts whole seconds (etcd may even grant a longer one), the interface's expiry is the record's.
   */
  async liveness(): Promise<LivenessRecord[]> {
    const { kvs } = await this.range('liveness');
    return this.livenessRecordsOf(kvs);
  }

  // ---- users -----------------------------------------------------------------------------

  private userOf(kv: IKeyValue): UserRecord {
    const { format: _format, ...record } = this.checked(kv, userValueSchema);
    if (this.keyName(kv) !== this.key('users', escapeName(record.uri)).toString()) throw this.corrupt(this.keyName(kv), `holds user ${record.uri}, its key says otherwise`);
    try {
      return checkedUser(record);
    } catch (error) {
      throw this.corrupt(this.keyName(kv), (error as Error).message, error);
    }
  }

  /**
   * The compare that keeps a home-pool check true at commit: "no version after the one checked
   * exists" (as setAdminState does). Empty when the record names no home pool.
   */
  private async homePoolGuard(homePool: string | undefined): Promise<ICompare[]> {
    if (homePool === undefined) return [];
    let current: PublishedVersion | undefined;
    try {
      current = await this.read();
    } catch (error) {
      if (!(error instanceof DnslbError && error.code === 'STORE_NOT_FOUND')) throw error;
    }
    checkHomePool(homePool, current?.topology, current?.version);
    return [{ key: this.key('versions', versionName((current as PublishedVersion).version + 1)), target: 'Create', result: 'Equal', create_revision: 0 }];
  }

  /**
   * Read a user, decide, then write in a transaction guarded by the key's mod_revision (0: absent)
   * and the home-pool guard; a concurrent change makes the compare fail and the decision runs again.
   */
  private async changeUser<T>(uri: string, decide: (current: UserRecord | undefined) => Promise<{ op: IRequestOp; homePool: string | undefined; result: T }>): Promise<T> {
    const key = this.key('users', escapeName(uri));
    for (let attempt = 0; attempt < ADMIN_ATTEMPTS_MAX; attempt++) {
      const response = await this.call(`read user ${uri}`, () => this.client.kv.range({ key }));
      const kv = response.kvs[0];
      const { op, homePool, result } = await decide(kv ? this.userOf(kv) : undefined);
      const compare: ICompare[] = [{ key, target: 'Mod', result: 'Equal', mod_revision: kv ? kv.mod_revision : 0 }, ...(await this.homePoolGuard(homePool))];
      const written = await this.call(`write user ${uri}`, () => this.client.kv.txn({ compare, success: [op] }));
      if (written.succeeded) return result;
    }
    throw new DnslbError('STORE_LOCKED', `gave up changing user ${uri} after ${ADMIN_ATTEMPTS_MAX} attempts: it (or the topology) kept changing meanwhile`);
  }

  private putUser(record: UserRecord): IRequestOp {
    const value = JSON.stringify({ format: FORMAT, ...record });
    if (Buffer.byteLength(value) > limits.storeUserBytesMax) throw new DnslbError('STORE_TOO_LARGE', `user ${record.uri}: the record is ${Buffer.byteLength(value)} bytes, more than the limit of ${limits.storeUserBytesMax}`);
    return { request_put: { key: this.key('users', escapeName(record.uri)), value: Buffer.from(value) } };
  }

  async addUser(user: NewUser, meta: { by: string }): Promise<UserRecord> {
    checkText('by', meta.by);
    const record = checkedUser({ ...user, by: meta.by, atMs: this.clock.nowMs() });
    return this.changeUser(record.uri, async (current) => {
      if (current) throw userExists(record.uri);
      return { op: this.putUser(record), homePool: record.homePool, result: record };
    });
  }

  async updateUser(uri: string, update: UserUpdate, meta: { by: string }): Promise<UserRecord> {
    checkText('by', meta.by);
    return this.changeUser(uri, async (current) => {
      if (!current) throw unknownUser(uri);
      const record = updatedUser(current, update, { by: meta.by, atMs: this.clock.nowMs() });
      return { op: this.putUser(record), homePool: update.homePool ?? undefined, result: record };
    });
  }

  async removeUser(uri: string): Promise<void> {
    await this.changeUser(uri, async (current) => {
      if (!current) throw unknownUser(uri);
      return { op: { request_delete_range: { key: this.key('users', escapeName(uri)) } }, homePool: undefined, result: undefined };
    });
  }

  async user(uri: string): Promise<UserRecord | undefined> {
    const response = await this.call(`read user ${uri}`, () => this.client.kv.range({ key: this.key('users', escapeName(uri)) }));
    const kv = response.kvs[0];
    return kv ? this.userOf(kv) : undefined;
  }

  /**
   * Every user, in pages of usersPageKeys keys read at one revision (the first page's): 100,000 records
   * in one answer would pass gRPC's 4 MiB message limit, and a page is a short read for etcd.
   */
  async users(): Promise<UserRecord[]> {
    const range = Range.prefix(this.key('users'));
    const records: UserRecord[] = [];
    let start = range.start;
    let revision: string | undefined;
    for (;;) {
      const from = start;
      const response = await this.call(`read ${this.prefix}users/`, () => this.client.kv.range({ key: from, range_end: range.end, limit: this.usersPageKeys, ...(revision === undefined ? {} : { revision }) }));
      revision ??= String(response.header.revision);
      for (const kv of response.kvs) records.push(this.userOf(kv));
      if (records.length > limits.storeUsersMax) throw this.corrupt(`${this.prefix}users/`, `more than ${limits.storeUsersMax} users`);
      const last = response.kvs.at(-1);
      if (!response.more || last === undefined) break;
      start = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return records.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  }

  /** One transaction: put the candidate if the pool has no secret yet, else read the one it has. */
  async authSecret(pool: string, candidate: Buffer): Promise<Buffer> {
    assert(candidate.length === 32, 'a pool secret is 32 bytes');
    const key = this.key('secrets', escapeName(pool));
    const value = authSecretSchema.parse({ pool, secret: candidate.toString('hex') });
    const response = await this.call(`read or create the secret of ${pool}`, () =>
      this.client.kv.txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key, value: Buffer.from(JSON.stringify({ format: FORMAT, ...value })) } }],
        failure: [{ request_range: { key } }],
      }),
    );
    if (response.succeeded) return Buffer.from(candidate);
    const kv = (response.responses[0] as IResponseOp | undefined)?.response_range.kvs[0];
    if (!kv) throw this.corrupt(key.toString(), 'missing right after etcd said it exists');
    const stored = this.checked(kv, secretValueSchema);
    if (stored.pool !== pool) throw this.corrupt(key.toString(), `holds the secret of ${stored.pool}`);
    return Buffer.from(stored.secret, 'hex');
  }

  // ---- snapshot and watch ----------------------------------------------------------------

  /** One transaction of ranges, so every part is read at the same revision. */
  async snapshot(): Promise<Snapshot> {
    const response = await this.call('read a snapshot', () =>
      this.client.kv.txn({
        compare: [],
        success: [
          { request_range: this.latestRequest('versions') },
          { request_range: this.latestRequest('topologies') },
          { request_range: this.rangeRequest('admin', { limit: limits.storeEtcdRangeKeysMax + 1 }) },
          { request_range: this.rangeRequest('liveness', { limit: limits.storeEtcdRangeKeysMax + 1 }) },
        ],
      }),
    );
    const [versions, topologies, admin, liveness] = response.responses.map((op) => op.response_range.kvs);
    let current: PublishedVersion | undefined;
    const summaryKv = versions?.[0];
    if (summaryKv) {
      const summary = this.summaryOf(summaryKv);
      const topologyKv = topologies?.[0];
      if (!topologyKv) throw this.corrupt(this.key('topologies', versionName(summary.version)).toString(), `missing: version ${summary.version} has no topology`);
      current = { ...summary, topology: this.topologyOf(topologyKv, summary.version) };
    }
    const adminStates = new Map(this.bounded('admin', admin ?? []).map((kv) => this.adminOf(kv)).map((record) => [record.server, record]));
    const records = this.livenessRecordsOf(this.bounded('liveness', liveness ?? []));
    return { revision: revisionOf(response.header.revision), current, adminStates, liveness: records };
  }

  /**
   * Changes after `afterRevision` (now when absent): first every unexpired liveness report, then an
   * etcd watch on the prefix from afterRevision + 1, its puts and deletes mapped to StoreEvents.
   * When etcd has compacted the start revision away, the durable state is replayed instead (each
   * version and the latest admin state per server newer than the resume point), as the file store
   * does. A lost connection ends the iteration with STORE_UNAVAILABLE: callers re-snapshot.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<StoreEvent> {
    assert(!this.closed, 'etcd store used after close()');
    const { signal } = options;
    const users = options.users ?? true;
    if (signal?.aborted) return;
    // Liveness first, at one revision: older liveness changes in the replayed history are skipped.
    const initial = await this.range('liveness');
    const livenessRevision = initial.revision;
    let cursor = options.afterRevision ?? initial.revision;
    /** Liveness as last reported to this watcher: by reporter key, each (server → fingerprint) of its view. */
    const reported = new Map<string, { reporter: string; servers: Map<string, string> }>();
    const fingerprint = (record: LivenessRecord): string => `${record.state}|${record.topologyVersion}`;
    /** The events that bring this watcher from what it reported of a reporter to `records` (its new view; empty: gone). */
    const changesOf = (key: string, reporter: string, records: readonly LivenessRecord[], revision: number): StoreEvent[] => {
      const before = reported.get(key)?.servers ?? new Map<string, string>();
      const after = new Map<string, string>();
      const events: StoreEvent[] = [];
      for (const record of records) {
        const print = fingerprint(record);
        after.set(record.server, print);
        if (before.get(record.server) !== print) events.push({ kind: 'liveness', revision, record });
      }
      for (const server of before.keys()) if (!after.has(server)) events.push({ kind: 'liveness-expired', revision, server, reporter });
      if (after.size > 0) reported.set(key, { reporter, servers: after });
      else reported.delete(key);
      return events;
    };
    for (const kv of initial.kvs) {
      if (this.keyName(kv).includes('~')) continue;
      const report = this.livenessOf(kv);
      for (const event of changesOf(this.keyName(kv), report.reporter, this.unexpired(recordsOf(report)), cursor)) yield event;
    }

    type Item = { kind: 'events'; events: Array<{ type: string; kv: IKeyValue }> } | { kind: 'error'; error: unknown } | { kind: 'disconnected'; error: unknown } | { kind: 'end' };
    const queue: Item[] = [];
    let wake: (() => void) | undefined;
    const push = (item: Item): void => {
      queue.push(item);
      wake?.();
    };
    let watcher: Watcher | undefined;
    const stopWatcher = async (): Promise<void> => {
      const stopping = watcher;
      watcher = undefined;
      if (!stopping) return;
      stopping.removeAllListeners();
      stopping.on('error', () => undefined);
      // Cancelling needs the connection; a dead one must not hold us up.
      await Promise.race([stopping.cancel().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, this.requestTimeoutMs).unref())]);
    };
    const startWatcher = async (): Promise<void> => {
      const created = this.client.watch().prefix(this.prefix).startRevision(String(cursor + 1)).watcher();
      watcher = created;
      let connected = false;
      created.on('data', (response) => {
        if (response.events.length > 0) push({ kind: 'events', events: response.events });
      });
      created.on('error', (error) => push({ kind: 'error', error }));
      created.on('disconnected', (error) => push({ kind: connected ? 'disconnected' : 'error', error }));
      await this.call('start a watch', () =>
        new Promise<void>((resolve, reject) => {
          created.once('connected', () => {
            connected = true;
            resolve();
          });
          created.once('error', reject);
          created.once('disconnected', reject);
        }),
      );
    };
    // Abort and close() cancel the etcd watcher at once, even when the consumer never pulls again
    // (a generator suspended at `yield` runs its finally only when resumed).
    const release = (): void => {
      push({ kind: 'end' });
      void stopWatcher();
    };
    signal?.addEventListener('abort', release);
    this.releases.add(release);
    const next = async (): Promise<Item> => {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      return queue.shift() as Item;
    };

    const ended = (): boolean => this.closed || signal?.aborted === true;
    try {
      if (ended()) return;
      await startWatcher();
      for (;;) {
        if (ended()) return;
        const item = await next();
        if (item.kind === 'end') return;
        if (item.kind === 'disconnected') throw this.failure('watch', item.error);
        if (item.kind === 'error') {
          // etcd cancels a watch whose start revision was compacted (ErrCompacted): replay instead.
          if (!(await this.compacted(cursor + 1))) throw this.failure('watch', item.error);
          await stopWatcher();
          queue.length = 0;
          const replay = await this.replayAfter(cursor);
          for (const event of replay.events) if (users || event.kind !== 'users-reset') yield event;
          cursor = replay.revision;
          if (ended()) return;
          await startWatcher();
          continue;
        }
        for (const { type, kv } of item.events) {
          const revision = revisionOf(kv.mod_revision);
          const key = this.keyName(kv);
          const name = key.slice(this.prefix.length);
          const put = type === 'Put' || (type as unknown) === 0;
          cursor = Math.max(cursor, revision);
          if (name.startsWith('versions/') && put) {
            yield { kind: 'published', revision, version: this.summaryOf(kv).version };
          } else if (name.startsWith('admin/') && put) {
            yield { kind: 'admin-state', revision, record: this.adminOf(kv) };
          } else if (name.startsWith('users/') && users) {
            // A delete carries no value: the user is named by its key.
            const uri = unescapeName(name.slice('users/'.length));
            if (put) {
              const record = this.userOf(kv);
              yield { kind: 'user', revision, uri: record.uri, record };
            } else if (uri !== undefined) {
              yield { kind: 'user', revision, uri, record: undefined };
            }
          } else if (name.startsWith('liveness/') && !name.includes('~') && revision > livenessRevision) {
            if (put) {
              // A renewal with the same states yields nothing; a changed or dropped server does.
              const report = this.livenessOf(kv);
              for (const event of changesOf(key, report.reporter, recordsOf(report), revision)) yield event;
            } else {
              // Only lease expiry deletes a report: the reporter stopped renewing it.
              const was = reported.get(key);
              if (!was) continue;
              for (const event of changesOf(key, was.reporter, [], revision)) yield event;
            }
          }
          // Topologies come with their version's summary; deletes of durable keys (by hand) change
          // nothing a consumer holds; keys dnslb did not write are ignored.
        }
      }
    } catch (error) {
      // Cancelling the etcd watcher under a call in flight makes that call fail: not an error of the watch.
      if (ended()) return;
      throw error;
    } finally {
      signal?.removeEventListener('abort', release);
      this.releases.delete(release);
      await stopWatcher();
    }
  }

  /** Whether etcd has compacted `revision` away: a range at that revision fails with ErrCompacted. */
  private async compacted(revision: number): Promise<boolean> {
    try {
      await this.call('check for compaction', () => this.client.kv.range({ key: this.key('versions'), revision }));
      return false;
    } catch (error) {
      const cause = error instanceof DnslbError ? error.cause : error;
      return /compacted/i.test((cause as Error | undefined)?.message ?? '');
    }
  }

  /** The durable state newer than `afterRevision`, as events in revision order, read at one revision. */
  private async replayAfter(afterRevision: number): Promise<{ revision: number; events: StoreEvent[] }> {
    const response = await this.call('read the state to replay', () =>
      this.client.kv.txn({
        compare: [],
        success: [{ request_range: this.rangeRequest('versions', { limit: limits.storeEtcdRangeKeysMax + 1 }) }, { request_range: this.rangeRequest('admin', { limit: limits.storeEtcdRangeKeysMax + 1 }) }],
      }),
    );
    const [versions, admin] = response.responses.map((op) => op.response_range.kvs);
    const events: StoreEvent[] = [
      ...this.bounded('versions', versions ?? [])
        .map((kv) => this.summaryOf(kv))
        .filter((summary) => summary.revision > afterRevision)
        .map((summary): StoreEvent => ({ kind: 'published', revision: summary.revision, version: summary.version })),
      ...this.bounded('admin', admin ?? [])
        .filter((kv) => revisionOf(kv.mod_revision) > afterRevision)
        .map((kv): StoreEvent => ({ kind: 'admin-state', revision: revisionOf(kv.mod_revision), record: this.adminOf(kv) })),
    ].sort((a, b) => a.revision - b.revision);
    // Removed users leave no key behind to replay: the consumer reads the whole directory again.
    const revision = revisionOf(response.header.revision);
    events.push({ kind: 'users-reset', revision });
    return { revision, events };
  }

  /** Ends every watch and closes the connections; etcd's data is left as it is. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const release of this.releases) release();
    this.closed = true;
    // Let the watches run their finally blocks (cancel their etcd watchers) before the client goes.
    await new Promise((resolve) => setImmediate(resolve));
    this.client.close();
  }
}

/**
 * A gRPC/etcd error message as an operator reads it: the gRPC status number and the empty
 * "Resolution note:" left out; etcd's RBAC refusals say what to check.
 */
function plainMessage(message: string): string {
  const text = message.replace(/^\d+ [A-Z_]+: /, '').replace(/\s*Resolution note:\s*$/, '').replace(/ Last error: null\.?$/, '');
  if (/etcdserver: permission denied/.test(text)) return `${text} (the etcd user's role must allow readwrite on the key prefix: etcdctl role grant-permission ROLE --prefix=true readwrite PREFIX)`;
  if (/etcdserver: authentication failed/.test(text)) return `${text} (check user= and the password file or DNSLB_ETCD_PASSWORD)`;
  if (/etcdserver: user name is empty|etcdserver: invalid auth token/.test(text)) return `${text} (etcd has authentication enabled: give user= and a password)`;
  return text;
}

/**
 * Why a TLS connection to the endpoints fails, from a handshake made with the same CA, certificate and
 * key (Node's own TLS): etcd refusing our certificate (an alert after the handshake, TLS 1.3), or its
 * certificate not verifying against the CA. Undefined when the handshake succeeds everywhere (the
 * failure was something else) or no endpoint answers at all.
 */
async function tlsProblem(endpoints: readonly string[], credentials: NonNullable<EtcdStoreOptions['tls']>): Promise<string | undefined> {
  for (const endpoint of endpoints) {
    const colon = endpoint.lastIndexOf(':');
    const host = endpoint.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(endpoint.slice(colon + 1));
    const problem = await new Promise<string | undefined>((resolve) => {
      const socket = tls.connect({
        host,
        port,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ...(credentials.ca ? { ca: credentials.ca } : {}),
        ...(credentials.cert ? { cert: credentials.cert } : {}),
        ...(credentials.key ? { key: credentials.key } : {}),
        ALPNProtocols: ['h2'],
        timeout: TLS_PROBE_MS,
      });
      const done = (why: string | undefined): void => {
        socket.destroy();
        resolve(why);
      };
      socket.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? '';
        if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') done(undefined);
        else if (/ALERT/.test(code) || /alert/.test(error.message)) {
          const alert = /alert ([a-z ]+)/.exec(error.message)?.[1] ?? error.message;
          done(credentials.cert ? `TLS to ${endpoint}: etcd refused our client certificate (alert: ${alert}): cert= must be signed by a CA in etcd's --trusted-ca-file` : `TLS to ${endpoint}: etcd asks for a client certificate (alert: ${alert}; --client-cert-auth): give cert= and key=`);
        }
        else done(`TLS to ${endpoint}: ${error.message}${/certificate|self.signed|verify/i.test(error.message) ? ": etcd's certificate does not verify against ca=" : ''}`);
      });
      socket.on('timeout', () => done(undefined));
      // TLS 1.3: etcd checks our certificate after the client's side of the handshake is done; it
      // answers an accepted one with its HTTP/2 SETTINGS, a refused one with an alert.
      socket.on('secureConnect', () => socket.once('data', () => done(undefined)));
    });
    if (problem) return problem;
  }
  return undefined;
}

export function openEtcdStore(options: EtcdStoreOptions): Promise<EtcdStore> {
  return EtcdStore.open(options);
}
