// The route step hands everything that reaches it to the proxy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SipRequest } from '../../sip/message.ts';
import { request, runStep } from '../../../test/helpers/step-fixture.ts';
import { RouteStep } from './route.ts';

test('route: everything that reaches it goes to the proxy, with the popped request and the context', () => {
  const routed: { request: SipRequest; poppedOwnRoute: boolean; fromPeer: boolean }[] = [];
  const step = new RouteStep({ route: (_flow, message, context) => void routed.push({ request: message, poppedOwnRoute: context.poppedOwnRoute, fromPeer: context.fromPeer }) });
  const ran = runStep(step, request('BYE sip:bob@127.0.9.2 SIP/2.0', ['Route: <sip:127.0.7.1;lr>']));
  assert.equal(ran.outcome, 'answered');
  assert.equal(routed.length, 1);
  assert.equal(routed[0]!.poppedOwnRoute, true);
  assert.equal(routed[0]!.request.headers.some((header) => header.name === 'Route'), false);
});
