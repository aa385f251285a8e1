// Heartbeat on a FakeClock: probes per interval, at most one in flight, timeouts count as misses, changes are reported.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { Heartbeat, type MemberChange } from './heartbeat.ts';
import type { ProbeResult } from './member-state.ts';

const settings = { intervalMs: 1000, failAfter: 3, riseAfter: 2 };
const up: ProbeResult = { ok: true, reportedState: 'active', topologyVersion: 1 };

/** Lets promise callbacks run between clock steps. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

async function advance(clock: FakeClock, ms: number, stepMs = 100) {
  for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
    clock.advance(stepMs);
    await flush();
  }
}

test('a peer that stops answering is down after failAfter intervals and up again after riseAfter answers', async () => {
  const clock = new FakeClock();
  const alive = new Map([['fe2', true], ['fe3', true]]);
  const probes: string[] = [];
  const heartbeat = new Heartbeat('fe1', ['fe1', 'fe2', 'fe3'], async (peer) => {
    probes.push(peer);
    return alive.get(peer) ? up : { ok: false, reason: 'refused' };
  }, settings, clock);
  const changes: MemberChange[] = [];
  heartbeat.onChange((change) => changes.push(change));
  heartbeat.start();
  await flush();
  assert.deepEqual(probes.sort(), ['fe2', 'fe3'], 'self is never probed');
  assert.equal(heartbeat.stateOf('fe2'), 'active');

  alive.set('fe2', false);
  await advance(clock, 1000);
  assert.equal(heartbeat.stateOf('fe2'), 'suspect');
  await advance(clock, 2000);
  assert.equal(heartbeat.stateOf('fe2'), 'down');
  assert.deepEqual(heartbeat.availablePeers(), ['fe3']);

  alive.set('fe2', true);
  await advance(clock, 1000);
  assert.equal(heartbeat.stateOf('fe2'), 'down', 'one answer is not enough');
  await advance(clock, 1000);
  assert.equal(heartbeat.stateOf('fe2'), 'active');
  assert.deepEqual(
    changes.filter((change) => change.peer === 'fe2').map((change) => `${change.from}->${change.to}`),
    ['suspect->active', 'active->suspect', 'suspect->down', 'down->active'],
  );
  heartbeat.stop();
});

test('a probe that never returns is a miss after the timeout, and no second probe is sent meanwhile', async () => {
  const clock = new FakeClock();
  let sent = 0;
  const heartbeat = new Heartbeat('fe1', ['fe2'], () => {
    sent++;
    return new Promise<ProbeResult>(() => {}); // a peer that swallows packets
  }, { ...settings, probeTimeoutMs: 2500 }, clock);
  heartbeat.start();
  await advance(clock, 2000);
  assert.equal(sent, 1, 'the first probe is still in flight at the 2nd and 3rd ticks');
  assert.equal(heartbeat.skipped, 2);
  await advance(clock, 1000);
  assert.equal(heartbeat.view().get('fe2')?.misses, 1);
  assert.equal(sent, 2);
  heartbeat.stop();
  assert.equal(clock.pendingCount() <= 1, true, 'stop cancels the tick timer (a probe timeout may remain)');
});

test('setPeers follows a new topology: removed peers leave the view, new ones start unknown', async () => {
  const clock = new FakeClock();
  const heartbeat = new Heartbeat('fe1', ['fe2', 'fe3'], async () => up, settings, clock);
  heartbeat.setPeers(['fe1', 'fe3', 'fe4']);
  assert.deepEqual([...heartbeat.view().keys()].sort(), ['fe3', 'fe4']);
  assert.equal(heartbeat.view().get('fe4')?.unknown, true);
});

test('refused probes follow each other refusedRetryMs apart: a dead peer is down in failAfter × that, not failAfter intervals', async () => {
  const clock = new FakeClock();
  let listening = true;
  const probesAt: number[] = [];
  const heartbeat = new Heartbeat('fe1', ['fe2'], async () => {
    probesAt.push(clock.nowMs());
    return listening ? up : { ok: false, reason: 'connect ECONNREFUSED', refused: true };
  }, settings, clock);
  heartbeat.start();
  await advance(clock, 1000, 50);
  assert.equal(heartbeat.stateOf('fe2'), 'active');

  listening = false;
  const diedAt = clock.nowMs();
  await advance(clock, 1600, 50); // the next tick (at 2 s) finds it refused, then two more 250 ms apart
  const after = probesAt.filter((at) => at > diedAt);
  assert.deepEqual(after.map((at) => at - after[0]!), [0, 250, 500], 'the re-probes are a quarter interval apart');
  assert.equal(heartbeat.stateOf('fe2'), 'down');

  await advance(clock, 2000, 50);
  assert.equal(probesAt.filter((at) => at > diedAt).length, 5, 'once down, a peer is probed once per interval again');
  heartbeat.stop();
  assert.equal(clock.pendingCount(), 0, 'stop cancels the early probes too');
});

test('a silent peer keeps the full interval between misses: only a refusal is evidence', async () => {
  const clock = new FakeClock();
  let sent = 0;
  const heartbeat = new Heartbeat('fe1', ['fe2'], async () => {
    sent++;
    return { ok: false, reason: 'no answer' };
  }, settings, clock);
  heartbeat.start();
  await advance(clock, 1500, 50);
  assert.equal(sent, 2, 'one probe per interval');
  assert.equal(heartbeat.stateOf('fe2'), 'suspect');
  heartbeat.stop();
});

test('linkLost probes the peer at once; a peer still there answers and stays active', async () => {
  const clock = new FakeClock();
  let listening = true;
  let sent = 0;
  const heartbeat = new Heartbeat('fe1', ['fe2', 'fe3'], async (peer) => {
    if (peer === 'fe2') sent++;
    return listening || peer === 'fe3' ? up : { ok: false, reason: 'connect ECONNREFUSED', refused: true };
  }, settings, clock);
  heartbeat.start();
  await advance(clock, 300, 50);
  assert.equal(sent, 1);

  heartbeat.linkLost('fe2'); // e.g. fe2 restarted its listener: the link reset, fe2 still answers
  await flush();
  assert.equal(sent, 2, 'probed at once, not at the next tick');
  assert.equal(heartbeat.stateOf('fe2'), 'active');

  listening = false; // now fe2's process dies: its link resets
  heartbeat.linkLost('fe2');
  await advance(clock, 600, 50);
  assert.equal(heartbeat.stateOf('fe2'), 'down', 'three refusals at 0, 250 and 500 ms after the reset');
  assert.equal(heartbeat.stateOf('fe3'), 'active');
  heartbeat.linkLost('fe9'); // not a pool member: ignored
  heartbeat.linkLost('fe2'); // already down: nothing to hurry
  await flush();
  assert.equal(sent, 5);
  heartbeat.stop();
});
