// The whole system as the Lync documents describe it: `dnslb up` (DNS, every server, admin API) and
// the client simulator, both real processes, on loopback addresses of this test's own (127.0.12.x).
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blackhole } from '../helpers/blackhole.ts';
import { dig } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { startUp, type UpSystem } from '../helpers/up.ts';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';

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
  users: { aor: string; legacy: boolean; state: string; server: string | null; mode: string | null; failovers: number; redirects: number; lastError: string | null }[];
}

describe('the whole system', () => {
  let system: UpSystem;
  let work = '';

  /** Runs the simulator against the system's DNS; returns its JSON report. */
  async function simulate(...args: string[]): Promise<Report> {
    const file = join(work, `report-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
    const result = await system.cli('client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--json', file, '--summary-every', '60s', ...args);
    assert.equal(result.code, 0, `simulate failed: ${result.stderr}\n${result.stdout}`);
    return JSON.parse(await readFile(file, 'utf8')) as Report;
  }

  const poolStatus = async (): Promise<PoolStatus> => JSON.parse((await system.cli('pool', 'status', '--json')).stdout) as PoolStatus;
  const answers = async (name: string, source: string, type = 'A') => (await dig(system.dns, [name, type], source)).answer.map((record) => record.data).sort();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dnslb-e2e-'));
    system = await startUp(NET);
    await eventually(async () => assert.ok((await poolStatus()).servers.every((entry) => entry.status?.state === 'active')));
  });
  after(async () => system?.stop());

  test('Web services resolve to the VIP, not the servers; edge services resolve per edge server, in the external view only', async () => {
    assert.deepEqual(await answers('pool01.contoso.com', INSIDE), [`${NET}.11`, `${NET}.12`, `${NET}.13`]);
    assert.deepEqual(await answers('webint.contoso.com', INSIDE), [`${NET}.21`]);
    assert.deepEqual(await answers('lyncdiscoverinternal.contoso.com', INSIDE), [`${NET}.21`]);
    assert.deepEqual(await answers('webext.contoso.com', OUTSIDE), [`${NET}.22`]);
    assert.deepEqual(await answers('lyncdiscover.contoso.com', OUTSIDE), [`${NET}.22`]);
    // Access Edge, Web Conferencing Edge, A/V Edge: one address per edge server, outside only.
    assert.deepEqual(await answers('sip.contoso.com', OUTSIDE), [`${NET}.51`, `${NET}.52`]);
    assert.deepEqual(await answers('webconf.contoso.com', OUTSIDE), [`${NET}.53`, `${NET}.54`]);
    assert.deepEqual(await answers('av.contoso.com', OUTSIDE), [`${NET}.55`, `${NET}.56`]);
    assert.deepEqual(await answers('_sip._tls.contoso.com', OUTSIDE, 'SRV'), ['0 0 443 sip.contoso.com.']);
    for (const name of ['sip.contoso.com', 'webconf.contoso.com', 'av.contoso.com']) assert.deepEqual(await answers(name, INSIDE), [], `${name} inside`);
    // The internal interface of the edge pool, and the pool itself, only inside.
    assert.deepEqual(await answers('edgepool.contoso.com', INSIDE), [`${NET}.41`, `${NET}.42`]);
    assert.equal((await dig(system.dns, ['pool01.contoso.com', 'A'], OUTSIDE)).status, 'NXDOMAIN');
  });

  test('users sign in through DNS, each at its home server in primary mode, and call each other across servers', async () => {
    const report = await simulate('--users', '150', '--duration', '6s', '--calls-per-minute', '300', '--call-hold', '1s');
    assert.equal(report.totals.registered, 150);
    assert.equal(report.totals.primary, 150);
    assert.deepEqual(Object.keys(report.totals.registeredPerServer).sort(), FRONTENDS);
    // About two thirds of sign-ins land on a server that is not the user's home first, and are redirected.
    assert.ok(report.totals.redirects > 0);
    assert.ok(report.totals.calls.up > 0, JSON.stringify(report.totals.calls));
    assert.equal(report.totals.calls.failed, 0, JSON.stringify(report.totals.calls));
  });

  test('a server whose address silently drops packets: modern clients still sign in, through the connect timeout or staggered attempts', async () => {
    const restore = await blackhole(`${NET}.11`);
    try {
      for (const mode of [['--connect-timeout-ms', '500'], ['--staggered']]) {
        const report = await simulate('--users', '60', '--duration', '12s', '--backoff-base-ms', '500', ...mode);
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
});
