// The first step of every path: removes the Routes that name this server (RFC 3261 §16.4) and says
// what the request is addressed to (RequestContext.kind), where it came from and its Max-Forwards.
import { parseNameAddr, maxForwards } from '../../sip/headers.ts';
import { headerValue, type Header } from '../../sip/message.ts';
import { isSipUri } from '../../sip/uri.ts';
import type { PoolView } from '../pool-view.ts';
import { RegistrarService } from '../registrar-service.ts';
import { withoutFirst } from '../wire.ts';
import type { RequestContext, RequestKind, Step, StepOutcome } from './step.ts';

export class ClassifyStep implements Step {
  readonly name = 'classify';

  constructor(private readonly view: () => PoolView) {}

  run(context: RequestContext): StepOutcome {
    const view = this.view();
    const request = context.received;
    // §16.4: Routes naming us are ours to remove (we record-routed, or the client preloaded us).
    let headers: readonly Header[] = request.headers;
    let popped = false;
    let routeLeft = false;
    let ownRouteUser: string | null = null;
    for (;;) {
      const route = headerValue({ headers }, 'Route');
      if (route === undefined) break;
      const uri = parseNameAddr(route, { requireBrackets: true }).uri;
      if (!isSipUri(uri) || !view.isSelf(uri.host)) {
        routeLeft = true;
        break;
      }
      headers = withoutFirst(headers, 'Route');
      if (!popped) ownRouteUser = uri.user;
      popped = true;
    }
    const routed = popped ? { ...request, headers } : request;
    const uri = routed.uri;
    const addressedToUs = !routeLeft && isSipUri(uri) && uri.user === null && view.isServiceHost(uri.host);
    const hops = maxForwards(routed);
    context.request = routed;
    context.poppedOwnRoute = popped;
    context.ownRouteUser = ownRouteUser;
    context.routeLeft = routeLeft;
    context.addressedToUs = addressedToUs;
    context.hops = hops;
    // By the flow's verified certificate (TLS between servers, the default), never its source address (peer-identity.ts).
    const origin = view.originOf(context.flow);
    context.fromPeer = origin.kind === 'peer';
    context.fromServer = origin.kind === 'server';
    context.fromEdge = origin.kind === 'server' && origin.server.pool.kind === 'edge';
    context.kind = kindOf(routed.method, routeLeft, addressedToUs, hops, routed);
    return 'continue';
  }
}

function kindOf(method: string, routeLeft: boolean, addressedToUs: boolean, hops: number | null, request: RequestContext['request']): RequestKind {
  if (!routeLeft && method === 'REGISTER') return 'register';
  if (!routeLeft && RegistrarService.isRegSubscribe(request)) return 'reg-subscribe';
  // §11: an OPTIONS with Max-Forwards 0 is answered by the first server that gets it.
  if (method === 'OPTIONS' && (addressedToUs || hops === 0)) return 'options';
  if (addressedToUs && method !== 'CANCEL') return 'self';
  return 'proxy';
}
