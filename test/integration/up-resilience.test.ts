// The issue "Pool resilience" under `dnslb up` (127.0.16.x): the quorum guard refuses drain, stop
// and decommission through the CLI when the pool would fall below quorum, and --force overrides;
// then, with 300 real UserAgents registered, `dnslb server decommission fe3` publishes a version
// without it — fe3 drains, reports drained, the supervisor stops its process, DNS stops answering
// it, and its users are on fe1 and fe2 exactly as `dnslb plan remove fe3` said.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dig } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { actualFlows, flowsObject, planFlows } from '../helpers/plan-cli.ts';
import { startFleet, type Fleet } from '../helpers/ua-fleet.ts';
import { startUp, type UpSystem } from '../helpers/up.ts';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';

const NET = '127.0.16';
const FRONTENDS = [`${NET}.11`, `${NET}.12`, `${NET}.13`];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];

describe('pool resilience under dnslb up: the quorum guard and decommission', () => {
  let system: UpSystem;
  let fleet: Fleet | undefined;
  const status = async (): Promise<PoolStatus> => {
    const result = await system.cli('pool', 'status', '--json');
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PoolStatus;
  };
  const entry = async (server: string) => (await status()).servers.find((candidate) => candidate.server === server);
  const poolAnswer = async () => (await dig(system.dns, ['pool01.contoso.com', 'A'], `${NET}.200`)).answer.map((record) => record.data).sort();
  /** Every frontend active and available in the pool admin's view (process, admin state, liveness). */
  const frontendsReady = async (servers = SERVERS) => eventually(async () => {
    const current = await status();
    for (const server of servers) {
      const found = current.servers.find((candidate) => candidate.server === server);
      assert.ok(found?.status?.state === 'active' && found.available, `${server}: ${JSON.stringify(found?.status?.state)} available ${found?.available}`);
    }
  }, { timeoutMs: 30_000 });

  before(async () => {
    // Faster heartbeat and hand-over than the example's, so the story takes seconds.
    system = await startUp(NET, {
      edit: (text) => text.replace('heartbeat: { intervalMs: 1000', 'heartbeat: { intervalMs: 250').replace('rehome: { batchSize: 100, intervalMs: 1000 }', 'rehome: { batchSize: 40, intervalMs: 250 }'),
    });
    await frontendsReady();
  });
  after(async () => {
    await fleet?.stop();
    await system?.stop();
  });

  test('with fe1 blocked, draining, stopping or decommissioning fe2 is refused with the reason and changes nothing; --force overrides', async () => {
    assert.equal((await system.cli('server', 'block', 'fe1.contoso.com')).code, 0);
    await eventually(async () => assert.equal((await entry('fe1.contoso.com'))?.available, false));
    const versionBefore = (await status()).topologyVersion;
    const pidBefore = (await entry('fe2.contoso.com'))?.process?.pid;
    for (const action of ['drain', 'stop', 'decommission']) {
      const refused = await system.cli('server', action, 'fe2.contoso.com');
      assert.equal(refused.code, 1, `${action}: ${refused.stdout}${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(`ADMIN_QUORUM: refused: ${action} fe2\\.contoso\\.com: only 1 of 3 servers would stay available, below the quorum of 2`));
    }
    const unchanged = await status();
    const fe2 = unchanged.servers.find((candidate) => candidate.server === 'fe2.contoso.com')!;
    assert.equal(fe2.adminState, null, 'not drained');
    assert.deepEqual([fe2.process?.state, fe2.process?.pid], ['running', pidBefore], 'not stopped');
    assert.equal(unchanged.topologyVersion, versionBefore, 'no version published');
    assert.equal(fe2.status?.state, 'active');

    const drained = await system.cli('server', 'drain', 'fe2.contoso.com', '--force');
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /drain fe2\.contoso\.com: done; only 1 of 3 servers would stay available/);
    await eventually(async () => assert.equal((await entry('fe2.contoso.com'))?.status?.state, 'drained'));
    assert.equal((await system.cli('server', 'resume', 'fe2.contoso.com')).code, 0);
    await frontendsReady(['fe2.contoso.com']);

    const stopped = await system.cli('server', 'stop', 'fe2.contoso.com', '--force');
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal((await entry('fe2.contoso.com'))?.process?.state, 'stopped');
    assert.throws(() => process.kill(pidBefore!, 0), /ESRCH/, 'its process is gone');
    assert.equal((await system.cli('server', 'start', 'fe2.contoso.com')).code, 0);
    assert.equal((await system.cli('server', 'unblock', 'fe1.contoso.com')).code, 0);
    await frontendsReady();
    assert.equal((await status()).topologyVersion, versionBefore);
  });

  test('decommission fe3 with 300 users registered: a version without it; it drains, reports drained, the supervisor stops it, DNS drops it, its users are on fe1/fe2 as `dnslb plan remove` said', async () => {
    fleet = await startFleet({ pool: { tcpPort: 5060 }, addresses: FRONTENDS, discovered: 3, count: 300, prefix: 'decom', concurrency: 100 });
    await eventually(() => assert.ok(fleet!.agents.every((agent) => agent.state === 'registered' && agent.registrarMode === 'primary')), { timeoutMs: 30_000 });
    const where = () => new Map(fleet!.agents.map((agent) => {
      const index = fleet!.serverOf(agent);
      return [agent.aor, index < 0 ? null : SERVERS[index]!] as const;
    }));
    const before = where();
    const onFe3 = [...before.values()].filter((server) => server === 'fe3.contoso.com').length;
    assert.ok(onFe3 > 50, `fe3 holds ${onFe3} users`);
    const plan = await planFlows('remove', 'fe3.contoso.com', system.topologyFile, fleet.agents.map((agent) => agent.aor), system.dataDir);
    const beforeStatus = await status();
    const fe3Pid = beforeStatus.servers.find((candidate) => candidate.server === 'fe3.contoso.com')!.process!.pid!;
    assert.deepEqual(await poolAnswer(), FRONTENDS);

    const startedMs = Date.now();
    const result = await system.cli('server', 'decommission', 'fe3.contoso.com', '--reason', 'retired');
    assert.equal(result.code, 0, result.stderr);
    const published = Number(/topology version (\d+)/.exec(result.stdout)?.[1]);
    assert.equal(published, beforeStatus.topologyVersion + 1, result.stdout);

    await eventually(() => assert.match(system.process.output(), /dnslb up: fe3\.contoso\.com left the topology and reports drained; stopping it/), { timeoutMs: 60_000 });
    await eventually(() => assert.throws(() => process.kill(fe3Pid, 0), /ESRCH/, 'the supervisor stopped fe3'));
    console.log(`# decommission fe3: ${onFe3} users handed over, drained and stopped after ${Date.now() - startedMs} ms`);
    const after = await status();
    assert.equal(after.topologyVersion, published);
    assert.deepEqual(after.servers.filter((candidate) => candidate.pool === 'pool01.contoso.com').map((candidate) => candidate.server), ['fe1.contoso.com', 'fe2.contoso.com']);
    for (const server of after.servers.filter((candidate) => candidate.pool === 'pool01.contoso.com')) assert.equal(server.status?.topologyVersion, published);

    await eventually(async () => assert.deepEqual(await poolAnswer(), FRONTENDS.slice(0, 2)));
    assert.equal((await dig(system.dns, ['fe3.contoso.com', 'A'], `${NET}.200`)).status, 'NXDOMAIN');

    const now = where();
    assert.ok([...now.values()].every((server) => server === 'fe1.contoso.com' || server === 'fe2.contoso.com'), 'every user registered on fe1 or fe2');
    assert.deepEqual(flowsObject(actualFlows(before, now)), flowsObject(plan.flows), 'what happened is what `dnslb plan remove fe3` said');
    assert.equal(plan.moved, onFe3);
  });
});
