// The issue "Pool resilience" with its own numbers: 3 real `dnslb server --store` processes on
// 127.0.14.1-3 (a 4th, 127.0.14.4, commissioned later) sharing one file store, and 3,000 real
// UserAgents in this process. One story on one pool: `dnslb plan fail` → kill -9 (every orphan
// re-registers in backup mode, 40–60 % on each survivor, exactly as planned) → start it again
// (every user whose primary it is returns; the pool never re-homes more than rehome.batchSize users
// per rehome.intervalMs) → `dnslb plan add` → commission fe4 (exactly the planned users move).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FrontEndStatus } from '../../src/frontend/server.ts';
import { sequenceOf } from '../../src/registrar/sequence.ts';
import { startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { eventually } from '../helpers/eventually.ts';
import { actualFlows, flowsObject, planFlows } from '../helpers/plan-cli.ts';
import { stopAll } from '../helpers/process.ts';
import { startFleet, type Fleet } from '../helpers/ua-fleet.ts';

const ADDRESSES = ['127.0.14.1', '127.0.14.2', '127.0.14.3', '127.0.14.4'];
const THREE = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const USERS = 3000;
const REHOME = { batchSize: 40, intervalMs: 250 };

type Batch = FrontEndStatus['resilience']['handover']['batches'][number];

/**
 * The most users handed over within any window of `intervalMs` (half-open, starting at a release),
 * over the batches of every server given: the pool-wide re-registration rate the returning or new
 * server sees.
 */
function mostInAnyWindow(batches: readonly Batch[], intervalMs: number): number {
  const moving = batches.filter((batch) => batch.handedOver > 0);
  let most = 0;
  for (const first of moving) {
    const inWindow = moving.filter((batch) => batch.atMs >= first.atMs && batch.atMs < first.atMs + intervalMs);
    most = Math.max(most, inWindow.reduce((sum, batch) => sum + batch.handedOver, 0));
  }
  return most;
}

describe(`pool resilience with ${USERS} users on real server processes`, () => {
  let pool: RunningPool;
  let fleet: Fleet;
  /** Where every user is registered now: AOR → server FQDN (null: not registered). */
  const where = (): Map<string, string | null> => new Map(fleet.agents.map((agent) => {
    const index = fleet.serverOf(agent);
    return [agent.aor, index < 0 ? null : `fe${index + 1}.contoso.com`];
  }));
  const users = (): string[] => fleet.agents.map((agent) => agent.aor);
  let orphans: string[] = [];

  before(async () => {
    pool = await startPool({
      addresses: ADDRESSES,
      inTopology: 3,
      store: true,
      heartbeatIntervalMs: 250,
      settingsYaml: `  rehome: { batchSize: ${REHOME.batchSize}, intervalMs: ${REHOME.intervalMs} }`,
    });
    const startedMs = Date.now();
    fleet = await startFleet({ pool, addresses: ADDRESSES, discovered: 3, count: USERS, prefix: 'res', concurrency: 100 });
    await eventually(() => assert.ok(fleet.agents.every((agent) => agent.state === 'registered')), { timeoutMs: 60_000 });
    console.log(`# ${USERS} users signed in after ${Date.now() - startedMs} ms`);
  });
  after(async () => {
    await fleet?.stop();
    await pool?.stop();
    await stopAll();
  });

  test(`every one of the ${USERS} users is registered at its primary`, () => {
    const now = where();
    for (const agent of fleet.agents) {
      assert.equal(now.get(agent.aor), sequenceOf(agent.aor, THREE)[0], `${agent.aor} at its primary`);
      assert.equal(agent.registrarMode, 'primary');
    }
  });

  test('kill -9 of fe1: every user is registered, none on fe1, each survivor took 40–60 % of the orphans, all in backup mode — as `dnslb plan fail` said', async () => {
    const before = where();
    orphans = users().filter((user) => before.get(user) === 'fe1.contoso.com');
    assert.ok(orphans.length > USERS / 4, `fe1 holds ${orphans.length} users`);
    const plan = await planFlows('fail', 'fe1.contoso.com', pool.topologyFile, users(), pool.dir);
    const startedMs = Date.now();
    await pool.kill(0);
    await eventually(() => {
      const unregistered = fleet.agents.filter((agent) => fleet.serverOf(agent) < 0);
      assert.equal(unregistered.length, 0, `${unregistered.length} users not registered, e.g. ${unregistered.slice(0, 3).map((agent) => `${agent.aor} ${agent.state} ${agent.stats.lastError}`).join('; ')}`);
    }, { timeoutMs: 60_000 });
    console.log(`# kill -9 fe1: ${orphans.length} orphans registered on fe2/fe3 after ${Date.now() - startedMs} ms (heartbeat 250 ms × failAfter 3)`);
    const after = where();
    assert.equal([...after.values()].filter((server) => server === 'fe1.contoso.com').length, 0, 'nobody on the dead server');
    for (const survivor of ['fe2.contoso.com', 'fe3.contoso.com']) {
      const took = orphans.filter((user) => after.get(user) === survivor).length;
      const share = took / orphans.length;
      assert.ok(share >= 0.4 && share <= 0.6, `${survivor} took ${took} of ${orphans.length} orphans (${(100 * share).toFixed(1)} %)`);
    }
    const orphanSet = new Set(orphans);
    for (const agent of fleet.agents) {
      if (orphanSet.has(agent.aor)) assert.equal(agent.registrarMode, 'backup', `${agent.aor} moved, so it is in backup mode`);
      else assert.equal(after.get(agent.aor), before.get(agent.aor), `${agent.aor} was not on fe1 and did not move`);
    }
    assert.deepEqual(flowsObject(actualFlows(before, after)), flowsObject(plan.flows), 'what happened is what `dnslb plan fail fe1` said');
    assert.equal(plan.moved, orphans.length);
  });

  test('fe1 starts again: every user whose primary it is returns; the pool never re-homed more than batchSize users per interval', async () => {
    const startedMs = Date.now();
    await pool.startServer(0);
    await eventually(() => {
      const away = orphans.filter((user) => {
        const agent = fleet.agents.find((candidate) => candidate.aor === user)!;
        return fleet.serverOf(agent) !== 0 || agent.registrarMode !== 'primary';
      });
      assert.equal(away.length, 0, `${away.length} of ${orphans.length} not back at fe1`);
    }, { timeoutMs: 60_000 });
    console.log(`# fe1 back: ${orphans.length} users returned after ${Date.now() - startedMs} ms (rehome ${REHOME.batchSize} per ${REHOME.intervalMs} ms)`);
    const survivors = [await pool.status(1), await pool.status(2)];
    const batches = survivors.flatMap((status) => status.resilience.handover.batches);
    assert.equal(survivors.reduce((sum, status) => sum + status.resilience.handover.handedOverTotal.recovery, 0), orphans.length, 'exactly the orphans were handed back');
    assert.equal(batches.reduce((sum, batch) => sum + batch.handedOver, 0), orphans.length, 'every hand-over is in the batches kept');
    for (const status of survivors) assert.ok(mostInAnyWindow(status.resilience.handover.batches, REHOME.intervalMs) <= REHOME.batchSize, `${status.server}: ${JSON.stringify(status.resilience.handover.batches)}`);
    const most = mostInAnyWindow(batches, REHOME.intervalMs);
    console.log(`# recovery: at most ${most} users re-homed to fe1 in any ${REHOME.intervalMs} ms window, over ${batches.length} batches`);
    assert.ok(most <= REHOME.batchSize, `the pool re-homed ${most} users to fe1 within ${REHOME.intervalMs} ms (batchSize ${REHOME.batchSize}): ${JSON.stringify(survivors.map((status) => [status.server, status.resilience.handover.batches]))}`);
  });

  test('commission fe4: exactly the users whose first server is now fe4 move (about a quarter) — as `dnslb plan add` said; nobody else moves', async () => {
    const four = [...THREE, 'fe4.contoso.com'];
    const plan = await planFlows('add', 'fe4.contoso.com', pool.topologyFile, users(), pool.dir);
    const before = where();
    const deactivationsBefore = new Map(fleet.agents.map((agent) => [agent.aor, agent.stats.deactivations]));
    const movers = new Set(users().filter((user) => sequenceOf(user, four)[0] === 'fe4.contoso.com'));
    assert.ok(movers.size > 0.2 * USERS && movers.size < 0.3 * USERS, `${movers.size} of ${USERS} users have fe4 first`);
    const startedMs = Date.now();
    const version = await pool.publish(4);
    await pool.startServer(3);
    await eventually(() => {
      const missing = [...movers].filter((user) => fleet.serverOf(fleet.agents.find((agent) => agent.aor === user)!) !== 3);
      assert.equal(missing.length, 0, `${missing.length} of ${movers.size} not at fe4 yet`);
    }, { timeoutMs: 60_000 });
    console.log(`# commission fe4: ${movers.size} users moved after ${Date.now() - startedMs} ms`);
    const after = where();
    for (const agent of fleet.agents) {
      if (movers.has(agent.aor)) {
        assert.equal(agent.registrarMode, 'primary', `${agent.aor} at fe4 in primary mode`);
        continue;
      }
      assert.equal(after.get(agent.aor), before.get(agent.aor), `${agent.aor} stayed`);
      assert.equal(agent.stats.deactivations, deactivationsBefore.get(agent.aor), `${agent.aor} was not deactivated`);
    }
    assert.deepEqual(flowsObject(actualFlows(before, after)), flowsObject(plan.flows), 'what happened is what `dnslb plan add fe4` said');
    const statuses = await Promise.all([0, 1, 2].map((index) => pool.status(index)));
    // The recovery's batches ended before this; the commission's are the ones released since.
    const batches = statuses.flatMap((status) => status.resilience.handover.batches.filter((batch) => batch.atMs >= startedMs));
    for (const status of statuses) assert.equal(status.topologyVersion, version);
    assert.equal(statuses.reduce((sum, status) => sum + status.resilience.handover.handedOverTotal.commission, 0), movers.size);
    const most = mostInAnyWindow(batches, REHOME.intervalMs);
    console.log(`# commission: at most ${most} users re-homed to fe4 in any ${REHOME.intervalMs} ms window`);
    assert.ok(most <= REHOME.batchSize, `the pool re-homed ${most} users to fe4 within ${REHOME.intervalMs} ms (batchSize ${REHOME.batchSize})`);
  });
});
