// DialogCounter on a FakeClock: counted once per dialog whichever side's tags, ended by BYE or by the close of a user agent's flow in it, bounded in age and count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { DialogCounter, dialogKey } from './dialogs.ts';

test('a dialog counts once (retransmitted 2xx included) and ends with its BYE from either side', () => {
  const dialogs = new DialogCounter({ clock: new FakeClock() });
  dialogs.confirm('c1', 'a', 'b');
  dialogs.confirm('c1', 'a', 'b');
  dialogs.confirm('c2', 'x', 'y');
  assert.equal(dialogs.active(), 2);
  assert.equal(dialogs.end('c1', 'b', 'a'), true, 'the callee\'s BYE has the tags the other way round');
  assert.equal(dialogs.end('c1', 'a', 'b'), false);
  assert.deepEqual(dialogs.stats(), { active: 1, startedTotal: 2, endedTotal: 1, forgottenTotal: 0 });
  assert.equal(dialogKey('c', 'a', 'b'), dialogKey('c', 'b', 'a'));
});

test('dialogs never ended are forgotten after maxAgeMs, and the oldest goes when dialogsMax is reached', () => {
  const clock = new FakeClock();
  const dialogs = new DialogCounter({ clock, maxAgeMs: 10_000, dialogsMax: 2 });
  dialogs.confirm('c1', 'a', 'b');
  clock.advance(5000);
  dialogs.confirm('c2', 'a', 'b');
  dialogs.confirm('c3', 'a', 'b');
  assert.equal(dialogs.active(), 2);
  assert.equal(dialogs.end('c1', 'a', 'b'), false, 'the oldest was forgotten for the third');
  clock.advance(9999);
  assert.equal(dialogs.active(), 2, 'c2 and c3 are 9.999 s old');
  clock.advance(1);
  assert.equal(dialogs.active(), 0, 'both reached their age');
  assert.equal(dialogs.stats().forgottenTotal, 3);
});

test('inDialog: a user is in a dialog from its 2xx to its BYE, counted per dialog; endAll forgets every dialog', () => {
  const dialogs = new DialogCounter({ clock: new FakeClock() });
  dialogs.confirm('c1', 'a', 'b', ['sip:alice@contoso.com', 'sip:bob@contoso.com']);
  dialogs.confirm('c2', 'x', 'y', ['sip:alice@contoso.com']);
  assert.equal(dialogs.inDialog('sip:alice@contoso.com'), true);
  assert.equal(dialogs.inDialog('sip:carol@contoso.com'), false);
  dialogs.end('c1', 'b', 'a');
  assert.equal(dialogs.inDialog('sip:bob@contoso.com'), false);
  assert.equal(dialogs.inDialog('sip:alice@contoso.com'), true, 'still in c2');
  assert.equal(dialogs.endAll(), 1);
  assert.equal(dialogs.inDialog('sip:alice@contoso.com'), false);
  assert.equal(dialogs.stats().endedTotal, 2);
});

test('holds: a dialog is held from its 2xx (either tag order) until its BYE or its age limit', () => {
  const clock = new FakeClock();
  const dialogs = new DialogCounter({ clock, maxAgeMs: 1000 });
  assert.equal(dialogs.holds('c1', 'a', 'b'), false, 'never confirmed here (a restarted Mediation server)');
  dialogs.confirm('c1', 'a', 'b');
  dialogs.confirm('c2', 'x', 'y');
  assert.equal(dialogs.holds('c1', 'b', 'a'), true);
  dialogs.end('c1', 'a', 'b');
  assert.equal(dialogs.holds('c1', 'a', 'b'), false);
  clock.advance(1000);
  assert.equal(dialogs.holds('c2', 'x', 'y'), false, 'forgotten at its age limit');
});

test('a dialog ends when a flow of one of its user agents closes; its users are no longer busy; others stay', () => {
  const dialogs = new DialogCounter({ clock: new FakeClock() });
  dialogs.confirm('c1', 'a', 'b', ['sip:alice@contoso.com', 'sip:bob@contoso.com'], ['flow-alice', 'flow-bob']);
  dialogs.confirm('c2', 'x', 'y', ['sip:alice@contoso.com', 'sip:carol@contoso.com'], ['flow-alice-2']);
  dialogs.confirm('c3', 'p', 'q', ['sip:dave@contoso.com']);
  assert.equal(dialogs.flowClosed('flow-link'), 0, 'a flow in no dialog');
  assert.equal(dialogs.flowClosed('flow-bob'), 1);
  assert.equal(dialogs.inDialog('sip:bob@contoso.com'), false);
  assert.equal(dialogs.inDialog('sip:alice@contoso.com'), true, 'alice is still in c2');
  assert.equal(dialogs.flowClosed('flow-alice'), 0, 'c1 is over already');
  assert.equal(dialogs.end('c1', 'a', 'b'), false, 'a late BYE finds nothing to end');
  assert.equal(dialogs.flowClosed('flow-alice-2'), 1);
  assert.equal(dialogs.inDialog('sip:alice@contoso.com'), false);
  assert.deepEqual(dialogs.stats(), { active: 1, startedTotal: 3, endedTotal: 2, forgottenTotal: 0 }, 'c3 (no flow of a user agent named) waits for its BYE');
  assert.equal(dialogs.end('c3', 'q', 'p'), true);
});
