// The drain step: while this server drains, new out-of-dialog requests from clients get 302 to the
// user's next available servers (never this one), or 503 when none is left; everything else passes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValue, headerValues } from '../../sip/message.ts';
import { fixedRandom, PEER_ADDRESS, request, runStep, stepView } from '../../../test/helpers/step-fixture.ts';
import { RegisterAnswers } from '../register-answers.ts';
import type { OwnState } from '../status.ts';
import { DrainRedirectStep } from './drain-redirect.ts';

function step(ownState: OwnState, available: (fqdn: string) => boolean = (fqdn) => fqdn !== 'fe1.contoso.com'): { step: DrainRedirectStep; answers: RegisterAnswers } {
  const answers = new RegisterAnswers();
  const drain = new DrainRedirectStep({
    view: stepView,
    ownState: () => ownState,
    available,
    contactHeaders: (contacts) => contacts.map((contact) => ({ name: 'Contact', value: `<sip:${contact.server}>;q=${contact.q}` })),
    random: fixedRandom,
    registerAnswers: answers,
  });
  return { step: drain, answers };
}

test('drain: an active server lets everything pass', () => {
  const { step: drain } = step('active');
  assert.equal(runStep(drain, request('REGISTER sip:contoso.com SIP/2.0')).outcome, 'continue');
  assert.equal(drain.redirects, 0);
});

test('drain: what a draining server redirects and what it serves as usual', () => {
  const rows: [string, ReturnType<typeof request>, string | undefined, number | null][] = [
    ['REGISTER → 302', request('REGISTER sip:contoso.com SIP/2.0'), undefined, 302],
    ['new INVITE from a user → 302', request('INVITE sip:bob@contoso.com SIP/2.0'), undefined, 302],
    ['reg SUBSCRIBE → 302', request('SUBSCRIBE sip:alice@contoso.com SIP/2.0', ['Event: reg'], { To: '<sip:alice@contoso.com>' }), undefined, 302],
    ['in-dialog BYE (To tag) passes', request('BYE sip:bob@contoso.com SIP/2.0', [], { To: '<sip:bob@contoso.com>;tag=b1' }), undefined, null],
    ['ACK passes', request('ACK sip:bob@contoso.com SIP/2.0'), undefined, null],
    ['CANCEL passes', request('CANCEL sip:bob@contoso.com SIP/2.0'), undefined, null],
    ['OPTIONS to us passes (the heartbeat)', request('OPTIONS sip:fe1.contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), undefined, null],
    ['a request from a peer passes', request('INVITE sip:bob@contoso.com SIP/2.0'), PEER_ADDRESS, null],
    ['a request along a Route passes', request('INVITE sip:bob@contoso.com SIP/2.0', ['Route: <sip:127.0.9.9;lr>']), undefined, null],
    ['a caller outside our domains passes', request('INVITE sip:bob@contoso.com SIP/2.0', [], { From: '<sip:eve@fabrikam.com>;tag=e1' }), undefined, null],
  ];
  for (const [name, message, from, status] of rows) {
    const ran = runStep(step('draining').step, message, { from });
    assert.equal(ran.outcome, status === null ? 'continue' : 'answered', name);
    assert.equal(ran.flow.responses()[0]?.status ?? null, status, name);
  }
});

test('drain: the 302 names the user\'s available servers, never this one, and is counted', () => {
  const { step: drain, answers } = step('drained');
  const ran = runStep(drain, request('REGISTER sip:contoso.com SIP/2.0'));
  const response = ran.flow.responses()[0]!;
  assert.equal(response.reason, 'Moved Temporarily');
  const contacts = headerValues(response, 'Contact');
  assert.equal(contacts.length, 2);
  assert.ok(contacts.every((contact) => !contact.includes('fe1.contoso.com')), contacts.join(' '));
  assert.equal(drain.redirects, 1);
  assert.equal(answers.byClass['3xx'], 1);
});

test('drain: no other server available → 503 with Retry-After', () => {
  const { step: drain, answers } = step('draining', () => false);
  const response = runStep(drain, request('REGISTER sip:contoso.com SIP/2.0')).flow.responses()[0]!;
  assert.equal(response.status, 503);
  assert.equal(headerValue(response, 'Retry-After'), '30');
  assert.equal(answers.byClass['5xx'], 1);
});
