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
