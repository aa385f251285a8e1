// The limits step: 503 with Retry-After for a request to proxy while the proxy is full, nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Flow } from '../../sip/flow.ts';
import type { SipRequest } from '../../sip/message.ts';
import { headerValue, type Header } from '../../sip/message.ts';
import { request, runStep } from '../../../test/helpers/step-fixture.ts';
import { LimitsStep } from './limits.ts';

function proxyHolding(pendingTransactions: number): { proxy: ConstructorParameters<typeof LimitsStep>[0]; answered: { status: number; reason?: string; headers: readonly Header[] }[] } {
  const answered: { status: number; reason?: string; headers: readonly Header[] }[] = [];
  return {
    answered,
    proxy: { pendingTransactions, answer: (_flow: Flow, _request: SipRequest, status: number, reason?: string, headers: readonly Header[] = []) => void answered.push({ status, reason, headers }) },
  };
}

test('limits: at the transaction cap a request to proxy is answered 503 Retry-After 5 by the proxy', () => {
  const full = proxyHolding(10);
  const { outcome } = runStep(new LimitsStep(full.proxy, 10), request('INVITE sip:bob@contoso.com SIP/2.0'));
  assert.equal(outcome, 'answered');
  assert.deepEqual(full.answered.map((answer) => [answer.status, answer.reason, headerValue(answer, 'Retry-After')]), [[503, 'Too many transactions', '5']]);
});

test('limits: below the cap, and ACK, CANCEL and requests we answer ourselves at the cap, pass', () => {
  const below = proxyHolding(9);
  assert.equal(runStep(new LimitsStep(below.proxy, 10), request('INVITE sip:bob@contoso.com SIP/2.0')).outcome, 'continue');
  const full = proxyHolding(10);
  const step = new LimitsStep(full.proxy, 10);
  for (const message of [request('ACK sip:bob@contoso.com SIP/2.0'), request('CANCEL sip:bob@contoso.com SIP/2.0'), request('REGISTER sip:contoso.com SIP/2.0'), request('OPTIONS sip:127.0.7.1 SIP/2.0')]) {
    assert.equal(runStep(step, message).outcome, 'continue', message.method);
  }
  assert.equal(full.answered.length + below.answered.length, 0);
});
