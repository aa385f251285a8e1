// Call: a minimal INVITE dialog as a user agent client or server (RFC 3261 §12, §13, §15): INVITE,
// provisional and final answers, ACK, BYE, CANCEL, and the route set from Record-Route.
import { EventEmitter } from 'node:events';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import type { DnslbError } from '../shared/errors.ts';
import { callId, contacts, from, recordRoutes, to } from '../sip/headers.ts';
import { headerValue, headerValues, type Header, type SipRequest, type SipResponse } from '../sip/message.ts';
import { formatUri } from '../sip/uri.ts';
import { limits } from '../shared/limits.ts';
import { randomToken, type ClientFlow } from './session.ts';

export type CallState = 'calling' | 'ringing' | 'up' | 'ended' | 'failed';
export type CallDirection = 'outgoing' | 'incoming';

/** How a call ended, for counters and reports. */
export type CallEnd = 'bye-sent' | 'bye-received' | 'cancelled' | 'rejected' | 'flow-closed' | 'timeout';

export interface CallEvents {
  ringing: [];
  up: [];
  ended: [{ how: CallEnd; status?: number; detail?: string }];
  /** The final answer to our CANCEL (null: none came). */
  cancelAnswered: [number | null];
  /** The final answer to our BYE (null: none came — the flow closed or the transaction timed out). */
  byeAnswered: [number | null];
}

/** What a call needs from its user agent. */
export interface CallContext {
  readonly aor: string;
  readonly clock: Clock;
  readonly random: Random;
  /** Our Contact URI on the current flow. */
  contactUri(): string;
  /**
   * An INVITE of ours was answered 301/302 (a draining registrar sends us on, DESIGN §1): move the
   * registration to the Contacts given and resolve with the flow to place the call on again, or null
   * when the move failed. Absent: a 3xx fails the call.
   */
  redirected?(response: SipResponse, flow: ClientFlow): Promise<ClientFlow | null>;
  /**
   * Our INVITE was answered 401/407 (a proxy that has not authenticated this flow yet, e.g. the next
   * Director after one died): the credentials header answering it, or why there is none. Absent: the
   * challenge fails the call.
   */
  credentials?(response: SipResponse, method: string, uri: string): Header | string;
}

/** A tiny SDP offer/answer (RFC 4566): enough for a peer that insists on a body; no media flows. */
export function tinySdp(address: string, random: Random): Buffer {
  const session = Math.floor(random() * 1e9);
  const ip = address.includes(':') ? `IP6 ${address}` : `IP4 ${address}`;
  return Buffer.from(['v=0', `o=dnslb ${session} ${session} IN ${ip}`, 's=-', `c=IN ${ip}`, 't=0 0', 'm=audio 9 RTP/AVP 0', 'a=inactive', ''].join('\r\n'));
}

function uriOfNameAddr(value: string): string {
  const match = /<([^>]*)>/.exec(value);
  return match ? match[1]! : value.split(';')[0]!.trim();
}

export class Call extends EventEmitter<CallEvents> {
  readonly direction: CallDirection;
  readonly callId: string;
  readonly localTag: string;
  readonly remoteUri: string;
  state: CallState;
  private remoteTag: string | null = null;
  /** §12.1.2: the Contact of the 2xx (UAC) or of the INVITE (UAS). */
  private remoteTarget: string;
  /** §12.1.1/§12.1.2: Route headers for in-dialog requests, from Record-Route. */
  private routeSet: string[] = [];
  private localSeq = 1;
  private readonly context: CallContext;
  /** The flow the dialog runs on; an INVITE that was redirected moves it once, before any dialog exists. */
  private flow: ClientFlow;
  /** Proxy-Authorization / Authorization of our INVITE once a challenge was answered (at most once per call). */
  private credentialHeaders: Header[] = [];
  /** 301/302 answers to our INVITE followed so far (at most limits.clientRedirectsMax, as for REGISTER). */
  private redirects = 0;
  private invite: { branch: string; headers: Header[] } | null = null;
  private incomingInvite: SipRequest | null = null;
  private cancelWanted = false;
  /** The UAS sent its 200 (a CANCEL after it is too late, §9.2). */
  private answered = false;
  private answerTimer: Timer | null = null;
  private endedInfo: { how: CallEnd; status?: number; detail?: string } | null = null;
  /** The final status of the BYE we sent: undefined before it is answered, null when it never was. */
  byeStatus: number | null | undefined = undefined;

  private constructor(context: CallContext, flow: ClientFlow, direction: CallDirection, id: string, localTag: string, remoteUri: string) {
    super();
    this.context = context;
    this.flow = flow;
    this.direction = direction;
    this.callId = id;
    this.localTag = localTag;
    this.remoteUri = remoteUri;
    this.remoteTarget = remoteUri;
    this.state = 'calling';
    this.watch(flow);
  }

  /** The flow closing ends the call, as long as the call is still on it. */
  private watch(flow: ClientFlow): void {
    const onClose = () => {
      if (flow === this.flow) this.end('flow-closed');
    };
    flow.once('close', onClose);
    // One flow carries many calls over its life: each takes its listener away when it ends.
    this.once('ended', () => flow.off('close', onClose));
  }

  /** The flow the call is on now. */
  get currentFlow(): ClientFlow {
    return this.flow;
  }

  /** The dialog key the user agent routes in-dialog requests by. */
  get key(): string {
    return `${this.callId} ${this.localTag}`;
  }

  /** The remote party's tag (From tag of an incoming INVITE), for matching its CANCEL. */
  get remoteTagValue(): string | null {
    return this.remoteTag;
  }

  get ended(): { how: CallEnd; status?: number; detail?: string } | null {
    return this.endedInfo;
  }

  /** Places a call to `target` (an AOR) on the user agent's flow; the server routes it (RFC 5626 §5). */
  static place(context: CallContext, flow: ClientFlow, target: string): Call {
    const call = new Call(context, flow, 'outgoing', randomToken(context.random), randomToken(context.random), target);
    call.sendInvite();
    return call;
  }

  /** Takes an incoming INVITE (no To tag): 180 now, 200 after `answerDelayMs`. */
  static answer(context: CallContext, flow: ClientFlow, request: SipRequest, answerDelayMs: number): Call {
    const call = new Call(context, flow, 'incoming', callId(request), randomToken(context.random), formatUri(from(request).uri));
    call.incomingInvite = request;
    call.remoteTag = from(request).tag;
    const contact = contacts(request);
    if (contact !== '*' && contact[0]) call.remoteTarget = formatUri(contact[0].uri);
    // §12.1.1: the UAS route set is the Record-Route list in order.
    call.routeSet = headerValues(request, 'Record-Route');
    flow.respond(request, 180, { toTag: call.localTag, headers: [{ name: 'Contact', value: `<${context.contactUri()}>` }, ...call.recordRouteCopy()] });
    call.state = 'ringing';
    call.emit('ringing');
    call.answerTimer = context.clock.setTimer(answerDelayMs, () => call.accept());
    return call;
  }

  /** Ends the call: BYE when up, CANCEL while it is being set up (sent once a provisional came, §9.1). */
  hangUp(): void {
    if (this.state === 'up') this.sendBye();
    else if (this.state === 'calling' || this.state === 'ringing') {
      if (this.direction === 'incoming') {
        this.answerTimer?.cancel();
        if (this.incomingInvite) this.flow.respond(this.incomingInvite, 486, { toTag: this.localTag });
        this.end('rejected', 486);
      } else if (this.state === 'ringing') this.sendCancel();
      else this.cancelWanted = true;
    }
  }

  /** A request of this dialog from the server (ACK, BYE, CANCEL, re-INVITE). */
  onRequest(request: SipRequest): void {
    switch (request.method) {
      case 'ACK':
        if (this.state === 'ringing' && this.direction === 'incoming' && this.answered) {
          this.state = 'up';
          this.emit('up');
        }
        return;
      case 'BYE':
        this.flow.respond(request, 200);
        this.end('bye-received');
        return;
      case 'CANCEL':
        // §9.2: 200 to the CANCEL, then 487 to the INVITE if it has no final answer yet.
        this.flow.respond(request, 200, { toTag: this.localTag });
        if (!this.answered && this.incomingInvite) {
          this.answerTimer?.cancel();
          this.flow.respond(this.incomingInvite, 487, { toTag: this.localTag });
          this.end('cancelled', 487);
        }
        return;
      case 'INVITE':
        // A re-INVITE (session refresh, hold): accepted as it is, with our Contact and an SDP answer.
        if (this.state === 'up') {
          this.flow.respond(request, 200, { toTag: this.localTag, headers: [{ name: 'Contact', value: `<${this.context.contactUri()}>` }, { name: 'Content-Type', value: 'application/sdp' }], body: tinySdp(this.flow.flow.localAddress, this.context.random) });
          return;
        }
        this.flow.respond(request, 491, { toTag: this.localTag });
        return;
      default:
        // Session refresh and the rest are not part of this minimal dialog.
        this.flow.respond(request, 501, { toTag: this.localTag });
    }
  }

  private accept(): void {
    if (this.state !== 'ringing' || !this.incomingInvite) return;
    this.answered = true;
    this.flow.respond(this.incomingInvite, 200, {
      toTag: this.localTag,
      headers: [{ name: 'Contact', value: `<${this.context.contactUri()}>` }, ...this.recordRouteCopy(), { name: 'Content-Type', value: 'application/sdp' }],
      body: tinySdp(this.flow.flow.localAddress, this.context.random),
    });
  }

  /** §12.1.1: the UAS copies Record-Route into its responses that create a dialog. */
  private recordRouteCopy(): Header[] {
    return this.incomingInvite ? headerValues(this.incomingInvite, 'Record-Route').map((value) => ({ name: 'Record-Route', value })) : [];
  }

  private dialogHeaders(method: string, seq: number): Header[] {
    const remote = `<${this.remoteUri}>${this.remoteTag ? `;tag=${this.remoteTag}` : ''}`;
    const local = `<${this.direction === 'outgoing' ? this.context.aor : this.localUri()}>;tag=${this.localTag}`;
    return [
      ...this.routeSet.map((value) => ({ name: 'Route', value })),
      { name: 'From', value: local },
      { name: 'To', value: remote },
      { name: 'Call-ID', value: this.callId },
      { name: 'CSeq', value: `${seq} ${method}` },
    ];
  }

  private localUri(): string {
    return this.incomingInvite ? uriOfNameAddr(headerValue(this.incomingInvite, 'To') ?? this.context.aor) : this.context.aor;
  }

  private sendInvite(): void {
    const headers: Header[] = [
      { name: 'From', value: `<${this.context.aor}>;tag=${this.localTag}` },
      { name: 'To', value: `<${this.remoteUri}>` },
      { name: 'Call-ID', value: this.callId },
      { name: 'CSeq', value: `${this.localSeq} INVITE` },
      { name: 'Contact', value: `<${this.context.contactUri()}>` },
      { name: 'Supported', value: 'outbound' },
      { name: 'Content-Type', value: 'application/sdp' },
      ...this.credentialHeaders,
    ];
    const sent = this.flow.request({
      method: 'INVITE',
      uri: this.remoteUri,
      headers,
      body: tinySdp(this.flow.flow.localAddress, this.context.random),
      onProvisional: (response) => {
        if (response.status === 100) return;
        if (this.state === 'calling') {
          this.state = 'ringing';
          this.emit('ringing');
        }
        if (this.cancelWanted) this.sendCancel();
      },
    });
    this.invite = { branch: sent.branch, headers };
    sent.response.then(
      (response) => this.onInviteFinal(response),
      (error: DnslbError) => this.end(error.code === 'CLIENT_TIMEOUT' ? 'timeout' : 'flow-closed', undefined, error.message),
    );
  }

  private onInviteFinal(response: SipResponse): void {
    this.remoteTag = to(response).tag;
    if (response.status >= 300) {
      // §17.1.1.3: the ACK of a non-2xx belongs to the INVITE transaction (same branch, To with tag).
      this.sendAck(this.invite!.branch, [{ name: 'To', value: headerValue(response, 'To') ?? `<${this.remoteUri}>` }]);
      // §22.2/§22.3: a 401/407 is answered once with credentials (same Call-ID and From tag, next CSeq);
      // a second challenge means they were refused.
      if ((response.status === 401 || response.status === 407) && this.context.credentials && !this.cancelWanted) {
        if (this.credentialHeaders.length > 0) {
          this.end('rejected', response.status, `${response.reason}: challenged again after answering with the credentials of ${this.context.aor} (refused: wrong password or unknown user)`);
          return;
        }
        const answer = this.context.credentials(response, 'INVITE', this.remoteUri);
        if (typeof answer === 'string') {
          this.end('rejected', response.status, `${response.reason}: ${answer}`);
          return;
        }
        this.credentialHeaders = [answer];
        this.remoteTag = null;
        this.localSeq++;
        this.sendInvite();
        return;
      }
      if ((response.status === 301 || response.status === 302) && this.context.redirected && !this.cancelWanted && this.redirects < limits.clientRedirectsMax) {
        this.redirects++;
        this.remoteTag = null;
        // Being set up again: a hang-up meanwhile cancels the retry (cancelWanted), not the old transaction.
        this.state = 'calling';
        void this.followRedirect(response);
        return;
      }
      this.end(response.status === 487 ? 'cancelled' : 'rejected', response.status, response.reason);
      return;
    }
    const contact = contacts(response);
    if (contact !== '*' && contact[0]) this.remoteTarget = formatUri(contact[0].uri);
    // §12.1.2: the UAC route set is the Record-Route list reversed.
    this.routeSet = recordRoutes(response).length > 0 ? headerValues(response, 'Record-Route').reverse() : [];
    this.sendAck(undefined, []);
    if (this.state === 'ended' || this.state === 'failed') return;
    this.state = 'up';
    this.emit('up');
    // The caller asked to hang up before the answer: the 2xx must still be ACKed, then BYE (§15).
    if (this.cancelWanted) this.sendBye();
  }

  /**
   * §8.1.3.4: a 3xx to our INVITE names where to try again. The server that sent it is our registrar
   * (draining), so the user agent moves the registration first, then the INVITE goes out again on
   * the new flow: same Call-ID and From tag, next CSeq, new branch.
   */
  private async followRedirect(response: SipResponse): Promise<void> {
    const moved = await this.context.redirected!(response, this.flow).catch(() => null);
    if (this.endedInfo) return;
    if (this.cancelWanted) {
      this.end('cancelled', response.status, 'cancelled while following a redirect');
      return;
    }
    if (!moved || moved.closed) {
      this.end('rejected', response.status, `${response.reason}; moving to the Contact failed`);
      return;
    }
    this.flow = moved;
    this.watch(moved);
    this.localSeq++;
    this.sendInvite();
  }

  private sendAck(branch: string | undefined, toOverride: Header[]): void {
    // §13.2.2.4: the ACK of a 2xx is a new transaction with the INVITE's CSeq number and the route set.
    const headers = branch
      ? [...this.invite!.headers.filter((h) => ['From', 'Call-ID'].includes(h.name)), ...toOverride, { name: 'CSeq', value: `${this.localSeq} ACK` }]
      : this.dialogHeaders('ACK', this.localSeq);
    this.flow.request({ method: 'ACK', uri: branch ? this.remoteUri : this.remoteTarget, headers, ...(branch ? { branch } : {}) });
  }

  private sendCancel(): void {
    if (!this.invite || this.state === 'ended' || this.state === 'failed') return;
    // §9.1: same Request-URI, Call-ID, From, To, CSeq number and branch as the INVITE.
    const headers = this.invite.headers
      .filter((h) => ['From', 'To', 'Call-ID'].includes(h.name))
      .concat([{ name: 'CSeq', value: `${this.localSeq} CANCEL` }]);
    this.flow.request({ method: 'CANCEL', uri: this.remoteUri, headers, branch: this.invite.branch }).response.then(
      (response) => this.emit('cancelAnswered', response.status),
      () => this.emit('cancelAnswered', null),
    );
  }

  /**
   * A re-INVITE in the established call (RFC 3261 §14: same dialog, next CSeq, along the route set),
   * ACKed when accepted; resolves with its final status (null: none came). The call stays up whatever
   * the answer (§14.1: a failed re-INVITE leaves the session as it was).
   */
  reinvite(): Promise<number | null> {
    if (this.state !== 'up') return Promise.reject(new Error(`re-INVITE: the call is ${this.state}`));
    this.localSeq++;
    const headers = [...this.dialogHeaders('INVITE', this.localSeq), { name: 'Contact', value: `<${this.context.contactUri()}>` }, { name: 'Content-Type', value: 'application/sdp' }];
    const sent = this.flow.request({ method: 'INVITE', uri: this.remoteTarget, headers, body: tinySdp(this.flow.flow.localAddress, this.context.random) });
    return sent.response.then(
      (response) => {
        // §13.2.2.4: a 2xx is ACKed end to end (the route set); a failure's ACK is the transaction's.
        if (response.status < 300) this.sendAck(undefined, []);
        else this.sendAck(sent.branch, [{ name: 'To', value: headerValue(response, 'To') ?? `<${this.remoteUri}>` }]);
        return response.status;
      },
      () => null,
    );
  }

  private sendBye(): void {
    this.localSeq++;
    const sent = this.flow.request({ method: 'BYE', uri: this.remoteTarget, headers: this.dialogHeaders('BYE', this.localSeq) });
    // The call is over whatever the answer (§15.1.1: a BYE that fails still ends the dialog).
    this.end('bye-sent');
    sent.response.then(
      (response) => {
        this.byeStatus = response.status;
        this.emit('byeAnswered', response.status);
      },
      () => {
        this.byeStatus = null;
        this.emit('byeAnswered', null);
      },
    );
  }

  private end(how: CallEnd, status?: number, detail?: string): void {
    if (this.endedInfo) return;
    this.answerTimer?.cancel();
    const failed = this.state !== 'up' && (how === 'rejected' || how === 'timeout' || how === 'flow-closed');
    this.state = failed ? 'failed' : 'ended';
    this.endedInfo = { how, ...(status === undefined ? {} : { status }), ...(detail === undefined ? {} : { detail }) };
    this.emit('ended', this.endedInfo);
  }
}

/** The dialog key of a request sent to us: Call-ID and our tag (the To tag). */
export function dialogKeyOf(request: SipRequest): string | null {
  try {
    const tag = to(request).tag;
    return tag ? `${callId(request)} ${tag}` : null;
  } catch {
    return null;
  }
}
