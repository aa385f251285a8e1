// The file store, dnslb's embedded default: a numbered change log in a data directory, where each
// revision is a file created exclusively (the compare-and-swap that serialises every writer, in
// any process), compacted into numbered snapshot files; liveness reports kept apart (src/store/README.md).
import { watch as watchDirectory, type FSWatcher } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { assert } from '../shared/assert.ts';
import { systemClock, type Clock, type Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { diffTopologies, type TopologyDiff } from '../topology/diff.ts';
import { fromObject } from '../topology/validate.ts';
import { TopologyError } from '../topology/problem.ts';
import type { Topology } from '../topology/schema.ts';
import { corrupt, createExclusive, fsyncDirectory, listDirectory, readBounded, removeIfPresent, removeStaleTemps, replaceAtomically } from './files.ts';
import { adminRecordFields, checkText, livenessReportSchema, publishedDocument, storedText } from './checks.ts';
import { recordsOf, type AdminState, type AdminStateRecord, type LivenessRecord, type LivenessReport, type PublishedVersion, type Snapshot, type Store, type StoreEvent, type VersionSummary, type WatchOptions } from './store.ts';
import { FileUsers } from './file-users.ts';
import type { NewUser, UserRecord, UserUpdate } from './users.ts';

export interface FileStoreOptions {
  /** The data directory (`--data-dir`, default ./.dnslb); the store lives in its `store/` folder. */
  dataDir: string;
  clock?: Clock;
  /** A watch rescans this often even when no file-system event arrived (a safety net for fs.watch). */
  pollIntervalMs?: number;
  /** Log entries after the last compaction that trigger a new one. */
  compactEvery?: number;
  /** Expired liveness reports are deleted this long after they expired. */
  livenessRetainMs?: number;
  /** Fail with STORE_NOT_FOUND instead of creating an absent store (read-only commands). */
  mustExist?: boolean;
}

export const FILE_STORE_DEFAULTS = {
  pollIntervalMs: 500, // 0.5 s
  compactEvery: 1000, // log entries
  livenessRetainMs: 600_000, // 10 min
} as const;

const FORMAT = 1;
const REVISION_DIGITS = 16;
const LOG_NAME = /^(\d{16})\.json$/;
/** Readers retry this often when a concurrent compaction removed what they were reading. */
const READ_ATTEMPTS_MAX = 20;

const count = z.number().int().min(1);
const text = storedText;
const adminRecordSchema = z.strictObject(adminRecordFields);
const summarySchema = z.strictObject({ version: count, revision: count, publishedAtMs: z.number(), by: text, comment: text });

const logEntrySchema = z.strictObject({
  format: z.literal(FORMAT),
  revision: count,
  atMs: z.number(),
  change: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('published'), version: count, by: text, comment: text, topology: z.unknown() }),
    z.strictObject({ kind: z.literal('admin-state'), record: adminRecordSchema }),
    // A user's record changed (users/<uri>/ holds it): the entry names the user, not its hashes.
    z.strictObject({ kind: z.literal('user'), uri: z.string().min(1).max(512) }),
  ]),
});
type LogEntry = z.infer<typeof logEntrySchema>;

const compactionSchema = z.strictObject({
  format: z.literal(FORMAT),
  revision: count,
  versions: z.array(summarySchema),
  adminStates: z.array(adminRecordSchema.extend({ revision: count })),
  /** The newest user change folded in (absent: none, or a store from before user changes were logged). */
  usersRevision: count.optional(),
});
type Compaction = z.infer<typeof compactionSchema>;

const versionFileSchema = summarySchema.extend({ format: z.literal(FORMAT), topology: z.unknown() });


/** The log reduced to a revision: what every reader and writer works from. */
interface State {
  revision: number;
  /** Revision of the newest compaction this state knows of (0: none). */
  compactedRevision: number;
  versions: VersionSummary[];
  adminStates: Map<string, AdminStateRecord & { revision: number }>;
  /** Revision of the newest user change (0: none): a watch resuming before it across a compaction resets its users. */
  usersRevision: number;
}

function emptyState(): State {
  return { revision: 0, compactedRevision: 0, versions: [], adminStates: new Map(), usersRevision: 0 };
}

function cloneState(state: State): State {
  return { ...state, versions: [...state.versions], adminStates: new Map(state.adminStates) };
}

function stripRevision(record: AdminStateRecord & { revision: number }): AdminStateRecord {
  const { revision: _revision, ...rest } = record;
  return rest;
}

function revisionName(revision: number): string {
  return `${String(revision).padStart(REVISION_DIGITS, '0')}.json`;
}

function parseJson(path: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (cause) {
    throw corrupt(path, `not JSON (truncated or edited by hand?): ${(cause as Error).message}`, cause);
  }
}

function checked<T>(path: string, raw: string, schema: z.ZodType<T>): T {
  const result = schema.safeParse(parseJson(path, raw));
  if (!result.success) {
    const issue = result.error.issues[0];
    throw corrupt(path, `unexpected content at ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

/** A reporter's file name; readable when short, collision-free by escaping (never contains `~`). */
function livenessName(reporter: string): string {
  const escape = (value: string): string => value.replace(/[^a-z0-9.-]/g, (character) => `_${character.codePointAt(0)?.toString(16)}_`);
  return `${escape(reporter)}.json`;
}

/** A (server, reporter) pair, the key of what a watch has reported. */
function pairKey(record: LivenessRecord): string {
  return `${record.server}\n${record.reporter}`;
}

/** Wakes a waiting watch: latched, so that a notification during a scan is not lost. */
class Waker {
  private pending = false;
  private resolve: (() => void) | undefined;

  notify(): void {
    this.pending = true;
    this.resolve?.();
  }

  async wait(clock: Clock, delayMs: number): Promise<void> {
    if (!this.pending) {
      let timer: Timer | undefined;
      await new Promise<void>((resolve) => {
        this.resolve = resolve;
        timer = clock.setTimer(delayMs, resolve);
      });
      timer?.cancel();
      this.resolve = undefined;
    }
    this.pending = false;
  }
}

export class FileStore implements Store {
  readonly directory: string;
  private readonly logDirectory: string;
  private readonly compactionDirectory: string;
  private readonly versionDirectory: string;
  private readonly livenessDirectory: string;
  private readonly tmpDirectory: string;
  private readonly clock: Clock;
  private readonly pollIntervalMs: number;
  private readonly compactEvery: number;
  private readonly livenessRetainMs: number;
  private state: State = emptyState();
  /** Serialises this instance's operations; other processes are serialised by the log itself. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** One per running watch: closes its fs watchers and wakes it to end. */
  private readonly releases = new Set<() => void>();
  /** The user directory and pool secrets (file-users.ts): apart from the change log. */
  private readonly userFiles: FileUsers;

  private constructor(options: FileStoreOptions) {
    this.directory = join(options.dataDir, 'store');
    this.logDirectory = join(this.directory, 'log');
    this.compactionDirectory = join(this.directory, 'compactions');
    this.versionDirectory = join(this.directory, 'versions');
    this.livenessDirectory = join(this.directory, 'liveness');
    this.tmpDirectory = join(this.directory, 'tmp');
    this.clock = options.clock ?? systemClock;
    this.pollIntervalMs = options.pollIntervalMs ?? FILE_STORE_DEFAULTS.pollIntervalMs;
    this.compactEvery = options.compactEvery ?? FILE_STORE_DEFAULTS.compactEvery;
    this.livenessRetainMs = options.livenessRetainMs ?? FILE_STORE_DEFAULTS.livenessRetainMs;
    assert(this.pollIntervalMs > 0 && this.compactEvery >= 1 && this.livenessRetainMs >= 0, 'file store options out of range');
    this.userFiles = new FileUsers({
      directory: this.directory,
      tmpDirectory: this.tmpDirectory,
      clock: this.clock,
      announce: (uri) => this.exclusive(() => this.commit(async () => ({ change: { kind: 'user', uri }, result: () => undefined }))),
      currentTopology: () =>
        this.exclusive(async () => {
          const state = await this.refresh();
          if (state.versions.length === 0) return undefined;
          const current = await this.readVersion(state, undefined);
          return { topology: current.topology, version: current.version };
        }),
    });
  }

  /** Opens (creating when absent) the store in `dataDir`; reads it through, so a corrupt store fails here. */
  static async open(options: FileStoreOptions): Promise<FileStore> {
    const store = new FileStore(options);
    if (options.mustExist) {
      try {
        await stat(store.logDirectory);
      } catch (cause) {
        throw new DnslbError('STORE_NOT_FOUND', `no store in ${options.dataDir} (publish a topology first, or pass --data-dir)`, { cause });
      }
    }
    for (const directory of [store.logDirectory, store.compactionDirectory, store.versionDirectory, store.livenessDirectory, store.tmpDirectory]) {
      try {
        await mkdir(directory, { recursive: true });
      } catch (cause) {
        throw new DnslbError('STORE_IO', `cannot create ${directory}: ${(cause as Error).message}`, { cause });
      }
    }
    await fsyncDirectory(store.directory);
    await removeStaleTemps(store.tmpDirectory);
    await store.exclusive(() => store.refresh());
    return store;
  }

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    assert(!this.closed, 'file store used after close()');
    const result = this.queue.then(operation);
    this.queue = result.catch(() => undefined);
    return result;
  }

  // ---- reading the log -------------------------------------------------------------------

  private async latestCompaction(): Promise<{ revision: number; path: string } | undefined> {
    let latest: { revision: number; path: string } | undefined;
    for (const name of await listDirectory(this.compactionDirectory)) {
      const match = LOG_NAME.exec(name);
      if (!match) continue;
      const revision = Number(match[1]);
      if (!latest || revision > latest.revision) latest = { revision, path: join(this.compactionDirectory, name) };
    }
    return latest;
  }

  private async readLogEntry(revision: number): Promise<LogEntry | undefined> {
    const path = join(this.logDirectory, revisionName(revision));
    const raw = await readBounded(path, limits.storeLogEntryBytesMax);
    if (raw === undefined) return undefined;
    const entry = checked(path, raw, logEntrySchema);
    if (entry.revision !== revision) throw corrupt(path, `holds revision ${entry.revision}, its name says ${revision}`);
    return entry;
  }

  /**
   * The changes after `revision`: a compaction to start from when the log no longer holds the next
   * entry, then log entries in order. Retries when a concurrent compaction removes files under it.
   */
  private async changesAfter(revision: number): Promise<{ base: Compaction | undefined; entries: LogEntry[] }> {
    for (let attempt = 1; ; attempt++) {
      const lastAttempt = attempt >= READ_ATTEMPTS_MAX;
      const revisions = (await listDirectory(this.logDirectory))
        .map((name) => LOG_NAME.exec(name)?.[1])
        .filter((match): match is string => match !== undefined)
        .map(Number)
        .filter((found) => found > revision)
        .sort((a, b) => a - b);
      if (revisions.length > limits.storeLogEntriesMax) throw corrupt(this.logDirectory, `${revisions.length} log entries, more than the limit of ${limits.storeLogEntriesMax}: compaction is not running`);
      let base: Compaction | undefined;
      let from = revision;
      if (revisions[0] !== revision + 1) {
        const latest = await this.latestCompaction();
        if (latest && latest.revision > revision) {
          const raw = await readBounded(latest.path, limits.storeCompactionBytesMax);
          if (raw === undefined) continue; // superseded by a newer compaction meanwhile
          base = checked(latest.path, raw, compactionSchema);
          if (base.revision !== latest.revision) throw corrupt(latest.path, `holds revision ${base.revision}, its name says ${latest.revision}`);
          from = base.revision;
        }
      }
      const pending = revisions.filter((found) => found > from);
      const gap = pending.findIndex((found, index) => found !== from + 1 + index);
      if (gap >= 0) {
        if (lastAttempt) throw corrupt(join(this.logDirectory, revisionName(from + 1 + gap)), 'missing: the log has a hole (files deleted by hand?)');
        continue;
      }
      const entries: LogEntry[] = [];
      let vanished = false;
      for (const found of pending) {
        const entry = await this.readLogEntry(found);
        if (!entry) {
          vanished = true; // compacted away while we read; start over from the compaction
          break;
        }
        entries.push(entry);
      }
      if (!vanished) return { base, entries };
      if (lastAttempt) throw corrupt(this.logDirectory, 'log entries keep vanishing while being read');
    }
  }

  private apply(state: State, entry: LogEntry): void {
    const change = entry.change;
    if (change.kind === 'published') {
      const expected = (state.versions.at(-1)?.version ?? 0) + 1;
      if (change.version !== expected) throw corrupt(join(this.logDirectory, revisionName(entry.revision)), `publishes version ${change.version}, expected ${expected}`);
      state.versions.push({ version: change.version, revision: entry.revision, publishedAtMs: entry.atMs, by: change.by, comment: change.comment });
    } else if (change.kind === 'user') {
      state.usersRevision = entry.revision;
    } else {
      state.adminStates.set(change.record.server, { ...change.record, revision: entry.revision });
    }
    state.revision = entry.revision;
  }

  /** Brings this.state up to the newest revision on disk. Call inside exclusive(). */
  private async refresh(): Promise<State> {
    const { base, entries } = await this.changesAfter(this.state.revision);
    let state = this.state;
    if (base) {
      state = {
        revision: base.revision,
        compactedRevision: base.revision,
        versions: base.versions,
        adminStates: new Map(base.adminStates.map((record) => [record.server, record])),
        usersRevision: base.usersRevision ?? 0,
      };
    } else if (entries.length > 0) {
      state = cloneState(state);
    }
    for (const entry of entries) this.apply(state, entry);
    this.state = state;
    return state;
  }

  // ---- writing the log -------------------------------------------------------------------

  /**
   * Appends one change at the next revision. `prepare` sees the fresh state and returns the change
   * (or throws, e.g. STORE_STALE_VERSION); when another writer takes the revision first, the state
   * is re-read and `prepare` runs again, so its checks always hold at the revision it commits.
   */
  private async commit<T>(prepare: (state: State) => Promise<{ change: LogEntry['change']; result: (entry: LogEntry) => T }>): Promise<T> {
    for (let attempt = 0; attempt < limits.storeCommitAttemptsMax; attempt++) {
      const state = await this.refresh();
      const { change, result } = await prepare(state);
      const entry: LogEntry = { format: FORMAT, revision: state.revision + 1, atMs: this.clock.nowMs(), change };
      const serialized = JSON.stringify(entry);
      if (Buffer.byteLength(serialized) > limits.storeLogEntryBytesMax) throw new DnslbError('STORE_TOO_LARGE', `the change is ${Buffer.byteLength(serialized)} bytes, more than the limit of ${limits.storeLogEntryBytesMax}`);
      if (await createExclusive(this.tmpDirectory, join(this.logDirectory, revisionName(entry.revision)), serialized)) {
        const next = cloneState(state);
        this.apply(next, entry);
        this.state = next;
        if (next.revision - next.compactedRevision >= this.compactEvery) await this.compact(next);
        return result(entry);
      }
    }
    throw new DnslbError('STORE_LOCKED', `gave up after ${limits.storeCommitAttemptsMax} attempts: other writers took every revision first`);
  }

  /**
   * Folds the log up to state.revision into compactions/<revision>.json. Order matters for crash
   * safety: version documents first (durable), then the compaction (created exclusively, durable),
   * and only then are the log entries it covers removed.
   */
  private async compact(state: State): Promise<void> {
    const present = new Set(await listDirectory(this.versionDirectory));
    let wroteVersions = false;
    for (const summary of state.versions) {
      const name = revisionName(summary.version);
      if (present.has(name)) continue;
      const entry = await this.readLogEntry(summary.revision);
      if (!entry || entry.change.kind !== 'published') {
        // Another compaction removed the entry after copying it; if the copy is there, carry on.
        if ((await readBounded(join(this.versionDirectory, name), limits.storeLogEntryBytesMax)) !== undefined) continue;
        return; // leave it: the read path will report the damage with the file's name
      }
      const document = { format: FORMAT, ...summary, topology: entry.change.topology };
      await replaceAtomically(this.tmpDirectory, join(this.versionDirectory, name), JSON.stringify(document), { syncDirectory: false });
      wroteVersions = true;
    }
    if (wroteVersions) await fsyncDirectory(this.versionDirectory);
    const compaction: Compaction = {
      format: FORMAT,
      revision: state.revision,
      versions: state.versions,
      adminStates: [...state.adminStates.values()],
      ...(state.usersRevision > 0 ? { usersRevision: state.usersRevision } : {}),
    };
    await createExclusive(this.tmpDirectory, join(this.compactionDirectory, revisionName(state.revision)), JSON.stringify(compaction));
    state.compactedRevision = state.revision;
    for (const name of await listDirectory(this.logDirectory)) {
      const match = LOG_NAME.exec(name);
      if (match && Number(match[1]) <= state.revision) await removeIfPresent(join(this.logDirectory, name));
    }
    for (const name of await listDirectory(this.compactionDirectory)) {
      const match = LOG_NAME.exec(name);
      if (match && Number(match[1]) < state.revision) await removeIfPresent(join(this.compactionDirectory, name));
    }
  }

  // ---- versions --------------------------------------------------------------------------

  async publish(topology: Topology, baseVersion: number, meta: { by: string; comment?: string }): Promise<PublishedVersion> {
    assert(Number.isInteger(baseVersion) && baseVersion >= 0, 'baseVersion is a version number');
    const comment = meta.comment ?? '';
    const document = publishedDocument(topology, { by: meta.by, comment });
    return this.exclusive(() =>
      this.commit(async (state) => {
        const current = state.versions.at(-1)?.version ?? 0;
        if (current !== baseVersion) {
          throw new DnslbError('STORE_STALE_VERSION', `the current version is ${current}, not the base version ${baseVersion}: someone published meanwhile; diff against version ${current} and publish again`);
        }
        return {
          change: { kind: 'published', version: current + 1, by: meta.by, comment, topology: document },
          result: (entry) => ({ version: current + 1, revision: entry.revision, publishedAtMs: entry.atMs, by: meta.by, comment, topology }),
        };
      }),
    );
  }

  currentVersion(): Promise<number> {
    return this.exclusive(async () => (await this.refresh()).versions.at(-1)?.version ?? 0);
  }

  listVersions(): Promise<VersionSummary[]> {
    return this.exclusive(async () => [...(await this.refresh()).versions]);
  }

  read(version?: number): Promise<PublishedVersion> {
    return this.exclusive(async () => this.readVersion(await this.refresh(), version));
  }

  private async readVersion(state: State, version: number | undefined): Promise<PublishedVersion> {
    const wanted = version ?? state.versions.at(-1)?.version;
    if (wanted === undefined) throw new DnslbError('STORE_NOT_FOUND', `nothing has been published in ${this.directory} yet`);
    const summary = state.versions.find((candidate) => candidate.version === wanted);
    if (!summary) throw new DnslbError('STORE_NOT_FOUND', `version ${wanted} does not exist (the versions are 1 to ${state.versions.at(-1)?.version ?? 0})`);
    // A compaction copies the document into versions/ before it removes the log entry: look there,
    // then in the log, then there again (the copy may have landed between the two looks).
    const versionPath = join(this.versionDirectory, revisionName(wanted));
    const logPath = join(this.logDirectory, revisionName(summary.revision));
    let path = versionPath;
    let raw = await readBounded(versionPath, limits.storeLogEntryBytesMax);
    let topology: unknown;
    if (raw === undefined) {
      const entry = await this.readLogEntry(summary.revision);
      if (entry?.change.kind === 'published' && entry.change.version === wanted) {
        path = logPath;
        topology = entry.change.topology;
      } else if (entry) {
        throw corrupt(logPath, `should publish version ${wanted}`);
      } else {
        raw = await readBounded(versionPath, limits.storeLogEntryBytesMax);
        if (raw === undefined) throw corrupt(versionPath, `missing: version ${wanted} is in neither ${versionPath} nor ${logPath}`);
      }
    }
    if (raw !== undefined) {
      const stored = checked(versionPath, raw, versionFileSchema);
      if (stored.version !== wanted) throw corrupt(versionPath, `holds version ${stored.version}, its name says ${wanted}`);
      topology = stored.topology;
    }
    try {
      return { ...summary, topology: fromObject(topology, path) };
    } catch (cause) {
      if (cause instanceof TopologyError) throw corrupt(path, `the stored topology of version ${wanted} does not validate:\n${cause.message}`, cause);
      throw cause;
    }
  }

  diff(fromVersion: number, toVersion: number): Promise<TopologyDiff> {
    return this.exclusive(async () => {
      const state = await this.refresh();
      const before = await this.readVersion(state, fromVersion);
      const after = await this.readVersion(state, toVersion);
      return diffTopologies(before.topology, after.topology);
    });
  }

  // ---- admin state -----------------------------------------------------------------------

  async setAdminState(server: string, adminState: AdminState, meta: { by: string; reason: string }): Promise<AdminStateRecord> {
    checkText('by', meta.by);
    checkText('reason', meta.reason);
    return this.exclusive(() =>
      this.commit(async (state) => {
        const current = state.versions.at(-1)?.version;
        const known = current === undefined ? [] : (await this.readVersion(state, current)).topology.pools.flatMap((pool) => pool.servers.map((candidate) => candidate.fqdn));
        if (!known.includes(server)) {
          throw new DnslbError('STORE_UNKNOWN_SERVER', `${server} is not a server of the current topology${current === undefined ? ' (nothing is published yet)' : ` (version ${current})`}`);
        }
        const record: AdminStateRecord = { server, state: adminState, by: meta.by, atMs: this.clock.nowMs(), reason: meta.reason };
        return { change: { kind: 'admin-state', record }, result: () => record };
      }),
    );
  }

  adminStates(): Promise<ReadonlyMap<string, AdminStateRecord>> {
    return this.exclusive(async () => new Map([...(await this.refresh()).adminStates].map(([server, record]) => [server, stripRevision(record)])));
  }

  // ---- liveness --------------------------------------------------------------------------

  /**
   * One file per reporter holding its whole view, replaced atomically on each report: a pool of N
   * costs N fsyncs per interval (not one per pair), and the store holds one report per reporter
   * however often they come; reports never enter the change log. The file is fsynced (no torn file
   * after a power cut) but not its directory: a crash may lose the newest report, leaving the
   * previous one, which expires on its own.
   */
  async reportLiveness(report: LivenessReport): Promise<void> {
    assert(!this.closed, 'file store used after close()');
    const parsed = livenessReportSchema.safeParse(report);
    assert(parsed.success, `invalid liveness report: ${parsed.error?.issues[0]?.message ?? ''}`);
    const text = JSON.stringify(parsed.data);
    if (Buffer.byteLength(text) > limits.storeLivenessBytesMax) throw new DnslbError('STORE_TOO_LARGE', `the liveness report of ${report.reporter} is ${Buffer.byteLength(text)} bytes, more than the limit of ${limits.storeLivenessBytesMax}`);
    await replaceAtomically(this.tmpDirectory, join(this.livenessDirectory, livenessName(report.reporter)), text, { syncDirectory: false });
  }

  /** Every report on disk, expired or not; deletes those expired for longer than livenessRetainMs. */
  private async readLiveness(): Promise<LivenessReport[]> {
    const nowMs = this.clock.nowMs();
    const reports: LivenessReport[] = [];
    for (const name of await listDirectory(this.livenessDirectory)) {
      if (!name.endsWith('.json')) continue;
      const path = join(this.livenessDirectory, name);
      // One file per (server, reporter) pair, as stores before one report per reporter kept them: stale by now.
      if (name.includes('~')) {
        await removeIfPresent(path);
        continue;
      }
      const raw = await readBounded(path, limits.storeLivenessBytesMax);
      if (raw === undefined) continue;
      const report = checked(path, raw, livenessReportSchema);
      if (livenessName(report.reporter) !== name) throw corrupt(path, `holds the report of ${report.reporter}, its name says otherwise`);
      // A report renewed between the read and the unlink is lost until the next one (≈ 1 s): harmless.
      if (report.atMs + report.ttlMs + this.livenessRetainMs < nowMs) await removeIfPresent(path);
      else reports.push(report);
    }
    return reports;
  }

  /** The unexpired reports, one record per (server, reporter). */
  private async freshLiveness(): Promise<LivenessRecord[]> {
    const nowMs = this.clock.nowMs();
    return (await this.readLiveness()).filter((report) => nowMs < report.atMs + report.ttlMs).flatMap(recordsOf);
  }

  async liveness(): Promise<LivenessRecord[]> {
    assert(!this.closed, 'file store used after close()');
    return this.freshLiveness();
  }

  // ---- users (file-users.ts) -------------------------------------------------------------

  async addUser(user: NewUser, meta: { by: string }): Promise<UserRecord> {
    assert(!this.closed, 'file store used after close()');
    checkText('by', meta.by);
    return this.userFiles.addUser(user, meta);
  }

  async updateUser(uri: string, update: UserUpdate, meta: { by: string }): Promise<UserRecord> {
    assert(!this.closed, 'file store used after close()');
    checkText('by', meta.by);
    return this.userFiles.updateUser(uri, update, meta);
  }

  async removeUser(uri: string): Promise<void> {
    assert(!this.closed, 'file store used after close()');
    return this.userFiles.removeUser(uri);
  }

  async user(uri: string): Promise<UserRecord | undefined> {
    assert(!this.closed, 'file store used after close()');
    return this.userFiles.user(uri);
  }

  async users(): Promise<UserRecord[]> {
    assert(!this.closed, 'file store used after close()');
    return this.userFiles.users();
  }

  async authSecret(pool: string, candidate: Buffer): Promise<Buffer> {
    assert(!this.closed, 'file store used after close()');
    assert(candidate.length === 32, 'a pool secret is 32 bytes');
    return this.userFiles.authSecret(pool, candidate);
  }

  // ---- snapshot and watch ----------------------------------------------------------------

  snapshot(): Promise<Snapshot> {
    return this.exclusive(async () => {
      const state = await this.refresh();
      const current = state.versions.length > 0 ? await this.readVersion(state, undefined) : undefined;
      const liveness = await this.freshLiveness();
      return { revision: state.revision, current, adminStates: new Map([...state.adminStates].map(([server, record]) => [server, stripRevision(record)])), liveness };
    });
  }

  /**
   * Changes after `afterRevision` (now when absent), across processes: fs.watch on the log and
   * liveness folders wakes it at once; a poll every pollIntervalMs covers a missed notification.
   * When the resume point has been compacted away, the compaction's state is replayed instead
   * (the latest admin state per server, every version): the outcome is the same, the steps between are not.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<StoreEvent> {
    assert(!this.closed, 'file store used after close()');
    const { signal } = options;
    const users = options.users ?? true;
    let cursor = options.afterRevision ?? (await this.currentRevision());
    const waker = new Waker();
    let logChanged = true;
    let livenessChanged = true;
    const watchers: FSWatcher[] = [];
    const watchFolder = (directory: string, onChange: () => void): void => {
      try {
        const watcher = watchDirectory(directory, () => {
          onChange();
          waker.notify();
        });
        watcher.on('error', () => undefined); // the poll carries on
        watchers.push(watcher);
      } catch {
        // No inotify (exhausted, or an exotic file system): the poll alone still delivers, later.
      }
    };
    watchFolder(this.logDirectory, () => (logChanged = true));
    watchFolder(this.livenessDirectory, () => (livenessChanged = true));
    // Abort and close() release the fs watchers at once, even when the consumer never pulls again
    // (a generator suspended at `yield` runs its finally only when resumed).
    const release = (): void => {
      for (const watcher of watchers.splice(0)) watcher.close();
      waker.notify();
    };
    signal?.addEventListener('abort', release);
    this.releases.add(release);
    /** Liveness as last reported to this watcher, by (server, reporter) file name. */
    const reported = new Map<string, { fingerprint: string; server: string; reporter: string }>();
    let nextLivenessCheckMs = 0;
    try {
      while (!this.closed && !signal?.aborted) {
        const polled = !logChanged && !livenessChanged;
        if (logChanged || polled) {
          logChanged = false;
          const { base, entries } = await this.changesAfter(cursor);
          if (base) {
            const replay: StoreEvent[] = [
              ...base.versions.filter((summary) => summary.revision > cursor).map((summary): StoreEvent => ({ kind: 'published', revision: summary.revision, version: summary.version })),
              ...base.adminStates.filter((record) => record.revision > cursor).map((record): StoreEvent => ({ kind: 'admin-state', revision: record.revision, record: stripRevision(record) })),
              // User changes are not kept one by one in a compaction (the directory is the user files).
              ...(users && (base.usersRevision ?? 0) > cursor ? [{ kind: 'users-reset', revision: base.usersRevision ?? 0 } as const] : []),
            ].sort((a, b) => a.revision - b.revision);
            for (const event of replay) yield event;
            cursor = base.revision;
          }
          for (const entry of entries) {
            const change = entry.change;
            if (change.kind === 'published') yield { kind: 'published', revision: entry.revision, version: change.version };
            else if (change.kind === 'admin-state') yield { kind: 'admin-state', revision: entry.revision, record: change.record };
            // The record as it is now: of two quick changes the watch may deliver the second one's
            // record twice, never the first one's after the second (the last event is the current record).
            else if (users) yield { kind: 'user', revision: entry.revision, uri: change.uri, record: await this.userFiles.user(change.uri) };
            cursor = entry.revision;
          }
        }
        const nowMs = this.clock.nowMs();
        if (livenessChanged || polled || nowMs >= nextLivenessCheckMs) {
          livenessChanged = false;
          nextLivenessCheckMs = nowMs + this.pollIntervalMs;
          const live = new Map<string, LivenessRecord>();
          for (const record of await this.freshLiveness()) live.set(pairKey(record), record);
          for (const [key, record] of live) {
            const fingerprint = `${record.state}|${record.topologyVersion}`;
            if (reported.get(key)?.fingerprint === fingerprint) continue;
            reported.set(key, { fingerprint, server: record.server, reporter: record.reporter });
            yield { kind: 'liveness', revision: cursor, record };
          }
          for (const [key, { server, reporter }] of [...reported]) {
            if (live.has(key)) continue;
            reported.delete(key);
            yield { kind: 'liveness-expired', revision: cursor, server, reporter };
          }
        }
        await waker.wait(this.clock, this.pollIntervalMs);
      }
    } finally {
      signal?.removeEventListener('abort', release);
      this.releases.delete(release);
      release();
    }
  }

  private currentRevision(): Promise<number> {
    return this.exclusive(async () => (await this.refresh()).revision);
  }

  /** Ends every watch of this instance; the data directory is left as it is. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    for (const release of this.releases) release();
  }
}

export function openFileStore(options: FileStoreOptions): Promise<FileStore> {
  return FileStore.open(options);
}
