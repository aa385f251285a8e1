// Issue 14, dialogs between inside and remote users through the Edge (`dnslb up`, the example with
// authentication on): an inside user's INVITE to a remote user CANCELled before the answer (200 to the
// CANCEL, 487 to the INVITE), a re-INVITE in an established call from either side (200, along the
// Record-Route through the Edge). Then a remote user after the Director that authenticated its flow
// dies: the Edge relays the user's next new request to the next Director, which has
// not authenticated that flow and answers 407; the client answers the challenge once with its
// credentials (src/client: INVITE, MESSAGE, SUBSCRIBE) and the call and the IM go through — without
// waiting for its next REGISTER. Counts, not timing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Call } from '../../src/client/call.ts';
import type { UserAgent } from '../../src/client/user-agent.ts';
import { hangUp, signInUsers, startEdgeSystem, upOrFailed, type EdgeSystem, type PoolStatusJson } from '../helpers/edge-system.ts';
import { eventually } from '../helpers/eventually.ts';

const NET = '127.0.157';
const OUTSIDE = '127.1.157.5';
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

const directorCounters = (status: PoolStatusJson): Map<string, { authenticated: number; challenged: number }> =>
  new Map(status.servers.filter((entry) => entry.kind === 'director').map((entry) => [entry.server, entry.status?.auth?.counters ?? { authenticated: 0, challenged: 0 }]));

describe('dialogs through the Edge: CANCEL, re-INVITE, and a Director\'s death (dnslb up)', { timeout: 240_000 }, () => {
  let edge: EdgeSystem;
  let remote: UserAgent;
  let inside: UserAgent;
  let carrier: string;
  /** A remote user that answers only after ten minutes: calls to it ring until CANCELled. */
  let slow: UserAgent;

  before(async () => {
    edge = await startEdgeSystem(NET, OUTSIDE, 3);
    slow = edge.agent(3, 'outside', { answerDelayMs: 600_000 });
    await slow.start();
    const before = directorCounters(await edge.answeringStatus());
    // The remote user alone first: an inside user's sign-in is authenticated by a Director too.
    remote = (await signInUsers(edge, 1, 0, WAIT)).remote[0]!;
    const after = directorCounters(await edge.answeringStatus());
    inside = edge.agent(2, 'inside');
    await inside.start();
    await eventually(() => assert.equal(inside.state, 'registered'), WAIT);
    // The Director that authenticated the remote user's REGISTER (the Edge sends a user's requests to one).
    const grew = [...after].filter(([server, counts]) => counts.authenticated > (before.get(server)?.authenticated ?? 0)).map(([server]) => server);
    assert.equal(grew.length, 1, `one Director authenticated the remote user: ${JSON.stringify([...after])}`);
    carrier = grew[0]!;
  });
  after(async () => {
    await Promise.all([remote, inside, slow].map((agent) => agent?.stop({ unregisterTimeoutMs: 200 })));
    await edge?.stop();
  });

  test('an inside user CANCELs its INVITE to a remote user before the answer: 200 to the CANCEL, 487 to the INVITE', async () => {
    await eventually(() => assert.equal(slow.state, 'registered'), WAIT);
    const calleeSide = new Promise<{ how: string; status?: number }>((resolve) => slow.once('incomingCall', (incoming) => incoming.once('ended', resolve)));
    const call = inside.call(slow.aor);
    await new Promise<void>((resolve, reject) => {
      call.once('ringing', () => resolve());
      call.once('ended', (end) => reject(new Error(`ended before ringing: ${JSON.stringify(end)}`)));
    });
    const cancelAnswered = new Promise<number | null>((resolve) => call.once('cancelAnswered', resolve));
    const ended = new Promise<{ how: string; status?: number }>((resolve) => call.once('ended', resolve));
    call.hangUp();
    assert.equal(await cancelAnswered, 200);
    const end = await ended;
    assert.deepEqual([end.how, end.status], ['cancelled', 487]);
    assert.equal((await calleeSide).how, 'cancelled', 'the CANCEL reached the remote user through the Edge');
  });

  test('a re-INVITE in an established call between a remote and an inside user, from either side: 200 through the Edge', async () => {
    const call = remote.call(inside.aor);
    const incoming = new Promise<Call>((resolve) => inside.once('incomingCall', resolve));
    await upOrFailed(call);
    const insideSide = await incoming;
    await upOrFailed(insideSide);
    assert.equal(await call.reinvite(), 200, 'remote → inside');
    assert.equal(await insideSide.reinvite(), 200, 'inside → remote');
    assert.equal(await hangUp(insideSide), 200);
  });

  test('kill that Director: the next call and IM are challenged by the other Director (407), answered, and go through', async () => {
    // Before: the flow is authenticated, no challenge.
    const first = remote.call(inside.aor);
    await upOrFailed(first);
    assert.equal(await hangUp(first), 200);
    await edge.kill(carrier);
    await eventually(async () => {
      const entry = (await edge.poolStatus()).servers.find((candidate) => candidate.server === carrier);
      assert.notEqual(entry?.process?.state, 'running');
    }, WAIT);
    const challengedBefore = [...directorCounters(await edge.answeringStatus()).values()].reduce((sum, counts) => sum + counts.challenged, 0);
    const call = remote.call(inside.aor);
    await upOrFailed(call);
    assert.equal(await hangUp(call), 200);
    const im = await remote.message(inside.aor, 'after the Director died');
    assert.equal(im.status, 200, im.reason);
    assert.equal(remote.state, 'registered');
    const counts = directorCounters(await edge.answeringStatus());
    const survivor = [...counts].find(([server]) => server !== carrier)!;
    assert.ok(survivor[1].challenged > challengedBefore, `the surviving Director challenged: ${JSON.stringify(survivor)}`);
  });
});
