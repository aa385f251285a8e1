// Max-Forwards and loops, for requests this server would proxy (RFC 3261 §16.3 steps 3 and 4):
// Max-Forwards 0 → 483; our own Via carrying the loop hash of this very request → 482 (a spiral,
// with a changed Request-URI or Route, hashes differently and passes). Requests we answer ourselves
// are not checked: a UAS does not look at Max-Forwards (§8.2), and OPTIONS with 0 is ours (§11).
import type { Random } from '../../shared/clock.ts';
import type { PoolView } from '../pool-view.ts';
import { isLoop, type ProxyCounters } from '../proxy.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

export class MaxForwardsStep implements Step {
  readonly name = 'max-forwards';

  constructor(
    private readonly view: () => PoolView,
    private readonly counters: Pick<ProxyCounters, 'loopsDetected'>,
    private readonly random: Random,
  ) {}

  run(context: RequestContext): StepOutcome {
    if (context.kind !== 'proxy') return 'continue';
    const request = context.request;
    const method = request.method;
    const hops = context.hops;
    // A CANCEL follows its INVITE whatever its Max-Forwards; an ACK is never answered (§17.1.1.3).
    if (hops !== null && hops <= 0 && method !== 'CANCEL') {
      if (method !== 'ACK') reply(context.flow, request, 483, this.random);
      return 'answered';
    }
    if (isLoop(request, this.view())) {
      this.counters.loopsDetected++;
      if (method !== 'ACK') reply(context.flow, request, 482, this.random);
      return 'answered';
    }
    return 'continue';
  }
}
