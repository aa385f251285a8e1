// EdgeHandover on a FakeClock: batches of batchSize per interval, users in a call passed over until
// their call ends, cancel stops, releaseAll at the drain timeout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Flow } from '../sip/flow.ts';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { EdgeHandover } from './handover.ts';

function users(count: number): { list: { flow: Flow; user: string }[]; closed: string[] } {
  const closed: string[] = [];
  const list: { flow: Flow; user: string }[] = [];
  for (let index = 0; index < count; index++) {
    const user = `sip:user${index}@contoso.com`;
    const entry = { flow: { close: () => void closed.push(user) } as unknown as Flow, user };
    list.push(entry);
  }
  return { list, closed };
}

test('hands users over batchSize per interval, users in a call last, and stops when none is left', () => {
  const clock = new FakeClock();
  const { list, closed } = users(25);
  const busy = new Set(['sip:user0@contoso.com', 'sip:user1@contoso.com']);
  const left = () => list.filter((entry) => !closed.includes(entry.user));
  const handover = new EdgeHandover({ clock, logger: pino({ level: 'silent' }), users: left, busy: (user) => busy.has(user), batchSize: () => 10, intervalMs: () => 1000 });
  handover.start();
  assert.equal(closed.length, 10);
  assert.ok(!closed.includes('sip:user0@contoso.com'));
  clock.advance(999);
  assert.equal(closed.length, 10, 'not before the interval');
  clock.advance(1);
  assert.equal(closed.length, 20);
  clock.advance(1000);
  assert.equal(closed.length, 23, 'the idle rest; the two in a call wait');
  busy.clear();
  clock.advance(1000);
  assert.equal(closed.length, 25);
  assert.equal(handover.status().running, false);
  assert.deepEqual(handover.status().batches.map((batch) => [batch.handedOver, batch.deferred]), [[10, 2], [10, 2], [3, 2], [2, 0]]);
  assert.equal(handover.handedOver, 25);
});

test('cancel stops the batches; releaseAll lets go of everyone at once', () => {
  const clock = new FakeClock();
  const { list, closed } = users(30);
  const left = () => list.filter((entry) => !closed.includes(entry.user));
  const handover = new EdgeHandover({ clock, logger: pino({ level: 'silent' }), users: left, busy: () => false, batchSize: () => 10, intervalMs: () => 1000 });
  handover.start();
  handover.cancel();
  clock.advance(5000);
  assert.equal(closed.length, 10);
  assert.equal(handover.releaseAll('timeout'), 20);
  assert.equal(closed.length, 30);
});
