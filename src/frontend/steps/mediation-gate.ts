// The Mediation role's gate (DESIGN §7 Mediation): a Mediation server stands between the pools and
// the PSTN gateways, so new calls come only from the SIP servers of the topology (a Front End sending
// a call to a number) or from one of its pool's gateways (a call into the pools). A new out-of-dialog
// request from anyone else — a client that found the Mediation pool in DNS — is answered 403 with the
// reason. A Route does not change that: anyone can preload `Route: <sip:mediation;lr>` (RFC 3261 §8.1.2),
// so a Route naming us proves nothing. What passes from anyone is a request in a dialog (a To tag)
// following our Record-Route (every dialog through a Mediation server has it), and ACK and CANCEL
// (they start nothing).
import type { Random } from '../../shared/clock.ts';
import { to } from '../../sip/headers.ts';
import type { PoolView } from '../pool-view.ts';
import { gatewayAt } from '../proxy.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

export class MediationGateStep implements Step {
  readonly name = 'mediation-gate';
  /** Requests refused: neither from a server of the topology nor from a gateway, nor in a dialog through us. */
  refused = 0;

  constructor(
    private readonly view: () => PoolView,
    private readonly random: Random,
  ) {}

  run(context: RequestContext): StepOutcome {
    if (context.fromPeer || context.fromServer) return 'continue';
    const request = context.request;
    if (request.method === 'ACK' || request.method === 'CANCEL' || (to(request).tag !== null && context.poppedOwnRoute)) return 'continue';
    const pool = this.view().pool;
    if (gatewayAt(pool.gateways ?? [], context.flow.remoteAddress)) return 'continue';
    this.refused++;
    reply(context.flow, request, 403, this.random, { reason: `Mediation server ${this.view().self.fqdn} takes calls from the servers of the topology and the gateways of ${pool.fqdn} only` });
    return 'answered';
  }
}
