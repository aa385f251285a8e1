// The Mediation gate: new calls from the topology's servers and the pool's gateways pass; from anyone
// else 403 with the reason; in-dialog requests pass.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { PoolView } from '../pool-view.ts';
import { parse } from '../../topology/parse.ts';
import { fixedRandom, request, runStep } from '../../../test/helpers/step-fixture.ts';
import { MediationGateStep } from './mediation-gate.ts';

const yaml = readFileSync(new URL('../../../test/fixtures/topology/multi-pool.yaml', import.meta.url), 'utf8');
const view = new PoolView(parse(yaml, 'multi-pool.yaml'), 'med1.contoso.com', 1);
const FE1 = '127.0.2.11';
const GATEWAY = '127.0.2.90';
const CLIENT = '127.0.9.1';

test('mediation-gate: a new call from a Front End or from the gateway passes; from a client, 403 with the reason', () => {
  const step = new MediationGateStep(() => view, fixedRandom);
  const invite = (): ReturnType<typeof request> => request('INVITE sip:+14255550100@contoso.com;user=phone SIP/2.0');
  assert.equal(runStep(step, invite(), { from: FE1, view }).outcome, 'continue');
  assert.equal(runStep(step, request('INVITE sip:alice@contoso.com SIP/2.0'), { from: GATEWAY, view }).outcome, 'continue');
  const refused = runStep(step, invite(), { from: CLIENT, view });
  assert.equal(refused.outcome, 'answered');
  assert.equal(refused.flow.responses()[0]?.status, 403);
  assert.match(refused.flow.responses()[0]?.reason ?? '', /servers of the topology and the gateways of medpool\.contoso\.com/);
  assert.equal(step.refused, 1);
});

const OWN_ROUTE = 'Route: <sip:127.0.2.61:5061;transport=tls;lr>';

test('mediation-gate: in-dialog requests following our Record-Route, ACK and CANCEL pass from anyone', () => {
  const step = new MediationGateStep(() => view, fixedRandom);
  for (const message of [
    request('BYE sip:127.0.9.1:5060 SIP/2.0', [OWN_ROUTE], { To: '<sip:+14255550100@contoso.com;user=phone>;tag=x' }),
    request('ACK sip:+14255550100@contoso.com;user=phone SIP/2.0'),
    request('CANCEL sip:+14255550100@contoso.com;user=phone SIP/2.0'),
  ]) {
    assert.equal(runStep(step, message, { from: CLIENT, view }).outcome, 'continue', message.method);
  }
  assert.equal(step.refused, 0);
});

test('mediation-gate: a preloaded Route naming us (or a server beyond) lets no client call the PSTN', () => {
  const step = new MediationGateStep(() => view, fixedRandom);
  for (const message of [
    // The free call: a new INVITE to a number, preloaded with the Mediation server's Route.
    request('INVITE tel:+14255550100 SIP/2.0', [OWN_ROUTE]),
    request('INVITE sip:+14255550100@contoso.com;user=phone SIP/2.0', [OWN_ROUTE, 'Route: <sip:127.0.2.90:5060;transport=tcp;lr>']),
    // A To tag alone is no dialog of ours: without our Record-Route it is refused too.
    request('INVITE sip:+14255550100@contoso.com;user=phone SIP/2.0', [], { To: '<sip:+14255550100@contoso.com;user=phone>;tag=x' }),
  ]) {
    const refused = runStep(step, message, { from: CLIENT, view });
    assert.equal(refused.outcome, 'answered');
    assert.equal(refused.flow.responses()[0]?.status, 403);
  }
  assert.equal(step.refused, 3);
});
