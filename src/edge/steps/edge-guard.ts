// The Edge's first step after classify (DESIGN §7 "Edge"): says which interface a request came on, and
// refuses what may not cross it.
//
// External interface (the Internet): nothing there is a server, whatever its source address, so the
// classify step's fromPeer/fromServer are reset; a request that
//   - carries the header only an Edge may set (auth/relayed.ts), or a Path (only servers add one),
//   - names a flow token (a Route naming us with a user part) that is not its own connection's,
//   - has a Route left that does not follow this Edge's Record-Route for its own connection,
//   - is a new request (no To tag) addressed to a server (a Request-URI naming an address or a server),
// is answered 403 and goes nowhere. Internal interface: only the topology's servers may send (a host that
// reached the internal address is not a client of the Edge): anything else is 403 too.
import type { Random } from '../../shared/clock.ts';
import { RELAYED_FLOW_HEADER } from '../../auth/relayed.ts';
import { to } from '../../sip/headers.ts';
import { headerValue } from '../../sip/message.ts';
import { isSipUri } from '../../sip/uri.ts';
import type { PoolView } from '../../frontend/pool-view.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from '../../frontend/steps/step.ts';
import type { EdgeFlows } from '../edge-flows.ts';
import { isExternal, type EdgeInterfaces } from '../interfaces.ts';
import { FEDERATION_ROUTE_USER, isPartnerRequest } from './federation.ts';

export interface EdgeGuardCounters {
  /** Requests from outside refused because they claimed something only a server may (forged header, token, Route, Path). */
  forgedFromOutside: number;
  /** Requests from outside addressed to an internal server. */
  toServerFromOutside: number;
  /** Requests on the internal interface from a host that is not a server of the topology. */
  notServerInside: number;
}

export class EdgeGuardStep implements Step {
  readonly name = 'edge-guard';
  readonly counters: EdgeGuardCounters = { forgedFromOutside: 0, toServerFromOutside: 0, notServerInside: 0 };

  constructor(
    private readonly view: () => PoolView,
    private readonly interfaces: EdgeInterfaces,
    private readonly flows: EdgeFlows,
    private readonly random: Random,
  ) {}

  run(context: RequestContext): StepOutcome {
    const { flow, request } = context;
    if (!isExternal(this.interfaces, flow.localAddress)) {
      if (context.fromPeer || context.fromServer) return 'continue';
      this.counters.notServerInside++;
      return this.refuse(context, 'The internal interface serves the servers of the topology only');
    }
    context.outside = true;
    context.fromPeer = false;
    context.fromServer = false;
    context.fromEdge = false;
    if (headerValue(request, RELAYED_FLOW_HEADER) !== undefined || headerValue(request, 'Path') !== undefined) {
      this.counters.forgedFromOutside++;
      return this.refuse(context, 'A header only servers may set came from outside');
    }
    const token = context.ownRouteUser;
    // A partner's request in a dialog we sent out follows our federation Record-Route (no client token:
    // the partner may use its own connection), admitted when one side is a listed partner's user.
    const ownToken = token !== null && (this.flows.isTokenOf(token, flow) || (token === FEDERATION_ROUTE_USER && isPartnerRequest(this.view().topology, request)));
    if (token !== null && !ownToken) {
      this.counters.forgedFromOutside++;
      return this.refuse(context, 'The flow token is not this connection\u2019s');
    }
    // A Route beyond us is the route set of a dialog this connection set up through us: it starts with
    // our Record-Route carrying this connection's token.
    if (context.routeLeft && !ownToken) {
      this.counters.forgedFromOutside++;
      return this.refuse(context, 'A Route from outside must start at this Edge');
    }
    // A new request (no To tag) goes to a user or a domain, never to a server's address (the Edge
    // itself excepted: an OPTIONS to the Access Edge is answered here).
    const uri = request.uri;
    if (to(request).tag === null && !context.addressedToUs && isSipUri(uri) && (this.view().serverAt(uri.host) !== undefined || /^[0-9.]+$|^\[/.test(uri.host))) {
      this.counters.toServerFromOutside++;
      return this.refuse(context, 'Servers are not reachable from outside');
    }
    return 'continue';
  }

  private refuse(context: RequestContext, reason: string): StepOutcome {
    if (context.request.method !== 'ACK') reply(context.flow, context.request, 403, this.random, { reason });
    return 'answered';
  }
}
