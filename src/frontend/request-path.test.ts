// The request path: the Front End's steps in their order, and a path stops at the first step that answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixedRandom, request, stepView } from '../../test/helpers/step-fixture.ts';
import { recordingFlow } from '../../test/helpers/recording-flow.ts';
import { UserHomes } from './homes.ts';
import { RegisterAnswers } from './register-answers.ts';
import { buildPath, ROLE_OF_KIND, type PathServices } from './request-path.ts';
import { RequestContext, runPath, type Step } from './steps/step.ts';
import type { Proxy } from './proxy.ts';
import type { RegistrarService } from './registrar-service.ts';

/** What buildPath needs, with stand-ins for the parts these tests do not run. */
function services(): PathServices {
  return {
    view: stepView,
    ownState: () => 'active',
    available: () => true,
    routable: () => true,
    homes: new UserHomes(),
    random: fixedRandom,
    proxy: { counters: { loopsDetected: 0 } } as unknown as Proxy,
    registrar: {} as RegistrarService,
    registerAnswers: new RegisterAnswers(),
    authenticate: { name: 'authenticate', run: () => 'continue' },
  };
}

test('the Front End path: shared steps, then the role steps, the route step last', () => {
  const path = buildPath('frontend', services());
  assert.deepEqual(path.steps.map((step) => step.name), ['classify', 'limits', 'max-forwards', 'require', 'drain', 'authenticate', 'redirect-home', 'register', 'reg-subscribe', 'options', 'route']);
  assert.ok(Object.isFrozen(path.steps), 'built once, never changed per request');
  assert.equal(path.steps.includes(path.drain), true);
  assert.deepEqual(ROLE_OF_KIND, { frontend: 'frontend', director: 'director', mediation: 'mediation', edge: 'edge' });
});

test('the Director path: shared steps, redirect-home, options, route — no registrar steps', () => {
  const path = buildPath('director', services());
  assert.deepEqual(path.steps.map((step) => step.name), ['classify', 'limits', 'max-forwards', 'require', 'drain', 'authenticate', 'redirect-home', 'options', 'route']);
});

test('the Mediation path: shared steps but authenticate (it serves no client), options, mediation-gate, route — no registrar, no redirect', () => {
  const path = buildPath('mediation', services());
  assert.deepEqual(path.steps.map((step) => step.name), ['classify', 'limits', 'max-forwards', 'require', 'drain', 'options', 'mediation-gate', 'route']);
});

test('the Edge path: its guard right after classify, no authenticate (no user directory), options, then the Edge\'s own steps', () => {
  const edgeStep = (name: string): Step => ({ name, run: () => 'answered' });
  const path = buildPath('edge', { ...services(), edge: { guard: edgeStep('edge-guard'), contactHeaders: () => [], steps: [edgeStep('federation'), edgeStep('edge-route')] } });
  assert.deepEqual(path.steps.map((step) => step.name), ['classify', 'edge-guard', 'limits', 'max-forwards', 'require', 'drain', 'options', 'federation', 'edge-route']);
  assert.throws(() => buildPath('edge', services()), /edge role needs its steps/);
});

test('runPath stops at the first step that answers; the context is reset for each request', () => {
  const ran: string[] = [];
  const step = (name: string, outcome: 'answered' | 'continue'): Step => ({ name, run: () => (ran.push(name), outcome) });
  const context = new RequestContext();
  const { flow } = recordingFlow();
  runPath([step('a', 'continue'), step('b', 'answered'), step('c', 'answered')], context.reset(flow, request('INVITE sip:bob@contoso.com SIP/2.0')));
  assert.deepEqual(ran, ['a', 'b']);
  context.kind = 'register';
  context.fromPeer = true;
  context.outside = true;
  context.ownRouteUser = 'token';
  context.reset(flow, request('INVITE sip:bob@contoso.com SIP/2.0'));
  assert.deepEqual([context.kind, context.fromPeer, context.poppedOwnRoute, context.hops, context.outside, context.ownRouteUser], ['proxy', false, false, null, false, null]);
});
