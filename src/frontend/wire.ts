// Small SIP building blocks the Front End shares: branches and tags, its own Via, header edits, and
// requests it originates itself (heartbeat OPTIONS, reg-event NOTIFY) matched to their answers.
import type { Flow } from '../sip/flow.ts';
import type { Header, SipRequest, SipResponse } from '../sip/message.ts';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import type { PoolView } from './pool-view.ts';

/** RFC 3261 §8.1.1.7: branches start with the magic cookie. Ours also say they are ours. */
export const BRANCH_PREFIX = 'z9hG4bK-dl-';

/** `length` base-36 characters from `random` (a To tag, a branch): 32 random bits at a time. */
export function randomToken(random: Random, length = 16): string {
  let out = '';
  while (out.length < length) out += base36(Math.floor(random() * 2 ** 32));
  return out.slice(0, length);
}

const BASE36_DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * `n.toString(36)` for an integer of 1 to 2^32 − 1, by hand: V8's radix conversion handles any
 * double and cost a To tag (one per answer) more than half a microsecond; this is a third of that.
 */
function base36(n: number): string {
  // Zero, and anything an injected test random could make of it (negative, NaN, huge): V8's own.
  if (!(n > 0 && n < 2 ** 32)) return n.toString(36);
  let text = '';
  while (n > 0) {
    const quotient = Math.floor(n / 36);
    text = BASE36_DIGITS[n - quotient * 36]! + text;
    n = quotient;
  }
  return text;
}

/** Our Via for a message sent on `flow` (sent-by: our address and the port of that transport). */
export function ownVia(view: PoolView, flow: Flow, branch: string): Header {
  const port = flow.transport === 'tls' ? view.tlsPort : view.tcpPort;
  return { name: 'Via', value: `SIP/2.0/${flow.transport.toUpperCase()} ${view.self.address}:${port};branch=${branch}` };
}

/** The URI others reach this server at over `transport` (Contact of our requests, Record-Route). */
export function ownUri(view: PoolView, transport: 'tcp' | 'tls'): string {
  const port = transport === 'tls' ? view.tlsPort : view.tcpPort;
  return `sip:${view.self.address}:${port};transport=${transport}`;
}

/** The headers with every header named `name` removed. */
export function without(headers: readonly Header[], name: string): Header[] {
  const lower = name.toLowerCase();
  return headers.filter((header) => header.name.toLowerCase() !== lower);
}

/** The headers with the first `name` header removed (the top Via of a response, the top Route). */
export function withoutFirst(headers: readonly Header[], name: string): Header[] {
  const lower = name.toLowerCase();
  const index = headers.findIndex((header) => header.name.toLowerCase() === lower);
  return index < 0 ? [...headers] : [...headers.slice(0, index), ...headers.slice(index + 1)];
}

/** Sets a single-valued header (replacing any), keeping its position when present. */
export function withHeader(headers: readonly Header[], name: string, value: string): Header[] {
  const lower = name.toLowerCase();
  const index = headers.findIndex((header) => header.name.toLowerCase() === lower);
  if (index < 0) return [...headers, { name, value }];
  return [...headers.slice(0, index), { name, value }, ...without(headers.slice(index + 1), name)];
}

interface Waiter {
  resolve: (response: SipResponse | null) => void;
  timer: Timer;
}

/**
 * Requests this server originates (it is their UAC): each gets a fresh branch; `send` resolves with
 * the final response, or null when the flow closed or nothing came in `timeoutMs`.
 */
export class LocalRequests {
  private readonly waiters = new Map<string, Waiter>();

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  newBranch(): string {
    return `${BRANCH_PREFIX}${randomToken(this.random)}`;
  }

  /** `build` receives the branch to put in its Via. */
  send(flow: Flow, build: (branch: string) => SipRequest, timeoutMs: number): Promise<SipResponse | null> {
    const branch = this.newBranch();
    const request = build(branch);
    return new Promise((resolve) => {
      const settle = (response: SipResponse | null): void => {
        const waiter = this.waiters.get(branch);
        if (!waiter) return;
        this.waiters.delete(branch);
        waiter.timer.cancel();
        flow.off('close', onClose);
        resolve(response);
      };
      const onClose = (): void => settle(null);
      this.waiters.set(branch, { resolve: settle, timer: this.clock.setTimer(timeoutMs, () => settle(null)) });
      flow.once('close', onClose);
      if (!flow.send(request)) settle(null);
    });
  }

  /** Offers a response; true when it answered one of our requests (final answers settle it). */
  offer(branch: string, response: SipResponse): boolean {
    const waiter = this.waiters.get(branch);
    if (!waiter) return false;
    if (response.status >= 200) waiter.resolve(response);
    return true;
  }

  get pending(): number {
    return this.waiters.size;
  }

  close(): void {
    for (const waiter of [...this.waiters.values()]) waiter.resolve(null);
  }
}
