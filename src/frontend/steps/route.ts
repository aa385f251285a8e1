// The proxy role step of a Front End server: everything not answered before goes to the Proxy — to a
// user's home or binding, along a Route, CANCEL and ACK matched to their transactions (proxy.ts).
import type { Proxy } from '../proxy.ts';
import type { RequestContext, Step, StepOutcome } from './step.ts';

export class RouteStep implements Step {
  readonly name = 'route';

  constructor(private readonly proxy: Pick<Proxy, 'route'>) {}

  run(context: RequestContext): StepOutcome {
    // The context carries poppedOwnRoute and fromPeer; the proxy reads them before route() returns.
    this.proxy.route(context.flow, context.request, context);
    return 'answered';
  }
}
