// The issue "Pool resilience", draining with its own numbers: 3 real `dnslb server --store`
// processes on 127.0.15.1-3 and real UserAgents in this process; fe1 carries 100 active calls when
// the store says `draining`. No call is dropped (every BYE gets 200), no new registration and no new
// call of its users lands on fe1 after the drain began (a new call *to* a user still there is delivered
// through it), fe1 reports `drained` only after the last BYE, its users went
// where `dnslb plan drain` said, and resuming brings them back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Call } from '../../src/client/call.ts';
import type { UserAgent } from '../../src/client/user-agent.ts';
import { sequenceOf } from '../../src/registrar/sequence.ts';
import { startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { eventually } from '../helpers/eventually.ts';
import { actualFlows, flowsObject, planFlows, type Flows } from '../helpers/plan-cli.ts';
import { stopAll } from '../helpers/process.ts';
import { startFleet, type Fleet } from '../helpers/ua-fleet.ts';

const ADDRESSES = ['127.0.15.1', '127.0.15.2', '127.0.15.3'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const CALLS = 100;
const REHOME = { batchSize: 20, intervalMs: 250 };

describe(`draining a server that carries ${CALLS} active calls`, () => {
  let pool: RunningPool;
  let fleet: Fleet;
  /** New calls to users still on fe1 during its drain: delivered through it (each a dialog on fe1). */
  let deliveredToFe1 = 0;
  let late: Fleet | undefined;
  const calls: { from: UserAgent; caller: Call; callee: Call }[] = [];
  let placedBefore: Map<string, string | null>;
  let plan: { moved: number; flows: Flows };
  /** fe1's counters when the drain began. */
  let atDrain: { registersAccepted: number; dialogsStarted: number };
  const where = (agents: Fleet): Map<string, string | null> => new Map(agents.agents.map((agent) => {
    const index = agents.serverOf(agent);
    return [agent.aor, index < 0 ? null : SERVERS[index]!];
  }));

  before(async () => {
    pool = await startPool({
      addresses: ADDRESSES,
      store: true,
      heartbeatIntervalMs: 250,
      settingsYaml: `  rehome: { batchSize: ${REHOME.batchSize}, intervalMs: ${REHOME.intervalMs} }\n  drain: { timeoutMs: 300000 }`,
    });
    fleet = await startFleet({ pool, addresses: ADDRESSES, discovered: 3, count: 480, prefix: 'drain', concurrency: 100 });
    await eventually(() => assert.ok(fleet.agents.every((agent) => agent.state === 'registered')), { timeoutMs: 30_000 });
  });
  after(async () => {
    for (const { caller } of calls) if (caller.state === 'up') caller.hangUp();
    await late?.stop();
    await fleet?.stop();
    await pool?.stop();
    await stopAll();
  });

  test(`${CALLS} calls come up through fe1 (callers registered on fe1, callees on fe2 and fe3)`, async () => {
    const callers = fleet.agents.filter((agent) => fleet.serverOf(agent) === 0).slice(0, CALLS);
    const callees = fleet.agents.filter((agent) => fleet.serverOf(agent) > 0).slice(0, CALLS);
    assert.equal(callers.length, CALLS, 'enough users on fe1');
    assert.equal(callees.length, CALLS, 'enough users on fe2 and fe3');
    await Promise.all(callers.map(async (from, index) => {
      const to = callees[index]!;
      const incoming = once(to, 'incomingCall') as Promise<[Call]>;
      const caller = from.call(to.aor);
      await once(caller, 'up');
      const [callee] = await incoming;
      if (callee.state !== 'up') await once(callee, 'up');
      calls.push({ from, caller, callee });
    }));
    const status = await pool.status(0);
    assert.equal(status.dialogs.active, CALLS);
  });

  test('drain begins: nothing new lands on fe1 (new sign-ins go elsewhere, a new call from a user still on fe1 is sent on with 302 and placed again from the next server), the pool keeps working, every call stays up', async () => {
    placedBefore = where(fleet);
    plan = await planFlows('drain', 'fe1.contoso.com', pool.topologyFile, fleet.agents.map((agent) => agent.aor), pool.dir);
    const startStatus = await pool.status(0);
    atDrain = { registersAccepted: startStatus.registrar.registersAccepted, dialogsStarted: startStatus.dialogs.startedTotal };
    await pool.store!.setAdminState('fe1.contoso.com', 'draining', { by: 'test', reason: `${CALLS} calls up` });
    await eventually(async () => assert.equal((await pool.status(0)).state, 'draining'));
    // New users sign in while fe1 drains; a third of them are told fe1 first (DNS rotation): fe1
    // drops their connections and they go on to the next address.
    const refusedBefore = (await pool.status(0)).transport.connectionsRefused;
    late = await startFleet({ pool, addresses: ADDRESSES, discovered: 3, count: 30, prefix: 'late' });
    await eventually(() => assert.ok(late!.agents.every((agent) => late!.serverOf(agent) > 0), 'every late user registered on fe2 or fe3'));
    assert.ok((await pool.status(0)).transport.connectionsRefused >= refusedBefore + 10, 'fe1 dropped the new connections of the users told fe1 first');
    // A user still on fe1 (in a call there) places a second call: fe1 starts no new dialog; it answers
    // 302 naming the user's next servers, the client signs in there (its first call stays up on the
    // flow to fe1) and places the call again — the setup does not fail.
    const idle = fleet.agents.filter((agent) => fleet.serverOf(agent) > 0 && agent.callsInProgress === 0);
    assert.ok(idle.length >= 35, `${idle.length} idle users on fe2 and fe3`);
    const second = await Promise.all(calls.slice(0, 5).map(async ({ from }, index) => {
      assert.equal(fleet.serverOf(from), 0, `${from.aor} is still on fe1 (its call holds it there)`);
      const attempt = from.call(idle[index]!.aor);
      const ended = once(attempt, 'ended').then(([info]) => info as Call['ended']);
      const outcome = await Promise.race([once(attempt, 'up').then(() => 'up'), ended.then((info) => `ended: ${info?.how} ${info?.status ?? ''} ${info?.detail ?? ''}`)]);
      assert.equal(outcome, 'up', `a new call from ${from.aor}, still on the draining fe1`);
      assert.ok(fleet.serverOf(from) > 0, `${from.aor} followed the 302 and signed in on fe2 or fe3`);
      return attempt;
    }));
    for (const call of second) {
      const answered = once(call, 'byeAnswered') as Promise<[number | null]>;
      call.hangUp();
      assert.equal((await answered)[0], 200);
    }
    // Calls between users on other servers still come up.
    const fresh = await Promise.all(idle.slice(5, 15).map(async (from, index) => {
      const to = idle[15 + index]!;
      const incoming = once(to, 'incomingCall') as Promise<[Call]>;
      const call = from.call(to.aor);
      await once(call, 'up');
      const [callee] = await incoming;
      return { caller: call, callee };
    }));
    for (const { caller } of fresh) {
      const answered = once(caller, 'byeAnswered') as Promise<[number | null]>;
      caller.hangUp();
      assert.equal((await answered)[0], 200);
    }
    // A new call to a user still on fe1 (in a call, so its hand-over waits): fe1 delivers it over the
    // user's flow — a drain fails no call setup.
    const toFe1 = await Promise.all(calls.slice(5, 8).map(async ({ from }, index) => {
      assert.equal(fleet.serverOf(from), 0, `${from.aor} is still on fe1`);
      const incoming = once(from, 'incomingCall') as Promise<[Call]>;
      const call = idle[25 + index]!.call(from.aor);
      const ended = once(call, 'ended').then(([info]) => info as Call['ended']);
      const outcome = await Promise.race([once(call, 'up').then(() => 'up'), ended.then((info) => `ended: ${info?.how} ${info?.status ?? ''} ${info?.detail ?? ''}`)]);
      assert.equal(outcome, 'up', `a new call to ${from.aor}, still on the draining fe1`);
      await incoming;
      return call;
    }));
    for (const call of toFe1) {
      const answered = once(call, 'byeAnswered') as Promise<[number | null]>;
      call.hangUp();
      assert.equal((await answered)[0], 200);
    }
    // The users of fe1 not in a call leave it, in batches; the calls stay up.
    const callers = new Set(calls.map(({ caller }) => caller));
    await eventually(() => {
      const left = fleet.agents.filter((agent) => fleet.serverOf(agent) === 0 && agent.callsInProgress === 0);
      assert.equal(left.length, 0, `${left.length} users without a call still on fe1`);
    }, { timeoutMs: 30_000 });
    const status = await pool.status(0);
    assert.equal(status.state, 'draining');
    assert.equal(status.resilience.drain?.dialogsLeft, CALLS);
    assert.ok(calls.every(({ caller, callee }) => callers.has(caller) && caller.state === 'up' && callee.state === 'up'), 'no call dropped');
    assert.equal(status.registrar.registersAccepted, atDrain.registersAccepted, 'no registration accepted on fe1 since the drain began');
    deliveredToFe1 = toFe1.length;
    assert.equal(status.dialogs.startedTotal, atDrain.dialogsStarted + deliveredToFe1, 'no call started on fe1 since the drain began but those delivered to its users');
  });

  test(`the ${CALLS} calls end with BYE, each answered 200; fe1 is drained only after the last; its users went where \`dnslb plan drain\` said`, async () => {
    const byes = await Promise.all(calls.slice(0, CALLS - 1).map(async ({ caller, callee }) => {
      const answered = once(caller, 'byeAnswered') as Promise<[number | null]>;
      const ended = once(callee, 'ended') as Promise<[{ how: string }]>;
      caller.hangUp();
      return [(await answered)[0], (await ended)[0].how] as const;
    }));
    assert.deepEqual(byes.filter(([status, how]) => status !== 200 || how !== 'bye-received'), [], 'every BYE answered 200 and received by the callee');
    // One call is still up: fe1 keeps draining.
    await eventually(async () => assert.equal((await pool.status(0)).dialogs.active, 1));
    assert.equal((await pool.status(0)).state, 'draining', 'not drained while a call is up');
    const last = calls.at(-1)!;
    const lastByeMs = Date.now();
    const answered = once(last.caller, 'byeAnswered') as Promise<[number | null]>;
    last.caller.hangUp();
    assert.equal((await answered)[0], 200);
    const drain = await eventually(async () => {
      const status = await pool.status(0);
      assert.equal(status.state, 'drained');
      return status.resilience.drain!;
    }, { timeoutMs: 30_000 });
    console.log(`# drain: ${drain.handedOver} users handed over; drained ${drain.finishedAtMs! - lastByeMs} ms after the last BYE, ${drain.finishedAtMs! - drain.startedAtMs} ms after it began`);
    assert.equal(drain.timedOut, false);
    assert.ok(drain.finishedAtMs! >= lastByeMs, 'drained after the last BYE');
    assert.deepEqual([drain.bindingsLeft, drain.dialogsLeft], [0, 0]);
    const after = where(fleet);
    assert.ok([...after.values()].every((server) => server !== null && server !== 'fe1.contoso.com'), 'everyone registered, nobody on fe1');
    assert.deepEqual(flowsObject(actualFlows(placedBefore, after)), flowsObject(plan.flows), 'what happened is what `dnslb plan drain fe1` said');
    const final = await pool.status(0);
    assert.equal(final.registrar.registersAccepted, atDrain.registersAccepted, 'no registration accepted on fe1 during the drain');
    assert.equal(final.dialogs.startedTotal, atDrain.dialogsStarted + deliveredToFe1, 'no call started on fe1 during the drain but those delivered to its users');
  });

  test('resume: every user whose primary is fe1 comes back to it', async () => {
    await pool.store!.setAdminState('fe1.contoso.com', 'active', { by: 'test', reason: 'done' });
    const everyone = [...fleet.agents, ...late!.agents];
    const primaries = everyone.filter((agent) => sequenceOf(agent.aor, SERVERS)[0] === 'fe1.contoso.com');
    await eventually(() => {
      const away = primaries.filter((agent) => (fleet.agents.includes(agent) ? fleet : late!).serverOf(agent) !== 0 || agent.registrarMode !== 'primary');
      assert.equal(away.length, 0, `${away.length} of ${primaries.length} not back at fe1`);
    }, { timeoutMs: 30_000 });
    assert.equal((await pool.status(0)).state, 'active');
  });
});
