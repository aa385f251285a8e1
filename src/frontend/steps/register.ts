// The registrar role step: a REGISTER with no Route left is ours (RegistrarService: home decision →
// 200 with X-Registrar-Mode / 301 to the home / 423 / 503).
import type { RegisterAnswers } from '../register-answers.ts';
import type { RegistrarService } from '../registrar-service.ts';
import type { RequestContext, Step, StepOutcome } from './step.ts';

export class RegisterStep implements Step {
  readonly name = 'register';

  constructor(
    private readonly registrar: Pick<RegistrarService, 'handleRegister'>,
    private readonly registerAnswers: RegisterAnswers,
  ) {}

  run(context: RequestContext): StepOutcome {
    if (context.kind !== 'register') return 'continue';
    // A Path is believed only from a server of the topology (an Edge or the Director relaying for it).
    const response = this.registrar.handleRegister(context.flow, context.request, { trustPath: context.fromServer || context.fromPeer });
    this.registerAnswers.count(context.request, response.status);
    context.flow.send(response);
    return 'answered';
  }
}
