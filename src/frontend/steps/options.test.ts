// The options step: OPTIONS to us → 200, with our state to a peer (what its heartbeat reads); any other
// method to us → 405 with Allow; everything else passes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValue } from '../../sip/message.ts';
import { fixedRandom, PEER_ADDRESS, request, runStep, stepView } from '../../../test/helpers/step-fixture.ts';
import type { OwnState } from '../status.ts';
import { OptionsStep, SERVER_HEADER, STATE_HEADER, TOPOLOGY_VERSION_HEADER } from './options.ts';

test('options: 200 with the state headers to a pool peer, as the heartbeat probe sends it (Max-Forwards 0)', () => {
  let state: OwnState = 'active';
  const step = new OptionsStep(stepView, () => state, fixedRandom);
  for (const expected of ['active', 'draining'] as const) {
    state = expected;
    const ran = runStep(step, request('OPTIONS sip:fe1.contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), { from: PEER_ADDRESS });
    const response = ran.flow.responses()[0]!;
    assert.equal(ran.outcome, 'answered');
    assert.equal(response.status, 200);
    assert.equal(headerValue(response, STATE_HEADER), expected);
    assert.equal(headerValue(response, TOPOLOGY_VERSION_HEADER), '4');
    assert.equal(headerValue(response, SERVER_HEADER), 'fe1.contoso.com');
    assert.equal(headerValue(response, 'Supported'), 'path, outbound');
  }
});

test('options: a client, or a process on a peer\'s address without its certificate, gets 200 without the heartbeat\'s state', () => {
  const step = new OptionsStep(stepView, () => 'draining', fixedRandom);
  for (const options of [{}, { from: PEER_ADDRESS, certificate: false }]) {
    const response = runStep(step, request('OPTIONS sip:fe1.contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), options).flow.responses()[0]!;
    assert.equal(response.status, 200);
    assert.equal(headerValue(response, 'Supported'), 'path, outbound');
    for (const name of [STATE_HEADER, TOPOLOGY_VERSION_HEADER, SERVER_HEADER]) assert.equal(headerValue(response, name), undefined, `${name} in ${JSON.stringify(options)}`);
  }
});

test('options: another method to us → 405 with Allow; ACK to us dropped; a request to a user passes', () => {
  const step = new OptionsStep(stepView, () => 'active', fixedRandom);
  const invite = runStep(step, request('INVITE sip:127.0.7.1 SIP/2.0')).flow.responses()[0]!;
  assert.equal(invite.status, 405);
  assert.equal(headerValue(invite, 'Allow'), 'OPTIONS, REGISTER, SUBSCRIBE');
  const ack = runStep(step, request('ACK sip:127.0.7.1 SIP/2.0'));
  assert.deepEqual([ack.outcome, ack.flow.sent.length], ['answered', 0]);
  assert.equal(runStep(step, request('OPTIONS sip:bob@contoso.com SIP/2.0')).outcome, 'continue');
  assert.equal(runStep(step, request('REGISTER sip:contoso.com SIP/2.0')).outcome, 'continue');
});
