// The Edge's federation step as a table, on the example topology (partners: fabrikam.com; edge1: internal
// 127.0.0.41, Access Edge 127.0.0.51): requests arrive on a fake flow whose local address says the
// interface; the proxy records where each request was sent; the partner lookup is a stand-in (the real
// one is tested against dnslb's DNS in src/frontend/federation.test.ts).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { parseFile } from '../../topology/parse.ts';
import type { Topology } from '../../topology/schema.ts';
import { PoolView } from '../../frontend/pool-view.ts';
import { UserHomes } from '../../frontend/homes.ts';
import type { PartnerEdges, PartnerRoute } from '../../frontend/federation.ts';
import type { ForwardOptions, ForwardTarget } from '../../frontend/proxy.ts';
import { ClassifyStep } from '../../frontend/steps/classify.ts';
import { RequestContext, runPath, type Step } from '../../frontend/steps/step.ts';
import type { Flow } from '../../sip/flow.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../sip/message.ts';
import { parseMessage } from '../../sip/parse.ts';
import { RELAYED_FLOW_HEADER } from '../../auth/relayed.ts';
import { EdgeFlows } from '../edge-flows.ts';
import { edgeInterfacesOf } from '../interfaces.ts';
import { EdgeGuardStep } from './edge-guard.ts';
import { EdgeRouteStep } from './edge-route.ts';
import { FederationStep } from './federation.ts';

const EXTERNAL = '127.0.0.51';
const INTERNAL = '127.0.0.41';
const FRONT_END = '127.0.0.11';
const fixedRandom = (): number => 0.5;

let flowSequence = 0;

/** `certificateNames`: what the other end's verified certificate names (a server of the topology over mutual TLS); none for clients and partners. */
function fakeFlow(localAddress: string, remoteAddress: string, certificateNames: readonly string[] | null = null): { flow: Flow; sent: SipMessage[] } {
  const sent: SipMessage[] = [];
  const flow = { id: `f${++flowSequence}`, transport: 'tls', localAddress, localPort: 5061, remoteAddress, remotePort: 40000, certificateNames, closed: false, send: (message: SipMessage) => (sent.push(message), true) };
  return { flow: flow as unknown as Flow, sent };
}

let n = 0;
function message(uri: string, fromUri: string, extra: string[] = []): SipRequest {
  n++;
  const lines = [`MESSAGE ${uri} SIP/2.0`, `Via: SIP/2.0/TLS 127.1.0.5:40000;branch=z9hG4bK-f${n}`, 'Max-Forwards: 70', `From: <${fromUri}>;tag=a${n}`, `To: <${uri}>`, `Call-ID: c${n}@test`, 'CSeq: 1 MESSAGE', ...extra];
  return parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`)) as SipRequest;
}

describe('the Edge federation step', () => {
  let topology: Topology;
  let flows: EdgeFlows;
  let forwarded: { target: ForwardTarget; options: ForwardOptions; request: SipRequest }[];
  /** What edge-route sent along a route set (the proxy's `route`). */
  let routed: SipRequest[];
  let path: Step[];
  let federation: FederationStep;
  let lookups: string[];
  let partnerRoute: PartnerRoute;
  /** What the partner lookup waits for (a slow DNS) or throws; nothing by default. */
  let lookup: () => Promise<void> = async () => {};
  /** The domains the certificate check was asked about, and the flows it refuses. */
  let verdicts: string[];
  let refusedFlows: Set<Flow>;
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  let nowMs = 1_000_000;

  before(async () => {
    topology = await parseFile(new URL('../../../examples/contoso.yaml', import.meta.url).pathname);
  });

  const setup = (): void => {
    const view = new PoolView(topology, 'edge1.contoso.com', 1);
    flows = new EdgeFlows();
    forwarded = [];
    routed = [];
    lookups = [];
    verdicts = [];
    refusedFlows = new Set();
    const proxy = {
      forwardTo: (_flow: Flow, request: SipRequest, target: ForwardTarget, options: ForwardOptions = {}) => void forwarded.push({ target, options, request }),
      route: (_flow: Flow, request: SipRequest) => void routed.push(request),
    };
    const partners = { route: async (uri: string) => (lookups.push(uri), await lookup(), partnerRoute) } as unknown as PartnerEdges;
    federation = new FederationStep({
      view: () => view,
      proxy,
      flows,
      homes: new UserHomes(),
      routable: () => true,
      random: fixedRandom,
      clock: { nowMs: () => nowMs },
      partners,
      identity: { check: async (flow: Flow, domain: string) => (verdicts.push(domain), refusedFlows.has(flow) ? { ok: false, status: 403, reason: `Not ${domain}'s Access Edge: forged` } : { ok: true }) },
      connect: () => Promise.reject(new Error('not in this test')),
      ownUri: (token) => `sip:${token}@${INTERNAL}:5061;transport=tls;lr`,
      externalUri: (user) => `sip:${user}@${EXTERNAL}:5061;transport=tls;lr`,
    });
    const guard = new EdgeGuardStep(() => view, edgeInterfacesOf(view.pool, 'edge1.contoso.com'), flows, fixedRandom);
    const route = new EdgeRouteStep({ view: () => view, proxy, flows, homes: new UserHomes(), routable: () => true, random: fixedRandom, linkTransport: () => 'tls' });
    path = [new ClassifyStep(() => view), guard, federation, route];
  };
  const run = (flow: { flow: Flow }, request: SipRequest): void => void runPath(path, new RequestContext().reset(flow.flow, request));
  const answer = (flow: { sent: SipMessage[] }): SipResponse | undefined => flow.sent.filter((sent): sent is SipResponse => sent.kind === 'response').at(-1);

  test('inbound from a listed partner: to the Director pool, Record-Routed with the partner connection\'s token, with the relayed-flow header naming the partner', async () => {
    setup();
    const partner = fakeFlow(EXTERNAL, '127.0.18.51');
    run(partner, message('sip:alice@contoso.com', 'sip:bob@fabrikam.com'));
    await settle();
    assert.deepEqual(verdicts, ['fabrikam.com'], 'the connection\'s certificate was checked for the partner the From names');
    assert.equal(forwarded.length, 1);
    const { target, options } = forwarded[0]!;
    assert.equal(target.kind === 'servers' && target.pool, 'dirpool.contoso.com');
    const token = flows.tokenOf(partner.flow);
    assert.equal(options.recordRoute, `<sip:${token}@${INTERNAL}:5061;transport=tls;lr>, <sip:${token}@${EXTERNAL}:5061;transport=tls;lr>`, 'inside first (toward our user), then the address the partner reaches');
    // Marked like every request from outside; `partner=` tells the server inside not to challenge it.
    assert.deepEqual((options.headers ?? []).filter((header) => header.name === RELAYED_FLOW_HEADER).map((header) => header.value), [`token=${token};source=127.0.18.51;partner=fabrikam.com`]);
    assert.deepEqual(federation.counters, { inbound: 1, outbound: 0, refused: 0, notVerified: 0 });
  });

  test('inbound refusals: a domain not listed (403 and why), a target that is not ours (no open relay), an unknown user', async () => {
    setup();
    const cases: [string, SipRequest, number, string][] = [
      ['not a partner', message('sip:alice@contoso.com', 'sip:eve@litware.com'), 403, 'litware.com is not a federation partner of contoso.com, dublin.contoso.com'],
      ['relay to a third domain', message('sip:carol@litware.com', 'sip:bob@fabrikam.com'), 403, "A partner's request must be for a user of contoso.com, dublin.contoso.com"],
    ];
    for (const [name, request, status, reason] of cases) {
      const partner = fakeFlow(EXTERNAL, '127.0.18.51');
      run(partner, request);
      await settle();
      assert.equal(answer(partner)?.status, status, name);
      assert.equal(answer(partner)?.reason, reason, name);
    }
    assert.equal(forwarded.length, 0);
    assert.equal(federation.counters.refused, 2);
  });

  test('inbound from a connection whose certificate is not the claimed partner\'s: 403 with the check\'s reason, nothing relayed', async () => {
    setup();
    const forger = fakeFlow(EXTERNAL, '127.0.18.99');
    refusedFlows.add(forger.flow);
    run(forger, message('sip:alice@contoso.com', 'sip:bob@fabrikam.com'));
    await settle();
    assert.deepEqual([answer(forger)?.status, answer(forger)?.reason], [403, "Not fabrikam.com's Access Edge: forged"]);
    assert.equal(forwarded.length, 0);
    assert.deepEqual(federation.counters, { inbound: 0, outbound: 0, refused: 1, notVerified: 1 });
  });

  test('a remote user\'s own request is not federation: edge-route relays it with the relayed-flow header', () => {
    setup();
    const client = fakeFlow(EXTERNAL, '127.1.0.5');
    run(client, message('sip:bob@contoso.com', 'sip:alice@contoso.com'));
    assert.equal(forwarded.length, 1);
    assert.ok((forwarded[0]!.options.headers ?? []).some((header) => header.name === RELAYED_FLOW_HEADER));
    assert.deepEqual(federation.counters, { inbound: 0, outbound: 0, refused: 0, notVerified: 0 });
  });

  test('outbound from a Front End: not a partner is 403 before any lookup; a partner goes to its Access Edge addresses in turn', async () => {
    setup();
    const frontEnd = fakeFlow(INTERNAL, FRONT_END, ['fe1.contoso.com']);
    run(frontEnd, message('sip:eve@litware.com', 'sip:alice@contoso.com'));
    assert.deepEqual([answer(frontEnd)?.status, answer(frontEnd)?.reason], [403, 'litware.com is not a federation partner of contoso.com, dublin.contoso.com']);
    assert.deepEqual(lookups, []);
    partnerRoute = {
      kind: 'partner',
      domain: 'fabrikam.com',
      via: '_sipfederationtls._tcp.fabrikam.com SRV',
      steps: [],
      endpoints: [
        { address: '127.0.18.52', port: 5061, transport: 'tls', host: 'sip.fabrikam.com' },
        { address: '127.0.18.51', port: 5061, transport: 'tls', host: 'sip.fabrikam.com' },
      ],
    };
    const sent = message('sip:bob@fabrikam.com', 'sip:alice@contoso.com');
    run(frontEnd, sent);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(lookups, ['sip:bob@fabrikam.com']);
    assert.equal(forwarded.length, 1);
    const target = forwarded[0]!.target;
    assert.ok(target.kind === 'servers' && typeof target.connect === 'function');
    assert.deepEqual(target.kind === 'servers' && target.targets.map((entry) => entry.server), ['sip.fabrikam.com 127.0.18.52:5061', 'sip.fabrikam.com 127.0.18.51:5061']);
    assert.equal(target.kind === 'servers' && target.pool, 'the Access Edge of fabrikam.com');
    // Both entries carry this dialog's token: an HMAC of its Call-ID and our side's (From) tag.
    const token = flows.dialogToken(`c${n}@test`, `a${n}`);
    assert.match(token, /^fed-[A-Za-z0-9_-]{27}$/);
    assert.equal(forwarded[0]!.options.recordRoute, `<sip:${token}@${EXTERNAL}:5061;transport=tls;lr>, <sip:${token}@${INTERNAL}:5061;transport=tls;lr>`);
    assert.equal(sent.headers.find((header) => header.name === 'Call-ID')?.value, `c${n}@test`);
    assert.deepEqual(federation.counters, { inbound: 0, outbound: 1, refused: 1, notVerified: 0 });
  });

  test('outbound: what the lookup answers instead (no Access Edge 404, DNS failed 503) goes back with its reason', async () => {
    setup();
    const frontEnd = fakeFlow(INTERNAL, FRONT_END, ['fe1.contoso.com']);
    for (const [status, reason] of [
      [404, 'No Access Edge for partner fabrikam.com (…)'],
      [503, 'Partner fabrikam.com lookup failed (…)'],
    ] as const) {
      partnerRoute = { kind: 'answer', domain: 'fabrikam.com', status, reason };
      run(frontEnd, message('sip:bob@fabrikam.com', 'sip:alice@contoso.com'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual([answer(frontEnd)?.status, answer(frontEnd)?.reason], [status, reason]);
    }
    assert.equal(forwarded.length, 0);
  });

  test('in a dialog: from inside toward a partner on the partner connection (its token), or ours; a partner\'s request along our federation route is admitted', async () => {
    setup();
    const partner = fakeFlow(EXTERNAL, '127.0.18.51');
    run(partner, message('sip:alice@contoso.com', 'sip:bob@fabrikam.com'));
    await settle();
    const token = flows.tokenOf(partner.flow);
    forwarded = [];
    const frontEnd = fakeFlow(INTERNAL, FRONT_END, ['fe1.contoso.com']);
    // alice's BYE to bob: Route = our two entries (token), then the partner's Access Edge.
    const bye = (routes: string[]): SipRequest =>
      parseMessage(Buffer.from([`BYE sip:bob@127.0.17.11:5061;transport=tls SIP/2.0`, `Via: SIP/2.0/TLS ${FRONT_END}:5061;branch=z9hG4bK-b${++n}`, 'Max-Forwards: 69', ...routes.map((route) => `Route: ${route}`), '<sip:alice@contoso.com>;tag=a'.replace(/^/, 'From: '), 'To: <sip:bob@fabrikam.com>;tag=b', `Call-ID: d${n}@test`, 'CSeq: 2 BYE', '', ''].join('\r\n'))) as SipRequest;
    run(frontEnd, bye([`<sip:${token}@${INTERNAL}:5061;transport=tls;lr>`, `<sip:${token}@${EXTERNAL}:5061;transport=tls;lr>`, '<sip:127.0.18.51:5061;transport=tls;lr>']));
    assert.equal(forwarded.length, 1);
    assert.ok(forwarded[0]!.target.kind === 'flow' && forwarded[0]!.target.flow === partner.flow, 'on the connection the dialog came in on');
    // A dialog we sent out (our dialog-token Record-Route): on our own connection to the partner's address,
    // an address known as a partner's Access Edge (here: the verified partner connection's source) …
    const dialog = flows.dialogToken('out@test', 'a');
    run(frontEnd, bye([`<sip:${dialog}@${INTERNAL}:5061;transport=tls;lr>`, `<sip:${dialog}@${EXTERNAL}:5061;transport=tls;lr>`, '<sip:127.0.18.51:5061;transport=tls;lr>']));
    const out = forwarded[1]!.target;
    assert.deepEqual(out.kind === 'servers' && out.targets.map((target) => target.server), ['127.0.18.51:5061']);
    // … never to an address a partner wrote into its Record-Route that is no partner's Access Edge (it
    // could name any host inside), nor to a partner's address forgotten after a dialog's longest life.
    const elsewhere = fakeFlow(INTERNAL, FRONT_END, ['fe1.contoso.com']);
    run(elsewhere, bye([`<sip:${dialog}@${INTERNAL}:5061;transport=tls;lr>`, `<sip:${dialog}@${EXTERNAL}:5061;transport=tls;lr>`, '<sip:127.0.18.52:5061;transport=tls;lr>']));
    assert.deepEqual([answer(elsewhere)?.status, answer(elsewhere)?.reason], [403, "The route leads to 127.0.18.52, which is not a partner's Access Edge"]);
    nowMs += 86_400_001;
    const later = fakeFlow(INTERNAL, FRONT_END, ['fe1.contoso.com']);
    run(later, bye([`<sip:${dialog}@${INTERNAL}:5061;transport=tls;lr>`, `<sip:${dialog}@${EXTERNAL}:5061;transport=tls;lr>`, '<sip:127.0.18.51:5061;transport=tls;lr>']));
    assert.equal(answer(later)?.status, 403);
    assert.equal(forwarded.length, 2);
    // The partner's BYE back along our federation route, on its own connection: admitted and routed
    // inside, marked as a request from outside.
    const back = (token: string, dialogCallId: string, extra: Partial<Record<'From' | 'To', string>> = {}): SipRequest =>
      parseMessage(Buffer.from([`BYE sip:alice@127.0.0.11:5061 SIP/2.0`, `Via: SIP/2.0/TLS 127.0.18.52:5061;branch=z9hG4bK-r${++n}`, 'Max-Forwards: 69', `Route: <sip:${token}@${EXTERNAL}:5061;transport=tls;lr>`, `Route: <sip:${token}@${INTERNAL}:5061;transport=tls;lr>`, 'Route: <sip:127.0.0.11:5061;transport=tls;lr>', `From: ${extra.From ?? '<sip:bob@fabrikam.com>;tag=b'}`, `To: ${extra.To ?? '<sip:alice@contoso.com>;tag=a'}`, `Call-ID: ${dialogCallId}`, 'CSeq: 3 BYE', '', ''].join('\r\n'))) as SipRequest;
    const inbound = fakeFlow(EXTERNAL, '127.0.18.52');
    run(inbound, back(dialog, 'out@test'));
    assert.equal(answer(inbound), undefined, JSON.stringify(answer(inbound)?.reason));
    assert.equal(routed.length, 1);
    assert.ok(routed[0]!.headers.some((header) => header.name === RELAYED_FLOW_HEADER), 'nothing from outside goes inside unmarked');
    // The token of that dialog used in another dialog, on another tag, the bare old "fed" mark, or a
    // token with no To tag: refused by the guard, whoever the From claims to be.
    for (const [name, request] of [
      ['another Call-ID', back(dialog, 'other@test')],
      ['another tag of ours', back(dialog, 'out@test', { To: '<sip:alice@contoso.com>;tag=z' })],
      ['the old fixed mark', back('fed', 'out@test')],
      ['no To tag', back(dialog, 'out@test', { To: '<sip:alice@contoso.com>' })],
    ] as const) {
      const stranger = fakeFlow(EXTERNAL, '127.0.18.99');
      run(stranger, request);
      assert.equal(answer(stranger)?.status, 403, name);
    }
    assert.equal(routed.length, 1);
  });

  test('outbound INVITE: 100 Trying before the lookup; a CANCEL during it gets 200 and the INVITE 487, nothing sent out; a lookup that throws is a 503', async () => {
    setup();
    partnerRoute = { kind: 'partner', domain: 'fabrikam.com', via: 'SRV', steps: [], endpoints: [{ address: '127.0.18.52', port: 5061, transport: 'tls', host: 'sip.fabrikam.com' }] };
    let release: () => void = () => {};
    lookup = () => new Promise<void>((resolve) => (release = resolve));
    const frontEnd = fakeFlow(INTERNAL, FRONT_END, ['fe1.contoso.com']);
    const invite = asInvite(message('sip:bob@fabrikam.com', 'sip:alice@contoso.com'));
    run(frontEnd, invite);
    assert.deepEqual(frontEnd.sent.map((sent) => sent.kind === 'response' && sent.status), [100], 'answered 100 before the lookup ends');
    run(frontEnd, asCancel(invite));
    assert.deepEqual(frontEnd.sent.map((sent) => sent.kind === 'response' && `${sent.status} ${cseqOf(sent)}`), ['100 INVITE', '200 CANCEL']);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(frontEnd.sent.map((sent) => sent.kind === 'response' && `${sent.status} ${cseqOf(sent)}`), ['100 INVITE', '200 CANCEL', '487 INVITE']);
    assert.equal(forwarded.length, 0);
    // Without a CANCEL it goes out once the lookup ends.
    lookup = async () => {};
    run(frontEnd, asInvite(message('sip:bob@fabrikam.com', 'sip:alice@contoso.com')));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(forwarded.length, 1);
    // A lookup that throws: a 503 with the reason, and no unhandled rejection (node:test fails on one).
    lookup = () => Promise.reject(new Error('resolver\r\nexploded'));
    const failing = fakeFlow(INTERNAL, FRONT_END, ['fe1.contoso.com']);
    run(failing, asInvite(message('sip:bob@fabrikam.com', 'sip:alice@contoso.com')));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual([answer(failing)?.status, answer(failing)?.reason], [503, 'Federation failed: resolver exploded']);
  });
});

function asInvite(request: SipRequest): SipRequest {
  return { ...request, method: 'INVITE', headers: request.headers.map((header) => (header.name === 'CSeq' ? { ...header, value: '1 INVITE' } : header)) };
}

function asCancel(invite: SipRequest): SipRequest {
  return { ...invite, method: 'CANCEL', headers: invite.headers.map((header) => (header.name === 'CSeq' ? { ...header, value: '1 CANCEL' } : header)) };
}

function cseqOf(message: SipMessage): string {
  return message.headers.find((header) => header.name === 'CSeq')?.value.split(' ')[1] ?? '';
}
