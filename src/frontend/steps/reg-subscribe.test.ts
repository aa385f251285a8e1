// The reg-subscribe step hands a SUBSCRIBE to the reg event to the registrar, and nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createResponse } from '../../sip/message.ts';
import { request, runStep } from '../../../test/helpers/step-fixture.ts';
import { RegSubscribeStep } from './reg-subscribe.ts';

test('reg-subscribe: only a SUBSCRIBE to the reg event', () => {
  const step = new RegSubscribeStep({ handleSubscribe: (_flow, message) => createResponse(message, 200, { toTag: 't' }) });
  assert.equal(runStep(step, request('SUBSCRIBE sip:alice@contoso.com SIP/2.0', ['Event: reg'])).flow.responses()[0]?.status, 200);
  assert.equal(runStep(step, request('SUBSCRIBE sip:bob@contoso.com SIP/2.0', ['Event: presence'])).outcome, 'continue');
});
