// The registrar of a Front End server on the wire: REGISTER → the home decision (200 primary/backup,
// 301 to the home, 423, 503) and the location service; SUBSCRIBE to the RFC 3680 `reg` event of one's
// own registration, with NOTIFYs for changes and the `deactivated` hand-over that moves a user.
import type { Logger } from 'pino';
import type { Flow } from '../sip/flow.ts';
import { createResponse, headerValue, type Header, type SipRequest, type SipResponse } from '../sip/message.ts';
import { callId, contacts, cseq, expires, from, paramValue, parseNameAddr, to, unansweredHosts } from '../sip/headers.ts';
import { formatUri, parseUri } from '../sip/uri.ts';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import { canonicalUser, formatQ, homeInSequence, redirectContactsInSequence, type RedirectContact } from '../registrar/sequence.ts';
import { decideRegister, type BindingChange, type BindingView, type ContactFacts, type LocationService, type RegisterFacts } from '../registrar/location.ts';
import { ArrivalLog } from '../registrar/arrivals.ts';
import { deactivatedState, fullState, partialState, REGINFO_CONTENT_TYPE, RegEventSubscription, type RegInfo } from '../registrar/reg-event.ts';
import type { PoolView } from './pool-view.ts';
import { ownUri, ownVia, randomToken, type LocalRequests } from './wire.ts';

export const REDIRECT_REASON = 'Redirect request to Home Server';
/**
 * A binding registered through an Edge has no flow here: its `flowId` is this prefix and the first
 * Path URI (the Edge's internal address with the client's flow token), and the proxy reaches it by
 * sending the request to that Edge with the Path as Route (RFC 3327 §5.4).
 */
export const PATH_FLOW_PREFIX = 'path:';
/** The header carrying the registrar mode of an accepted REGISTER (as Lync's ms-… headers do). */
export const REGISTRAR_MODE_HEADER = 'X-Registrar-Mode';

export interface RegistrarCounters {
  registersAccepted: number;
  registersRedirected: number;
  registersRefused: number;
  subscriptionsActive: number;
  notifiesSent: number;
  usersDeactivated: number;
  /** Users that came to hold a binding here (none before the REGISTER); see `arrivals`. */
  usersArrived: number;
  /**
   * REGISTERs whose home (or a server before this one in the user's sequence) the client said did not
   * answer and this server's heartbeat doubted too: taken here in backup mode, or sent on past it.
   */
  registersPastUnanswered: number;
}

interface RegSubscription {
  user: string;
  aor: string;
  flowId: string;
  callId: string;
  ourTag: string;
  theirTag: string;
  remoteTarget: string;
  cseq: number;
  expiresAtMs: number;
  timer: Timer;
  documents: RegEventSubscription;
}

export interface RegistrarServiceOptions {
  clock: Clock;
  random: Random;
  logger: Logger;
  location: LocationService;
  local: LocalRequests;
  flowById: (id: string) => Flow | undefined;
  view: () => PoolView;
  /** The physical registrar sequence: may `fqdn` take users now (self included)? */
  available: (fqdn: string) => boolean;
  /**
   * Does this server's own heartbeat doubt that peer `fqdn` answers (pool/membership.ts isDoubted)? A
   * server a client names in UNANSWERED_HEADER is skipped for that REGISTER only when this says so too.
   * Absent: the client's word is never taken.
   */
  doubted?: (fqdn: string) => boolean;
  /** Told of every Contact seen on a flow (the proxy reaches registered UAs through it). */
  onContact?: (contact: string, flow: Flow) => void;
}

export class RegistrarService {
  readonly counters: RegistrarCounters = { registersAccepted: 0, registersRedirected: 0, registersRefused: 0, subscriptionsActive: 0, notifiesSent: 0, usersDeactivated: 0, usersArrived: 0, registersPastUnanswered: 0 };
  /** When users arrived here, in buckets: a home's own record of the re-home rate it received. */
  readonly arrivals: ArrivalLog;
  private readonly subscriptions = new Map<string, RegSubscription[]>();
  private subscriptionCount = 0;

  constructor(private readonly options: RegistrarServiceOptions) {
    this.arrivals = new ArrivalLog({ clock: options.clock });
  }

  /**
   * RFC 3261 §10.3 with the home decision of DESIGN §3. `trustPath`: the REGISTER came from a server of
   * the topology (an Edge, or a Director relaying an Edge's), so its Path (RFC 3327) is the way to the
   * user: the binding is reached through the first Path hop, not over the flow it arrived on.
   */
  handleRegister(flow: Flow, request: SipRequest, options: { trustPath?: boolean } = {}): SipResponse {
    const view = this.options.view();
    const toTag = randomToken(this.options.random, 10);
    const refuse = (status: number, reason?: string, headers: Header[] = []): SipResponse => {
      this.counters.registersRefused++;
      return createResponse(request, status, { toTag, reason, headers });
    };
    const aor = to(request).uri;
    const who = view.userOf(aor);
    if (who === null) return refuse(404, 'Not a user of this SIP domain');
    if ('unknown' in who) return refuse(404, 'Unknown user');
    const path = options.trustPath === true ? headerValue(request, 'Path') : undefined;
    let flowId = flow.id;
    if (path !== undefined) {
      let pathUri: string;
      try {
        pathUri = formatUri(parseNameAddr(path, { requireBrackets: true }).uri);
      } catch {
        return refuse(400, 'Malformed Path');
      }
      flowId = `${PATH_FLOW_PREFIX}${pathUri}`;
    }
    const facts = registerFacts(request, flowId);
    if (typeof facts === 'string') return refuse(400, facts);
    const available = this.availableFor(request, view);
    const decision = decideRegister({ self: view.self.fqdn, sequencer: view.sequencer, available, config: this.options.location.config }, facts);
    if (available !== this.options.available && (decision.kind === 'accept' || decision.kind === 'redirect')) {
      if (homeInSequence(decision.home.sequence, this.options.available)?.server !== decision.home.server) this.counters.registersPastUnanswered++;
    }
    switch (decision.kind) {
      case 'redirect':
        this.counters.registersRedirected++;
        return createResponse(request, 301, { toTag, reason: REDIRECT_REASON, headers: this.redirectHeaders(decision.contacts, flow) });
      case 'interval-too-brief':
        return refuse(423, undefined, [{ name: 'Min-Expires', value: String(decision.minExpiresS) }]);
      case 'unavailable':
        return refuse(503, 'No registrar available for this user', [{ name: 'Retry-After', value: '30' }]);
      case 'bad-request':
        return refuse(400, decision.reason);
      case 'accept':
        break;
    }
    const outcome = this.options.location.register(facts, decision.mode);
    switch (outcome.kind) {
      case 'ok': {
        this.counters.registersAccepted++;
        if (outcome.changes.length > 0 && outcome.changes.every((change) => change.event === 'created') && outcome.bindings.length === outcome.changes.length) {
          this.arrivals.note();
          this.counters.usersArrived++;
        }
        // The stored binding's string, not the message's: the proxy's contact map then shares it (one copy per binding).
        for (const change of outcome.changes) if (change.event !== 'unregistered') this.options.onContact?.(change.binding.contact, flow);
        const headers: Header[] = outcome.bindings.map((binding) => ({ name: 'Contact', value: `<${binding.contact}>;expires=${binding.expiresInS}` }));
        // RFC 3327 §5.3: the registrar echoes the Path it stored.
        if (path !== undefined) headers.push({ name: 'Path', value: path });
        headers.push({ name: REGISTRAR_MODE_HEADER, value: decision.mode });
        if (outcome.changes.length > 0) this.notifyChanges(outcome.user, outcome.changes, outcome.bindings.length);
        return createResponse(request, 200, { toTag, headers });
      }
      case 'interval-too-brief':
        return refuse(423, undefined, [{ name: 'Min-Expires', value: String(outcome.minExpiresS) }]);
      case 'bad-request':
        return refuse(400, outcome.reason);
      case 'out-of-order':
        return refuse(500, 'Out of order REGISTER', [{ name: 'Retry-After', value: '1' }]);
      case 'too-many-bindings':
        return refuse(403, `More than ${outcome.max} bindings`);
    }
  }

  /**
   * The physical registrar sequence for one REGISTER. A server the client says it could not reach
   * (UNANSWERED_HEADER: refused, timed out, or its flow died) and that this server's own heartbeat
   * doubts too (a missed probe: `suspect` before `down`) is left out, so the user is taken here in
   * backup mode — or sent on to the next server of its sequence — instead of being sent back to a
   * server neither can reach. Without that, until the silent server is found down (and the consensus
   * agrees), every peer names it as the home and the client is passed between them until its redirect
   * cap ends the sign-in. The client's word alone changes nothing (a client cut off from a server its
   * registrar reaches is sent there as before), and it never reaches liveness or DNS.
   */
  private availableFor(request: SipRequest, view: PoolView): (fqdn: string) => boolean {
    const doubted = this.options.doubted;
    if (doubted === undefined) return this.options.available;
    const silent = new Set<string>();
    for (const host of unansweredHosts(request)) {
      const server = view.serverAt(host);
      if (server && server.fqdn !== view.self.fqdn && doubted(server.fqdn)) silent.add(server.fqdn);
    }
    if (silent.size === 0) return this.options.available;
    return (fqdn) => !silent.has(fqdn) && this.options.available(fqdn);
  }

  /**
   * The Contacts of a 301/302: one per available server of the user's sequence, over the client's
   * transport — never this server itself (DESIGN §3 "no redirect loops": a redirect always sends the
   * client elsewhere; were it to list us, a client that cannot reach the home would come back here).
   */
  contactHeaders(list: readonly RedirectContact[], flow: Flow): Header[] {
    return this.redirectHeaders(list, flow);
  }

  private redirectHeaders(list: readonly RedirectContact[], flow: Flow): Header[] {
    const view = this.options.view();
    const port = flow.transport === 'tls' ? view.tlsPort : view.tcpPort;
    // maddr (RFC 3261 §19.1.1) carries the address, so a client without our DNS still reaches the FQDN's server.
    return list.filter((contact) => contact.server !== view.self.fqdn).map((contact) => ({
      name: 'Contact',
      value: `<sip:${contact.server}:${port};transport=${flow.transport};maddr=${view.member(contact.server)?.address ?? contact.server}>;q=${formatQ(contact.q)}`,
    }));
  }

  /** Is this a SUBSCRIBE to the reg event (ours to answer) rather than one to proxy? */
  static isRegSubscribe(request: SipRequest): boolean {
    if (request.method !== 'SUBSCRIBE') return false;
    const event = headerValue(request, 'Event');
    return event !== undefined && event.split(';')[0]!.trim().toLowerCase() === 'reg';
  }

  /** RFC 3680 §4: a user subscribes to its own registration at its home server. */
  handleSubscribe(flow: Flow, request: SipRequest): SipResponse {
    const view = this.options.view();
    const toHeader = to(request);
    const fromHeader = from(request);
    const toTag = toHeader.tag ?? randomToken(this.options.random, 10);
    const who = view.userOf(toHeader.uri);
    if (who === null || 'unknown' in who) return createResponse(request, 404, { toTag, reason: 'Unknown user' });
    const subscriber = view.userOf(fromHeader.uri);
    if (subscriber === null || !('user' in subscriber) || subscriber.user !== who.user) {
      return createResponse(request, 403, { toTag, reason: 'Only the user may subscribe to its registration' });
    }
    const requestedS = expires(request) ?? 3600;
    const grantedS = Math.min(requestedS, limits.frontendRegSubscriptionExpiresMaxS);
    const id = callId(request);
    const existing = toHeader.tag === null ? undefined : this.subscriptions.get(who.user)?.find((sub) => sub.callId === id && sub.ourTag === toHeader.tag);
    if (toHeader.tag !== null && !existing) return createResponse(request, 481, { toTag });
    // A server that holds the user's binding takes its subscription whatever it thinks of the home now:
    // a user taken here in backup mode because its home did not answer (X-Dnslb-Unanswered) subscribes
    // before this server has found the home down, and without the subscription it would never hear the
    // `deactivated` that hands it back once the home is up again.
    if (!existing && this.options.location.bindingsOf(who.user).length === 0) {
      const home = homeInSequence(view.sequencer.sequenceOfCanonical(who.user), this.options.available);
      if (home === null) return createResponse(request, 503, { toTag, headers: [{ name: 'Retry-After', value: '30' }] });
      if (home.server !== view.self.fqdn) {
        return createResponse(request, 301, { toTag, reason: REDIRECT_REASON, headers: this.redirectHeaders(redirectContactsInSequence(home.sequence, this.options.available), flow) });
      }
    }
    if (!existing && this.subscriptionCount >= limits.frontendRegSubscriptionsMax) return createResponse(request, 503, { toTag, headers: [{ name: 'Retry-After', value: '60' }] });
    const contactValue = headerValue(request, 'Contact');
    if (contactValue === undefined) return createResponse(request, 400, { toTag, reason: 'Missing Contact' });
    const remoteTarget = formatUri(parseNameAddr(contactValue).uri);
    const ok = createResponse(request, 200, {
      toTag,
      headers: [
        { name: 'Expires', value: String(grantedS) },
        { name: 'Contact', value: `<${ownUri(view, flow.transport)}>` },
      ],
    });
    let subscription = existing;
    if (!subscription) {
      subscription = {
        user: who.user,
        aor: formatUri(toHeader.uri),
        flowId: flow.id,
        callId: id,
        ourTag: toTag,
        theirTag: fromHeader.tag ?? '',
        remoteTarget,
        cseq: 0,
        expiresAtMs: 0,
        timer: { cancel() {} },
        documents: new RegEventSubscription(),
      };
      this.subscriptions.set(who.user, [...(this.subscriptions.get(who.user) ?? []), subscription]);
      this.subscriptionCount++;
      this.counters.subscriptionsActive = this.subscriptionCount;
    }
    subscription.remoteTarget = remoteTarget;
    subscription.flowId = flow.id;
    subscription.timer.cancel();
    const sub = subscription;
    // The NOTIFY goes after the 200 (RFC 6665 §4.2.1): the caller sends the answer first.
    queueMicrotask(() => {
      if (grantedS === 0) {
        this.notify(sub, fullState(sub.user, this.options.location.bindingsOf(sub.user), this.options.clock.nowMs()), 'terminated;reason=timeout');
        this.remove(sub);
        return;
      }
      sub.expiresAtMs = this.options.clock.nowMs() + grantedS * 1000;
      sub.timer = this.options.clock.setTimer(grantedS * 1000, () => {
        this.notify(sub, fullState(sub.user, this.options.location.bindingsOf(sub.user), this.options.clock.nowMs()), 'terminated;reason=timeout');
        this.remove(sub);
      });
      this.notify(sub, fullState(sub.user, this.options.location.bindingsOf(sub.user), this.options.clock.nowMs()), `active;expires=${grantedS}`);
    });
    return ok;
  }

  /**
   * Moves a user away (drain, re-home): ends its bindings here, NOTIFYs `deactivated` (RFC 3680 §5.2:
   * the client re-registers at once, and is redirected to its new home) and ends its subscriptions.
   */
  deactivate(userUri: string): BindingView[] {
    const user = canonicalUser(userUri);
    const bindings = this.options.location.deactivateUser(user);
    this.counters.usersDeactivated++;
    for (const sub of [...(this.subscriptions.get(user) ?? [])]) {
      this.notify(sub, deactivatedState(user, bindings, this.options.clock.nowMs()), 'terminated;reason=deactivated');
      this.remove(sub);
    }
    return bindings;
  }

  /** A flow closed: its subscriptions can no longer be notified (RFC 5626 §5.2). */
  flowClosed(flowId: string): void {
    if (this.subscriptionCount === 0) return;
    for (const list of [...this.subscriptions.values()]) for (const sub of list) if (sub.flowId === flowId) this.remove(sub);
  }

  /** Bindings removed by the sweep: tell the subscribers. */
  expired(bindings: readonly BindingView[]): void {
    if (this.subscriptionCount === 0) return;
    const byUser = new Map<string, BindingChange[]>();
    for (const binding of bindings) byUser.set(binding.user, [...(byUser.get(binding.user) ?? []), { event: 'expired', binding }]);
    for (const [user, changes] of byUser) this.notifyChanges(user, changes, this.options.location.bindingsOf(user).length);
  }

  close(): void {
    for (const list of this.subscriptions.values()) for (const sub of list) sub.timer.cancel();
    this.subscriptions.clear();
    this.subscriptionCount = 0;
  }

  private notifyChanges(user: string, changes: readonly BindingChange[], remaining: number): void {
    const subs = this.subscriptions.get(user);
    if (!subs) return;
    for (const sub of subs) {
      const leftS = Math.max(0, Math.round((sub.expiresAtMs - this.options.clock.nowMs()) / 1000));
      this.notify(sub, partialState(user, changes, remaining, this.options.clock.nowMs()), `active;expires=${leftS}`);
    }
  }

  private remove(sub: RegSubscription): void {
    sub.timer.cancel();
    const list = this.subscriptions.get(sub.user);
    if (!list || !list.includes(sub)) return;
    const rest = list.filter((other) => other !== sub);
    if (rest.length === 0) this.subscriptions.delete(sub.user);
    else this.subscriptions.set(sub.user, rest);
    this.subscriptionCount--;
    this.counters.subscriptionsActive = this.subscriptionCount;
  }

  /** Sends one NOTIFY in the subscription's dialog, over the flow the subscriber came on. */
  private notify(sub: RegSubscription, document: Omit<RegInfo, 'version'>, state: string): void {
    const flow = this.options.flowById(sub.flowId);
    if (!flow || flow.closed) return;
    const view = this.options.view();
    sub.cseq++;
    const body = Buffer.from(sub.documents.render(document), 'utf8');
    const seq = sub.cseq;
    this.counters.notifiesSent++;
    void this.options.local.send(
      flow,
      (branch) => ({
        kind: 'request',
        method: 'NOTIFY',
        uri: parseUri(sub.remoteTarget),
        headers: [
          ownVia(view, flow, branch),
          { name: 'Max-Forwards', value: '70' },
          { name: 'From', value: `<${sub.aor}>;tag=${sub.ourTag}` },
          { name: 'To', value: `<${sub.aor}>;tag=${sub.theirTag}` },
          { name: 'Call-ID', value: sub.callId },
          { name: 'CSeq', value: `${seq} NOTIFY` },
          { name: 'Contact', value: `<${ownUri(view, flow.transport)}>` },
          { name: 'Event', value: 'reg' },
          { name: 'Subscription-State', value: state },
          { name: 'Content-Type', value: REGINFO_CONTENT_TYPE },
        ],
        body,
      }),
      32_000,
    );
  }
}

/** The facts of a REGISTER for the location service, or why it is malformed. */
function registerFacts(request: SipRequest, flowId: string): RegisterFacts | string {
  const list = contacts(request);
  const contactFacts: ContactFacts[] =
    list === '*'
      ? [{ uri: '*' }]
      : list.map((contact) => {
          const facts: ContactFacts = { uri: formatUri(contact.uri) };
          if (contact.expires !== null) facts.expiresS = contact.expires;
          if (contact.q !== null) facts.q = contact.q;
          const instance = paramValue(contact.params, '+sip.instance');
          const regId = paramValue(contact.params, 'reg-id');
          if (instance) facts.instance = instance;
          if (regId !== undefined && /^[0-9]{1,9}$/.test(regId)) facts.regId = Number(regId);
          return facts;
        });
  const expiresS = expires(request);
  const facts: RegisterFacts = { aor: formatUri(to(request).uri), callId: callId(request), cseq: cseq(request).seq, contacts: contactFacts, flowId };
  if (expiresS !== null) facts.expiresS = expiresS;
  return facts;
}
