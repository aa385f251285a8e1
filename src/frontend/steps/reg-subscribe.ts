// The reg event role step (RFC 3680): a SUBSCRIBE with `Event: reg` and no Route left is ours —
// 200 and a full-state NOTIFY at the user's home, 301 elsewhere, 403 for another user's registration.
import type { RegistrarService } from '../registrar-service.ts';
import type { RequestContext, Step, StepOutcome } from './step.ts';

export class RegSubscribeStep implements Step {
  readonly name = 'reg-subscribe';

  constructor(private readonly registrar: Pick<RegistrarService, 'handleSubscribe'>) {}

  run(context: RequestContext): StepOutcome {
    if (context.kind !== 'reg-subscribe') return 'continue';
    context.flow.send(this.registrar.handleSubscribe(context.flow, context.request));
    return 'answered';
  }
}
