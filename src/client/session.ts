// ClientFlow: one user agent's flow (RFC 5626) with its client transactions (RFC 3261 §17.1 over a
// reliable transport: no retransmission, Timer B/F only) and the requests the server sends down it.
import { EventEmitter } from 'node:events';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import type { Flow, FlowClose } from '../sip/flow.ts';
import { cseq, topVia } from '../sip/headers.ts';
import { createResponse, type Header, type ResponseOptions, type SipRequest, type SipResponse } from '../sip/message.ts';
import { parseUri } from '../sip/uri.ts';

/** RFC 3261 §8.1.1.7: branches of RFC 3261 transactions start with this magic cookie. */
export const BRANCH_COOKIE = 'z9hG4bK';

export interface OutgoingRequest {
  method: string;
  uri: string;
  /** Everything but Via (added here); Max-Forwards is added when absent. */
  headers: Header[];
  body?: Buffer;
  /** Reuse a branch: CANCEL and the ACK of a non-2xx belong to the INVITE's transaction (§9.1, §17.1.1.3). */
  branch?: string;
  /** Called for each 1xx (INVITE). */
  onProvisional?: (response: SipResponse) => void;
}

export interface ClientFlowEvents {
  /** A request from the server (NOTIFY, INVITE, BYE, CANCEL, ACK, OPTIONS). */
  request: [SipRequest];
  /** A response that matched no transaction (a late 2xx to an INVITE, for instance). */
  strayResponse: [SipResponse];
  close: [FlowClose];
}

interface Pending {
  method: string;
  onProvisional: ((response: SipResponse) => void) | undefined;
  resolve: (response: SipResponse) => void;
  reject: (error: Error) => void;
  timer: Timer;
}

/** Random token for tags, branches and Call-IDs (RFC 3261 §19.3: at least 32 bits of randomness). */
export function randomToken(random: Random): string {
  const part = () => Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0');
  return part() + part();
}

export class ClientFlow extends EventEmitter<ClientFlowEvents> {
  readonly flow: Flow;
  private readonly pending = new Map<string, Pending>();
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly transactionTimeoutMs: number;

  constructor(flow: Flow, options: { clock: Clock; random: Random; transactionTimeoutMs: number }) {
    super();
    this.flow = flow;
    this.clock = options.clock;
    this.random = options.random;
    this.transactionTimeoutMs = options.transactionTimeoutMs;
    flow.on('message', (message) => {
      if (message.kind === 'request') this.emit('request', message);
      else this.onResponse(message);
    });
    flow.once('close', (info) => {
      const error = new DnslbError('CLIENT_FLOW', `flow to ${this.remote} closed (${info.reason}${info.detail ? `: ${info.detail}` : ''})`);
      for (const [key, entry] of this.pending) {
        this.pending.delete(key);
        entry.timer.cancel();
        entry.reject(error);
      }
      this.emit('close', info);
    });
  }

  get closed(): boolean {
    return this.flow.closed;
  }

  /** "address:port" of the server end. */
  get remote(): string {
    return `${this.flow.remoteAddress}:${this.flow.remotePort}`;
  }

  /** The Via sent-by and Contact host:port of this end (§18.1.1: the address the flow leaves from). */
  get local(): string {
    const address = this.flow.localAddress.includes(':') ? `[${this.flow.localAddress}]` : this.flow.localAddress;
    return `${address}:${this.flow.localPort}`;
  }

  newBranch(): string {
    return BRANCH_COOKIE + randomToken(this.random);
  }

  /** Sends a request and resolves with its final response; rejects with CLIENT_TIMEOUT or CLIENT_FLOW. */
  request(request: OutgoingRequest): { branch: string; response: Promise<SipResponse> } {
    const branch = request.branch ?? this.newBranch();
    const via: Header = { name: 'Via', value: `SIP/2.0/${this.flow.transport.toUpperCase()} ${this.local};branch=${branch};rport` };
    const headers = [via, ...request.headers];
    if (!headers.some((h) => h.name.toLowerCase() === 'max-forwards')) headers.splice(1, 0, { name: 'Max-Forwards', value: '70' });
    const message: SipRequest = { kind: 'request', method: request.method, uri: parseUri(request.uri), headers, body: request.body ?? Buffer.alloc(0) };
    // ACK has no response (§17.1.1.3): fire and forget.
    if (request.method === 'ACK') {
      this.flow.send(message);
      return { branch, response: Promise.resolve(null as unknown as SipResponse) };
    }
    const key = `${branch} ${request.method}`;
    const response = new Promise<SipResponse>((resolve, reject) => {
      if (this.flow.closed) {
        reject(new DnslbError('CLIENT_FLOW', `flow to ${this.remote} is closed`));
        return;
      }
      const timer = this.clock.setTimer(this.transactionTimeoutMs, () => {
        this.pending.delete(key);
        reject(new DnslbError('CLIENT_TIMEOUT', `${request.method} to ${this.remote}: no final response in ${this.transactionTimeoutMs} ms`));
      });
      this.pending.set(key, { method: request.method, onProvisional: request.onProvisional, resolve, reject, timer });
      this.flow.send(message);
    });
    // A caller that stops listening (the flow closed under it) must not leave an unhandled rejection behind.
    response.catch(() => {});
    return { branch, response };
  }

  /** Answers a request the server sent (§8.2.6). */
  respond(request: SipRequest, status: number, options: ResponseOptions = {}): boolean {
    return this.flow.send(createResponse(request, status, options));
  }

  close(): void {
    this.flow.close('local');
  }

  private onResponse(response: SipResponse): void {
    // §17.1.3: a response matches the client transaction by top Via branch and CSeq method.
    let key: string;
    try {
      key = `${topVia(response)?.branch ?? ''} ${cseq(response).method}`;
    } catch {
      return;
    }
    const entry = this.pending.get(key);
    if (!entry) {
      this.emit('strayResponse', response);
      return;
    }
    if (response.status < 200) {
      entry.onProvisional?.(response);
      return;
    }
    this.pending.delete(key);
    entry.timer.cancel();
    entry.resolve(response);
  }
}
