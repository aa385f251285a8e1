// The register step hands a REGISTER with no Route left to the registrar, and nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createResponse, type SipRequest } from '../../sip/message.ts';
import { request, runStep } from '../../../test/helpers/step-fixture.ts';
import { RegisterAnswers } from '../register-answers.ts';
import { RegisterStep } from './register.ts';

test('register: a REGISTER with no Route left goes to the registrar, its answer is sent and counted', () => {
  const handled: SipRequest[] = [];
  const answers = new RegisterAnswers();
  const step = new RegisterStep({ handleRegister: (_flow, message) => (handled.push(message), createResponse(message, 301, { toTag: 't' })) }, answers);
  const ran = runStep(step, request('REGISTER sip:contoso.com SIP/2.0'));
  assert.deepEqual([ran.outcome, ran.flow.responses()[0]?.status, handled.length, answers.byClass['3xx']], ['answered', 301, 1, 1]);
  assert.equal(runStep(step, request('REGISTER sip:contoso.com SIP/2.0', ['Route: <sip:127.0.9.9;lr>'])).outcome, 'continue', 'along a Route: proxied');
  assert.equal(runStep(step, request('INVITE sip:bob@contoso.com SIP/2.0')).outcome, 'continue');
});
