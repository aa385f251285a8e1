// An in-memory Store for tests of components that follow the store.
// TEST DOUBLE: the real file store (src/store/file-store.ts) is being written concurrently on the
// `store` branch; once merged, integration tests should use it instead of this. It honours the
// Store interface: compare-and-swap publish, revisions, snapshot, and watch resuming after a revision.
import type { Clock } from '../../src/shared/clock.ts';
import { DnslbError } from '../../src/shared/errors.ts';
import type { AdminState, AdminStateRecord, LivenessRecord, PublishedVersion, Snapshot, Store, StoreEvent, VersionSummary, WatchOptions } from '../../src/store/store.ts';
import type { Topology } from '../../src/topology/schema.ts';

export class MemoryStore implements Store {
  private revision = 0;
  private readonly versions: PublishedVersion[] = [];
  private readonly admin = new Map<string, AdminStateRecord>();
  private readonly reports = new Map<string, LivenessRecord>();
  private readonly events: StoreEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(private readonly clock: Clock) {}

  private emit(event: StoreEvent): void {
    this.events.push(event);
    for (const wake of [...this.waiters]) wake();
  }

  async publish(topology: Topology, baseVersion: number, meta: { by: string; comment?: string }): Promise<PublishedVersion> {
    const current = this.versions.length;
    if (current !== baseVersion) throw new DnslbError('STORE_STALE_VERSION', `current version is ${current}, not ${baseVersion}`);
    const published: PublishedVersion = { version: current + 1, publishedAtMs: this.clock.nowMs(), by: meta.by, comment: meta.comment ?? '', topology };
    this.versions.push(published);
    this.emit({ kind: 'published', revision: ++this.revision, version: published.version });
    return published;
  }

  async currentVersion(): Promise<number> {
    return this.versions.length;
  }

  async read(version?: number): Promise<PublishedVersion> {
    const found = this.versions[(version ?? this.versions.length) - 1];
    if (!found) throw new DnslbError('STORE_NOT_FOUND', `no version ${version ?? 'published'}`);
    return found;
  }

  async listVersions(): Promise<VersionSummary[]> {
    return this.versions.map(({ topology: _topology, ...summary }) => summary);
  }

  async setAdminState(server: string, state: AdminState, meta: { by: string; reason: string }): Promise<AdminStateRecord> {
    const record: AdminStateRecord = { server, state, by: meta.by, reason: meta.reason, atMs: this.clock.nowMs() };
    this.admin.set(server, record);
    this.emit({ kind: 'admin-state', revision: ++this.revision, record });
    return record;
  }

  async adminStates(): Promise<ReadonlyMap<string, AdminStateRecord>> {
    return new Map(this.admin);
  }

  async reportLiveness(record: LivenessRecord): Promise<void> {
    this.reports.set(`${record.server}\n${record.reporter}`, record);
    this.emit({ kind: 'liveness', revision: ++this.revision, record });
  }

  async liveness(): Promise<LivenessRecord[]> {
    const nowMs = this.clock.nowMs();
    return [...this.reports.values()].filter((record) => record.atMs + record.ttlMs > nowMs);
  }

  async snapshot(): Promise<Snapshot> {
    return { revision: this.revision, current: this.versions.at(-1), adminStates: await this.adminStates(), liveness: await this.liveness() };
  }

  async *watch(options: WatchOptions = {}): AsyncIterable<StoreEvent> {
    let after = options.afterRevision ?? this.revision;
    while (!this.closed && !options.signal?.aborted) {
      const next = this.events.find((event) => event.revision > after);
      if (next) {
        after = next.revision;
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiters.delete(wake);
          options.signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.waiters.add(wake);
        options.signal?.addEventListener('abort', wake);
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.waiters]) wake();
  }
}
