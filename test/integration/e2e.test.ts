// The whole system as the Lync documents describe it: `dnslb up` (DNS, every server, admin API) and
// the client simulator, both real processes, on loopback addresses of this test's own (127.0.12.x).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blackhole } from '../helpers/blackhole.ts';
import { dig, REPO } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { startUp, withoutDirectors, type UpSystem } from '../helpers/up.ts';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';
import { callAdmin } from '../../src/admin/http-api.ts';
import { isLegacyUser } from '../../src/client/simulate.ts';
import { planMoves } from '../../src/registrar/sequence.ts';
import { start, stopAll } from '../helpers/process.ts';

const NET = '127.0.12';
const INSIDE = `${NET}.200`;
const OUTSIDE = '127.0.1.1';
const FRONTENDS = [`${NET}.11:5060`, `${NET}.12:5060`, `${NET}.13:5060`];

interface Report {
  totals: {
    users: number;
    registered: number;
    failed: number;
    registeredPerServer: Record<string, number>;
    primary: number;
    backup: number;
    failovers: number;
    redirects: number;
    signInFailures: { modern: number; legacy: number };
    signInFailureReasons: { modern: Record<string, number>; legacy: Record<string, number> };
    calls: { attempted: number; up: number; failed: number; inProgress: number };
  };
  users: { aor: string; legacy: boolean; state: string; server: string | null; mode: string | null; registrations: number; failures: number; failovers: number; redirects: number; lastError: string | null; recent: string[] }[];
}

describe('the whole system', () => {
  let system: UpSystem;
  let work = '';

  /** Runs the simulator against the system's DNS; returns its JSON report. */
  async function simulate(...args: string[]): Promise<Report> {
    const file = join(work, `report-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
    const result = await system.cli('client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--report', file, '--summary-every', '60s', ...args);
    assert.equal(result.code, 0, `simulate failed: ${result.stderr}\n${result.stdout}`);
    return JSON.parse(await readFile(file, 'utf8')) as Report;
  }

  const poolStatus = async (): Promise<PoolStatus> => JSON.parse((await system.cli('pool', 'status', '--json')).stdout) as PoolStatus;
  const answers = async (name: string, source: string, type = 'A') => (await dig(system.dns, [name, type], source)).answer.map((record) => record.data).sort();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dnslb-e2e-'));
    system = await startUp(NET);
    await eventually(async () => assert.ok((await poolStatus()).servers.every((entry) => entry.status?.state === 'active')), { timeoutMs: 60_000 });
  });
  // Stops the system and anything a failed test left running (a simulator), by PID.
  after(async () => {
    await system?.stop();
    await stopAll();
  });

  test('Web services resolve to the VIP, not the servers; edge services resolve per edge server, in the external view only', async () => {
    await eventually(async () => assert.deepEqual(await answers('pool01.contoso.com', INSIDE), [`${NET}.11`, `${NET}.12`, `${NET}.13`]));
    assert.deepEqual(await answers('webint.contoso.com', INSIDE), [`${NET}.21`]);
    assert.deepEqual(await answers('lyncdiscoverinternal.contoso.com', INSIDE), [`${NET}.21`]);
    assert.deepEqual(await answers('webext.contoso.com', OUTSIDE), [`${NET}.22`]);
    assert.deepEqual(await answers('lyncdiscover.contoso.com', OUTSIDE), [`${NET}.22`]);
    // Access Edge, Web Conferencing Edge, A/V Edge: one address per edge server, outside only.
    assert.deepEqual(await answers('sip.contoso.com', OUTSIDE), [`${NET}.51`, `${NET}.52`]);
    assert.deepEqual(await answers('webconf.contoso.com', OUTSIDE), [`${NET}.53`, `${NET}.54`]);
    assert.deepEqual(await answers('av.contoso.com', OUTSIDE), [`${NET}.55`, `${NET}.56`]);
    assert.deepEqual(await answers('_sip._tls.contoso.com', OUTSIDE, 'SRV'), ['0 0 4443 sip.contoso.com.']);
    for (const name of ['sip.contoso.com', 'webconf.contoso.com', 'av.contoso.com']) assert.deepEqual(await answers(name, INSIDE), [], `${name} inside`);
    // The internal interface of the edge pool, and the pool itself, only inside.
    assert.deepEqual(await answers('edgepool.contoso.com', INSIDE), [`${NET}.41`, `${NET}.42`]);
    assert.equal((await dig(system.dns, ['pool01.contoso.com', 'A'], OUTSIDE)).status, 'NXDOMAIN');
  });

  test('users sign in through DNS, each at its home server in primary mode, and call each other across servers', async () => {
    const report = await simulate('--users', '150', '--sign-in-within', '60s', '--duration', '6s', '--calls-per-minute', '300', '--call-hold', '1s');
    assert.equal(report.totals.registered, 150, JSON.stringify(report.totals));
    assert.equal(report.totals.primary, 150);
    assert.deepEqual(Object.keys(report.totals.registeredPerServer).sort(), FRONTENDS);
    // About two thirds of sign-ins land on a server that is not the user's home first, and are redirected.
    assert.ok(report.totals.redirects > 0);
    assert.ok(report.totals.calls.up > 0, JSON.stringify(report.totals.calls));
    assert.equal(report.totals.calls.failed, 0, JSON.stringify(report.totals.calls));
  });

  test('over TLS as Lync clients do: _sipinternaltls SRV, certificates from the pool\'s private CA, calls through server-to-server TLS', async () => {
    const report = await simulate('--users', '90', '--sign-in-within', '60s', '--duration', '6s', '--transport', 'tls', '--ca', join(system.dataDir, 'tls', 'ca.pem'), '--calls-per-minute', '300', '--call-hold', '1s');
    assert.equal(report.totals.registered, 90, JSON.stringify(report.totals));
    assert.deepEqual(Object.keys(report.totals.registeredPerServer).sort(), [`${NET}.11:5061`, `${NET}.12:5061`, `${NET}.13:5061`]);
    assert.ok(report.totals.calls.up > 0 && report.totals.calls.failed === 0, JSON.stringify(report.totals.calls));
  });

  test('a server whose address silently drops packets: modern clients still sign in, through the connect timeout or staggered attempts', async () => {
    const restore = await blackhole(`${NET}.11`);
    try {
      for (const mode of [['--connect-timeout-ms', '500'], ['--staggered']]) {
        const report = await simulate('--users', '60', '--sign-in-within', '60s', '--duration', '2s', '--backoff-base-ms', '500', ...mode);
        assert.equal(report.totals.registered, 60, `${mode.join(' ')}: ${JSON.stringify(report.totals)}`);
        assert.equal(report.totals.registeredPerServer[`${NET}.11:5060`], undefined, 'nobody reached the silent server');
        // Sign-in attempts may fail on the way (a redirect to the silent home before the heartbeat
        // marks it down); what matters is that every modern user ends signed in elsewhere.
      }
    } finally {
      await restore();
    }
    // The silent server comes back into the pool once its packets flow again.
    await eventually(async () => {
      const fe2 = (await poolStatus()).servers.find((entry) => entry.server === 'fe2.contoso.com');
      const view = fe2?.status as unknown as { heartbeat: { peers: Record<string, { state: string }> } } | undefined;
      assert.equal(view?.heartbeat.peers['fe1.contoso.com']?.state, 'active');
    }, { timeoutMs: 30_000 });
  });

  type Resilience = { resilience: { drain: { phase: string } | null; handover: { batchSize: number; batches: { released: number }[]; handedOverTotal: Record<string, number> } } };
  const serverStatus = async (server: string) => (await poolStatus()).servers.find((entry) => entry.server === server)!;

  test('a blocked server: new sign-ins never reach it', async () => {
    assert.equal((await system.cli('server', 'block', 'fe3.contoso.com')).code, 0);
    try {
      await eventually(async () => assert.deepEqual(await answers('pool01.contoso.com', INSIDE), [`${NET}.11`, `${NET}.12`]));
      const report = await simulate('--users', '120', '--sign-in-within', '60s', '--duration', '2s');
      assert.equal(report.totals.registered, 120);
      assert.equal(report.totals.registeredPerServer[`${NET}.13:5060`], undefined, JSON.stringify(report.totals.registeredPerServer));
    } finally {
      assert.equal((await system.cli('server', 'unblock', 'fe3.contoso.com')).code, 0);
    }
    await eventually(async () => assert.deepEqual(await answers('pool01.contoso.com', INSIDE), [`${NET}.11`, `${NET}.12`, `${NET}.13`]));
  });

  test('drain with calls in progress: no call dropped, no new call through the draining server, drained reported; resume brings users back', async (t) => {
    const file = join(work, 'drain-report.json');
    // Runs until stopped (SIGTERM ends it and writes the report), so a slow machine cannot end the run early.
    const simulator = start(process.execPath, ['bin/dnslb.js', 'client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--users', '150', '--duration', '10m', '--calls-per-minute', '600', '--call-hold', '4s', '--summary-every', '60s', '--report', file], { cwd: REPO });
    // A failed assertion must not leave this simulator's users signed in for the next test.
    t.after(() => simulator.stop());
    const invitesAccepted = (entry: { status?: unknown }) => (entry.status as { proxy: { invitesAccepted: number } }).proxy.invitesAccepted;
    const upAtDrain = await eventually(async () => {
      const fe2 = await serverStatus('fe2.contoso.com');
      assert.ok((fe2.status?.dialogs.active ?? 0) >= 2, `fe2 has ${fe2.status?.dialogs.active} calls up`);
      return fe2.status!.dialogs.active;
    }, { timeoutMs: 30_000 });
    const drained = system.cli('server', 'drain', 'fe2.contoso.com', '--wait');
    // Once fe2 says it is draining, it takes on no new call. On a loaded machine the first status
    // seen may already be `drained` (150 users hand over in about two seconds): the count from then
    // on must not grow either.
    const acceptedAtDrain = await eventually(async () => {
      const fe2 = await serverStatus('fe2.contoso.com');
      assert.ok(fe2.status?.state === 'draining' || fe2.status?.state === 'drained', `fe2 is ${fe2.status?.state}`);
      return invitesAccepted(fe2);
    });
    const done = await drained;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /fe2\.contoso\.com drained/);
    const fe2 = await serverStatus('fe2.contoso.com');
    assert.equal(fe2.status?.state, 'drained');
    assert.equal(fe2.status?.bindings.bindings, 0);
    assert.equal(fe2.status?.dialogs.active, 0);
    assert.equal(invitesAccepted(fe2), acceptedAtDrain, 'no call of its clients started through fe2 once it was draining (calls to its users still there are delivered)');
    await simulator.stop(30_000);
    assert.equal(simulator.child.exitCode, 0, simulator.output());
    const report = JSON.parse(await readFile(file, 'utf8')) as Report & { totals: { calls: { dropped: number; byeOk: number; byeFailed: number; failedBy: Record<string, number> } } };
    assert.equal(report.totals.calls.dropped, 0, JSON.stringify(report.totals.calls));
    assert.equal(report.totals.calls.byeFailed, 0, JSON.stringify(report.totals.calls));
    // No call setup fails either: a caller still on the draining server is answered 302 and places the
    // call again from its next server; a callee still there gets it through the flow it holds.
    console.log(`# drain under the simulator: ${report.totals.calls.failed} of ${report.totals.calls.attempted} call setups failed ${JSON.stringify(report.totals.calls.failedBy)}`);
    assert.equal(report.totals.calls.failed, 0, JSON.stringify(report.totals.calls));
    assert.ok(report.totals.calls.byeOk > 0 && report.totals.calls.up > upAtDrain, JSON.stringify(report.totals.calls));
    assert.equal(report.totals.registered, 150);
    assert.equal(report.totals.registeredPerServer[`${NET}.12:5060`], undefined, 'nobody is on the drained server');
    assert.equal((await system.cli('server', 'resume', 'fe2.contoso.com')).code, 0);
    await eventually(async () => assert.equal((await serverStatus('fe2.contoso.com')).status?.state, 'active'));
  });

  test('commission a 4th server: about a quarter of the users move to it, in batches', async (t) => {
    const users = 200;
    const file = join(work, 'commission-report.json');
    // The users stay signed in until the test ends (a fixed duration would let them unregister
    // while the new server is still starting on a loaded machine); the simulator is stopped by PID.
    const simulator = start(process.execPath, ['bin/dnslb.js', 'client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--users', String(users), '--duration', '10m', '--summary-every', '60s', '--report', file], { cwd: REPO });
    // A failed assertion must not leave this simulator's users signed in for the next test.
    t.after(() => simulator.stop());
    const frontends = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
    const registered = async (servers: string[]) => (await poolStatus()).servers.filter((entry) => servers.includes(entry.server)).reduce((sum, entry) => sum + (entry.status?.bindings.bindingsPrimary ?? 0), 0);
    await eventually(async () => assert.equal(await registered(frontends), users), { timeoutMs: 30_000 });
    // No call of the earlier tests is still counted anywhere (their simulators have gone): a dialog
    // outliving its call keeps its users busy, and the hand-over defers a busy user for ever.
    // A server between two others (the caller's and the holder of a user moving back) ends a call
    // when the BYE's transaction through it ends — after 32 s (64 × T1) when no answer comes back
    // from a callee that was stopping too: the wait allows that.
    await eventually(async () => {
      const left = (await poolStatus()).servers.filter((entry) => (entry.status?.dialogs.active ?? 0) > 0).map((entry) => `${entry.server}: ${JSON.stringify(entry.status?.dialogs)}`);
      assert.deepEqual(left, [], 'dialogs counted after their simulators stopped');
    }, { timeoutMs: 60_000 });
    const plan = planMoves(Array.from({ length: users }, (_, index) => `sip:user${index + 1}@contoso.com`), { servers: frontends }, { servers: [...frontends, 'fe4.contoso.com'] });
    const text = (await readFile(system.topologyFile, 'utf8')).replace(`      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n`, `      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n      - { fqdn: fe4.contoso.com, ipv4: ${NET}.14 }\n`);
    const withFe4 = join(work, 'with-fe4.yaml');
    await writeFile(withFe4, text);
    assert.equal((await system.cli('topology', 'publish', withFe4)).code, 0);
    try {
      await eventually(async () => {
        assert.equal((await serverStatus('fe4.contoso.com')).status?.bindings.bindingsPrimary, plan.moved);
        assert.equal(await registered([...frontends, 'fe4.contoso.com']), users);
      }, { timeoutMs: 90_000 });
    } catch (error) {
      // Where are the users that did not arrive? Each server's view of them, then the simulator's.
      const token = (await readFile(join(system.dataDir, 'admin-token'), 'utf8')).trim();
      const movers = new Set(planMoves(Array.from({ length: users }, (_, index) => `sip:user${index + 1}@contoso.com`), { servers: frontends }, { servers: [...frontends, 'fe4.contoso.com'] }, { listMoves: true }).moves!.map((move) => move.user));
      const seen = new Map<string, string[]>();
      for (const server of [...frontends, 'fe4.contoso.com']) {
        const endpoint = JSON.parse(await readFile(join(system.dataDir, 'servers', `${server}.json`), 'utf8')) as { url: string };
        const page = (await callAdmin(endpoint.url, token, 'GET', '/users')) as { users: { user: string; mode: string; home: string | null }[] };
        for (const entry of page.users) seen.set(entry.user, [...(seen.get(entry.user) ?? []), `${server}:${entry.mode} (home ${entry.home})`]);
      }
      const missing = [...movers].filter((user) => !(seen.get(user) ?? []).some((where) => where.startsWith('fe4.contoso.com:primary')));
      const lines = missing.map((user) => `${user}: ${(seen.get(user) ?? ['nowhere']).join(', ')}`);
      for (const entry of (await poolStatus()).servers) lines.push(`${entry.server}: ${JSON.stringify({ state: entry.status?.state, bindings: entry.status?.bindings, handover: (entry.status as unknown as Resilience | undefined)?.resilience.handover, heartbeat: (entry.status as unknown as { heartbeat?: unknown } | undefined)?.heartbeat })}`);
      await simulator.stop();
      const report = JSON.parse(await readFile(file, 'utf8').catch(() => '{"users":[]}')) as Report;
      for (const user of report.users.filter((entry) => missing.includes(entry.aor))) lines.push(`simulator: ${JSON.stringify(user)}`);
      lines.push(`simulator output: ${simulator.output().slice(-4000)}`);
      throw new Error(`${(error as Error).message}\n${lines.join('\n')}`, { cause: error });
    }
    assert.ok(plan.moved > users * 0.15 && plan.moved < users * 0.35, `${plan.moved} of ${users}`);
    for (const server of frontends) {
      const handover = ((await serverStatus(server)).status as unknown as Resilience).resilience.handover;
      assert.ok(handover.batches.every((batch) => batch.released <= handover.batchSize), JSON.stringify(handover.batches));
    }
    const handedOver = await Promise.all(frontends.map(async (server) => ((await serverStatus(server)).status as unknown as Resilience).resilience.handover.handedOverTotal['commission'] ?? 0));
    assert.equal(handedOver.reduce((sum, count) => sum + count, 0), plan.moved, 'exactly the planned users were handed over');
    assert.equal(simulator.child.exitCode, null, `the simulator kept running: ${simulator.output()}`);
    await simulator.stop();
  });
});

describe('a server dies: modern clients fail over, legacy clients do not until health-aware DNS drops it', () => {
  const NET2 = '127.0.13';
  let system: UpSystem;
  let work = '';

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dnslb-e2e-legacy-'));
    // The first server in DNS order is always fe1 (order: fixed); health-aware answers are off at
    // first, as in a Lync deployment whose DNS knows nothing of server health; the killed server stays down.
    // No Directors: the SRV records name pool01, so a legacy client's one address is fe1 (with
    // Directors it would be a Director, which redirects it to a live server).
    system = await startUp(NET2, {
      edit: (text) =>
        withoutDirectors(text)
          .replace('dns: { order: rotate, maxRecords: 0, ttl: 60, healthAware: true }', 'dns: { order: fixed, maxRecords: 0, ttl: 5, healthAware: false }')
          .replace('supervisor: { restartDelayMs: 2000 }', 'supervisor: { restartDelayMs: 600000 }'),
    });
  });
  after(async () => {
    await system?.stop();
    await stopAll();
  });

  test('300 modern and 100 legacy users; SIGKILL of the first server in DNS order', async (t) => {
    const status = async (): Promise<PoolStatus> => JSON.parse((await system.cli('pool', 'status', '--json')).stdout) as PoolStatus;
    const onServers = (current: PoolStatus, servers: string[]) =>
      current.servers.filter((entry) => servers.includes(entry.server)).reduce((sum, entry) => sum + (entry.status?.bindings.bindings ?? 0), 0);
    await eventually(async () => assert.ok((await status()).servers.every((entry) => entry.status?.state === 'active')), { timeoutMs: 60_000 });
    const file = join(work, 'report.json');
    const simulator = start(process.execPath, ['bin/dnslb.js', 'client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--users', '400', '--legacy-share', '25%', '--duration', '10m', '--backoff-base-ms', '500', '--backoff-max-ms', '2000', '--summary-every', '60s', '--report', file], { cwd: REPO });
    // A failed assertion must not leave this simulator's users signed in for the next test.
    t.after(() => simulator.stop());
    const frontends = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
    await eventually(async () => assert.equal(onServers(await status(), frontends), 400), { timeoutMs: 30_000 });

    // Who is on fe1 now: the legacy ones among them will have to sign in again, and will try fe1 only.
    const before = await status();
    const fe1 = before.servers.find((entry) => entry.server === 'fe1.contoso.com')!;
    const endpoint = JSON.parse(await readFile(join(system.dataDir, 'servers', 'fe1.contoso.com.json'), 'utf8')) as { url: string };
    const token = (await readFile(join(system.dataDir, 'admin-token'), 'utf8')).trim();
    const onFe1 = new Set(((await callAdmin(endpoint.url, token, 'GET', '/users')) as { users: { user: string }[] }).users.map((entry) => entry.user));
    const legacyUsers = new Set(Array.from({ length: 400 }, (_, index) => index).filter((index) => isLegacyUser(index, 400, 100)).map((index) => `sip:user${index + 1}@contoso.com`));
    const legacyOnFe1 = [...onFe1].filter((user) => legacyUsers.has(user));
    assert.ok(legacyOnFe1.length > 0 && legacyOnFe1.length < 100, `${legacyOnFe1.length} legacy users on fe1`);
    process.kill(fe1.process!.pid!, 'SIGKILL');

    // Every user not on fe1, and every modern user that was, ends on fe2/fe3; the legacy users that were
    // on fe1 cannot sign in while DNS still answers fe1 first: exactly they are missing.
    const survivors = ['fe2.contoso.com', 'fe3.contoso.com'];
    await eventually(async () => assert.equal(onServers(await status(), survivors), 400 - legacyOnFe1.length), { timeoutMs: 30_000 });
    assert.deepEqual((await dig(system.dns, ['pool01.contoso.com', 'A'], `${NET2}.200`)).answer.map((record) => record.data), [`${NET2}.11`, `${NET2}.12`, `${NET2}.13`]);

    // Health-aware DNS: a new version turns it on; fe1 leaves the answers and the legacy users sign in.
    const text = (await readFile(system.topologyFile, 'utf8')).replace('dns: { order: fixed, maxRecords: 0, ttl: 5, healthAware: false }', 'dns: { order: fixed, maxRecords: 0, ttl: 5, healthAware: true }');
    const healthAware = join(work, 'health-aware.yaml');
    await writeFile(healthAware, text);
    assert.equal((await system.cli('topology', 'publish', healthAware)).code, 0);
    await eventually(async () => assert.deepEqual((await dig(system.dns, ['pool01.contoso.com', 'A'], `${NET2}.200`)).answer.map((record) => record.data), [`${NET2}.12`, `${NET2}.13`]));
    await eventually(async () => assert.equal(onServers(await status(), survivors), 400), { timeoutMs: 30_000 });

    await simulator.stop(30_000);
    assert.equal(simulator.child.exitCode, 0, simulator.output());
    const report = JSON.parse(await readFile(file, 'utf8')) as Report;
    const modern = report.users.filter((user) => !user.legacy);
    const legacy = report.users.filter((user) => user.legacy);
    assert.equal(modern.length, 300);
    assert.equal(legacy.length, 100);
    assert.ok(modern.every((user) => user.state === 'registered' && user.server !== `${NET2}.11:5060`), 'every modern user ends registered elsewhere');
    assert.ok(legacy.every((user) => user.state === 'registered' && user.server !== `${NET2}.11:5060`), 'with fe1 out of DNS, every legacy user signed in');
    // The report says what happened to the legacy users meanwhile: those that were on fe1 failed to
    // sign in (refused at fe1, or — a sign-in in flight when fe1 died — the flow closed under it) and
    // signed in again once fe1 left DNS; the others had no failure after their first sign-in (on a
    // loaded machine that first sign-in may fail once before fe1 dies — a DNS question timing out — and
    // be retried: registered once, failures 1; the users' `recent` steps say).
    for (const user of legacy) {
      if (onFe1.has(user.aor)) {
        assert.ok(user.failures > 0 && user.registrations >= 2, `${user.aor} was on fe1: ${JSON.stringify(user)}`);
        assert.match(user.lastError ?? '', /CLIENT_CONNECT|CLIENT_FLOW/, `${user.aor} was on fe1: ${JSON.stringify(user)}`);
      } else assert.ok(user.failures === 0 || user.registrations === 1, `${user.aor} was not on fe1, yet failed to sign in after its first sign-in: ${JSON.stringify(user)}`);
    }
    assert.ok(report.totals.signInFailures.legacy >= legacyOnFe1.length);
    assert.ok((report.totals.signInFailureReasons.legacy['CLIENT_CONNECT (refused)'] ?? 0) > 0);
  });
});
