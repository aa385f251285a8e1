// Pool resilience with real `dnslb server --store` processes on 127.0.10.1-4 sharing one file store,
// and 300 real UserAgents in this process: kill -9 one server (its users spread over the rest of
// their sequences, in backup mode, and DNS's view drops it), start it again (users return in batches
// no faster than settings.rehome), publish a topology adding a 4th server (exactly the planned users move).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { answeringServers } from '../../src/dns/zone.ts';
import { planMoves } from '../../src/registrar/sequence.ts';
import { parse } from '../../src/topology/parse.ts';
import type { FrontEndStatus } from '../../src/frontend/server.ts';
import { startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { eventually } from '../helpers/eventually.ts';
import { stopAll } from '../helpers/process.ts';
import { fleetUser, startFleet, type Fleet } from '../helpers/ua-fleet.ts';

const ADDRESSES = ['127.0.10.1', '127.0.10.2', '127.0.10.3', '127.0.10.4'];
const USERS = 300;
const BATCH = { batchSize: 10, intervalMs: 500 };

/** The most users handed over by one server in any window of `intervalMs`, from its status batches. */
function mostInAnyWindow(status: FrontEndStatus, intervalMs: number): number {
  const batches = status.resilience.handover.batches.filter((batch) => batch.handedOver > 0);
  let most = 0;
  for (const first of batches) {
    const inWindow = batches.filter((batch) => batch.atMs >= first.atMs && batch.atMs < first.atMs + intervalMs);
    most = Math.max(most, inWindow.reduce((sum, batch) => sum + batch.handedOver, 0));
  }
  return most;
}

describe('failover, recovery and commission with real server processes following one store', () => {
  let pool: RunningPool;
  let fleet: Fleet;
  let orphans: number[] = [];

  before(async () => {
    pool = await startPool({
      addresses: ADDRESSES,
      inTopology: 3,
      store: true,
      heartbeatIntervalMs: 250,
      settingsYaml: `  rehome: { batchSize: ${BATCH.batchSize}, intervalMs: ${BATCH.intervalMs} }`,
    });
    fleet = await startFleet({ pool, addresses: ADDRESSES, discovered: 3, count: USERS });
  });
  after(async () => {
    await fleet?.stop();
    await pool?.stop();
    await stopAll();
  });

  test('every user signs in at its primary', async () => {
    await eventually(() => assert.ok(fleet.agents.every((agent) => agent.state === 'registered' && agent.registrarMode === 'primary')), { timeoutMs: 20_000 });
    const plan = planMoves(fleet.agents.map((agent) => agent.aor), { servers: [] }, { servers: ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'] }, { listMoves: true });
    for (const move of plan.moves!) {
      const agent = fleet.agents[Number(/user(\d+)@/.exec(move.user)![1])]!;
      assert.equal(fleet.serverOf(agent), Number(move.to!.slice(2, 3)) - 1, `${move.user} at its primary`);
    }
  });

  test('kill -9 of fe1: its users re-register on fe2 and fe3 in backup mode, 40–60 % each; DNS drops fe1', async () => {
    orphans = fleet.agents.map((agent, index) => (fleet.serverOf(agent) === 0 ? index : -1)).filter((index) => index >= 0);
    assert.ok(orphans.length > 50, `fe1 holds ${orphans.length} users`);
    const others = fleet.agents.map((agent, index) => [index, fleet.serverOf(agent)] as const).filter(([index]) => !orphans.includes(index));
    const startedMs = Date.now();
    await pool.kill(0);
    await eventually(() => {
      const left = orphans.filter((index) => fleet.serverOf(fleet.agents[index]!) <= 0).map((index) => fleet.agents[index]!);
      assert.equal(left.length, 0, `${left.length} orphans not registered elsewhere, e.g. ${left.slice(0, 3).map((agent) => `${agent.aor} ${agent.state} ${agent.stats.lastError}`).join('; ')}`);
    }, { timeoutMs: 20_000 });
    const elapsedMs = Date.now() - startedMs;
    console.log(`# kill -9 fe1: ${orphans.length} orphans registered elsewhere after ${elapsedMs} ms (heartbeat 250 ms × failAfter 3)`);
    const onFe2 = orphans.filter((index) => fleet.serverOf(fleet.agents[index]!) === 1).length;
    const onFe3 = orphans.filter((index) => fleet.serverOf(fleet.agents[index]!) === 2).length;
    assert.equal(onFe2 + onFe3, orphans.length);
    for (const [name, count] of [['fe2', onFe2], ['fe3', onFe3]] as const) {
      const share = count / orphans.length;
      assert.ok(share >= 0.4 && share <= 0.6, `${name} took ${count} of ${orphans.length} orphans (${Math.round(share * 100)} %)`);
    }
    assert.ok(orphans.every((index) => fleet.agents[index]!.registrarMode === 'backup'), 'orphans are in backup mode');
    for (const [index, server] of others) assert.equal(fleet.serverOf(fleet.agents[index]!), server, `${fleet.agents[index]!.aor} did not move`);
    // What DNS reads: fe1's own report expires, its peers report it down, so health-aware answers leave it out.
    const topology = parse(pool.topologyText(3), 'topology.yaml');
    await eventually(async () => {
      const liveness = await pool.store!.liveness();
      const fe1Reports = liveness.filter((record) => record.server === 'fe1.contoso.com' && record.atMs + record.ttlMs > Date.now());
      assert.ok(fe1Reports.length > 0 && fe1Reports.every((record) => record.reporter !== 'fe1.contoso.com' && record.state === 'down'), JSON.stringify(fe1Reports));
      const answering = answeringServers(topology.pools[0]!, { adminStates: new Map(), liveness, nowMs: Date.now() }).map((server) => server.fqdn);
      assert.deepEqual(answering, ['fe2.contoso.com', 'fe3.contoso.com']);
    }, { timeoutMs: 10_000 });
  });

  test('fe1 starts again: its users come back to it in primary mode, each server handing over ≤ batchSize per interval', async () => {
    const startedMs = Date.now();
    await pool.startServer(0);
    await eventually(() => assert.ok(orphans.every((index) => fleet.serverOf(fleet.agents[index]!) === 0 && fleet.agents[index]!.registrarMode === 'primary')), { timeoutMs: 25_000 });
    console.log(`# fe1 back: ${orphans.length} users returned after ${Date.now() - startedMs} ms (batches of ${BATCH.batchSize} every ${BATCH.intervalMs} ms per server)`);
    let handedOver = 0;
    for (const index of [1, 2]) {
      const status = await pool.status(index);
      handedOver += status.resilience.handover.handedOverTotal.recovery;
      const most = mostInAnyWindow(status, BATCH.intervalMs);
      assert.ok(most <= BATCH.batchSize, `${status.server} handed over ${most} users within ${BATCH.intervalMs} ms: ${JSON.stringify(status.resilience.handover.batches)}`);
      assert.ok(status.resilience.handover.batches.length >= 2, 'the hand-over took several batches');
    }
    assert.equal(handedOver, orphans.length, 'exactly the orphans were handed back');
    const liveness = await pool.store!.liveness();
    const topology = parse(pool.topologyText(3), 'topology.yaml');
    await eventually(async () => {
      const answering = answeringServers(topology.pools[0]!, { adminStates: new Map(), liveness: await pool.store!.liveness(), nowMs: Date.now() }).map((server) => server.fqdn);
      assert.deepEqual(answering, ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com']);
    }, { timeoutMs: 10_000 });
    assert.ok(liveness.some((record) => record.server === 'fe1.contoso.com' && record.reporter === 'fe1.contoso.com' && record.state === 'active'));
  });

  test('a published topology adds fe4: exactly the users planMoves names move to it, nobody else', async () => {
    const three = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
    const plan = planMoves(fleet.agents.map((agent) => agent.aor), { servers: three }, { servers: [...three, 'fe4.contoso.com'] }, { listMoves: true });
    const planned = new Set(plan.moves!.map((move) => move.user));
    assert.ok(planned.size > 30 && plan.moves!.every((move) => move.to === 'fe4.contoso.com'), `${planned.size} planned moves, all to fe4`);
    const before = fleet.agents.map((agent) => ({ server: fleet.serverOf(agent), deactivations: agent.stats.deactivations }));
    const version = await pool.publish(4);
    await pool.startServer(3);
    await eventually(() => {
      for (const [index, agent] of fleet.agents.entries()) {
        if (planned.has(fleetUser('user', index))) assert.ok(fleet.serverOf(agent) === 3 && agent.registrarMode === 'primary', `${agent.aor} at fe4`);
      }
    }, { timeoutMs: 25_000 });
    for (const [index, agent] of fleet.agents.entries()) {
      if (planned.has(agent.aor)) continue;
      assert.equal(fleet.serverOf(agent), before[index]!.server, `${agent.aor} stayed`);
      assert.equal(agent.stats.deactivations, before[index]!.deactivations, `${agent.aor} was not deactivated`);
    }
    let commissioned = 0;
    for (const index of [0, 1, 2]) {
      const status = await pool.status(index);
      assert.equal(status.topologyVersion, version);
      commissioned += status.resilience.handover.handedOverTotal.commission;
      assert.ok(mostInAnyWindow(status, BATCH.intervalMs) <= BATCH.batchSize, `${status.server}: ${JSON.stringify(status.resilience.handover.batches)}`);
    }
    assert.equal(commissioned, planned.size);
    assert.equal(USERS, fleet.agents.filter((agent) => fleet.serverOf(agent) >= 0).length, 'everyone is registered');
  });
});
