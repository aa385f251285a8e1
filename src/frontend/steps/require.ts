// Extensions a request insists on. Proxy-Require, for every request (§16.3 step 5: we support no
// proxy extension) → 420. Require, only for requests this server answers itself as their UAS —
// REGISTER, reg SUBSCRIBE, OPTIONS to us (§8.2.2.3) → 420 with Unsupported; a proxy ignores Require
// (§16.3). Requests to us with a method we do not serve get 405 first (§8.2.1 comes before §8.2.2).
import type { Random } from '../../shared/clock.ts';
import { proxyRequire } from '../../sip/headers.ts';
import { answerFor, checkRequire } from '../../sip/problem.ts';
import type { RegisterAnswers } from '../register-answers.ts';
import { randomToken } from '../wire.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

/** Option tags this server supports as a UAS (a REGISTER, a reg SUBSCRIBE or an OPTIONS may require them). */
export const SUPPORTED: readonly string[] = ['path', 'outbound'];

export class RequireStep implements Step {
  readonly name = 'require';

  constructor(
    private readonly random: Random,
    private readonly registerAnswers: RegisterAnswers,
  ) {}

  run(context: RequestContext): StepOutcome {
    const request = context.request;
    // §8.2.2.3 and §16.3: never for CANCEL, nor for an ACK.
    if (request.method === 'ACK' || request.method === 'CANCEL') return 'continue';
    const proxyRequired = proxyRequire(request);
    if (proxyRequired.length > 0) {
      this.registerAnswers.count(request, 420);
      reply(context.flow, request, 420, this.random, { headers: [{ name: 'Unsupported', value: proxyRequired.join(', ') }] });
      return 'answered';
    }
    const kind = context.kind;
    if (kind !== 'register' && kind !== 'reg-subscribe' && kind !== 'options') return 'continue';
    const bad = checkRequire(request, SUPPORTED);
    if (!bad) return 'continue';
    const answer = answerFor(bad, { toTag: randomToken(this.random, 10) });
    if (answer.response) {
      this.registerAnswers.count(request, answer.response.status);
      context.flow.send(answer.response);
    }
    return 'answered';
  }
}
