// The Edge's guard and route steps as tables, on the example topology (edge1: internal 127.0.0.41,
// Access Edge 127.0.0.51): requests arrive on a fake flow whose local address says the interface;
// the proxy is a recorder of where each request was sent and with what.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { parseFile } from '../../topology/parse.ts';
import type { Topology } from '../../topology/schema.ts';
import { PoolView } from '../../frontend/pool-view.ts';
import { UserHomes } from '../../frontend/homes.ts';
import type { ForwardOptions, ForwardTarget } from '../../frontend/proxy.ts';
import { ClassifyStep } from '../../frontend/steps/classify.ts';
import { RequestContext, runPath, type Step } from '../../frontend/steps/step.ts';
import type { Flow } from '../../sip/flow.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../sip/message.ts';
import { headerValue } from '../../sip/message.ts';
import { parseMessage } from '../../sip/parse.ts';
import { relayedFlowOf } from '../../auth/relayed.ts';
import { EdgeFlows } from '../edge-flows.ts';
import { edgeInterfacesOf } from '../interfaces.ts';
import { EdgeGuardStep } from './edge-guard.ts';
import { EdgeRouteStep } from './edge-route.ts';

const EXTERNAL = '127.0.0.51';
const INTERNAL = '127.0.0.41';
const fixedRandom = (): number => 0.5;

interface FakeFlow {
  flow: Flow;
  sent: SipMessage[];
}

let flowSequence = 0;

/** `certificateNames`: what the other end's verified certificate names (a server of the topology over mutual TLS); none for clients and partners. */
function fakeFlow(localAddress: string, remoteAddress: string, certificateNames: readonly string[] | null = null): FakeFlow {
  const sent: SipMessage[] = [];
  const flow = { id: `f${++flowSequence}`, transport: 'tls', localAddress, localPort: 4443, remoteAddress, remotePort: 40000, certificateNames, closed: false, send: (message: SipMessage) => (sent.push(message), true) };
  return { flow: flow as unknown as Flow, sent };
}

function sip(lines: string[]): SipRequest {
  return parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`)) as SipRequest;
}

let n = 0;
function request(start: string, extra: string[] = [], options: { from?: string; to?: string } = {}): SipRequest {
  n++;
  const method = start.split(' ')[0]!;
  return sip([start, `Via: SIP/2.0/TLS 127.1.0.5:40000;branch=z9hG4bK-e${n}`, 'Max-Forwards: 70', `From: <${options.from ?? 'sip:alice@contoso.com'}>;tag=a${n}`, `To: ${options.to ?? (method === 'REGISTER' ? '<sip:alice@contoso.com>' : '<sip:bob@contoso.com>')}`, `Call-ID: c${n}@test`, `CSeq: 1 ${method}`, 'Contact: <sip:alice@127.1.0.5:40000;transport=tls>', ...extra]);
}

describe('the Edge steps', () => {
  let topology: Topology;
  let view: PoolView;
  let flows: EdgeFlows;
  let forwarded: { target: ForwardTarget; options: ForwardOptions; request: SipRequest }[];
  let routed: SipRequest[];
  let path: Step[];
  let guard: EdgeGuardStep;

  before(async () => {
    topology = await parseFile(new URL('../../../examples/contoso.yaml', import.meta.url).pathname);
  });

  const setup = (): void => {
    view = new PoolView(topology, 'edge1.contoso.com', 1);
    flows = new EdgeFlows();
    forwarded = [];
    routed = [];
    const proxy = {
      forwardTo: (_flow: Flow, request: SipRequest, target: ForwardTarget, options: ForwardOptions = {}) => void forwarded.push({ target, options, request }),
      route: (_flow: Flow, request: SipRequest) => void routed.push(request),
    };
    guard = new EdgeGuardStep(() => view, edgeInterfacesOf(view.pool, 'edge1.contoso.com'), flows, fixedRandom);
    const route = new EdgeRouteStep({ view: () => view, proxy, flows, homes: new UserHomes(), routable: () => true, random: fixedRandom, linkTransport: () => 'tls' });
    path = [new ClassifyStep(() => view), guard, route];
  };

  const run = (flow: FakeFlow, message: SipRequest): RequestContext => {
    const context = new RequestContext().reset(flow.flow, message);
    runPath(path, context);
    return context;
  };
  const answer = (flow: FakeFlow): SipResponse | undefined => flow.sent.filter((message): message is SipResponse => message.kind === 'response').at(-1);

  test('a REGISTER from outside goes to the Director pool with a Path and the relayed-flow header naming the client\'s connection', () => {
    setup();
    const client = fakeFlow(EXTERNAL, '127.1.0.5');
    const context = run(client, request('REGISTER sip:contoso.com SIP/2.0'));
    assert.equal(context.outside, true);
    assert.equal(forwarded.length, 1);
    const { target, options } = forwarded[0]!;
    assert.equal(target.kind, 'servers');
    assert.equal(target.kind === 'servers' && target.pool, 'dirpool.contoso.com');
    const token = flows.tokenOf(client.flow);
    const path = options.headers?.find((header) => header.name === 'Path')?.value;
    assert.equal(path, `<sip:${token}@${INTERNAL}:5061;transport=tls;lr;ob>`);
    assert.equal(options.recordRoute, `<sip:${token}@${INTERNAL}:5061;transport=tls;lr>`);
    const relayed = relayedFlowOf({ ...forwarded[0]!.request, headers: [...(options.headers ?? []), ...forwarded[0]!.request.headers] });
    assert.deepEqual(relayed, { token, source: '127.1.0.5' });
    assert.equal(flows.remoteUsers, 1);
  });

  test('from outside, whatever the source address: what only servers may send is refused with 403 and goes nowhere', () => {
    setup();
    const honest = fakeFlow(EXTERNAL, '127.1.0.5');
    run(honest, request('REGISTER sip:contoso.com SIP/2.0'));
    const token = flows.tokenOf(honest.flow);
    forwarded = [];
    const cases: [string, SipRequest, string][] = [
      ['relayed-flow header', request('REGISTER sip:contoso.com SIP/2.0', ['X-Dnslb-Remote-Flow: token=x;source=127.0.0.31']), 'A header only servers may set came from outside'],
      ['Path', request('REGISTER sip:contoso.com SIP/2.0', ['Path: <sip:127.0.0.31;lr>']), 'A header only servers may set came from outside'],
      ['another connection\'s token', request('BYE sip:bob@127.0.0.9 SIP/2.0', [`Route: <sip:${token}@${INTERNAL}:5061;lr>`, '<sip:127.0.0.31;lr>'.replace(/^/, 'Route: ')], { to: '<sip:bob@contoso.com>;tag=b' }), 'The route token was not issued to this connection or dialog'],
      ['a Route straight inside', request('INVITE sip:bob@contoso.com SIP/2.0', ['Route: <sip:127.0.0.31:5061;lr>']), 'A Route from outside must start at this Edge and belong to a dialog'],
      ['a server\'s address', request('MESSAGE sip:127.0.0.11:5061 SIP/2.0'), 'Servers are not reachable from outside'],
      ['a server\'s name', request('MESSAGE sip:fe1.contoso.com SIP/2.0'), 'Servers are not reachable from outside'],
    ];
    for (const [name, message, reason] of cases) {
      // From a Director's own address: on the external interface it is still the Internet.
      const attacker = fakeFlow(EXTERNAL, '127.0.0.31');
      run(attacker, message);
      assert.equal(answer(attacker)?.status, 403, name);
      assert.equal(answer(attacker)?.reason, reason, name);
    }
    assert.equal(forwarded.length, 0);
    assert.equal(routed.length, 0);
    assert.deepEqual(guard.counters, { forgedFromOutside: 4, toServerFromOutside: 2, notServerInside: 0 });
  });

  test('a forged federation Route lets nobody in: the REGISTER and the call to a number of the reviewer\'s example are refused', () => {
    setup();
    const forgedRoute = [`Route: <sip:fed@${EXTERNAL};lr>, <sip:fe1.contoso.com;lr>`];
    const partnerSides = { from: 'sip:x@fabrikam.com', to: '<sip:ceo@contoso.com>' };
    const cases: [string, SipRequest][] = [
      // The example: register as the CEO, the partner domain in From to pass for a federation dialog.
      ['REGISTER', request('REGISTER sip:contoso.com SIP/2.0', forgedRoute, partnerSides)],
      ['INVITE to a number', request('INVITE tel:+14255550100 SIP/2.0', forgedRoute, { from: 'sip:x@fabrikam.com', to: '<tel:+14255550100>' })],
      // With a To tag, as if in a dialog: "fed" (or anything) is no token we issued for it.
      ['in-dialog look', request('INVITE tel:+14255550100 SIP/2.0', forgedRoute, { from: 'sip:x@fabrikam.com', to: '<tel:+14255550100>;tag=t' })],
      ['a made-up dialog token', request('INVITE tel:+14255550100 SIP/2.0', [`Route: <sip:${flows.dialogToken('made-up', 't')}@${EXTERNAL};lr>, <sip:127.0.0.61;lr>`], { from: 'sip:x@fabrikam.com', to: '<tel:+14255550100>;tag=t' })],
    ];
    for (const [name, message] of cases) {
      const attacker = fakeFlow(EXTERNAL, '198.51.100.7');
      run(attacker, message);
      assert.equal(answer(attacker)?.status, 403, name);
    }
    // A remote user's own flow token opens no route set for a new request either (no To tag, or a REGISTER).
    const client = fakeFlow(EXTERNAL, '127.1.0.5');
    const own = flows.tokenOf(client.flow);
    run(client, request('INVITE tel:+14255550100 SIP/2.0', [`Route: <sip:${own}@${INTERNAL}:5061;lr>, <sip:127.0.0.61;lr>`]));
    assert.equal(answer(client)?.status, 403);
    run(client, request('REGISTER sip:contoso.com SIP/2.0', [`Route: <sip:${own}@${INTERNAL}:5061;lr>, <sip:fe1.contoso.com;lr>`], { to: '<sip:ceo@contoso.com>;tag=t' }));
    assert.equal(answer(client)?.status, 403);
    assert.equal(forwarded.length, 0);
    assert.equal(routed.length, 0);
    assert.equal(guard.counters.forgedFromOutside, 6);
  });

  test('another domain as caller (the federation step\'s, absent here) or a non-partner callee is 403; a remote user\'s request to a partner\'s user goes inside', () => {
    setup();
    const client = fakeFlow(EXTERNAL, '127.1.0.5');
    run(client, request('MESSAGE sip:bob@litware.com SIP/2.0'));
    assert.equal(answer(client)?.status, 403);
    assert.equal(answer(client)?.reason, 'litware.com is not a federation partner of contoso.com, dublin.contoso.com');
    run(client, request('MESSAGE sip:bob@fabrikam.com SIP/2.0'));
    assert.equal(forwarded.length, 1, 'fabrikam.com is a partner of the example: relayed to the Director');
    assert.equal(forwarded[0]!.target.kind === 'servers' && forwarded[0]!.target.pool, 'dirpool.contoso.com');
    forwarded = [];
    run(client, request('MESSAGE sip:bob@contoso.com SIP/2.0', [], { from: 'sip:eve@fabrikam.com' }));
    assert.equal(answer(client)?.status, 403);
    assert.equal(forwarded.length, 0);
  });

  test('in a dialog from outside: along the route set, which must go on to a server after our own token', () => {
    setup();
    const client = fakeFlow(EXTERNAL, '127.1.0.5');
    const token = flows.tokenOf(client.flow);
    run(client, request('BYE sip:bob@127.0.0.9:5061 SIP/2.0', [`Route: <sip:${token}@${INTERNAL}:5061;transport=tls;lr>`, 'Route: <sip:127.0.0.31:5061;transport=tls;lr>'], { to: '<sip:bob@contoso.com>;tag=b' }));
    assert.equal(routed.length, 1);
    // Marked like every request from outside: the server inside knows it for a client's.
    assert.deepEqual(relayedFlowOf(routed[0]!), { token, source: '127.1.0.5' });
    run(client, request('BYE sip:bob@127.0.0.9:5061 SIP/2.0', [`Route: <sip:${token}@${INTERNAL}:5061;transport=tls;lr>`], { to: '<sip:bob@contoso.com>;tag=b' }));
    assert.equal(answer(client)?.status, 403);
    assert.equal(routed.length, 1);
  });

  test('from inside: a Route with a flow token reaches that connection; a token whose connection is gone is 430; a host that is no server is 403', () => {
    setup();
    const client = fakeFlow(EXTERNAL, '127.1.0.5');
    const token = flows.tokenOf(client.flow);
    const director = fakeFlow(INTERNAL, '127.0.0.31', ['dir1.contoso.com']);
    run(director, request('INVITE sip:alice@127.1.0.5:40000;transport=tls SIP/2.0', [`Route: <sip:${token}@${INTERNAL}:5061;transport=tls;lr;ob>`], { from: 'sip:bob@contoso.com', to: '<sip:alice@contoso.com>' }));
    assert.equal(forwarded.length, 1);
    const sent = forwarded[0]!;
    assert.equal(sent.target.kind === 'flow' && sent.target.flow, client.flow);
    assert.equal(sent.options.recordRoute, `<sip:${token}@${INTERNAL}:5061;transport=tls;lr>`);
    assert.equal(headerValue(sent.request, 'Route'), undefined, 'our own Route was removed');
    flows.closed(client.flow);
    run(director, request('INVITE sip:alice@127.1.0.5:40000;transport=tls SIP/2.0', [`Route: <sip:${token}@${INTERNAL}:5061;transport=tls;lr;ob>`], { from: 'sip:bob@contoso.com' }));
    assert.equal(answer(director)?.status, 430);
    const stranger = fakeFlow(INTERNAL, '127.0.5.5');
    run(stranger, request('INVITE sip:alice@contoso.com SIP/2.0'));
    assert.equal(answer(stranger)?.status, 403);
    assert.equal(guard.counters.notServerInside, 1);
  });
});
