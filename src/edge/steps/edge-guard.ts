// The Edge's first step after classify (DESIGN §7 "Edge"): says which interface a request came on, and
// refuses what may not cross it.
//
// External interface (the Internet): nothing there is a server, whatever its source address, so the
// classify step's fromPeer/fromServer are reset; a request that
//   - carries the header only an Edge may set (auth/relayed.ts), or a Path (only servers add one),
//   - names a route token (a Route naming us with a user part) that we did not issue to it: neither its
//     own connection's flow token nor the dialog token of the very dialog it is in (a dialog we sent
//     out to a partner: edge-flows.ts dialogToken, bound to the Call-ID and our side's tag),
//   - has a Route left that does not follow this Edge's Record-Route with such a token, or is not in a
//     dialog (no To tag, or a REGISTER: only a dialog's requests follow a route set),
//   - is a new request (no To tag) addressed to a server (a Request-URI naming an address or a server),
// is answered 403 and goes nowhere. Internal interface: only the topology's servers may send (a host that
// reached the internal address is not a client of the Edge): anything else is 403 too.
import type { Random } from '../../shared/clock.ts';
import { RELAYED_FLOW_HEADER } from '../../auth/relayed.ts';
import { callId, to } from '../../sip/headers.ts';
import { headerValue } from '../../sip/message.ts';
import { isAddressHost, isSipUri } from '../../sip/uri.ts';
import type { PoolView } from '../../frontend/pool-view.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from '../../frontend/steps/step.ts';
import type { EdgeFlows } from '../edge-flows.ts';
import { isExternal, type EdgeInterfaces } from '../interfaces.ts';

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
    const toTag = to(request).tag;
    // A partner's request in a dialog we sent out follows our federation Record-Route, whose token is
    // that dialog's (the partner may use a connection of its own); anything else carries its connection's.
    const ownToken = token !== null && (this.flows.isTokenOf(token, flow) || this.flows.isDialogToken(token, callId(request), toTag));
    if (token !== null && !ownToken) {
      this.counters.forgedFromOutside++;
      return this.refuse(context, 'The route token was not issued to this connection or dialog');
    }
    // A Route beyond us is the route set of a dialog set up through us: it starts with our Record-Route
    // carrying such a token, and only that dialog's requests follow it (never a new request, never a REGISTER).
    if (context.routeLeft && (!ownToken || toTag === null || request.method === 'REGISTER')) {
      this.counters.forgedFromOutside++;
      return this.refuse(context, 'A Route from outside must start at this Edge and belong to a dialog');
    }
    // A new request (no To tag) goes to a user or a domain, never to a server's address (the Edge
    // itself excepted: an OPTIONS to the Access Edge is answered here).
    const uri = request.uri;
    if (to(request).tag === null && !context.addressedToUs && isSipUri(uri) && (this.view().serverAt(uri.host) !== undefined || isAddressHost(uri.host))) {
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
