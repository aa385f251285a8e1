// The Mediation role's gate (DESIGN §7 Mediation): a Mediation server stands between the pools and
// the PSTN gateways, so new calls come only from the SIP servers of the topology (a Front End sending
// a call to a number) or from one of its pool's gateways (a call into the pools). A new out-of-dialog
// request from anyone else — a client that found the Mediation pool in DNS — is answered 403 with the
// reason; requests in a dialog (a To tag, or following our Record-Route) and along a Route pass.
import type { Random } from '../../shared/clock.ts';
import { to } from '../../sip/headers.ts';
import type { PoolView } from '../pool-view.ts';
import { gatewayAt } from '../proxy.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

export class MediationGateStep implements Step {
  readonly name = 'mediation-gate';
  /** New requests refused: neither from a server of the topology nor from a gateway. */
  refused = 0;

  constructor(
    private readonly view: () => PoolView,
    private readonly random: Random,
  ) {}

  run(context: RequestContext): StepOutcome {
    if (context.fromPeer || context.fromServer || context.poppedOwnRoute || context.routeLeft) return 'continue';
    const request = context.request;
    if (request.method === 'ACK' || request.method === 'CANCEL' || to(request).tag !== null) return 'continue';
    const pool = this.view().pool;
    if (gatewayAt(pool.gateways ?? [], context.flow.remoteAddress)) return 'continue';
    this.refused++;
    reply(context.flow, request, 403, this.random, { reason: `Mediation server ${this.view().self.fqdn} takes calls from the servers of the topology and the gateways of ${pool.fqdn} only` });
    return 'answered';
  }
}
