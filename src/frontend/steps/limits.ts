// Limits: a request this server would proxy while it already holds limits.frontendTransactionsMax
// client transactions is answered 503 with Retry-After, before any work is spent on it.
import { limits } from '../../shared/limits.ts';
import type { Header } from '../../sip/message.ts';
import type { Proxy } from '../proxy.ts';
import type { RequestContext, Step, StepOutcome } from './step.ts';

const RETRY_AFTER: readonly Header[] = [{ name: 'Retry-After', value: '5' }];

export class LimitsStep implements Step {
  readonly name = 'limits';

  constructor(
    private readonly proxy: Pick<Proxy, 'pendingTransactions' | 'answer'>,
    private readonly transactionsMax: number = limits.frontendTransactionsMax,
  ) {}

  run(context: RequestContext): StepOutcome {
    // Requests we answer ourselves open no client transaction; ACK opens none and CANCEL matches an
    // existing one (§16.10), so neither is refused.
    if (context.kind !== 'proxy') return 'continue';
    const method = context.request.method;
    if (method === 'ACK' || method === 'CANCEL') return 'continue';
    if (this.proxy.pendingTransactions < this.transactionsMax) return 'continue';
    this.proxy.answer(context.flow, context.request, 503, 'Too many transactions', RETRY_AFTER);
    return 'answered';
  }
}
