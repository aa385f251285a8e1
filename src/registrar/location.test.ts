// Tests of the location service (RFC 3261 §10.3 on a FakeClock) and of the REGISTER home decision.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { LocationService, decideRegister, ownCopy, parseRegistrarConfig } from './location.ts';
import type { ContactFacts, RegisterFacts } from './location.ts';
import { Sequencer, sequenceOf } from './sequence.ts';

const ALICE = 'sip:alice@contoso.com';

function facts(overrides: Partial<RegisterFacts> & { contacts?: readonly ContactFacts[] } = {}): RegisterFacts {
  return { aor: ALICE, callId: 'call-1', cseq: 1, contacts: [{ uri: 'sip:alice@10.0.0.5:5061;transport=tls' }], flowId: 'flow-1', ...overrides };
}

function service(clock = new FakeClock()): { clock: FakeClock; location: LocationService } {
  return { clock, location: new LocationService({ clock }) };
}

describe('LocationService.register', () => {
  test('adds a binding with the default expiry, answers every binding with its seconds left', () => {
    const { clock, location } = service();
    const outcome = location.register(facts(), 'primary');
    assert.equal(outcome.kind, 'ok');
    assert.equal(outcome.kind === 'ok' && outcome.changes[0]?.event, 'created');
    const [binding] = location.bindingsOf('sips:alice@CONTOSO.com');
    assert.ok(binding);
    assert.equal(binding.contact, 'sip:alice@10.0.0.5:5061;transport=tls');
    assert.equal(binding.expiresInS, 3600);
    assert.equal(binding.mode, 'primary');
    assert.equal(binding.flowId, 'flow-1');
    clock.advance(1000 * 1000);
    assert.equal(location.bindingsOf(ALICE)[0]?.expiresInS, 2600);
    assert.deepEqual(location.counts(), { users: 1, bindings: 1, bindingsPrimary: 1, bindingsBackup: 0 });
  });

  test('the contact expires parameter wins over the Expires header; long requests are clamped', () => {
    const { location } = service();
    const outcome = location.register(facts({ expiresS: 300, contacts: [{ uri: 'sip:a@h1', expiresS: 120 }, { uri: 'sip:a@h2' }, { uri: 'sip:a@h3', expiresS: 99_999 }] }), 'primary');
    assert.equal(outcome.kind, 'ok');
    const seconds = Object.fromEntries(location.bindingsOf(ALICE).map((b) => [b.contact, b.expiresInS]));
    assert.deepEqual(seconds, { 'sip:a@h1': 120, 'sip:a@h2': 300, 'sip:a@h3': 7200 });
  });

  test('below Min-Expires is refused with interval-too-brief and nothing is stored', () => {
    const { location } = service();
    assert.deepEqual(location.register(facts({ expiresS: 30 }), 'primary'), { kind: 'interval-too-brief', minExpiresS: 60 });
    assert.deepEqual(location.register(facts({ contacts: [{ uri: 'sip:a@h1' }, { uri: 'sip:a@h2', expiresS: 59 }] }), 'primary'), { kind: 'interval-too-brief', minExpiresS: 60 });
    assert.equal(location.counts().bindings, 0);
  });

  test('refresh with a higher CSeq updates; the same or a lower CSeq on the same Call-ID is out of order', () => {
    const { clock, location } = service();
    location.register(facts({ cseq: 5 }), 'primary');
    clock.advance(600_000);
    const refreshed = location.register(facts({ cseq: 6 }), 'primary');
    assert.equal(refreshed.kind === 'ok' && refreshed.changes[0]?.event, 'refreshed');
    assert.equal(location.bindingsOf(ALICE)[0]?.expiresInS, 3600);
    assert.deepEqual(location.register(facts({ cseq: 6 }), 'primary'), { kind: 'out-of-order', contact: 'sip:alice@10.0.0.5:5061;transport=tls' });
    assert.equal(location.register(facts({ cseq: 2 }), 'primary').kind, 'out-of-order');
    // Another Call-ID (the client restarted) updates whatever its CSeq.
    assert.equal(location.register(facts({ callId: 'call-2', cseq: 1 }), 'backup').kind, 'ok');
    assert.equal(location.bindingsOf(ALICE)[0]?.mode, 'backup');
    assert.deepEqual(location.counts(), { users: 1, bindings: 1, bindingsPrimary: 0, bindingsBackup: 1 });
  });

  test('an out-of-order Contact aborts the whole request (all or nothing)', () => {
    const { location } = service();
    location.register(facts({ cseq: 5 }), 'primary');
    const outcome = location.register(facts({ cseq: 5, contacts: [{ uri: 'sip:new@h' }, { uri: 'sip:alice@10.0.0.5:5061;transport=tls' }] }), 'primary');
    assert.equal(outcome.kind, 'out-of-order');
    assert.deepEqual(location.bindingsOf(ALICE).map((b) => b.contact), ['sip:alice@10.0.0.5:5061;transport=tls']);
  });

  test('expires=0 removes one binding; removing an unknown one is fine', () => {
    const { location } = service();
    location.register(facts({ contacts: [{ uri: 'sip:a@h1' }, { uri: 'sip:a@h2' }] }), 'primary');
    const outcome = location.register(facts({ cseq: 2, contacts: [{ uri: 'sip:a@h1', expiresS: 0 }, { uri: 'sip:a@nowhere', expiresS: 0 }] }), 'primary');
    assert.equal(outcome.kind, 'ok');
    assert.deepEqual(outcome.kind === 'ok' && outcome.changes.map((c) => [c.event, c.binding.contact]), [['unregistered', 'sip:a@h1']]);
    assert.deepEqual(location.bindingsOf(ALICE).map((b) => b.contact), ['sip:a@h2']);
  });

  test('Contact * with Expires 0 removes all; * not alone or without Expires 0 is a bad request', () => {
    const { location } = service();
    location.register(facts({ contacts: [{ uri: 'sip:a@h1' }, { uri: 'sip:a@h2' }] }), 'primary');
    assert.equal(location.register(facts({ cseq: 2, expiresS: 0, contacts: [{ uri: '*' }, { uri: 'sip:a@h1' }] }), 'primary').kind, 'bad-request');
    assert.equal(location.register(facts({ cseq: 2, expiresS: 3600, contacts: [{ uri: '*' }] }), 'primary').kind, 'bad-request');
    assert.equal(location.register(facts({ cseq: 2, contacts: [{ uri: '*' }] }), 'primary').kind, 'bad-request');
    assert.equal(location.register(facts({ cseq: 1, expiresS: 0, contacts: [{ uri: '*' }] }), 'primary').kind, 'out-of-order');
    const outcome = location.register(facts({ cseq: 2, expiresS: 0, contacts: [{ uri: '*' }] }), 'primary');
    assert.equal(outcome.kind === 'ok' && outcome.changes.length, 2);
    assert.deepEqual(location.counts(), { users: 0, bindings: 0, bindingsPrimary: 0, bindingsBackup: 0 });
  });

  test('a query (no Contact) answers the current bindings and changes nothing', () => {
    const { location } = service();
    location.register(facts(), 'primary');
    const outcome = location.register(facts({ callId: 'other', contacts: [] }), 'primary');
    assert.equal(outcome.kind === 'ok' && outcome.bindings.length, 1);
    assert.equal(outcome.kind === 'ok' && outcome.changes.length, 0);
  });

  test('instance and reg-id name a binding whatever its URI (RFC 5626)', () => {
    const { location } = service();
    const instance = '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"';
    location.register(facts({ contacts: [{ uri: 'sip:alice@10.0.0.5:5061', instance, regId: 1 }] }), 'primary');
    location.register(facts({ cseq: 2, contacts: [{ uri: 'sip:alice@10.0.0.9:5061', instance, regId: 1 }] }), 'primary');
    location.register(facts({ cseq: 3, contacts: [{ uri: 'sip:alice@10.0.0.9:5061', instance, regId: 2 }] }), 'primary');
    const bindings = location.bindingsOf(ALICE);
    assert.deepEqual(bindings.map((b) => [b.contact, b.regId]), [['sip:alice@10.0.0.9:5061', 1], ['sip:alice@10.0.0.9:5061', 2]]);
    assert.ok(bindings.every((b) => b.instance === instance));
  });

  test('more bindings than bindingsPerUserMax is refused, nothing stored', () => {
    const clock = new FakeClock();
    const location = new LocationService({ clock, config: { bindingsPerUserMax: 2 } });
    assert.equal(location.register(facts({ contacts: [{ uri: 'sip:a@h1' }, { uri: 'sip:a@h2' }] }), 'primary').kind, 'ok');
    assert.deepEqual(location.register(facts({ cseq: 2, contacts: [{ uri: 'sip:a@h3' }] }), 'primary'), { kind: 'too-many-bindings', max: 2 });
    // Replacing one within the same request fits.
    assert.equal(location.register(facts({ cseq: 3, contacts: [{ uri: 'sip:a@h1', expiresS: 0 }, { uri: 'sip:a@h3' }] }), 'primary').kind, 'ok');
    assert.equal(location.counts().bindings, 2);
  });

  test('a bad AOR is a bad request', () => {
    const { location } = service();
    assert.equal(location.register(facts({ aor: 'tel:+15551234' }), 'primary').kind, 'bad-request');
  });
});

describe('LocationService expiry, flows and users', () => {
  test('a binding disappears from lookups when it expires and the sweep removes it and says so', () => {
    const clock = new FakeClock();
    const expired: string[] = [];
    const location = new LocationService({ clock, onExpired: (bindings) => expired.push(...bindings.map((b) => b.contact)) });
    location.start();
    location.register(facts({ expiresS: 60 }), 'primary');
    location.register(facts({ aor: 'sip:bob@contoso.com', expiresS: 3600, contacts: [{ uri: 'sip:bob@h' }] }), 'backup');
    clock.advance(59_999);
    assert.equal(location.bindingsOf(ALICE).length, 1);
    clock.advance(1_001);
    assert.equal(location.bindingsOf(ALICE).length, 0);
    clock.advance(5_000);
    assert.deepEqual(expired, ['sip:alice@10.0.0.5:5061;transport=tls']);
    assert.deepEqual(location.counts(), { users: 1, bindings: 1, bindingsPrimary: 0, bindingsBackup: 1 });
    location.stop();
    assert.equal(clock.pendingCount(), 0);
  });

  test('re-registering an expired, unswept Contact creates it afresh', () => {
    const { clock, location } = service();
    location.register(facts({ expiresS: 60 }), 'primary');
    clock.advance(120_000);
    const outcome = location.register(facts({ expiresS: 60, cseq: 1 }), 'primary');
    assert.equal(outcome.kind === 'ok' && outcome.changes[0]?.event, 'created');
    assert.equal(location.counts().bindings, 1);
  });

  test('bindings follow their flow; a dead flow takes its bindings with it', () => {
    const { location } = service();
    location.register(facts({ flowId: 'f1', contacts: [{ uri: 'sip:a@h1' }] }), 'primary');
    location.register(facts({ aor: 'sip:bob@contoso.com', flowId: 'f1', contacts: [{ uri: 'sip:b@h1' }] }), 'primary');
    location.register(facts({ aor: 'sip:carol@contoso.com', flowId: 'f2', contacts: [{ uri: 'sip:c@h1' }] }), 'primary');
    // Alice comes back on another connection: her binding moves to f3.
    location.register(facts({ cseq: 2, flowId: 'f3', contacts: [{ uri: 'sip:a@h1' }] }), 'primary');
    assert.deepEqual(location.bindingsOnFlow('f1').map((b) => b.user), ['sip:bob@contoso.com']);
    assert.deepEqual(location.bindingsOnFlow('f3').map((b) => b.user), [ALICE]);
    assert.deepEqual(location.dropFlow('f1').map((b) => b.user), ['sip:bob@contoso.com']);
    assert.deepEqual(location.bindingsOf('sip:bob@contoso.com'), []);
    assert.deepEqual([...location.users()].sort(), [ALICE, 'sip:carol@contoso.com']);
    assert.deepEqual(location.dropFlow('nope'), []);
  });

  test('stored strings are equal copies of what the SIP layer passed', () => {
    const message = `To: <${ALICE}>\r\nContact: <sip:alice@10.0.0.5:5061;transport=tls>\r\n`;
    const contact = message.slice(message.indexOf('Contact: <') + 10, message.lastIndexOf('>'));
    assert.equal(ownCopy(contact), 'sip:alice@10.0.0.5:5061;transport=tls');
    assert.equal(ownCopy('a"b\\c\u263a'), 'a"b\\c\u263a');
  });

  test('deactivateUser ends every binding of the user', () => {
    const { location } = service();
    location.register(facts({ contacts: [{ uri: 'sip:a@h1' }, { uri: 'sip:a@h2' }] }), 'backup');
    assert.equal(location.deactivateUser('sips:alice@contoso.com').length, 2);
    assert.deepEqual(location.counts(), { users: 0, bindings: 0, bindingsPrimary: 0, bindingsBackup: 0 });
  });

  test('users homed at a server and users whose home moved elsewhere', () => {
    const { location } = service();
    const servers = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
    const sequencer = new Sequencer(servers);
    const names = Array.from({ length: 60 }, (_, index) => `sip:user${index}@contoso.com`);
    for (const name of names) location.register(facts({ aor: name, contacts: [{ uri: `${name};ob` }] }), 'backup');
    const all = new Set(servers);
    const onFe1 = names.filter((name) => sequenceOf(name, servers)[0] === 'fe1.contoso.com');
    assert.deepEqual(location.usersHomedAt('fe1.contoso.com', sequencer, all).sort(), [...onFe1].sort());
    const elsewhere = location.usersHomedElsewhere('fe1.contoso.com', sequencer, all);
    assert.equal(elsewhere.length, names.length - onFe1.length);
    assert.ok(elsewhere.every((move) => move.home !== 'fe1.contoso.com' && move.home !== null));
    assert.ok(location.usersHomedElsewhere('fe1.contoso.com', sequencer, new Set()).every((move) => move.home === null));
  });
});

describe('decideRegister', () => {
  const servers = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
  const sequencer = new Sequencer(servers);
  const config = parseRegistrarConfig();
  const [first, second, third] = sequenceOf(ALICE, servers) as [string, string, string];

  test('the home accepts in primary mode; with its primary down, the next accepts in backup mode', () => {
    const all = new Set(servers);
    assert.deepEqual(decideRegister({ self: first, sequencer, available: all, config }, facts()).kind, 'accept');
    const decision = decideRegister({ self: first, sequencer, available: all, config }, facts());
    assert.equal(decision.kind === 'accept' && decision.mode, 'primary');
    const backup = decideRegister({ self: second, sequencer, available: (s) => s !== first, config }, facts());
    assert.equal(backup.kind === 'accept' && backup.mode, 'backup');
  });

  test('any other server redirects to the home first, then the rest with falling q', () => {
    const decision = decideRegister({ self: third, sequencer, available: new Set(servers), config }, facts());
    assert.equal(decision.kind, 'redirect');
    assert.deepEqual(decision.kind === 'redirect' && decision.contacts, [
      { server: first, q: 0.7 },
      { server: second, q: 0.3 },
      { server: third, q: 0.15 },
    ]);
  });

  test('refusals: too brief at the home, none available, bad AOR, * misuse', () => {
    const all = new Set(servers);
    assert.deepEqual(decideRegister({ self: first, sequencer, available: all, config }, facts({ expiresS: 10 })), { kind: 'interval-too-brief', minExpiresS: 60 });
    assert.equal(decideRegister({ self: second, sequencer, available: all, config }, facts({ expiresS: 10 })).kind, 'redirect');
    assert.deepEqual(decideRegister({ self: first, sequencer, available: new Set(), config }, facts()), { kind: 'unavailable' });
    assert.equal(decideRegister({ self: first, sequencer, available: all, config }, facts({ aor: 'mailto:alice@contoso.com' })).kind, 'bad-request');
    assert.equal(decideRegister({ self: first, sequencer, available: all, config }, facts({ contacts: [{ uri: '*' }] })).kind, 'bad-request');
    assert.equal(decideRegister({ self: first, sequencer, available: all, config }, facts({ expiresS: 0, contacts: [{ uri: '*' }] })).kind, 'accept');
  });

  test('a draining server (left out of the available set) sends even its own users home elsewhere', () => {
    const draining = (server: string): boolean => server !== first;
    const decision = decideRegister({ self: first, sequencer, available: draining, config }, facts());
    assert.equal(decision.kind, 'redirect');
    assert.deepEqual(decision.kind === 'redirect' && decision.contacts.map((c) => c.server), [second, third]);
    // And its location service lists those users for the drain queue.
    const { location } = service();
    location.register(facts(), 'primary');
    assert.deepEqual(location.usersHomedElsewhere(first, sequencer, draining), [{ user: ALICE, home: second }]);
  });

  test('config validation rejects inconsistent expiries', () => {
    assert.throws(() => parseRegistrarConfig({ expiresMinS: 600, expiresDefaultS: 300 }));
    assert.throws(() => parseRegistrarConfig({ expiresMaxS: 30, expiresMinS: 60 }));
    assert.equal(parseRegistrarConfig({ expiresMinS: 300, expiresDefaultS: 600, expiresMaxS: 900 }).expiresMaxS, 900);
  });
});
