// The cost of liveness reports in the store for one pool of N servers (12 by default: Lync 2013's
// largest pool), each reporting every second, in two layouts:
//   pairs — one record per (server, reporter) pair, N×N writes per interval: how reports were
//           stored before one report per reporter (each pair was its own file / etcd key + lease);
//   views — one report per reporter holding its whole view, N writes per interval (the store now).
// File store: fsync calls counted in this process (FileHandle.sync/datasync). etcd (Debian's
// etcd-server, started here on 127.0.30.x): WAL fsyncs, puts and lease grants from its /metrics.
// Usage: npm run bench:liveness -- (or npx tsx bench/liveness-store.ts) [--servers 12] [--seconds 10] [--backend file|etcd|both]
// Writes the table to bench/RESULTS.md ("Liveness storage").
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openEtcdStore } from '../src/store/etcd-store.ts';
import { openFileStore } from '../src/store/file-store.ts';
import { reportOf, recordsOf, type LivenessReport, type Store } from '../src/store/store.ts';
import { startEtcd } from '../test/helpers/etcd.ts';
import { machineLine, writeSection } from './results.ts';

const { values } = parseArgs({ options: { servers: { type: 'string', default: '12' }, seconds: { type: 'string', default: '10' }, backend: { type: 'string', default: 'both' } } });
const SERVERS = Number(values.servers);
const SECONDS = Number(values.seconds);
const BACKEND = values.backend ?? 'both';
if (!(SERVERS >= 2 && SECONDS >= 1 && ['file', 'etcd', 'both'].includes(BACKEND))) throw new Error('usage: --servers N≥2 --seconds S≥1 --backend file|etcd|both');

type Layout = 'pairs' | 'views';
const names = Array.from({ length: SERVERS }, (_, index) => `fe${index + 1}.bench.test`);

/** Each server reports every second for SECONDS seconds, the reporters concurrently; resolves with the writes made. */
async function load(store: Store, layout: Layout): Promise<number> {
  let writes = 0;
  for (let second = 0; second < SECONDS; second++) {
    const startedMs = Date.now();
    await Promise.all(names.map(async (reporter) => {
      const report: LivenessReport = { reporter, atMs: Date.now(), ttlMs: 3000, topologyVersion: 1, states: names.map((server) => ({ server, state: 'active' as const })) };
      if (layout === 'views') {
        await store.reportLiveness(report);
        writes++;
      } else {
        for (const record of recordsOf(report)) {
          await store.reportLiveness(reportOf({ ...record, reporter: `${record.reporter}~${record.server}` }));
          writes++;
        }
      }
    }));
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - startedMs))));
  }
  return writes;
}

// ---- file store: count fsyncs in this process -----------------------------------------------
let fsyncs = 0;
{
  const probe = join(tmpdir(), `dnslb-bench-probe-${process.pid}`);
  const handle = await open(probe, 'w');
  const proto = Object.getPrototypeOf(handle) as { sync: () => Promise<void>; datasync: () => Promise<void> };
  await handle.close();
  await rm(probe);
  for (const method of ['sync', 'datasync'] as const) {
    const original = proto[method];
    proto[method] = function (this: unknown) {
      fsyncs++;
      return original.call(this);
    };
  }
}

const rows: string[] = [];
const rate = (count: number) => (count / SECONDS).toFixed(1);

if (BACKEND !== 'etcd') {
  for (const layout of ['pairs', 'views'] as const) {
    const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-bench-liveness-'));
    const store = await openFileStore({ dataDir });
    const before = fsyncs;
    const writes = await load(store, layout);
    const count = fsyncs - before;
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
    rows.push(`| file | ${layout} | ${rate(writes)} | ${rate(count)} fsync/s | — | — |`);
    console.log(`file ${layout}: ${rate(writes)} writes/s, ${rate(count)} fsync/s`);
  }
}

// ---- etcd: its own counters ------------------------------------------------------------------
async function etcdCounters(endpoint: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  const value = (name: string): number => {
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
    return line ? Number(line.split(' ')[1]) : 0;
  };
  return { walFsyncs: value('etcd_disk_wal_fsync_duration_seconds_count'), puts: value('etcd_mvcc_put_total'), proposals: value('etcd_server_proposals_committed_total') };
}

if (BACKEND !== 'file') {
  const etcd = await startEtcd();
  try {
    for (const layout of ['pairs', 'views'] as const) {
      const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: `/bench-${layout}/` });
      const before = await etcdCounters(etcd.endpoint);
      const writes = await load(store, layout);
      const after = await etcdCounters(etcd.endpoint);
      await store.close();
      const delta = (key: string) => after[key]! - before[key]!;
      rows.push(`| etcd | ${layout} | ${rate(writes)} | ${rate(delta('walFsyncs'))} WAL fsync/s | ${rate(delta('puts'))} | ${rate(delta('proposals'))} |`);
      console.log(`etcd ${layout}: ${rate(writes)} reports/s, ${rate(delta('walFsyncs'))} WAL fsync/s, ${rate(delta('puts'))} puts/s, ${rate(delta('proposals'))} raft proposals/s`);
    }
  } finally {
    await etcd.dispose();
  }
}

const command = `npx tsx bench/liveness-store.ts --servers ${SERVERS} --seconds ${SECONDS} --backend ${BACKEND}`;
await writeSection('Liveness storage', `
${machineLine()}

\`${command}\` (under \`flock /tmp/dnslb-integration.lock\`). One pool of ${SERVERS} servers, each reporting
its view of all ${SERVERS} every second for ${SECONDS} s. *pairs*: one record per (server, reporter), ${SERVERS}×${SERVERS}
writes per interval — how liveness was stored before; *views*: one report per reporter holding its whole
view — how it is stored now (src/store/README.md "Liveness"). File store: fsync calls of this process;
etcd: its own counters (WAL fsyncs — etcd batches several proposals per fsync —, mvcc puts, committed
raft proposals: each report is a lease grant and a put, and each replaced report's lease is revoked when it expires).

| backend | layout | reports written/s | fsyncs | etcd puts/s | etcd proposals/s |
|---|---|---|---|---|---|
${rows.join('\n')}
`);
