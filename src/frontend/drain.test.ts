// The drain state machine on a FakeClock: drained when nothing is left, bounded by the timeout
// (what is left is ended and counted), resumable, and the progress it reports on the way.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { Drain, type DrainLeft, type DrainProgress } from './drain.ts';

function drainWith(left: DrainLeft, options: { timeoutMs?: number; checkIntervalMs?: number } = {}) {
  const clock = new FakeClock();
  const state = { ...left, handedOver: 0, ended: 0 };
  const finished: DrainProgress[] = [];
  const drain = new Drain({
    clock,
    cause: 'admin',
    timeoutMs: options.timeoutMs ?? 10_000,
    checkIntervalMs: options.checkIntervalMs ?? 250,
    left: () => ({ bindings: state.bindings, dialogs: state.dialogs }),
    handedOver: () => state.handedOver,
    endLeft: () => {
      state.ended++;
      const ended = { bindings: state.bindings, dialogs: state.dialogs };
      state.bindings = 0;
      state.dialogs = 0;
      return ended;
    },
    onDrained: (progress) => finished.push(progress),
  });
  return { clock, state, drain, finished };
}

describe('Drain', () => {
  test('drains when the last binding and the last dialog are gone, not before', () => {
    const { clock, state, drain, finished } = drainWith({ bindings: 3, dialogs: 2 });
    const startedAtMs = clock.nowMs();
    assert.equal(drain.phase, 'draining');
    state.bindings = 0;
    state.handedOver = 3;
    clock.advance(1000);
    assert.equal(drain.phase, 'draining', 'a dialog is still up');
    assert.deepEqual([drain.progress().bindingsLeft, drain.progress().dialogsLeft, drain.progress().handedOver], [0, 2, 3]);
    state.dialogs = 0;
    clock.advance(249);
    assert.equal(drain.phase, 'draining', 'seen at the next check only');
    clock.advance(1);
    assert.equal(drain.phase, 'drained');
    assert.equal(finished.length, 1);
    const progress = finished[0]!;
    assert.equal(progress.startedAtMs, startedAtMs);
    assert.equal(progress.finishedAtMs, startedAtMs + 1250);
    assert.equal(progress.timedOut, false);
    assert.equal(progress.endedAtTimeout, null);
    assert.equal(state.ended, 0, 'nothing was ended by force');
    clock.advance(20_000);
    assert.equal(finished.length, 1, 'the timeout does not fire after the drain ended');
  });

  test('check() makes it drained at once when nothing is left', () => {
    const { drain, finished, clock } = drainWith({ bindings: 0, dialogs: 0 });
    drain.check();
    assert.equal(drain.phase, 'drained');
    assert.equal(finished[0]!.finishedAtMs, clock.nowMs());
  });

  test('the timeout ends what is left, says how much, and the drain is drained (timed out)', () => {
    const { clock, drain, finished, state } = drainWith({ bindings: 5, dialogs: 1 }, { timeoutMs: 3000 });
    clock.advance(2999);
    assert.equal(drain.phase, 'draining');
    clock.advance(1);
    assert.equal(drain.phase, 'drained');
    assert.equal(state.ended, 1);
    assert.equal(finished.length, 1);
    assert.equal(finished[0]!.timedOut, true);
    assert.deepEqual(finished[0]!.endedAtTimeout, { bindings: 5, dialogs: 1 });
    assert.deepEqual([finished[0]!.bindingsLeft, finished[0]!.dialogsLeft], [0, 0]);
    assert.equal(finished[0]!.finishedAtMs! - finished[0]!.startedAtMs, 3000);
  });

  test('resume stops the drain: no drained, no timeout, what is left stays', () => {
    const { clock, drain, finished, state } = drainWith({ bindings: 2, dialogs: 0 }, { timeoutMs: 2000 });
    clock.advance(500);
    drain.resume();
    assert.equal(drain.phase, 'resumed');
    assert.equal(drain.progress().finishedAtMs, clock.nowMs());
    state.bindings = 0;
    clock.advance(10_000);
    assert.equal(drain.phase, 'resumed');
    assert.equal(finished.length, 0);
    assert.equal(state.ended, 0);
    assert.equal(clock.pendingCount(), 0, 'no timer left behind');
  });
});
