// The classify step as a table: which Routes it pops, what the request is addressed to, where it came from.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValues } from '../../sip/message.ts';
import { PEER_ADDRESS, request, runStep, stepView } from '../../../test/helpers/step-fixture.ts';
import { ClassifyStep } from './classify.ts';

const classify = new ClassifyStep(stepView);

test('classify: kind, Routes popped, Route left, addressed to us, hops', () => {
  const rows: [string, ReturnType<typeof request>, { kind: string; popped: boolean; routeLeft: boolean; addressedToUs: boolean; hops: number | null }][] = [
    ['REGISTER to the domain', request('REGISTER sip:contoso.com SIP/2.0'), { kind: 'register', popped: false, routeLeft: false, addressedToUs: false, hops: 70 }],
    ['REGISTER along a Route elsewhere is proxied', request('REGISTER sip:contoso.com SIP/2.0', ['Route: <sip:127.0.9.9;lr>']), { kind: 'proxy', popped: false, routeLeft: true, addressedToUs: false, hops: 70 }],
    ['reg SUBSCRIBE', request('SUBSCRIBE sip:alice@contoso.com SIP/2.0', ['Event: reg']), { kind: 'reg-subscribe', popped: false, routeLeft: false, addressedToUs: false, hops: 70 }],
    ['presence SUBSCRIBE is proxied', request('SUBSCRIBE sip:bob@contoso.com SIP/2.0', ['Event: presence']), { kind: 'proxy', popped: false, routeLeft: false, addressedToUs: false, hops: 70 }],
    ['OPTIONS to our address', request('OPTIONS sip:127.0.7.1:5060 SIP/2.0'), { kind: 'options', popped: false, routeLeft: false, addressedToUs: true, hops: 70 }],
    ['OPTIONS to our FQDN', request('OPTIONS sip:fe1.contoso.com SIP/2.0'), { kind: 'options', popped: false, routeLeft: false, addressedToUs: true, hops: 70 }],
    ['OPTIONS to the pool', request('OPTIONS sip:pool01.contoso.com SIP/2.0'), { kind: 'options', popped: false, routeLeft: false, addressedToUs: true, hops: 70 }],
    ['OPTIONS with Max-Forwards 0 (heartbeat) to a peer name', request('OPTIONS sip:fe2.contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), { kind: 'options', popped: false, routeLeft: false, addressedToUs: false, hops: 0 }],
    ['OPTIONS to a user is proxied', request('OPTIONS sip:bob@contoso.com SIP/2.0'), { kind: 'proxy', popped: false, routeLeft: false, addressedToUs: false, hops: 70 }],
    ['INVITE to us: self', request('INVITE sip:127.0.7.1 SIP/2.0'), { kind: 'self', popped: false, routeLeft: false, addressedToUs: true, hops: 70 }],
    ['CANCEL to us is proxied (it matches its INVITE)', request('CANCEL sip:127.0.7.1 SIP/2.0'), { kind: 'proxy', popped: false, routeLeft: false, addressedToUs: true, hops: 70 }],
    ['INVITE to a user', request('INVITE sip:bob@contoso.com SIP/2.0'), { kind: 'proxy', popped: false, routeLeft: false, addressedToUs: false, hops: 70 }],
    ['our Record-Route popped, the next Route is a peer', request('BYE sip:bob@127.0.9.2 SIP/2.0', ['Route: <sip:127.0.7.1:5060;transport=tcp;lr>', 'Route: <sip:127.0.7.2:5060;lr>']), { kind: 'proxy', popped: true, routeLeft: true, addressedToUs: false, hops: 70 }],
    ['two of our Routes popped', request('BYE sip:bob@127.0.9.2 SIP/2.0', ['Route: <sip:127.0.7.1;lr>', 'Route: <sip:fe1.contoso.com;lr>']), { kind: 'proxy', popped: true, routeLeft: false, addressedToUs: false, hops: 70 }],
    ['no Max-Forwards', request('INVITE sip:bob@contoso.com SIP/2.0', [], { 'Max-Forwards': '' }), { kind: 'proxy', popped: false, routeLeft: false, addressedToUs: false, hops: null }],
  ];
  for (const [name, message, expected] of rows) {
    const { outcome, context } = runStep(classify, message);
    assert.equal(outcome, 'continue', name);
    assert.deepEqual({ kind: context.kind, popped: context.poppedOwnRoute, routeLeft: context.routeLeft, addressedToUs: context.addressedToUs, hops: context.hops }, expected, name);
  }
});

test('classify: the popped request keeps every other header, the received one is untouched', () => {
  const message = request('BYE sip:bob@127.0.9.2 SIP/2.0', ['Route: <sip:127.0.7.1;lr>', 'Route: <sip:127.0.7.2;lr>']);
  const { context } = runStep(classify, message);
  assert.deepEqual(headerValues(context.request, 'Route'), ['<sip:127.0.7.2;lr>']);
  assert.equal(context.request.headers.length, message.headers.length - 1);
  assert.equal(headerValues(context.received, 'Route').length, 2);
});

test('classify: a request over a peer\'s connection is fromPeer, a client\'s is not', () => {
  assert.equal(runStep(classify, request('INVITE sip:bob@contoso.com SIP/2.0'), { from: PEER_ADDRESS }).context.fromPeer, true);
  assert.equal(runStep(classify, request('INVITE sip:bob@contoso.com SIP/2.0')).context.fromPeer, false);
  assert.equal(runStep(classify, request('INVITE sip:bob@contoso.com SIP/2.0'), { from: '127.0.7.1' }).context.fromPeer, false, 'ourselves is no peer');
  const noCertificate = runStep(classify, request('INVITE sip:bob@contoso.com SIP/2.0'), { from: PEER_ADDRESS, certificate: false }).context;
  assert.deepEqual([noCertificate.fromPeer, noCertificate.fromServer], [false, false], "a peer's address without its certificate is a client");
});
