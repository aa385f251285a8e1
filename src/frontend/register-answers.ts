// How this server answered REGISTERs, by status class (status().registerAnswersByClass, the metrics'
// REGISTER answers): counted wherever a REGISTER is answered — the registrar, Require's and
// Proxy-Require's 420, draining's 302/503.
import type { SipRequest } from '../sip/message.ts';

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | '6xx';
export const STATUS_CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx'];

export class RegisterAnswers {
  readonly byClass: Record<StatusClass, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, '6xx': 0 };

  /** Counts `status` when `request` is a REGISTER; other methods are not counted here. */
  count(request: SipRequest, status: number): void {
    if (request.method !== 'REGISTER') return;
    const statusClass = STATUS_CLASSES[Math.floor(status / 100) - 1];
    if (statusClass) this.byClass[statusClass]++;
  }
}
