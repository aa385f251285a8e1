// The Edge's route step (DESIGN §7 "Edge"), the last of its path: where a request goes, with the client's
// flow kept on this Edge (RFC 5626 flow token in the Path of a REGISTER and in the Record-Route of a
// dialog, RFC 3327 / RFC 3261 §16.6).
//
// From outside (a remote user's connection):
//   - a new request (no To tag): the user it speaks for (REGISTER: To, else From) must be of our SIP
//     domains, and a request's target one of our users or a number; it goes to the Director pool (or the
//     home pool) over the internal interface (relay.ts), with the relayed-flow header (auth/relayed.ts:
//     the Director authenticates it), a Path for a REGISTER and a Record-Route carrying the flow token;
//   - a request in a dialog: along its route set, which starts with our Record-Route (the guard checked
//     the token) and goes on to a server of the topology — never to another host —, with the
//     relayed-flow header too: nothing from outside reaches a server inside unmarked.
// From inside (a server): a Route naming us with a flow token → that client connection (430 Flow Failed
// when it is gone); anything else → the proxy (a NOTIFY to a subscriber's Contact, …).
//
// Requests from or to other domains are federation: the federation step before this one takes them
// (steps/federation.ts); what reaches this step from another domain is refused (403).
import type { Random } from '../../shared/clock.ts';
import { relayedFlowHeader, withRelayedFlow } from '../../auth/relayed.ts';
import type { Flow } from '../../sip/flow.ts';
import { from, parseNameAddr, to } from '../../sip/headers.ts';
import { headerValue, type Header, type SipRequest } from '../../sip/message.ts';
import { isSipUri, isTelUri } from '../../sip/uri.ts';
import type { Routable } from '../../pool/routing.ts';
import type { UserHomes } from '../../frontend/homes.ts';
import type { PoolView } from '../../frontend/pool-view.ts';
import type { Proxy } from '../../frontend/proxy.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from '../../frontend/steps/step.ts';
import { federationDecision } from '../../topology/federation.ts';
import type { EdgeFlows } from '../edge-flows.ts';
import { relayTargets } from '../relay.ts';

export interface EdgeRouteOptions {
  view: () => PoolView;
  proxy: Pick<Proxy, 'forwardTo' | 'route'>;
  flows: EdgeFlows;
  homes: UserHomes;
  routable: Routable;
  random: Random;
  /** The transport of this Edge's server links: its Path and Record-Route name the internal port of it. */
  linkTransport: () => 'tcp' | 'tls';
}

export interface EdgeRouteCounters {
  /** New requests from remote users relayed inside. */
  relayed: number;
  /** Requests from inside delivered on a remote user's connection by its flow token. */
  toRemote: number;
  /** Requests from inside whose flow token names no open connection (430). */
  flowFailed: number;
  /** Requests refused: another domain (federation), or no route inside. */
  refused: number;
}

export class EdgeRouteStep implements Step {
  readonly name = 'edge-route';
  readonly counters: EdgeRouteCounters = { relayed: 0, toRemote: 0, flowFailed: 0, refused: 0 };

  constructor(private readonly options: EdgeRouteOptions) {}

  run(context: RequestContext): StepOutcome {
    return context.outside ? this.fromOutside(context) : this.fromInside(context);
  }

  /** `<sip:TOKEN@internal:port;transport=…;lr>`: our Record-Route and (with `;ob`) Path for a client flow. */
  private ownUri(token: string): string {
    const view = this.options.view();
    const transport = this.options.linkTransport();
    const address = view.self.address.includes(':') ? `[${view.self.address}]` : view.self.address;
    return `sip:${token}@${address}:${transport === 'tls' ? view.tlsPort : view.tcpPort};transport=${transport};lr`;
  }

  private fromOutside(context: RequestContext): StepOutcome {
    const { flow, request } = context;
    const view = this.options.view();
    const inDialog = to(request).tag !== null;
    if ((inDialog && request.method !== 'ACK') || context.routeLeft) {
      // Along the dialog's route set: the guard saw the token we issued first; the next hop must be a
      // server, and the request carries the client's flow like every request from outside (the server
      // inside treats it as a client's: auth/scope.ts).
      const next = context.routeLeft ? nextRouteHost(request) : null;
      if (next === null || view.serverAt(next) === undefined) return this.refuse(context, 403, 'No route inside for this request');
      this.options.proxy.route(flow, withRelayedFlow(request, { token: this.options.flows.tokenOf(flow), source: sourceOf(flow) }), { poppedOwnRoute: true, fromPeer: false });
      return 'answered';
    }
    const registering = request.method === 'REGISTER';
    const party = registering ? to(request).uri : from(request).uri;
    const who = view.userOf(party);
    // A request from another domain (From), or to one (Request-URI), is a partner's: the federation
    // step before this one took it if it could; what is left is refused here.
    if (who === null) return this.refuse(context, 403, 'Federation is not enabled on this Edge');
    if ('unknown' in who) return this.refuse(context, 404, 'Unknown user');
    const target = request.uri;
    if (registering) {
      if (!isSipUri(target) || target.user !== null || !view.isSipDomain(target.host)) return this.refuse(context, 403, 'A REGISTER from outside is for a SIP domain of this Edge');
    } else if (!isTelUri(target) && !(isSipUri(target) && target.user !== null && view.isSipDomain(target.host))) {
      // A remote user's request to a partner's user goes inside like any other (its home sends it back
      // out through the federating Edge, src/frontend/proxy.ts federationHop); to anyone else, 403.
      const decision = isSipUri(target) && target.user !== null ? federationDecision(view.topology, target.host) : null;
      if (decision?.kind !== 'partner') return this.refuse(context, 403, decision?.kind === 'refused' ? decision.reason : 'Federation is not enabled on this Edge');
    }
    const route = relayTargets(view, this.options.homes, this.options.routable, who.user);
    if ('none' in route) return this.refuse(context, 503, `No internal server can be reached: ${route.reason}`);
    const token = this.options.flows.tokenOf(flow);
    if (registering) this.options.flows.noteUser(flow, who.user);
    const own = this.ownUri(token);
    const headers: Header[] = [relayedFlowHeader({ token, source: sourceOf(flow) })];
    if (registering) headers.push({ name: 'Path', value: `<${own};ob>` });
    this.counters.relayed++;
    // A call from a remote user to a federation partner comes back out through this pool's Edges after
    // the Director authenticated it, perhaps through this very Edge, unchanged: a spiral, not a loop.
    this.options.proxy.forwardTo(flow, request, { kind: 'servers', pool: route.pool, targets: route.targets }, { recordRoute: `<${own}>`, headers, spiral: 'from-outside' });
    return 'answered';
  }

  private fromInside(context: RequestContext): StepOutcome {
    const { flow, request } = context;
    const token = context.ownRouteUser;
    if (token === null || context.routeLeft) {
      this.options.proxy.route(flow, request, context);
      return 'answered';
    }
    const client = this.options.flows.flowOf(token);
    if (client === undefined) {
      this.counters.flowFailed++;
      // RFC 5626 §5.3: the flow the token names is gone.
      return this.refuse(context, 430, 'Flow Failed');
    }
    this.counters.toRemote++;
    this.options.proxy.forwardTo(flow, request, { kind: 'flow', flow: client, toUa: true }, { recordRoute: `<${this.ownUri(token)}>`, fromServer: true, outward: true });
    return 'answered';
  }

  private refuse(context: RequestContext, status: number, reason: string): StepOutcome {
    if (status !== 430) this.counters.refused++;
    if (context.request.method !== 'ACK') reply(context.flow, context.request, status, this.options.random, { reason });
    return 'answered';
  }
}

/** A client's address as the relayed-flow header gives it (an IPv4 address without its IPv6 mapping). */
export function sourceOf(flow: Flow): string {
  return flow.remoteAddress.startsWith('::ffff:') ? flow.remoteAddress.slice(7) : flow.remoteAddress;
}

/** The host of the first Route left, or null when there is none or it is not a SIP URI. */
function nextRouteHost(request: SipRequest): string | null {
  const value = headerValue(request, 'Route');
  if (value === undefined) return null;
  try {
    const uri = parseNameAddr(value, { requireBrackets: true }).uri;
    return isSipUri(uri) ? uri.host : null;
  } catch {
    return null;
  }
}
