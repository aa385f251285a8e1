// The Edge's federation step (issue 14 §4), before edge-route in the Edge's path (src/edge/path.ts):
// new requests between our users and a partner organisation's.
//
// From outside (a partner's Access Edge on our external interface): a new request whose From is not
// one of our SIP domains is a partner's. Its domain must be a listed partner (topology/federation.ts),
// else 403 with the reason; its target must be one of our users (403 otherwise: an Edge is no open
// relay). Its connection must have presented that partner's Access Edge certificate (partner-identity.ts:
// trusted CA, SAN = the partner's _sipfederationtls._tcp target), else 403. It goes inside like a remote user's request — to the Director pool, else the callee's home
// pool (relay.ts, no DNS) — with our Record-Route carrying the partner connection's flow token, so that
// in-dialog requests from inside come back out on that connection (edge-route's fromInside). Its
// relayed-flow header names the partner domain: nobody inside challenges a partner's user (its
// organisation vouched for it), but it is known for a request from outside (auth/scope.ts).
//
// From inside (a Front End or Director, which send requests for other domains to the federating edge
// pool, src/frontend/proxy.ts federationHop): a new request to a user of another domain leaves through
// our Access Edge to the partner's (frontend/federation.ts PartnerEdges: `_sipfederationtls._tcp` SRV →
// Access Edge addresses, asked from our external address), tried in DNS order, the next on connect
// failure, no answer or 503 (the proxy's server tries), at most `triesMax`. A domain that is not a
// partner: 403 with the reason; no Access Edge in DNS: 404; DNS failed: 503.
//
// Everything else (our own users' requests, requests in a dialog) is edge-route's.
import type { Clock, Random } from '../../shared/clock.ts';
import { limits } from '../../shared/limits.ts';
import { relayedFlowHeader } from '../../auth/relayed.ts';
import { callId, from, parseNameAddr, to, topVia } from '../../sip/headers.ts';
import type { Flow } from '../../sip/flow.ts';
import { createResponse, headerValue, type SipRequest } from '../../sip/message.ts';
import { isAddressHost, isSipUri, type SipUri, type Uri } from '../../sip/uri.ts';
import type { Routable, RouteTarget } from '../../pool/routing.ts';
import type { UserHomes } from '../../frontend/homes.ts';
import type { PoolView } from '../../frontend/pool-view.ts';
import type { Proxy } from '../../frontend/proxy.ts';
import type { PartnerEdges, PartnerEndpoint } from '../../frontend/federation.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from '../../frontend/steps/step.ts';
import { federationDecision } from '../../topology/federation.ts';
import type { EdgeFlows } from '../edge-flows.ts';
import type { PartnerIdentity } from '../partner-identity.ts';
import { relayTargets } from '../relay.ts';
import { sourceOf } from './edge-route.ts';

export interface FederationStepOptions {
  view: () => PoolView;
  proxy: Pick<Proxy, 'forwardTo'>;
  flows: EdgeFlows;
  homes: UserHomes;
  routable: Routable;
  random: Random;
  clock: Pick<Clock, 'nowMs'>;
  partners: PartnerEdges;
  /** Is a connection from outside the claimed partner's Access Edge (its certificate)? */
  identity: Pick<PartnerIdentity, 'check'>;
  /** A connection to a partner's Access Edge address (kept open and reused), from our external address. */
  connect: (endpoint: PartnerEndpoint) => Promise<Flow>;
  /** `<sip:TOKEN@internal:port;transport=…;lr>` of this Edge for a flow token (edge-route's Record-Route). */
  ownUri: (token: string) => string;
  /** `sip:USER@<Access Edge address>:<federation port>;transport=…;lr`: this Edge as partners reach it. */
  externalUri: (user: string) => string;
}

export interface FederationCounters {
  /** New requests from partners relayed inside. */
  inbound: number;
  /** New requests of our users sent out to a partner's Access Edge. */
  outbound: number;
  /** Requests refused: not a listed partner (403), not for our users, no Access Edge (404), DNS failed (503). */
  refused: number;
  /** Of those, from a connection whose certificate is not the claimed partner's Access Edge's (partner-identity.ts). */
  notVerified: number;
}

export class FederationStep implements Step {
  readonly name = 'federation';
  readonly counters: FederationCounters = { inbound: 0, outbound: 0, refused: 0, notVerified: 0 };
  /** Outbound INVITEs waiting for their partner's DNS lookup (key: lookupKey), true once cancelled. */
  private readonly lookingUp = new Map<string, boolean>();
  /**
   * Addresses known as partners' Access Edges (a verified partner connection's source, what a partner's
   * DNS named for a request we sent out) → when last seen. A dialog's route may lead only to one of them:
   * its Record-Route entries were written by the partner, who must not make our Edge connect anywhere.
   */
  private readonly partnerAddresses = new Map<string, number>();

  constructor(private readonly options: FederationStepOptions) {}

  run(context: RequestContext): StepOutcome {
    const { request } = context;
    if (request.method === 'CANCEL' && !context.outside && this.lookingUp.has(lookupKey(context.flow, request))) return this.cancelLookup(context);
    if (!context.outside && context.routeLeft) return this.alongDialog(context);
    if (request.method === 'REGISTER' || request.method === 'ACK' || request.method === 'CANCEL' || context.routeLeft || to(request).tag !== null) return 'continue';
    return context.outside ? this.inbound(context) : this.outbound(context);
  }

  /**
   * A request from inside along a dialog's route set whose next hop is a partner's Access Edge (an
   * address outside the topology, after our own two Record-Route entries): on the partner connection
   * the dialog came in on (our token), else on our own connection to that address — only when it is an
   * address we know as a partner's Access Edge (403 otherwise).
   */
  private alongDialog(context: RequestContext): StepOutcome {
    const { flow, request } = context;
    const view = this.options.view();
    const next = nextRoute(request);
    if (next === null || view.serverAt(next.host) !== undefined || !isAddressHost(next.host)) return 'continue';
    const token = context.ownRouteUser;
    const partner = token !== null ? this.options.flows.flowOf(token) : undefined;
    if (partner && !partner.closed) {
      this.options.proxy.forwardTo(flow, request, { kind: 'flow', flow: partner, toUa: false }, { fromServer: true, outward: true });
      return 'answered';
    }
    const host = next.host.startsWith('[') ? next.host.slice(1, -1) : next.host;
    if (!this.isPartnerAddress(host)) return this.refuse(context, 403, `The route leads to ${host}, which is not a partner's Access Edge`);
    const endpoint: PartnerEndpoint = { address: host, port: next.port ?? 5061, transport: 'tls', host };
    const label = `${host}:${endpoint.port}`;
    this.options.proxy.forwardTo(flow, request, { kind: 'servers', pool: `the partner Access Edge ${label}`, targets: [{ server: label, address: host, tcpPort: endpoint.port, tlsPort: endpoint.port }], connect: () => this.options.connect(endpoint) }, { fromServer: true, outward: true });
    return 'answered';
  }

  private inbound(context: RequestContext): StepOutcome {
    const { flow, request } = context;
    const view = this.options.view();
    const sender = from(request).uri;
    if (!isSipUri(sender) || view.isSipDomain(sender.host)) return 'continue';
    const decision = federationDecision(view.topology, sender.host);
    if (decision.kind !== 'partner') return this.refuse(context, 403, decision.kind === 'refused' ? decision.reason : 'Not a partner');
    // The From domain is only a claim: the connection's certificate must be that partner's Access Edge's
    // (partner-identity.ts). Asynchronous (a CA file, the partner's DNS): the request and flow are kept.
    void this.options.identity.check(flow, decision.domain).then(
      (verdict) => {
        if (!verdict.ok) {
          this.counters.notVerified++;
          this.refuseLater(flow, request, verdict.status, verdict.reason);
          return;
        }
        this.admitInbound(flow, request, decision.domain);
      },
      (error: unknown) => this.refuseLater(flow, request, 503, `The partner's certificate could not be checked (${(error as Error).message})`),
    );
    return 'answered';
  }

  /** A verified partner's new request: to our user, inside. */
  private admitInbound(flow: Flow, request: SipRequest, partnerDomain: string): void {
    if (flow.closed) return;
    const view = this.options.view();
    const who = isSipUri(request.uri) ? view.userOf(request.uri) : null;
    if (who === null) return this.refuseLater(flow, request, 403, `A partner's request must be for a user of ${view.topology.sipDomains.join(', ')}`);
    if ('unknown' in who) return this.refuseLater(flow, request, 404, 'Unknown user');
    const route = relayTargets(view, this.options.homes, this.options.routable, who.user);
    if ('none' in route) return this.refuseLater(flow, request, request.method === 'INVITE' ? 480 : 503, `No internal server can be reached: ${route.reason}`);
    this.counters.inbound++;
    this.rememberPartnerAddress(flow.remoteAddress);
    const token = this.options.flows.tokenOf(flow);
    // Two Record-Route entries (RFC 3261 §16.6 step 4, a proxy on two networks): the inside one toward
    // our user first, then the one the partner reaches us at; both carry the partner connection's token.
    // The relayed-flow header names the partner: the server inside lets its new request in unchallenged.
    const headers = [relayedFlowHeader({ token, source: sourceOf(flow), partner: partnerDomain })];
    this.options.proxy.forwardTo(flow, request, { kind: 'servers', pool: route.pool, targets: route.targets }, { recordRoute: `<${this.options.ownUri(token)}>, <${this.options.externalUri(token)}>`, headers });
  }

  private outbound(context: RequestContext): StepOutcome {
    const { flow, request } = context;
    const view = this.options.view();
    const target: Uri = request.uri;
    if (!isSipUri(target) || target.user === null || view.isSipDomain(target.host) || view.serverAt(target.host) !== undefined || isAddressHost(target.host)) return 'continue';
    const decision = federationDecision(view.topology, target.host);
    if (decision.kind !== 'partner') return this.refuse(context, 403, decision.kind === 'refused' ? decision.reason : 'Not a partner');
    // The lookup is asynchronous (DNS, SRV then A: seconds when a server is slow); the request and its
    // flow are kept, never the context. An INVITE is answered 100 at once (§16.2), so the Front End
    // does not take the silence for a dead Edge and send the call out a second time through another;
    // a CANCEL meanwhile is answered here (cancelLookup) and the INVITE 487 when the lookup ends.
    const key = lookupKey(flow, request);
    if (this.lookingUp.has(key)) return 'answered'; // a retransmission while we look
    if (request.method === 'INVITE') {
      this.lookingUp.set(key, false);
      flow.send(createResponse(request, 100));
    }
    // Whatever fails in the lookup is the caller's 503, never an unhandled rejection (it would end the process).
    void this.sendOut(flow, request, `sip:${target.user}@${target.host}`).catch((error: unknown) => {
      this.lookingUp.delete(key);
      this.counters.refused++;
      if (!flow.closed) reply(flow, request, 503, this.options.random, { reason: `Federation failed: ${oneLine(error instanceof Error ? error.message : String(error))}` });
    });
    return 'answered';
  }

  /** A CANCEL of an INVITE whose partner is being looked up: 200 here, 487 to the INVITE when the lookup ends. */
  private cancelLookup(context: RequestContext): StepOutcome {
    this.lookingUp.set(lookupKey(context.flow, context.request), true);
    context.flow.send(createResponse(context.request, 200));
    return 'answered';
  }

  private async sendOut(flow: Flow, request: SipRequest, uri: string): Promise<void> {
    const route = await this.options.partners.route(uri);
    // From here on the proxy's transaction takes CANCELs (it is opened before the next await).
    const key = lookupKey(flow, request);
    const cancelled = this.lookingUp.get(key) === true;
    this.lookingUp.delete(key);
    if (cancelled) {
      if (!flow.closed) reply(flow, request, 487, this.options.random);
      return;
    }
    if (route.kind === 'answer') {
      this.counters.refused++;
      if (!flow.closed) reply(flow, request, route.status, this.options.random, { reason: route.reason });
      return;
    }
    if (route.endpoints.length === 0) {
      this.counters.refused++;
      if (!flow.closed) reply(flow, request, 404, this.options.random, { reason: `No Access Edge address for partner ${route.domain}` });
      return;
    }
    this.counters.outbound++;
    for (const endpoint of route.endpoints) this.rememberPartnerAddress(endpoint.address);
    const byLabel = new Map<string, PartnerEndpoint>();
    const targets: RouteTarget[] = route.endpoints.map((endpoint) => {
      const label = `${endpoint.host} ${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`;
      byLabel.set(label, endpoint);
      return { server: label, address: endpoint.address, tcpPort: endpoint.port, tlsPort: endpoint.port };
    });
    // Two Record-Route entries: the one the partner reaches us at first (toward the callee), then ours
    // inside. Both carry this dialog's token (edge-flows.ts): the guard lets a partner's request follow
    // them only inside this dialog.
    const token = this.options.flows.dialogToken(callId(request), from(request).tag ?? '');
    const recordRoute = `<${this.options.externalUri(token)}>, <${this.options.ownUri(token)}>`;
    this.options.proxy.forwardTo(flow, request, { kind: 'servers', pool: `the Access Edge of ${route.domain}`, targets, connect: (target) => this.options.connect(byLabel.get(target.server)!) }, { fromServer: true, recordRoute, outward: true });
  }

  /** A partner's Access Edge address seen now (kept for as long as a dialog may last; the oldest go first past the cap). */
  private rememberPartnerAddress(address: string): void {
    this.partnerAddresses.delete(address);
    this.partnerAddresses.set(address, this.options.clock.nowMs());
    if (this.partnerAddresses.size > limits.edgePartnerAddressesMax) {
      const oldest = this.partnerAddresses.keys().next().value;
      if (oldest !== undefined) this.partnerAddresses.delete(oldest);
    }
  }

  private isPartnerAddress(address: string): boolean {
    const seenMs = this.partnerAddresses.get(address);
    return seenMs !== undefined && this.options.clock.nowMs() - seenMs <= limits.frontendDialogAgeMsMax;
  }

  private refuseLater(flow: Flow, request: SipRequest, status: number, reason: string): void {
    this.counters.refused++;
    if (!flow.closed) reply(flow, request, status, this.options.random, { reason: oneLine(reason) });
  }

  private refuse(context: RequestContext, status: number, reason: string): StepOutcome {
    this.counters.refused++;
    reply(context.flow, context.request, status, this.options.random, { reason: oneLine(reason) });
    return 'answered';
  }
}

/** An INVITE and its CANCEL share the flow they came on, the top Via's branch and the Call-ID (§9.2). */
function lookupKey(flow: Flow, request: SipRequest): string {
  return `${flow.id} ${topVia(request)?.branch ?? ''} ${callId(request)}`;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** The first Route left, when it is a SIP URI. */
function nextRoute(request: SipRequest): SipUri | null {
  const value = headerValue(request, 'Route');
  if (value === undefined) return null;
  try {
    const uri = parseNameAddr(value, { requireBrackets: true }).uri;
    return isSipUri(uri) ? uri : null;
  } catch {
    return null;
  }
}
