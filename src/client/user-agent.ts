// UserAgent: one simulated Lync user. Finds the pool, connects with failover, REGISTERs following
// redirects, keeps its one flow alive (RFC 5626), re-registers elsewhere when the flow dies (with
// RFC 5626 §4.5 back-off), follows its own `reg` event (RFC 3680), and places and answers calls.
import { EventEmitter } from 'node:events';
import { answerChallenge, parseChallenge, type ParsedChallenge } from '../auth/answer.ts';
import { isIP } from 'node:net';
import { parseRegInfo, REGINFO_CONTENT_TYPE, type RegInfo } from '../registrar/reg-event.ts';
import { assert } from '../shared/assert.ts';
import { systemClock, systemRandom, type Clock, type Random, type Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { Flow } from '../sip/flow.ts';
import { callId, contacts, from, UNANSWERED_HEADER, UNANSWERED_MAX, type Contact } from '../sip/headers.ts';
import { headerValue, type Header, type SipRequest, type SipResponse } from '../sip/message.ts';
import { formatUri, isSipUri, parseUri, uriParam, type SipUri } from '../sip/uri.ts';
import { Call, dialogKeyOf, type CallContext } from './call.ts';
import { connectWithFailover, type Attempt, type ClientMode, type ConnectOptions, type Connected, type Endpoint } from './connect.ts';
import type { Discovery, SipTransportName } from './discover.ts';
import {
  BACKOFF_BASE_MS_DEFAULT,
  BACKOFF_MAX_MS_DEFAULT,
  backoffDelayMs,
  KEEP_ALIVE_INTERVAL_MS_DEFAULT,
  keepAliveDelayMs,
  orderRedirectContacts,
  PONG_TIMEOUT_MS_DEFAULT,
  refreshDelayMs,
  TRANSACTION_TIMEOUT_MS_DEFAULT,
} from './registration.ts';
import { ClientFlow, randomToken } from './session.ts';

/** How the user agent finds servers: PoolDiscoverer fits. */
/** The methods a simulated user answers (RFC 3261 §20.5). */
const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, MESSAGE';

export interface Locator {
  discover(uri: string): Promise<Discovery>;
  /** Forget the cached discovery (after a failed sign-in the pool may have changed). */
  forget(uri: string): void;
  /** Addresses of a host named in a redirect's Contact. */
  resolveHost(host: string): Promise<string[]>;
}

export type UserAgentState = 'idle' | 'registering' | 'registered' | 'failed' | 'stopped';
export type RegistrarMode = 'primary' | 'backup' | 'unknown';

export interface UserAgentOptions {
  /** The user's SIP URI, `sip:alice@contoso.com`. */
  aor: string;
  locator: Locator;
  /** Transport for redirect Contacts that name none; discovery decides for the pool itself. Default tcp. */
  transport?: SipTransportName;
  /** `legacy`: only the first address, as pre-2010 clients did. Default modern. */
  mode?: ClientMode;
  /** Connect timeout, staggering, TLS CAs (see connect.ts). */
  connect?: Omit<ConnectOptions, 'mode' | 'clock'>;
  /** Replaces connectWithFailover (tests). */
  connector?: (endpoints: readonly Endpoint[], options: ConnectOptions) => Promise<Connected>;
  clock?: Clock;
  random?: Random;
  /** Registration lifetime asked for. Default 3600 s. */
  expiresS?: number;
  keepAliveIntervalMs?: number;
  pongTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  transactionTimeoutMs?: number;
  /** Subscribe to the own `reg` event (RFC 3680) and re-register on `deactivated`. Default true. */
  subscribeRegEvent?: boolean;
  /** Answer incoming INVITEs (180 at once, 200 after answerDelayMs). Default true. */
  answerCalls?: boolean;
  answerDelayMs?: number;
  /** Keep trying after a failed sign-in (with back-off). False for a one-shot `client register`. Default true. */
  retry?: boolean;
  /** The user's password, to answer a registrar's digest challenge (401); none: a 401 fails the sign-in. */
  password?: string;
}

export interface RegisteredInfo {
  /** "address:port" of the registrar that answered 200. */
  server: string;
  mode: RegistrarMode;
  /** Redirects followed in this sign-in. */
  redirects: number;
  /** Connection attempts of this sign-in, in order. */
  attempts: Attempt[];
  grantedS: number;
  /** A refresh on the same flow (true) or a new sign-in (false). */
  refresh: boolean;
  /** Registered on another server than before, after the flow to it died. */
  failover: boolean;
}

export interface SignInFailure {
  error: DnslbError;
  consecutiveFailures: number;
  /** When the next try is due, or null when the agent does not retry. */
  retryInMs: number | null;
}

export interface UserAgentEvents {
  state: [UserAgentState];
  registered: [RegisteredInfo];
  registrationFailed: [SignInFailure];
  flowDead: [{ server: string; reason: string }];
  /** The registrar ended our binding with `event=deactivated` (RFC 3680 §5.2). */
  deactivated: [{ server: string }];
  incomingCall: [Call];
  /** An instant message (RFC 3428 MESSAGE) arrived and was answered 200: who sent it and its text. */
  message: [{ from: string; text: string }];
  /** Human-readable steps (discovery, attempts, redirects, answers) for `dnslb client register`. */
  trace: [string];
}

/** What a user agent has done, for the simulator's report. */
export interface UserAgentStats {
  registrations: number;
  refreshes: number;
  failures: number;
  redirects: number;
  failovers: number;
  flowDeaths: number;
  /** Instant messages received (MESSAGE answered 200). */
  messagesReceived: number;
  deactivations: number;
  lastError: string | null;
}

interface Registered {
  flow: ClientFlow;
  response: SipResponse;
  redirects: number;
  attempts: Attempt[];
}

function toSipError(error: unknown): DnslbError {
  return error instanceof DnslbError ? error : new DnslbError('CLIENT_REGISTER', (error as Error)?.message ?? String(error), { cause: error });
}

/** user@host:port of a URI, for matching our Contact in a reginfo document. */
function contactKey(uri: SipUri): string {
  return `${uri.user ?? ''}@${uri.host.toLowerCase()}:${uri.port ?? ''}`;
}

/** How long a flow we moved away from stays open after its last call ended. */
const RETIRED_FLOW_LINGER_MS = 2000; // 2 s

export class UserAgent extends EventEmitter<UserAgentEvents> {
  readonly aor: string;
  readonly mode: ClientMode;
  readonly stats: UserAgentStats = { registrations: 0, refreshes: 0, failures: 0, redirects: 0, failovers: 0, flowDeaths: 0, deactivations: 0, messagesReceived: 0, lastError: null };
  state: UserAgentState = 'idle';
  /** "address:port" of the registrar while registered (the last one after). */
  server: string | null = null;
  registrarMode: RegistrarMode | null = null;
  consecutiveFailures = 0;

  readonly clock: Clock;
  readonly random: Random;
  private readonly options: UserAgentOptions;
  private readonly user: string;
  private readonly domain: string;
  private readonly instanceId: string;
  private readonly regCallIdBase: string;
  private readonly regCallIds = new WeakMap<ClientFlow, string>();
  private readonly fromTag: string;
  private regSeq = 0;
  /** The registrar's last digest challenge and the count of requests made with its nonce (RFC 7616 nc). */
  private digest: { challenge: ParsedChallenge; nc: number; from: string } | null = null;
  private subscription: { callId: string; seq: number } | null = null;
  private active: ClientFlow | null = null;
  private runSerial = 0;
  private refreshTimer: Timer | null = null;
  private keepAliveTimer: Timer | null = null;
  private pongTimer: Timer | null = null;
  private retryTimer: Timer | null = null;
  /** The server whose flow died, until we are registered again (to count a failover, and to try it last). */
  private lostServer: string | null = null;
  /**
   * Servers ("address:port") that did not answer since we were last registered: a connection refused
   * or timed out, a REGISTER unanswered, a flow that died. Named on each REGISTER (UNANSWERED_HEADER)
   * so that a registrar that doubts them too takes us in backup mode instead of sending us back there.
   */
  private readonly unanswered = new Set<string>();
  private readonly calls = new Map<string, Call>();
  /** Calls on a flow we moved away from, until they no longer need it (retire()). */
  private readonly closing = new Set<Call>();
  /** Flows we moved away from that still carry calls (closed by stop()). */
  private readonly retired = new Set<ClientFlow>();

  constructor(options: UserAgentOptions) {
    super();
    const uri = parseUri(options.aor);
    assert(isSipUri(uri) && uri.user !== null, `the AOR ${options.aor} is a sip: URI with a user`);
    this.options = options;
    this.aor = options.aor;
    this.user = uri.user;
    this.domain = uri.host;
    this.mode = options.mode ?? 'modern';
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    const hex = randomToken(this.random) + randomToken(this.random);
    // RFC 5626 §4.1: a stable instance ID, a URN (RFC 4122 UUID, version 4 bits set).
    this.instanceId = `urn:uuid:${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    this.regCallIdBase = randomToken(this.random);
    this.fromTag = randomToken(this.random);
    const backoffMaxMs = options.backoffMaxMs ?? BACKOFF_MAX_MS_DEFAULT;
    assert(backoffMaxMs > 0 && backoffMaxMs <= limits.clientBackoffMsMax, `backoffMaxMs must be 1..${limits.clientBackoffMsMax}`);
    assert((options.backoffBaseMs ?? BACKOFF_BASE_MS_DEFAULT) > 0, 'backoffBaseMs must be positive');
  }

  /** Starts signing in (resolves when the first sign-in has succeeded or failed). */
  async start(): Promise<void> {
    assert(this.state === 'idle', 'start() once');
    await this.signIn({});
  }

  /** Unregisters (best effort, Expires: 0, waiting at most `unregisterTimeoutMs`) and closes the flow; cancels every timer. */
  async stop(options: { unregisterTimeoutMs?: number } = {}): Promise<void> {
    this.runSerial++;
    this.cancelTimers();
    this.retryTimer?.cancel();
    const flow = this.active;
    this.active = null;
    this.setState('stopped');
    for (const call of this.calls.values()) call.hangUp();
    if (flow && !flow.closed) {
      const answered = flow.request({ method: 'REGISTER', uri: `sip:${this.domain}`, headers: this.registerHeaders(flow, 0) }).response.catch(() => null);
      let timer: Timer | undefined;
      const waited = new Promise<null>((resolve) => (timer = this.clock.setTimer(options.unregisterTimeoutMs ?? 2000, () => resolve(null))));
      await Promise.race([answered, waited]);
      timer?.cancel();
      flow.close();
    }
    for (const retired of this.retired) retired.close();
  }

  /** Places a call to another user; CLIENT_CALL when not registered. */
  call(target: string): Call {
    if (!this.active || this.state !== 'registered') throw new DnslbError('CLIENT_CALL', `${this.aor} is not registered`);
    const call = Call.place(this.callContext(), this.active, target);
    this.track(call);
    return call;
  }

  /**
   * Sends an instant message (RFC 3428 MESSAGE, out of dialog) on the registered flow; resolves with
   * the final status and reason (200 when the other side took it), rejects when no answer comes.
   */
  async message(target: string, text: string): Promise<{ status: number; reason: string }> {
    if (!this.active || this.state !== 'registered') throw new DnslbError('CLIENT_CALL', `${this.aor} is not registered`);
    const fromTag = randomToken(this.random);
    const id = randomToken(this.random);
    const response = await this.requestAnswering(
      this.active,
      'MESSAGE',
      target,
      (seq, credentials) => [
        { name: 'From', value: `<${this.aor}>;tag=${fromTag}` },
        { name: 'To', value: `<${target}>` },
        { name: 'Call-ID', value: id },
        { name: 'CSeq', value: `${seq} MESSAGE` },
        { name: 'Content-Type', value: 'text/plain' },
        ...credentials,
      ],
      Buffer.from(text),
    );
    return { status: response.status, reason: response.reason };
  }

  /** Calls in progress. */
  get callsInProgress(): number {
    return this.calls.size;
  }

  private callContext(): CallContext {
    return {
      aor: this.aor,
      clock: this.clock,
      random: this.random,
      contactUri: () => this.contactUri(this.active, true),
      redirected: (response, flow) => this.moveForCall(response, flow),
      credentials: (response, method, uri) => this.credentialsFor(response, method, uri),
    };
  }

  /**
   * The header answering a 401 (WWW-Authenticate → Authorization) or 407 (Proxy-Authenticate →
   * Proxy-Authorization) to an INVITE, MESSAGE or SUBSCRIBE: a proxy that has not authenticated this
   * flow (the next Director, after the one that did died) challenges it (RFC 3261 §22.3). Or why not.
   */
  private credentialsFor(response: SipResponse, method: string, uri: string): Header | string {
    if (this.options.password === undefined) return `${this.aor} has no password to answer the challenge with`;
    const proxy = response.status === 407;
    const wanted = proxy ? 'proxy-authenticate' : 'www-authenticate';
    const problems: string[] = [];
    for (const header of response.headers) {
      if (header.name.toLowerCase() !== wanted) continue;
      try {
        const challenge = parseChallenge(header.value);
        const value = answerChallenge({ challenge, username: this.user, password: this.options.password, method, uri, cnonce: randomToken(this.random), nc: 1 });
        return { name: proxy ? 'Proxy-Authorization' : 'Authorization', value };
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    return `no challenge this client can answer${problems.length > 0 ? `: ${problems.join('; ')}` : ''}`;
  }

  /**
   * Sends an out-of-dialog request built by `headers(seq, credentials)` on `flow`, answering one 401/407
   * with credentials (CSeq + 1, same Call-ID and From tag); a second challenge is final, its reason
   * saying the credentials were refused.
   */
  private async requestAnswering(flow: ClientFlow, method: string, uri: string, headers: (seq: number, credentials: Header[]) => Header[], body?: Buffer): Promise<SipResponse> {
    const first = await flow.request({ method, uri, headers: headers(1, []), ...(body ? { body } : {}) }).response;
    if (first.status !== 401 && first.status !== 407) return first;
    const answer = this.credentialsFor(first, method, uri);
    if (typeof answer === 'string') return { ...first, reason: `${first.reason}: ${answer}` };
    const second = await flow.request({ method, uri, headers: headers(2, [answer]), ...(body ? { body } : {}) }).response;
    if (second.status !== 401 && second.status !== 407) return second;
    return { ...second, reason: `${second.reason}: challenged again after answering with the credentials of ${this.aor} (refused: wrong password or unknown user)` };
  }

  /**
   * Our INVITE on `flow` was answered 301/302: the registrar is draining and names the user's next
   * servers. Sign in at those Contacts (the REGISTER follows redirects as usual), keep the old flow
   * open while calls are still up on it, and give the caller the new flow. When the registration
   * already moved meanwhile (a `deactivated` NOTIFY), the call goes on the flow we are on now.
   */
  private async moveForCall(response: SipResponse, flow: ClientFlow): Promise<ClientFlow | null> {
    if (this.state === 'registering') await this.settledSignIn();
    if (this.active && this.active !== flow && this.state === 'registered') return this.active;
    if (this.active !== flow || this.state !== 'registered') return null;
    const list = contacts(response);
    if (list === '*' || list.length === 0) return null;
    this.stats.redirects++;
    await this.signIn({ redirect: list });
    return this.state === 'registered' && this.active !== flow ? this.active : null;
  }

  /** Resolves when the sign-in under way has ended, one way or the other. */
  private settledSignIn(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.off('registered', done);
        this.off('registrationFailed', done);
        resolve();
      };
      this.on('registered', done);
      this.on('registrationFailed', done);
    });
  }

  /** A flow we moved away from: closed now, or once the last call still on it has ended (and its BYE was answered). */
  private retire(flow: ClientFlow): void {
    const busy = (call: Call) => call.currentFlow === flow && ((call.state !== 'ended' && call.state !== 'failed') || call.byeStatus === undefined && call.ended?.how === 'bye-sent');
    const onIt = () => [...this.calls.values(), ...this.closing].filter(busy);
    // Closed a moment after the last call ended: the answer to a BYE we received must reach the server
    // first (a socket closed at once may lose it, and the server would answer the caller 503).
    const closeWhenIdle = () => {
      if (flow === this.active || flow.closed || onIt().length > 0) return;
      this.clock.setTimer(RETIRED_FLOW_LINGER_MS, () => {
        if (flow !== this.active && onIt().length === 0) flow.close();
      });
    };
    if (onIt().length === 0) {
      flow.close();
      return;
    }
    this.retired.add(flow);
    flow.once('close', () => this.retired.delete(flow));
    for (const call of onIt()) {
      // A call leaves `calls` when it ends; until its BYE is answered it still needs the flow.
      this.closing.add(call);
      call.once('ended', ({ how }) => {
        if (how !== 'bye-sent') this.closing.delete(call);
        closeWhenIdle();
      });
      call.once('byeAnswered', () => {
        this.closing.delete(call);
        closeWhenIdle();
      });
    }
  }

  private track(call: Call): void {
    this.calls.set(call.key, call);
    call.once('ended', () => this.calls.delete(call.key));
  }

  private setState(state: UserAgentState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  private cancelTimers(): void {
    this.refreshTimer?.cancel();
    this.keepAliveTimer?.cancel();
    this.pongTimer?.cancel();
    this.refreshTimer = this.keepAliveTimer = this.pongTimer = null;
  }

  // ---- sign-in -------------------------------------------------------------------------------

  /**
   * One sign-in: on `flow` when given (a refresh, or after `deactivated`: the server's 3xx moves us),
   * else through discovery, trying the addresses in DNS order (the server that just failed last).
   */
  private async signIn(trigger: { flow?: ClientFlow; refresh?: boolean; redirect?: readonly Contact[] }): Promise<void> {
    const serial = ++this.runSerial;
    const previous = this.active;
    this.active = null;
    this.cancelTimers();
    if (!trigger.refresh) this.setState('registering');
    const errors: DnslbError[] = [];
    let result: Registered | null = null;
    try {
      if (trigger.redirect) {
        // A 3xx to a request of ours (not a REGISTER) named where to go: sign in there first.
        try {
          const targets = await this.endpointsOf(orderRedirectContacts(trigger.redirect));
          if (targets.length === 0) throw new DnslbError('CLIENT_REGISTER', 'a redirect without a usable Contact');
          const connected = await this.connectTo(targets);
          result = await this.registerFrom(this.wrap(connected), connected.attempts, serial);
        } catch (error) {
          errors.push(toSipError(error));
        }
        if (result && previous && previous !== result.flow) this.retire(previous);
        else if (!result && previous) previous.close();
      } else if (trigger.flow && !trigger.flow.closed) {
        try {
          result = await this.registerFrom(trigger.flow, [], serial);
        } catch (error) {
          errors.push(toSipError(error));
        }
      } else if (previous && previous !== trigger.flow) previous.close();
      if (!result) result = await this.signInThroughDiscovery(serial, errors);
    } catch (error) {
      errors.push(toSipError(error));
    }
    if (serial !== this.runSerial) {
      // Superseded (stop(), or a newer sign-in): drop what this one built.
      if (result && result.flow !== this.active) result.flow.close();
      return;
    }
    if (result) this.onRegistered(result, trigger.refresh === true && result.flow === trigger.flow);
    else this.onSignInFailed(errors);
  }

  private async signInThroughDiscovery(serial: number, errors: DnslbError[]): Promise<Registered | null> {
    const discovery = await this.options.locator.discover(this.aor);
    for (const step of discovery.steps) this.emit('trace', `${step.kind ?? 'dns'} ${step.query} → ${step.found}`);
    this.emit('trace', `pool found through ${discovery.via}`);
    let endpoints = discovery.endpoints.map(({ address, port, transport, host }) => ({ address, port, transport, host }));
    // RFC 5626 §4.5 forms the new flow elsewhere: the server whose flow just died goes last. Legacy
    // (pre-2010) clients know nothing of that: they take the first address DNS gives, dead or not.
    if (this.lostServer && this.mode !== 'legacy') {
      const lost = this.lostServer;
      endpoints = [...endpoints.filter((e) => `${e.address}:${e.port}` !== lost), ...endpoints.filter((e) => `${e.address}:${e.port}` === lost)];
    }
    if (this.mode === 'legacy') endpoints = endpoints.slice(0, 1);
    let index = 0;
    while (index < endpoints.length && serial === this.runSerial) {
      let connected: Connected;
      try {
        connected = await this.connectTo(endpoints.slice(index));
      } catch (error) {
        errors.push(toSipError(error));
        return null;
      }
      index = endpoints.indexOf(connected.endpoint as (typeof endpoints)[number], index) + 1;
      try {
        return await this.registerFrom(this.wrap(connected), connected.attempts, serial);
      } catch (error) {
        errors.push(toSipError(error));
        this.emit('trace', `sign-in via ${connected.endpoint.address}:${connected.endpoint.port} failed: ${(error as Error).message}`);
      }
    }
    return null;
  }

  /** Connects (with failover over `endpoints`), tracing every attempt. */
  private async connectTo(endpoints: readonly Endpoint[]): Promise<Connected> {
    const connector = this.options.connector ?? connectWithFailover;
    try {
      const connected = await connector(endpoints, { ...this.options.connect, mode: this.mode, clock: this.clock });
      this.noteUnanswered(connected.attempts);
      for (const attempt of connected.attempts) this.emit('trace', `connect ${attempt.endpoint.transport}:${attempt.endpoint.address}:${attempt.endpoint.port} ${attempt.outcome}${attempt.detail ? ` (${attempt.detail})` : ''}`);
      return connected;
    } catch (error) {
      this.noteUnanswered((error as { attempts?: Attempt[] }).attempts ?? []);
      for (const attempt of (error as { attempts?: Attempt[] }).attempts ?? []) {
        this.emit('trace', `connect ${attempt.endpoint.transport}:${attempt.endpoint.address}:${attempt.endpoint.port} ${attempt.outcome}${attempt.detail ? ` (${attempt.detail})` : ''}`);
      }
      throw error;
    }
  }

  /** Attempts that found no server answering (refused, timed out, failed): remembered for the next REGISTER. */
  private noteUnanswered(attempts: readonly Attempt[]): void {
    for (const attempt of attempts) {
      if (attempt.outcome === 'refused' || attempt.outcome === 'timeout' || attempt.outcome === 'error') this.unanswered.add(`${attempt.endpoint.address}:${attempt.endpoint.port}`);
    }
  }

  private wrap(connected: Connected): ClientFlow {
    const flow = new Flow(connected.socket, {
      id: `ua-${randomToken(this.random)}`,
      transport: connected.endpoint.transport,
      direction: 'outbound',
      clock: this.clock,
      random: this.random,
      // Our keep-alives and the registrar decide when the flow is dead; the idle timer is a backstop.
      idleTimeoutMs: limits.sipIdleTimeoutMsMax,
      sendBufferBytesMax: limits.sipFlowSendBufferBytesMax,
    });
    const client = new ClientFlow(flow, { clock: this.clock, random: this.random, transactionTimeoutMs: this.options.transactionTimeoutMs ?? TRANSACTION_TIMEOUT_MS_DEFAULT });
    client.on('request', (request) => this.onRequest(client, request));
    client.once('close', (info) => this.onFlowClosed(client, info.detail ?? info.reason));
    flow.on('pong', () => {
      if (client !== this.active) return;
      this.pongTimer?.cancel();
      this.pongTimer = null;
      this.scheduleKeepAlive(client);
    });
    return client;
  }

  /**
   * REGISTERs on `flow`, following 301/302 Contacts in q order, at most limits.clientRedirectsMax
   * times (DESIGN §3: no redirect loops). Closes the flows it leaves behind once registered (retire():
   * after the calls still on them), all of them when it fails; throws when it fails.
   */
  private async registerFrom(flow: ClientFlow, attempts: Attempt[], serial: number): Promise<Registered> {
    let current = flow;
    let redirects = 0;
    let expiresS = this.options.expiresS ?? 3600;
    let challenges = 0;
    const allAttempts = [...attempts];
    const leftBehind: ClientFlow[] = [];
    try {
      for (let intervalRetried = false; ; ) {
        const headers = this.registerHeaders(current, expiresS);
        // Credentials answering this server's own challenge; a nonce from another server may be refused once (another pool).
        const sentCredentials = this.digest !== null && this.digest.from === current.remote;
        let response: SipResponse;
        try {
          response = await current.request({ method: 'REGISTER', uri: `sip:${this.domain}`, headers }).response;
        } catch (error) {
          this.unanswered.add(current.remote); // no final answer in time, or the flow closed under it
          throw error;
        }
        this.unanswered.delete(current.remote);
        this.emit('trace', `REGISTER → ${current.remote}: ${response.status} ${response.reason}${headerValue(response, 'X-Registrar-Mode') ? ` (X-Registrar-Mode: ${headerValue(response, 'X-Registrar-Mode')})` : ''}`);
        if (serial !== this.runSerial) throw new DnslbError('CLIENT_REGISTER', 'superseded');
        if (response.status >= 200 && response.status < 300) {
          for (const flow of leftBehind.splice(0)) this.retire(flow);
          return { flow: current, response, redirects, attempts: allAttempts };
        }
        if (response.status === 301 || response.status === 302) {
          redirects++;
          this.stats.redirects++;
          if (redirects > limits.clientRedirectsMax) throw new DnslbError('CLIENT_REGISTER', `${current.remote} redirected the registration a ${redirects}th time; at most ${limits.clientRedirectsMax} are followed`);
          const list = contacts(response);
          const targets = list === '*' ? [] : await this.endpointsOf(orderRedirectContacts(list));
          if (targets.length === 0) throw new DnslbError('CLIENT_REGISTER', `${current.remote} answered ${response.status} without a usable Contact`);
          if (`${targets[0]!.address}:${targets[0]!.port}` === current.remote) continue; // redirected to itself: ask again, it counts
          const connected = await this.connectTo(targets);
          allAttempts.push(...connected.attempts);
          // Make before break: the flow we leave stays open until the next server has registered us, so a
          // draining server still holding our binding keeps delivering calls to us meanwhile.
          leftBehind.push(current);
          current = this.wrap(connected);
          continue;
        }
        // RFC 3261 §22: a registrar that authenticates answers 401 with a challenge; answer it once. The
        // nonce is kept: the next server of the pool accepts it (it is signed with the pool's secret).
        if (response.status === 401) {
          if (++challenges > 3) throw new DnslbError('CLIENT_REGISTER', `${current.remote} challenged the registration a ${challenges}th time`);
          const challenge = this.challengeOf(response, current.remote, sentCredentials);
          this.digest = { challenge, nc: 0, from: current.remote };
          continue;
        }
        // RFC 3261 §10.2.8: 423 carries Min-Expires; ask again once with it.
        const minExpires = Number(headerValue(response, 'Min-Expires'));
        if (response.status === 423 && !intervalRetried && Number.isInteger(minExpires) && minExpires > 0) {
          expiresS = minExpires;
          intervalRetried = true;
          continue;
        }
        throw new DnslbError('CLIENT_REGISTER', `${current.remote} answered ${response.status} ${response.reason}`);
      }
    } catch (error) {
      current.close();
      for (const flow of leftBehind) flow.close();
      throw error;
    }
  }

  /** Endpoints of redirect Contacts: the URI's host (resolved when it is a name), port and transport. */
  private async endpointsOf(list: readonly Contact[]): Promise<Endpoint[]> {
    const endpoints: Endpoint[] = [];
    for (const contact of list) {
      if (!isSipUri(contact.uri)) continue;
      const uri = contact.uri;
      const named = uriParam(uri.params, 'transport')?.value?.toLowerCase();
      const transport: SipTransportName = uri.scheme === 'sips' || named === 'tls' ? 'tls' : named === 'tcp' ? 'tcp' : (this.options.transport ?? 'tcp');
      const port = uri.port ?? (transport === 'tls' ? 5061 : 5060);
      const host = uri.host.replace(/^\[|\]$/g, '');
      // RFC 3263 §4.1 / RFC 3261 §19.1.1: an maddr names the address to send to; the host stays the
      // server's name (TLS checks it). The Front Ends put their address there, so following a redirect
      // needs no DNS question — one that a DNS server busy with a sign-in storm may not answer in time.
      const maddr = uriParam(uri.params, 'maddr')?.value?.replace(/^\[|\]$/g, '');
      let addresses: string[];
      try {
        addresses = maddr !== undefined && isIP(maddr) ? [maddr] : isIP(host) ? [host] : await this.options.locator.resolveHost(host);
      } catch (error) {
        this.emit('trace', `redirect Contact ${host}: ${(error as Error).message}`);
        continue;
      }
      for (const address of addresses) endpoints.push({ address, port, transport, host: isIP(host) ? address : host });
    }
    return endpoints;
  }

  private contactUri(flow: ClientFlow | null, dialog: boolean): string {
    const local = flow?.local ?? '0.0.0.0:0';
    const transport = flow?.flow.transport ?? 'tcp';
    // RFC 5626 §5.4: `ob` in the Contact of dialog-forming requests sent over an outbound flow.
    return `sip:${this.user}@${local};transport=${transport}${dialog ? ';ob' : ''}`;
  }

  /**
   * The challenge of a 401 to answer. Fails the sign-in without a password, and when the REGISTER
   * that got it already carried credentials for a nonce still fresh (the password is wrong: trying
   * again would only feed the server's brute-force limiter).
   */
  private challengeOf(response: SipResponse, remote: string, sentCredentials: boolean): ParsedChallenge {
    if (this.options.password === undefined) throw new DnslbError('CLIENT_REGISTER', `${remote} answered 401 ${response.reason}: the registrar authenticates, and no password was given (--passwords FILE.csv or --password-seed-file FILE)`);
    let challenge: ParsedChallenge | undefined;
    const problems: string[] = [];
    for (const header of response.headers) {
      if (header.name.toLowerCase() !== 'www-authenticate') continue;
      try {
        challenge = parseChallenge(header.value);
        break; // the server lists SHA-256 first (RFC 8760 §2.4)
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    if (challenge === undefined) throw new DnslbError('CLIENT_REGISTER', `${remote} answered 401 without a challenge this client can answer${problems.length > 0 ? `: ${problems.join('; ')}` : ''}`);
    if (sentCredentials && !challenge.stale) throw new DnslbError('CLIENT_REGISTER', `${remote} refused the credentials of ${this.aor} (401 again): wrong password or unknown user`);
    return challenge;
  }

  /** The Authorization of the next REGISTER, once a challenge has been seen (RFC 7616 §3.4, qop=auth, nc counting up). */
  private authorization(): Header[] {
    const digest = this.digest;
    if (digest === null || this.options.password === undefined) return [];
    digest.nc++;
    const value = answerChallenge({ challenge: digest.challenge, username: this.user, password: this.options.password, method: 'REGISTER', uri: `sip:${this.domain}`, cnonce: randomToken(this.random), nc: digest.nc });
    return [{ name: 'Authorization', value }];
  }

  private registerHeaders(flow: ClientFlow, expiresS: number): Header[] {
    return [
      ...this.authorization(),
      { name: 'From', value: `<${this.aor}>;tag=${this.fromTag}` },
      { name: 'To', value: `<${this.aor}>` },
      // RFC 3261 §10.2: one Call-ID for all REGISTERs to one registrar; each server (flow) is one.
      { name: 'Call-ID', value: this.regCallIds.get(flow) ?? this.regCallIds.set(flow, `${randomToken(this.random)}-${this.regCallIdBase}`).get(flow)! },
      { name: 'CSeq', value: `${++this.regSeq} REGISTER` },
      // RFC 5626 §4.2: instance ID and reg-id on the Contact of a REGISTER.
      { name: 'Contact', value: `<${this.contactUri(flow, false)}>;+sip.instance="<${this.instanceId}>";reg-id=1` },
      { name: 'Expires', value: String(expiresS) },
      { name: 'Supported', value: 'path' },
      { name: 'Supported', value: 'outbound' },
      { name: 'User-Agent', value: 'dnslb-client' },
      // Legacy (pre-2010) clients knew nothing of this: they wait for the servers to find a home dead.
      ...(this.unanswered.size > 0 && this.mode !== 'legacy' ? [{ name: UNANSWERED_HEADER, value: [...this.unanswered].slice(-UNANSWERED_MAX).join(', ') }] : []),
    ];
  }

  /** The lifetime granted: our Contact's expires in the 200, else its Expires header, else what we asked. */
  private grantedS(response: SipResponse, flow: ClientFlow): number {
    const mine = this.contactUri(flow, false);
    const list = contacts(response);
    if (list !== '*') {
      const ours = list.find((c) => isSipUri(c.uri) && contactKey(c.uri) === contactKey(parseUri(mine) as SipUri)) ?? (list.length === 1 ? list[0] : undefined);
      if (ours?.expires) return ours.expires;
    }
    const header = Number(headerValue(response, 'Expires'));
    return Number.isInteger(header) && header > 0 ? header : (this.options.expiresS ?? 3600);
  }

  private onRegistered(result: Registered, refresh: boolean): void {
    const flow = result.flow;
    const server = flow.remote;
    const modeValue = headerValue(result.response, 'X-Registrar-Mode')?.trim().toLowerCase();
    const mode: RegistrarMode = modeValue === 'primary' || modeValue === 'backup' ? modeValue : 'unknown';
    const failover = this.lostServer !== null && this.lostServer !== server;
    if (failover) this.stats.failovers++;
    this.lostServer = null;
    this.unanswered.clear();
    const newFlow = !refresh;
    if (refresh) this.stats.refreshes++;
    else this.stats.registrations++;
    this.consecutiveFailures = 0;
    this.active = flow;
    this.server = server;
    this.registrarMode = mode;
    const grantedS = this.grantedS(result.response, flow);
    this.refreshTimer = this.clock.setTimer(refreshDelayMs(grantedS), () => void this.signIn({ flow, refresh: true }));
    this.scheduleKeepAlive(flow);
    this.setState('registered');
    this.emit('registered', { server, mode, redirects: result.redirects, attempts: result.attempts, grantedS, refresh, failover });
    if (newFlow && (this.options.subscribeRegEvent ?? true)) this.subscribe(flow, grantedS);
  }

  private onSignInFailed(errors: DnslbError[]): void {
    // Several addresses failed in turn: one error naming each, with the code (and attempts) of the last.
    const last = errors[errors.length - 1] ?? new DnslbError('CLIENT_REGISTER', 'no server to try');
    const error = errors.length <= 1 ? last : new DnslbError(last.code, errors.map((e) => e.message).join('; '), { cause: last });
    if (error !== last && (last as { attempts?: Attempt[] }).attempts) Object.assign(error, { attempts: (last as { attempts?: Attempt[] }).attempts });
    this.consecutiveFailures++;
    this.stats.failures++;
    this.stats.lastError = `${error.code}: ${error.message}`;
    this.options.locator.forget(this.aor);
    const retry = this.options.retry ?? true;
    const retryInMs = retry ? backoffDelayMs(this.consecutiveFailures, { backoffBaseMs: this.options.backoffBaseMs ?? BACKOFF_BASE_MS_DEFAULT, backoffMaxMs: this.options.backoffMaxMs ?? BACKOFF_MAX_MS_DEFAULT }, this.random) : null;
    this.setState('failed');
    if (retryInMs !== null) this.retryTimer = this.clock.setTimer(retryInMs, () => void this.signIn({}));
    this.emit('trace', `sign-in failed (${this.consecutiveFailures} in a row): ${error.message}${retryInMs === null ? '' : `; next try in ${retryInMs} ms`}`);
    this.emit('registrationFailed', { error, consecutiveFailures: this.consecutiveFailures, retryInMs });
  }

  // ---- the flow while registered -------------------------------------------------------------

  /** RFC 5626 §4.4.1: CRLF ping every 80–100 % of the interval; no pong in 10 s means the flow is dead. */
  private scheduleKeepAlive(flow: ClientFlow): void {
    this.keepAliveTimer?.cancel();
    this.keepAliveTimer = this.clock.setTimer(keepAliveDelayMs(this.options.keepAliveIntervalMs ?? KEEP_ALIVE_INTERVAL_MS_DEFAULT, this.random), () => {
      if (flow !== this.active) return;
      flow.flow.ping();
      const timeoutMs = this.options.pongTimeoutMs ?? PONG_TIMEOUT_MS_DEFAULT;
      this.pongTimer = this.clock.setTimer(timeoutMs, () => {
        if (flow === this.active) flow.flow.close('local', `no pong in ${timeoutMs} ms`);
      });
    });
  }

  private onFlowClosed(flow: ClientFlow, reason: string): void {
    if (flow !== this.active) return;
    this.active = null;
    this.cancelTimers();
    this.stats.flowDeaths++;
    const server = flow.remote;
    this.lostServer = server;
    this.unanswered.add(server);
    this.emit('trace', `flow to ${server} died: ${reason}`);
    this.emit('flowDead', { server, reason });
    // RFC 5626 §4.5: form a new flow at once; only a failure of that waits for the back-off.
    void this.signIn({});
  }

  private subscribe(flow: ClientFlow, expiresS: number): void {
    const subscription = { callId: randomToken(this.random), seq: 1 };
    this.subscription = subscription;
    const fromTag = randomToken(this.random);
    const sent = this.requestAnswering(flow, 'SUBSCRIBE', this.aor, (seq, credentials) => {
      subscription.seq = seq;
      return [
        { name: 'From', value: `<${this.aor}>;tag=${fromTag}` },
        { name: 'To', value: `<${this.aor}>` },
        { name: 'Call-ID', value: subscription.callId },
        { name: 'CSeq', value: `${seq} SUBSCRIBE` },
        { name: 'Contact', value: `<${this.contactUri(flow, true)}>` },
        { name: 'Event', value: 'reg' },
        { name: 'Accept', value: REGINFO_CONTENT_TYPE },
        { name: 'Expires', value: String(expiresS) },
        ...credentials,
      ];
    });
    sent.then(
      (response) => this.emit('trace', `SUBSCRIBE reg → ${flow.remote}: ${response.status} ${response.reason}`),
      () => {},
    );
  }

  private onRequest(flow: ClientFlow, request: SipRequest): void {
    try {
      this.dispatch(flow, request);
    } catch {
      // A request we cannot read (missing Call-ID, bad From) is answered once and forgotten.
      if (request.method !== 'ACK') flow.respond(request, 400, { toTag: randomToken(this.random) });
    }
  }

  private dispatch(flow: ClientFlow, request: SipRequest): void {
    if (request.method === 'NOTIFY' && this.subscription && callId(request) === this.subscription.callId) {
      flow.respond(request, 200);
      this.onRegNotify(flow, request);
      return;
    }
    if (request.method === 'CANCEL') {
      // §9.2: a CANCEL has the INVITE's Call-ID and From tag, and no To tag of ours.
      const fromTag = from(request).tag;
      const call = [...this.calls.values()].find((c) => c.direction === 'incoming' && c.callId === callId(request) && c.remoteTagValue === fromTag);
      if (call) call.onRequest(request);
      else flow.respond(request, 481);
      return;
    }
    const key = dialogKeyOf(request);
    if (key) {
      const call = this.calls.get(key);
      if (call) call.onRequest(request);
      else if (request.method !== 'ACK') flow.respond(request, 481);
      return;
    }
    switch (request.method) {
      case 'INVITE':
        if (this.options.answerCalls ?? true) {
          const call = Call.answer(this.callContext(), flow, request, this.options.answerDelayMs ?? 0);
          this.track(call);
          this.emit('incomingCall', call);
        } else flow.respond(request, 486, { toTag: randomToken(this.random) });
        return;
      case 'OPTIONS':
        flow.respond(request, 200, { toTag: randomToken(this.random), headers: [{ name: 'Allow', value: ALLOW }] });
        return;
      case 'MESSAGE':
        // RFC 3428 §7: a UA that accepts the message answers 200 (no dialog, no Contact).
        flow.respond(request, 200, { toTag: randomToken(this.random) });
        this.stats.messagesReceived++;
        this.emit('message', { from: formatUri(from(request).uri), text: request.body.toString('utf8') });
        return;
      case 'ACK':
        return;
      default:
        flow.respond(request, 405, { toTag: randomToken(this.random), headers: [{ name: 'Allow', value: ALLOW }] });
    }
  }

  /** RFC 3680 §5.2: our contact `deactivated` means re-register at once; the registrar's 3xx moves us. */
  private onRegNotify(flow: ClientFlow, request: SipRequest): void {
    let info: RegInfo;
    try {
      info = parseRegInfo(request.body);
    } catch (error) {
      this.emit('trace', `NOTIFY reg from ${flow.remote}: unreadable (${(error as Error).message})`);
      return;
    }
    const mine = contactKey(parseUri(this.contactUri(flow, false)) as SipUri);
    const deactivated = info.registrations.some((registration) =>
      registration.contacts.some((contact) => {
        if (contact.event !== 'deactivated') return false;
        try {
          const uri = parseUri(contact.uri);
          return isSipUri(uri) && contactKey(uri) === mine;
        } catch {
          return false;
        }
      }),
    );
    this.emit('trace', `NOTIFY reg from ${flow.remote}: ${deactivated ? 'our contact deactivated' : 'no change for us'}`);
    if (!deactivated || flow !== this.active) return;
    this.stats.deactivations++;
    this.emit('deactivated', { server: flow.remote });
    this.lostServer = flow.remote;
    void this.signIn({ flow });
  }
}
