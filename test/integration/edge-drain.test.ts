// Issue 14 items 3, 6 and 7 under `dnslb up` (the example with authentication on, re-home batches of 10
// per second): drain an edge server with 50 calls up through it — no call dropped, its idle remote users
// moved to the other Edge in batches of at most 10, the callers after their calls end, then `drained`;
// the Access Edge answer in the external view leaves it while it drains. Then block it: its Access Edge,
// Web Conferencing and A/V records (external view) and its internal records (the pool FQDN and its own
// name) all go in one SOA serial, checked with dig. Counts only.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { UserAgent } from '../../src/client/user-agent.ts';
import { answeringServer, hangUp, signInUsers, startEdgeSystem, upOrFailed, type EdgeSystem, type ServerJson } from '../helpers/edge-system.ts';
import { dig } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { openTo } from '../helpers/sip-bad-input.ts';

const NET = '127.0.152';
const OUTSIDE = '127.1.152.5';
const REMOTE = 160;
const INSIDE = 50;
const CALLS = 50;
const BATCH = 10;
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

describe('draining and blocking an edge server (dnslb up)', { timeout: 240_000 }, () => {
  let edge: EdgeSystem;
  let remote: UserAgent[] = [];
  let inside: UserAgent[] = [];
  const edgeIp = (n: 1 | 2) => `${NET}.${50 + n}`;

  const edge1 = (): Promise<ServerJson> => answeringServer(edge, 'edge1.contoso.com', WAIT);
  const outsideA = async (name: string): Promise<string[]> => (await dig(edge.system.dns, [name, 'A'], OUTSIDE)).answer.map((record) => record.data).sort();

  before(async () => {
    edge = await startEdgeSystem(NET, OUTSIDE, REMOTE + INSIDE, { edit: (text) => text.replace(/rehome: \{ batchSize: \d+,/, `rehome: { batchSize: ${BATCH},`) });
    ({ remote, inside } = await signInUsers(edge, REMOTE, INSIDE, WAIT));
  });
  after(async () => {
    await Promise.all([...remote, ...inside].map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
    await edge?.stop();
  });

  test(`drain with ${CALLS} calls up: no call dropped, remote users moved in batches of at most ${BATCH}, then drained`, async () => {
    const [onEdge1Address, onEdge2Address] = edge.accessEdges;
    const onEdge1 = remote.filter((agent) => agent.server === onEdge1Address);
    assert.ok(onEdge1.length >= CALLS + BATCH, `${onEdge1.length} remote users on edge1`);
    const callers = onEdge1.slice(0, CALLS);
    const idle = onEdge1.slice(CALLS);
    const calls = callers.map((agent, index) => agent.call(inside[index]!.aor));
    await Promise.all(calls.map(upOrFailed));
    await eventually(async () => assert.equal((await edge1()).status!.dialogs.active, CALLS), WAIT);

    const drained = await edge.system.cli('server', 'drain', 'edge1.contoso.com');
    assert.equal(drained.code, 0, drained.stderr);
    // The idle users leave for edge2; the callers stay while their calls are up.
    await eventually(() => assert.equal(idle.filter((agent) => agent.state === 'registered' && agent.server === onEdge2Address).length, idle.length), WAIT);
    const draining = await edge1();
    assert.equal(draining.status!.state, 'draining');
    assert.equal(draining.status!.resilience.acceptingConnections, false);
    assert.deepEqual(calls.map((call) => call.state), calls.map(() => 'up'), 'every call still up');
    assert.deepEqual(callers.map((agent) => agent.server), callers.map(() => onEdge1Address), 'callers stay on edge1 while in a call');
    const batches = draining.status!.edge!.handover.batches;
    assert.ok(batches.length >= Math.ceil(idle.length / BATCH), JSON.stringify(batches));
    assert.ok(batches.every((batch) => batch.handedOver <= BATCH), JSON.stringify(batches));
    assert.equal(batches.reduce((sum, batch) => sum + batch.handedOver, 0), idle.length);
    // The Access Edge answer leaves the draining server (health-aware DNS), outside.
    await eventually(async () => assert.deepEqual(await outsideA('sip.contoso.com'), [edgeIp(2)]), WAIT);
    // A new connection to the draining Edge is dropped.
    const late = await openTo({ address: edgeIp(1), port: 4443, transport: 'tls', ca: edge.ca, servername: 'sip.contoso.com' }, OUTSIDE).catch(() => null);
    if (late) await late.closed;

    const byes = await Promise.all(calls.map(hangUp));
    assert.deepEqual(byes, calls.map(() => 200), 'every call ended normally');
    await eventually(() => assert.equal(callers.filter((agent) => agent.state === 'registered' && agent.server === onEdge2Address).length, CALLS), WAIT);
    await eventually(async () => {
      const status = (await edge1()).status!;
      assert.equal(status.state, 'drained');
      assert.equal(status.resilience.drain?.phase, 'drained');
      assert.equal(status.edge!.remoteUsers, 0);
    }, WAIT);
    const table = await edge.system.cli('pool', 'status');
    assert.match(table.stdout, /edge1\.contoso\.com\s+edgepool\.contoso\.com\s+\d+\s+draining\s+drained/);
    assert.ok(remote.every((agent) => agent.state === 'registered'), 'nobody lost');

    assert.equal((await edge.system.cli('server', 'resume', 'edge1.contoso.com')).code, 0);
    await eventually(async () => assert.deepEqual(await outsideA('sip.contoso.com'), [edgeIp(1), edgeIp(2)]), WAIT);
  });

  test('blocking an edge server removes its Access Edge, Web Conferencing, A/V and internal records in one serial', async () => {
    const names = { outside: ['sip.contoso.com', 'webconf.contoso.com', 'av.contoso.com'], inside: ['edgepool.contoso.com', 'edge1.contoso.com'] };
    const edge1Addresses = [`${NET}.51`, `${NET}.53`, `${NET}.55`, `${NET}.41`];
    /** One consistent look at the zone: the SOA serial before and after every query is the same, in both views. */
    const snapshot = async (): Promise<{ serial: number; answers: string[] } | null> => {
      const serialOf = async (source: string) => Number((await dig(edge.system.dns, ['contoso.com', 'SOA'], source)).answer[0]?.data.split(/\s+/)[2]);
      const first = await serialOf(OUTSIDE);
      const answers: string[] = [];
      for (const name of names.outside) answers.push(...(await dig(edge.system.dns, [name, 'A'], OUTSIDE)).answer.map((record) => `${name} ${record.data}`));
      for (const name of names.inside) answers.push(...(await dig(edge.system.dns, [name, 'A'], '127.0.0.1')).answer.map((record) => `${name} ${record.data}`));
      const last = await serialOf('127.0.0.1');
      return first === last ? { serial: first, answers } : null;
    };
    const present = (answers: string[]) => edge1Addresses.filter((address) => answers.some((answer) => answer.endsWith(` ${address}`)));
    await eventually(async () => assert.deepEqual(present((await snapshot())?.answers ?? []), edge1Addresses), WAIT);
    const before = (await snapshot())!;
    const blocked = await edge.system.cli('server', 'block', 'edge1.contoso.com', '--reason', 'test');
    assert.equal(blocked.code, 0, blocked.stderr);
    const seen: { serial: number; present: string[] }[] = [];
    await eventually(async () => {
      const now = await snapshot();
      assert.ok(now !== null, 'the serial moved while looking: look again');
      seen.push({ serial: now.serial, present: present(now.answers) });
      assert.deepEqual(seen.at(-1)!.present, []);
    }, WAIT);
    // Every consistent look saw all four of edge1's records or none: never a serial with some of them.
    assert.ok(seen.every((look) => look.present.length === 0 || look.present.length === edge1Addresses.length), JSON.stringify(seen));
    assert.ok(seen.at(-1)!.serial > before.serial);
    assert.equal((await dig(edge.system.dns, ['edge1.contoso.com', 'A'], '127.0.0.1')).status, 'NXDOMAIN');
    assert.equal((await edge.system.cli('server', 'unblock', 'edge1.contoso.com')).code, 0);
    await eventually(async () => assert.deepEqual(present((await snapshot())?.answers ?? []), edge1Addresses), WAIT);
  });
});
