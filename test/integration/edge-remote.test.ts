// Issue 14 items 1–3 and 7 under `dnslb up` (the example: frontend, director, edge and mediation pools,
// authentication on): 300 remote users outside (a source address in DNS's external view) discover
// `_sip._tls.contoso.com` → sip.contoso.com → one Access Edge address per edge server, sign in over TLS
// through an Edge, are authenticated by a Director and registered at their home Front End (primary
// mode). Calls go remote → inside and inside → remote through the Edge. Then the Edge carrying about half
// of them is SIGKILLed: every one of its users signs in again through the other Edge, calls through the
// survivor stay up and end with a 200 to their BYE, and a call to a moved user reaches it through the
// survivor. Counts only; no timing threshold.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Call } from '../../src/client/call.ts';
import type { UserAgent } from '../../src/client/user-agent.ts';
import { hangUp, startEdgeSystem, startAll, upOrFailed, type EdgeSystem } from '../helpers/edge-system.ts';
import { dig } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';

const NET = '127.0.151';
const OUTSIDE = '127.1.151.5';
const REMOTE = 300;
const INSIDE = 20;
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

describe('remote users through the Edge pool (dnslb up, outside view by source address)', { timeout: 240_000 }, () => {
  let edge: EdgeSystem;
  let remote: UserAgent[] = [];
  let inside: UserAgent[] = [];

  before(async () => {
    edge = await startEdgeSystem(NET, OUTSIDE, REMOTE + INSIDE);
    remote = Array.from({ length: REMOTE }, (_, index) => edge.agent(index + 1, 'outside'));
    inside = Array.from({ length: INSIDE }, (_, index) => edge.agent(REMOTE + index + 1, 'inside'));
  });
  after(async () => {
    await Promise.all([...remote, ...inside].map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
    await edge?.stop();
  });

  test('edge servers run as processes of the pool: pool status lists them, listening on both interfaces', async () => {
    const status = await eventually(async () => {
      const pool = await edge.poolStatus();
      const edges = pool.servers.filter((entry) => entry.kind === 'edge');
      assert.deepEqual(edges.map((entry) => [entry.server, entry.process?.state, entry.status?.state]), [
        ['edge1.contoso.com', 'running', 'active'],
        ['edge2.contoso.com', 'running', 'active'],
      ]);
      return pool;
    }, WAIT);
    const table = await edge.system.cli('pool', 'status');
    assert.match(table.stdout, /REMOTE/);
    assert.match(table.stdout, /edge1\.contoso\.com\s+edgepool\.contoso\.com/);
    assert.ok(status.servers.every((entry) => entry.status !== undefined), 'every server answers its admin API');
  });

  test(`${REMOTE} remote users sign in through the Access Edges, are authenticated by a Director and registered at their homes in primary mode`, async () => {
    await startAll([...remote, ...inside]);
    await eventually(() => assert.equal([...remote, ...inside].filter((agent) => agent.state === 'registered').length, REMOTE + INSIDE), WAIT);
    // Every remote user at an Access Edge address (never a server's own), spread over both.
    const byEdge = new Map<string, number>();
    for (const agent of remote) byEdge.set(agent.server!, (byEdge.get(agent.server!) ?? 0) + 1);
    assert.deepEqual([...byEdge.keys()].sort(), [...edge.accessEdges].sort());
    assert.ok([...byEdge.values()].every((count) => count >= REMOTE * 0.2), JSON.stringify([...byEdge]));
    assert.ok([...remote, ...inside].every((agent) => agent.registrarMode === 'primary'));
    const status = await edge.answeringStatus();
    const of = (kind: string) => status.servers.filter((entry) => entry.kind === kind);
    // The bindings are at the homes (Front Ends), none at a Director or an Edge.
    assert.equal(of('frontend').reduce((sum, entry) => sum + entry.status!.bindings.bindings, 0), REMOTE + INSIDE);
    assert.equal(of('director').reduce((sum, entry) => sum + entry.status!.bindings.bindings, 0), 0);
    assert.equal(of('edge').reduce((sum, entry) => sum + entry.status!.edge!.remoteUsers, 0), REMOTE);
    // Every remote REGISTER went Edge → Director → home; the Directors authenticated each remote user.
    assert.ok(of('director').reduce((sum, entry) => sum + (entry.status!.proxy.requestsForwardedByMethod['REGISTER'] ?? 0), 0) >= REMOTE);
    assert.ok(of('director').reduce((sum, entry) => sum + entry.status!.auth!.counters.authenticated, 0) >= REMOTE);
    assert.ok(of('edge').reduce((sum, entry) => sum + (entry.status!.edge!.route['relayed'] ?? 0), 0) >= REMOTE);
  });

  test('calls remote → inside and inside → remote through the Edge all come up and end with 200 to the BYE', async () => {
    const calls: Call[] = [];
    for (let index = 0; index < INSIDE; index++) {
      calls.push(remote[index]!.call(inside[index]!.aor));
      calls.push(inside[index]!.call(remote[REMOTE - 1 - index]!.aor));
    }
    await Promise.all(calls.map(upOrFailed));
    const byes = await Promise.all(calls.map(hangUp));
    assert.deepEqual(byes, calls.map(() => 200));
  });

  test('the Edge carrying about half is killed: its users sign in again through the other; calls on the survivor stay up', async () => {
    const [edge1, edge2] = edge.accessEdges;
    const onEdge1 = remote.filter((agent) => agent.server === edge1);
    const onEdge2 = remote.filter((agent) => agent.server === edge2);
    assert.ok(onEdge1.length > 0 && onEdge2.length > 0);
    // Calls through edge2 (remote callers on it, inside callees), up before the kill.
    const survivors = onEdge2.slice(0, INSIDE).map((agent, index) => agent.call(inside[index]!.aor));
    await Promise.all(survivors.map(upOrFailed));
    const failoversBefore = onEdge1.reduce((sum, agent) => sum + agent.stats.failovers, 0);
    await edge.kill('edge1.contoso.com');
    await eventually(() => assert.equal(onEdge1.filter((agent) => agent.state === 'registered' && agent.server === edge2).length, onEdge1.length), WAIT);
    assert.equal(onEdge1.reduce((sum, agent) => sum + agent.stats.failovers, 0) - failoversBefore, onEdge1.length, 'each edge1 user failed over once');
    assert.ok(onEdge1.every((agent) => agent.registrarMode === 'primary'), 'the home did not change: only the Edge did');
    assert.equal(onEdge2.filter((agent) => agent.server !== edge2).length, 0, 'the survivor\'s users did not move');
    assert.deepEqual(survivors.map((call) => call.state), survivors.map(() => 'up'), 'calls through the survivor untouched');
    // A call from inside to a user that moved reaches it through the survivor (its Path was replaced).
    const toMoved = inside[0]!.call(onEdge1[0]!.aor);
    await upOrFailed(toMoved);
    const byes = await Promise.all([...survivors, toMoved].map(hangUp));
    assert.deepEqual(byes, [...survivors, toMoved].map(() => 200));
    const status = await edge.answeringStatus();
    const edge2Status = status.servers.find((entry) => entry.server === 'edge2.contoso.com')!;
    assert.equal(edge2Status.status!.edge!.remoteUsers, REMOTE);
    // Health-aware edge records (item 7): the dead edge's Access Edge, Web Conferencing and A/V
    // addresses leave the external view once the pool's consensus holds it down.
    const outside = async (name: string) => (await dig(edge.system.dns, [name, 'A'], OUTSIDE)).answer.map((record) => record.data).sort();
    await eventually(async () => {
      assert.deepEqual(await outside('sip.contoso.com'), [`${NET}.52`]);
      assert.deepEqual(await outside('webconf.contoso.com'), [`${NET}.54`]);
      assert.deepEqual(await outside('av.contoso.com'), [`${NET}.56`]);
    }, WAIT);
  });
});
