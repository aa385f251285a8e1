// `dnslb up FILE --store etcd://…` with a real etcd (Debian's etcd-server): the same embedded
// supervisor as on the file store (DNS and every server its own child, the admin API), but the
// topology, admin states and liveness live in etcd, so the distributed-mode verbs (`--store
// etcd://…`) and the running system's (`--data-dir`) see one pool. Also: etcd unreachable at start
// (a clear error, nothing started), and etcd going away while running (the children keep their
// last state and follow etcd again once it is back). On loopback 127.0.60.x.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runDnslb } from '../helpers/cli.ts';
import { dig, REPO } from '../helpers/dns-process.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/free-port.ts';
import { stopAll } from '../helpers/process.ts';
import { exampleTopology, startUp, type UpSystem } from '../helpers/up.ts';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';

const NET = '127.0.60';
const FRONTENDS = [`${NET}.11`, `${NET}.12`, `${NET}.13`];

interface StoreStatus {
  servers: { server: string; adminState: { state: string } | null }[];
}

/** The PIDs of a process's children (Linux), to prove that none is left once it has stopped. */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('dnslb up --store etcd://', () => {
  let etcd: EtcdServer;
  let system: UpSystem;
  let url = '';
  let work = '';

  /** Through the running system's admin API (--data-dir). */
  const status = async (): Promise<PoolStatus> => {
    const result = await system.cli('pool', 'status', '--json');
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PoolStatus;
  };
  /** From etcd alone (--store), as on any machine of a distributed pool. */
  const storeStatus = async (): Promise<StoreStatus> => {
    const result = await system.cli('pool', 'status', '--store', url, '--json');
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as StoreStatus;
  };
  const pool = async () => (await dig(system.dns, ['pool01.contoso.com', 'A'], `${NET}.200`)).answer.map((record) => record.data).sort();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dnslb-up-etcd-'));
    etcd = await startEtcd({ address: `${NET}.250` });
    url = `${etcd.url}/up-etcd`;
    system = await startUp(NET, { args: ['--store', url] });
  });
  after(async () => {
    await system?.stop();
    await stopAll();
    await etcd?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('publishes the topology into etcd and runs every child on it: DNS answers the pool, the data dir holds no store', async () => {
    const output = system.process.output();
    assert.match(output, new RegExp(`published \\S+ as version 1 in ${url.replaceAll('/', '\\/').replaceAll('.', '\\.')}`));
    const versions = await system.cli('topology', 'versions', '--store', url);
    assert.equal(versions.code, 0, versions.stderr);
    assert.match(versions.stdout, /^\s+1 .*dnslb up /m);
    // The file store was not created: the data dir has the admin token and the children's endpoints only.
    assert.equal(existsSync(join(system.dataDir, 'store')), false, 'no file store in the data dir');
    assert.ok(existsSync(join(system.dataDir, 'admin-token')));
    await eventually(async () => {
      const current = await status();
      assert.ok(current.servers.every((entry) => entry.status?.state === 'active'), JSON.stringify(current.servers.map((entry) => [entry.server, entry.status?.state, entry.error])));
      assert.equal(current.dns?.state, 'running');
    }, { timeoutMs: 60_000 });
    await eventually(async () => assert.deepEqual(await pool(), FRONTENDS));
    // A second `up` of the same file against the same etcd publishes nothing.
    const again = await runDnslb(['up', system.topologyFile, '--store', url, '--publish-only', '--data-dir', join(work, 'other')], { cwd: REPO });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /is already version 1 in etcd:\/\/.*: nothing to publish/);
  });

  test('a client registers through DNS', async () => {
    const report = join(work, 'report.json');
    const result = await system.cli('client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--users', '20', '--sign-in-within', '60s', '--duration', '1s', '--report', report, '--summary-every', '60s');
    assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`);
    const totals = (JSON.parse(await readFile(report, 'utf8')) as { totals: { users: number; registered: number; registeredPerServer: Record<string, number> } }).totals;
    assert.equal(totals.registered, 20, JSON.stringify(totals));
  });

  test('server drain --store etcd:// takes the server out of the DNS answer and both pool statuses show it; resume brings it back', async () => {
    const drain = await system.cli('server', 'drain', 'fe1.contoso.com', '--store', url, '--reason', 'patch');
    assert.equal(drain.code, 0, drain.stderr);
    await eventually(async () => assert.deepEqual(await pool(), FRONTENDS.slice(1)));
    assert.equal((await storeStatus()).servers.find((entry) => entry.server === 'fe1.contoso.com')?.adminState?.state, 'draining');
    await eventually(async () => {
      const fe1 = (await status()).servers.find((entry) => entry.server === 'fe1.contoso.com');
      assert.equal(fe1?.adminState?.state, 'draining');
      assert.match(String(fe1?.status?.state), /^drain/, 'the server follows etcd');
      assert.equal(fe1?.hlb?.desired, 'drain', 'HAProxy on the Web services VIP follows etcd');
    });
    // Through the admin API of `up` (--data-dir): it writes etcd too.
    const resume = await system.cli('server', 'resume', 'fe1.contoso.com');
    assert.equal(resume.code, 0, resume.stderr);
    assert.equal((await storeStatus()).servers.find((entry) => entry.server === 'fe1.contoso.com')?.adminState?.state ?? 'active', 'active');
    await eventually(async () => assert.deepEqual(await pool(), FRONTENDS));
  });

  test('a SIGKILLed server is restarted by the supervisor and follows etcd again', async () => {
    const before = await status();
    const victim = before.servers.find((entry) => entry.server === 'fe2.contoso.com')!.process!.pid!;
    process.kill(victim, 'SIGKILL');
    const after = await eventually(async () => {
      const entry = (await status()).servers.find((candidate) => candidate.server === 'fe2.contoso.com');
      assert.ok(entry?.process?.pid !== undefined && entry.process.pid !== victim, `fe2 pid ${entry?.process?.pid}`);
      assert.equal(entry.status?.state, 'active');
      return entry;
    }, { timeoutMs: 30_000 });
    assert.equal(after.process?.restarts, 1);
    await eventually(async () => assert.deepEqual(await pool(), FRONTENDS));
  });

  test('etcd going away: DNS keeps answering and every child keeps running; once etcd is back an admin action reaches DNS and HAProxy, a new version adds its server', async () => {
    const pids = (await status()).servers.map((entry) => entry.process?.pid);
    const stoppedAt = Date.now();
    await etcd.stop();
    try {
      // Through a few follow retries and past the liveness reports' TTL (3 heartbeat intervals of
      // 1 s): DNS keeps answering from its last state, never an empty pool; once every report has
      // expired there is no evidence against any server, and it answers the whole pool.
      while (Date.now() - stoppedAt < 4000) {
        assert.ok((await pool()).length > 0, 'DNS answers the pool');
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await eventually(async () => assert.deepEqual(await pool(), FRONTENDS));
      assert.ok(alive(system.process.pid), 'dnslb up still runs');
      for (const pid of pids) assert.ok(pid !== undefined && alive(pid), `child ${pid} still runs`);
    } finally {
      await etcd.start();
    }
    await eventually(async () => {
      const block = await system.cli('server', 'block', 'fe3.contoso.com', '--store', url);
      assert.equal(block.code, 0, block.stderr);
    }, { timeoutMs: 30_000 });
    await eventually(async () => assert.deepEqual(await pool(), FRONTENDS.slice(0, 2)), { timeoutMs: 30_000 });
    await eventually(async () => {
      const fe3 = (await status()).servers.find((entry) => entry.server === 'fe3.contoso.com');
      assert.equal(fe3?.adminState?.state, 'blocked');
      assert.equal(fe3?.hlb?.desired, 'maint', 'HAProxy follows etcd again');
    }, { timeoutMs: 30_000 });
    assert.equal((await system.cli('server', 'unblock', 'fe3.contoso.com', '--store', url)).code, 0);
    await eventually(async () => assert.deepEqual(await pool(), FRONTENDS));
    assert.deepEqual((await status()).servers.map((entry) => entry.process?.pid), pids, 'no child was restarted');
    // `up` itself follows etcd again: a version published from anywhere gets its new server started.
    const edited = (await readFile(system.topologyFile, 'utf8')).replace(
      `      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n`,
      `      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n      - { fqdn: fe4.contoso.com, ipv4: ${NET}.14 }\n`,
    );
    const file = join(work, 'with-fe4.yaml');
    await writeFile(file, edited);
    const published = await system.cli('topology', 'publish', file, '--store', url);
    assert.equal(published.code, 0, published.stderr);
    await eventually(async () => assert.equal((await status()).servers.find((entry) => entry.server === 'fe4.contoso.com')?.status?.state, 'active'), { timeoutMs: 60_000 });
    await eventually(async () => assert.deepEqual(await pool(), [...FRONTENDS, `${NET}.14`]));
  });

  test('SIGTERM stops every child: no process is left', async () => {
    const children = await childrenOf(system.process.pid);
    assert.ok(children.length >= 9, `dns, 8 servers (and HAProxy): ${children.join(' ')}`);
    await system.stop();
    for (const pid of children) assert.equal(alive(pid), false, `child ${pid} is gone`);
    assert.equal(existsSync(join(system.dataDir, 'admin.json')), false);
  });
});

describe('dnslb up --store etcd:// where no etcd answers', () => {
  test('exits with STORE_UNAVAILABLE naming the endpoint, having started nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dnslb-up-etcd-none-'));
    try {
      const dnsPort = await freePort(`${NET}.1`);
      const file = join(dir, 'topology.yaml');
      await writeFile(file, await exampleTopology(NET, dnsPort));
      const endpoint = `${NET}.251:${await freePort(`${NET}.251`)}`;
      const dataDir = join(dir, 'data');
      const run = await runDnslb(['up', file, '--store', `etcd://${endpoint}`, '--data-dir', dataDir, '--admin-listen', '127.0.0.1:0'], { cwd: REPO });
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, new RegExp(`STORE_UNAVAILABLE: .*${endpoint.replaceAll('.', '\\.')}`));
      assert.doesNotMatch(run.stdout, /published|admin API|running/);
      // Nothing was started: no admin endpoint, no child wrote its own, DNS does not answer.
      assert.equal(existsSync(join(dataDir, 'admin.json')), false);
      assert.equal(existsSync(join(dataDir, 'servers')), false);
      const answer = await dig({ address: `${NET}.1`, port: dnsPort }, ['pool01.contoso.com', 'A', '+time=1'], `${NET}.200`).catch((error: unknown) => error as Error);
      assert.ok(answer instanceof Error || answer.status !== 'NOERROR', 'no DNS server answers');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
