// The proxy of a Front End server (RFC 3261 §16), stateful enough for reliable transports: routes
// requests between registered users on this server or across the pool (the callee's home by the same
// registrar sequence, over the kept-open server-to-server link), Record-Route, Via, Max-Forwards and
// loop detection, INVITE/CANCEL/ACK transactions, and the dialog count draining needs.
import type { Logger } from 'pino';
import type { Flow } from '../sip/flow.ts';
import { createResponse, headerValue, headerValues, type Header, type SipRequest, type SipResponse } from '../sip/message.ts';
import { callId, cseq, from, maxForwards, parseNameAddr, proxyRequire, to, topVia } from '../sip/headers.ts';
import { formatUri, isAddressHost, isSipUri, isTelUri, parseUri, uriParam, type SipUri, type Uri } from '../sip/uri.ts';
import type { SipTransport } from '../sip/transport.ts';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import { homeInSequence } from '../registrar/sequence.ts';
import type { BindingView, LocationService } from '../registrar/location.ts';
import { mediationServersFor, sequencerOf, serversToTry, type Routable, type RouteTarget } from '../pool/routing.ts';
import { federatingEdgePool } from '../topology/federation.ts';
import { numberOfUri } from '../topology/phone-number.ts';
import { routeForNumber } from '../topology/pstn-route.ts';
import type { Gateway } from '../topology/schema.ts';
import { dialogKey, type DialogCounter } from './dialogs.ts';
import type { UserHomes } from './homes.ts';
import type { PoolView } from './pool-view.ts';
import type { PeerLinks } from './s2s.ts';
import { PATH_FLOW_PREFIX } from './registrar-service.ts';
import { BRANCH_PREFIX, ownUri, ownVia, randomToken, withHeader, withoutFirst } from './wire.ts';
import { RELAYED_FLOW_HEADER } from '../auth/relayed.ts';

export interface ProxyOptions {
  clock: Clock;
  random: Random;
  logger: Logger;
  transport: SipTransport;
  links: PeerLinks;
  location: LocationService;
  dialogs: DialogCounter;
  view: () => PoolView;
  /** May `fqdn` take users now (the physical registrar sequence)? */
  available: (fqdn: string) => boolean;
  /** Is peer `fqdn` up and may it still hold bindings (active, or draining and not yet drained), whatever its admin state? */
  reachable: (fqdn: string) => boolean;
  /**
   * Does this server's own heartbeat doubt that peer `fqdn` answers (pool/membership.ts isDoubted)? A
   * user this server holds while its home is doubted is delivered here (userHop). Without it, never.
   */
  doubted?: (fqdn: string) => boolean;
  /** Users' home pools: a user homed on another pool is reached through that pool's servers. */
  homes: UserHomes;
  /** May a server of another pool get server-to-server traffic now (pool/membership.ts isRoutable)? */
  routable: Routable;
  /** An INVITE sent to a server of another pool that has not answered at all (not even 100) after this goes to the next server. Default 4000 ms. */
  serverTryTimeoutMs?: number;
  /** No new server of another pool is tried this long after the first try (the total time bound). Default 16 000 ms. */
  serverTriesTotalMs?: number;
  /** Timer C (RFC 3261 §16.6 step 11): an INVITE with no final answer after this is given up (408). Default 180 000 ms. */
  inviteTimeoutMs?: number;
  /** A non-INVITE request with no final answer after this is given up (408; 64·T1, §17.1.2.2). Default 32 000 ms. */
  nonInviteTimeoutMs?: number;
  /** How long a finished INVITE transaction is kept to pass on 2xx retransmissions. Default 32 000 ms. */
  lingerMs?: number;
}

/** Where a request goes next, or the answer instead. */
type NextHop =
  | {
      kind: 'flow';
      flow: () => Promise<Flow>;
      uri?: Uri;
      toUa: boolean;
      what: string;
      servers?: ServerTries;
      /** When the flow cannot be opened: answer 503 with this reason (and what failed), e.g. a PSTN gateway down. */
      unreachable?: string;
      /** A call to a PSTN gateway: told how the gateway that took it answered (ProxyCounters.pstnGateways). */
      gatewayOutcome?: (outcome: GatewayOutcome) => void;
      /** The request goes on with this Request-URI (a call from a gateway to a number: to the number's user). */
      retarget?: SipUri;
      /** Instead of our own Record-Route (the Edge's carries the client's flow token: src/edge/). */
      recordRoute?: string;
      /** Added on top of the request's headers (the Edge's Path, RFC 3327). */
      headers?: readonly Header[];
      /** Mixed into this hop's loop hash (ForwardOptions.spiral). */
      spiral?: string;
      /** ForwardOptions.outward. */
      outward?: boolean;
    }
  | { kind: 'answer'; status: number; reason?: string };

/**
 * The servers of another pool a request goes to (pool/routing.ts serversToTry), tried in order: the
 * next on connect failure, no answer to an INVITE within serverTryTimeoutMs, or a 503 — at most the
 * pool's size, and none started after serverTriesTotalMs.
 */
interface ServerTries {
  pool: string;
  targets: readonly RouteTarget[];
  index: number;
  deadlineMs: number;
  /** What happened at each server tried, for the reason phrase when none answers. */
  outcomes: string[];
  /** Kept for every try (ForwardOptions). */
  recordRoute?: string;
  headers?: readonly Header[];
  /** How to reach a target that is not a server of the topology (a federation partner's Access Edge); the peer link otherwise. */
  connect?: (target: RouteTarget) => Promise<Flow>;
  /** Kept for every try (ForwardOptions). */
  spiral?: string;
  outward?: boolean;
}

/** Where a role step outside the proxy (the Edge, src/edge/) sends a request: a flow it holds, or a pool's servers in turn. */
export type ForwardTarget =
  | { kind: 'flow'; flow: Flow; uri?: Uri; toUa: boolean }
  /** `connect`: for targets outside the topology (a partner's Access Edge addresses, src/edge/steps/federation.ts), tried in turn the same way. */
  | { kind: 'servers'; pool: string; targets: readonly RouteTarget[]; connect?: (target: RouteTarget) => Promise<Flow> };

export interface ForwardOptions {
  /** The Record-Route value for dialog-creating requests, instead of this server's own. */
  recordRoute?: string;
  /** Headers put on top of the request (after our Via), e.g. a Path. */
  headers?: readonly Header[];
  /** The request came from a server (not counted as a new call taken from a client). */
  fromServer?: boolean;
  /**
   * The request is expected back through this server once, unchanged (RFC 3261 §16.3 would call it a
   * loop): an Edge relays a remote user's request inside to be authenticated, and a call to a
   * federation partner then comes back out through an Edge of the pool, perhaps this one. The mark is
   * mixed into the loop hash of this hop's Via, so the return passes; a request that goes round again
   * meets the Via of its second pass, unmarked, and is a loop (482).
   */
  spiral?: string;
  /**
   * The request leaves the organisation (an Edge sending to a partner or to a remote client): the
   * headers only our servers may set (the Edge's relayed-flow mark) are taken off. A partner's Edge
   * refuses them from outside, and they would tell the world about our flows.
   */
  outward?: boolean;
}

interface ClientTransaction {
  branch: string;
  method: string;
  serverKey: string;
  inFlow: Flow;
  /** The request as received (to answer it ourselves: 408, 503, 487). */
  request: SipRequest;
  /** The request as sent (to build CANCEL and ACK from, §9.1, §17.1.1.3). */
  sent: SipRequest | null;
  outFlow: Flow | null;
  provisional: boolean;
  finalStatus: number;
  cancelled: boolean;
  dialogCreating: boolean;
  timer: Timer | null;
  /**
   * A BYE's dialog, ended when this transaction ends (answered, timed out, or failed), not when the
   * BYE is sent on: until its answer has passed back the users stay busy, so a hand-over cannot
   * move a caller off its flow while the 200 is on its way.
   */
  endsDialog?: { callId: string; fromTag: string; toTag: string };
  /**
   * The flows user agents opened to us that this request came from or went to (a client's own flow,
   * kept alive by it; not a server's link, nor a connection we opened to a Contact, which may idle
   * out during a long call): a dialog it sets up ends here when one of them closes (DialogCounter.flowClosed).
   */
  uaFlows: string[];
  /** Sent to a pool's servers in turn (a user homed on another pool). */
  servers?: ServerTries;
  /** The current try's timer (ServerTries): no answer at all by then, the next server. */
  tryTimer?: Timer | null;
  /** Sent to a PSTN gateway: told the call's outcome there once. */
  gatewayOutcome?: ((outcome: GatewayOutcome) => void) | undefined;
}

/**
 * How a call a Mediation server sent to a PSTN gateway ended there: `answered` (2xx), `rejected` (a
 * final answer of 300–699 from the gateway), `timeout` (no final answer in time), `unreachable` (the
 * gateway took no connection: the next gateway, or 503 to the Front End).
 */
export const GATEWAY_OUTCOMES = ['answered', 'rejected', 'timeout', 'unreachable'] as const;
export type GatewayOutcome = (typeof GATEWAY_OUTCOMES)[number];

export interface ProxyCounters {
  requestsForwarded: number;
  /** requestsForwarded by method: the RFC 3261/3262/3265/3311/3428/3515/3903/6086 methods, any other as `other`. */
  requestsForwardedByMethod: Record<string, number>;
  /**
   * Out-of-dialog INVITEs this server took on from clients (new calls placed through it); a draining
   * server takes none. Calls from peers to users bound here (a draining server's users included) are not counted.
   */
  invitesAccepted: number;
  responsesForwarded: number;
  answeredLocally: Record<string, number>;
  loopsDetected: number;
  strayResponses: number;
  transactionsTimedOut: number;
  /** Requests sent to servers of other pools (topology-aware routing), per server tried. */
  interPoolForwarded: number;
  /** Tries given up on a server of another pool (connect failure, no answer, 503) for the next one. */
  interPoolFailovers: number;
  /** Requests for which no server of the callee's pool answered: the caller got 480/503 with a reason. */
  interPoolExhausted: number;
  /** In-dialog requests without a Route sent to the server the dialog was set up through (a UAS that ignored Record-Route). */
  dialogHopsFollowed: number;
  /** In-dialog requests a Mediation server answered 481 itself: it does not carry the dialog (it restarted since, or never had it). */
  unknownDialogs: number;
  /** PSTN calls (DESIGN §7 Mediation): out-of-dialog requests to a number sent to a Mediation pool (Front End), per call. */
  pstnToMediation: number;
  /** Requests to a number matching no PSTN route: answered 404/484 with the reason. */
  pstnNoRoute: number;
  /** New requests to users of another SIP domain sent to the federating edge pool. */
  toFederation: number;
  /** Out-of-dialog requests a Mediation server sent to its gateway. */
  pstnToGateway: number;
  /** Of those, the ones no gateway of the pool took (connect failed): answered 503 so the Front End tries the next Mediation server. */
  pstnGatewayDown: number;
  /** Calls from a gateway to a number of the user directory, sent on to the number's user (Mediation server). */
  pstnFromGateway: number;
  /** Calls from a gateway to a number no user has: answered 404. */
  pstnUnknownNumber: number;
  /** Calls sent to each gateway (its fqdn, else address:port) by outcome there; `unreachable` counts each gateway tried that refused. */
  pstnGateways: Record<string, Record<GatewayOutcome, number>>;
}

/** Methods counted by name; any other token a client sends counts as `other` (a metric label must stay a small set). */
const COUNTED_METHODS: ReadonlySet<string> = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'SUBSCRIBE', 'NOTIFY', 'REFER', 'MESSAGE', 'INFO', 'PRACK', 'UPDATE', 'PUBLISH']);

/** In-dialog methods a Mediation server passes on without holding the dialog (Proxy.dialogHop). */
const EARLY_OR_HOP_BY_HOP: ReadonlySet<string> = new Set(['ACK', 'CANCEL', 'PRACK', 'UPDATE']);

/** Methods that create a dialog and so get our Record-Route (RFC 3261 §16.6 step 4). */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER']);

export class Proxy {
  readonly counters: ProxyCounters = { requestsForwarded: 0, requestsForwardedByMethod: {}, invitesAccepted: 0, responsesForwarded: 0, answeredLocally: {}, loopsDetected: 0, strayResponses: 0, transactionsTimedOut: 0, interPoolForwarded: 0, interPoolFailovers: 0, interPoolExhausted: 0, dialogHopsFollowed: 0, unknownDialogs: 0, pstnToMediation: 0, pstnNoRoute: 0, toFederation: 0, pstnToGateway: 0, pstnGatewayDown: 0, pstnFromGateway: 0, pstnUnknownNumber: 0, pstnGateways: {} };
  private readonly byBranch = new Map<string, ClientTransaction>();
  private readonly byServerKey = new Map<string, ClientTransaction>();
  /** Contact URI → the flow it was last seen on: how in-dialog requests and calls reach a UA (RFC 5626 spirit). */
  private readonly contactFlows = new Map<string, string>();
  /** Connections we opened to UA contacts that had no open flow (RFC 3261 §18.1.1), by host:port:transport. */
  private readonly uaConnections = new Map<string, Promise<Flow>>();
  /**
   * Dialogs set up through a server of another pool (a Mediation server, another pool's Front End):
   * dialog key → that server and the dialog's remote target (the 2xx Contact). A UAS that leaves
   * Record-Route out of its 2xx (sipp's built-in `uas`, some gateways) gives the caller no route set,
   * so its ACK and BYE reach us with no Route and the remote target as Request-URI — which names the
   * gateway, the same for every call through every Mediation server. They go to the server the dialog
   * went through, never to whichever server last showed that Contact. Ended with the BYE; bounded.
   */
  private readonly dialogHops = new Map<string, { server: string; target: string }>();
  /**
   * Users this server handed over (a drain, a recovery, a commission: `deactivated`), by user: the
   * binding they had here, for HANDED_OVER_KEEP_MS. Between the NOTIFY and the client's REGISTER at
   * its next server, nobody holds a binding for the user; a call to it in that window is delivered
   * over the connection it has not left yet instead of failing 480. Bounded.
   */
  private readonly handedOver = new Map<string, { binding: BindingView; untilMs: number }>();
  private readonly inviteTimeoutMs: number;
  private readonly nonInviteTimeoutMs: number;
  private readonly lingerMs: number;
  private readonly serverTryTimeoutMs: number;
  private readonly serverTriesTotalMs: number;

  constructor(private readonly options: ProxyOptions) {
    this.serverTryTimeoutMs = options.serverTryTimeoutMs ?? 4000;
    this.serverTriesTotalMs = options.serverTriesTotalMs ?? 16_000;
    this.inviteTimeoutMs = options.inviteTimeoutMs ?? 180_000;
    this.nonInviteTimeoutMs = options.nonInviteTimeoutMs ?? 32_000;
    this.lingerMs = options.lingerMs ?? 32_000;
  }

  get pendingTransactions(): number {
    return this.byBranch.size;
  }

  /** The bindings a hand-over just ended here (registrar-service deactivate): see handedOver. */
  noteHandedOver(bindings: readonly BindingView[]): void {
    const untilMs = this.options.clock.nowMs() + HANDED_OVER_KEEP_MS;
    for (const binding of bindings) {
      this.handedOver.delete(binding.user);
      if (this.handedOver.size >= limits.frontendDialogsMax) {
        const oldest = this.handedOver.keys().next().value;
        if (oldest !== undefined) this.handedOver.delete(oldest);
      }
      this.handedOver.set(binding.user, { binding, untilMs });
    }
  }

  /** Remembers that `contact` is reached over `flow` (REGISTER, dialog-creating requests and answers). */
  noteContact(contact: string, flow: Flow): void {
    if (this.contactFlows.get(contact) === flow.id) return;
    this.contactFlows.delete(contact);
    if (this.contactFlows.size >= limits.frontendDialogsMax) {
      const oldest = this.contactFlows.keys().next().value;
      if (oldest !== undefined) this.contactFlows.delete(oldest);
    }
    this.contactFlows.set(contact, flow.id);
  }

  /**
   * A request that is not for this server itself, past the steps before the route step (limits,
   * Max-Forwards, loops, Proxy-Require, drain). `poppedOwnRoute` says a Route naming us was removed
   * (the request follows our Record-Route); `fromPeer` that it came over a pool server's link.
   */
  route(inFlow: Flow, request: SipRequest, context: { poppedOwnRoute: boolean; fromPeer: boolean; fromServer?: boolean }): void {
    const view = this.options.view();
    if (request.method === 'CANCEL') return this.cancel(inFlow, request);
    const serverKey = serverKeyOf(inFlow, request);
    if (request.method === 'ACK') {
      // §17.1.1.3: the ACK of a non-2xx final answer we forwarded is hop-by-hop: it ends here.
      const invite = this.byServerKey.get(serverKey);
      if (invite && invite.finalStatus >= 300) return;
    } else if (this.byServerKey.has(serverKey)) {
      return; // a retransmission of a request in progress
    }
    const hop = this.nextHop(inFlow, request, context, view);
    if (hop.kind === 'answer') {
      if (request.method !== 'ACK') this.answer(inFlow, request, hop.status, hop.reason);
      // §15.1.1: the dialog is over whatever the BYE's answer, ours too (no other BYE of it will come here).
      if (request.method === 'BYE') this.endDialogOf(request);
      return;
    }
    // Retargeted (§16.5): the new Request-URI stays with the request through every server tried.
    this.forward(inFlow, hop.retarget ? { ...request, uri: hop.retarget } : request, hop, serverKey, view, context.fromPeer, !context.fromPeer && context.fromServer !== true);
  }

  /**
   * Sends a request to a target its caller chose (the Edge's route step), with the transactions,
   * CANCEL/ACK handling, failover between a pool's servers and Record-Route of `route`.
   */
  forwardTo(inFlow: Flow, request: SipRequest, target: ForwardTarget, options: ForwardOptions = {}): void {
    const view = this.options.view();
    if (request.method === 'CANCEL') return this.cancel(inFlow, request);
    const serverKey = serverKeyOf(inFlow, request);
    if (request.method === 'ACK') {
      const invite = this.byServerKey.get(serverKey);
      if (invite && invite.finalStatus >= 300) return;
    } else if (this.byServerKey.has(serverKey)) {
      return;
    }
    let hop: Extract<NextHop, { kind: 'flow' }>;
    if (target.kind === 'flow') {
      const flow = target.flow;
      hop = { kind: 'flow', flow: () => Promise.resolve(flow), uri: target.uri, toUa: target.toUa, what: target.toUa ? `flow ${flow.id}` : `${flow.remoteAddress}:${flow.remotePort}`, recordRoute: options.recordRoute, headers: options.headers, spiral: options.spiral, outward: options.outward };
    } else {
      hop = this.serverHop({ pool: target.pool, targets: target.targets, index: 0, deadlineMs: this.options.clock.nowMs() + this.serverTriesTotalMs, outcomes: [], recordRoute: options.recordRoute, headers: options.headers, spiral: options.spiral, outward: options.outward, ...(target.connect ? { connect: target.connect } : {}) });
    }
    this.forward(inFlow, request, hop, serverKey, view, options.fromServer === true, false);
  }

  /** The dialog of an in-dialog request (a BYE) ends here. */
  private endDialogOf(request: SipRequest): void {
    const fromTag = from(request).tag;
    const toTag = to(request).tag;
    if (!fromTag || !toTag) return;
    this.options.dialogs.end(callId(request), fromTag, toTag);
    this.dialogHops.delete(dialogKey(callId(request), fromTag, toTag));
  }

  /** A response on any flow: ours to pass upstream, or stray. */
  response(response: SipResponse): void {
    const via = topVia(response);
    const branch = via?.branch ?? '';
    const view = this.options.view();
    if (!via || !branch.startsWith(BRANCH_PREFIX) || !view.isSelf(via.host)) {
      this.counters.strayResponses++;
      return;
    }
    const method = cseq(response).method;
    const tx = this.byBranch.get(branch);
    if (!tx) {
      this.counters.strayResponses++;
      return;
    }
    if (method === 'CANCEL') return; // the answer to our CANCEL is hop-by-hop (§16.10)
    if (method !== tx.method) {
      this.counters.strayResponses++;
      return;
    }
    if (tx.tryTimer) {
      tx.tryTimer.cancel();
      tx.tryTimer = null;
    }
    if (response.status === 503 && tx.servers && tx.finalStatus === 0) {
      // The server is overloaded or going away: the next server of the callee's pool.
      if (tx.method === 'INVITE') this.ackDownstream(tx, response);
      return this.nextServer(tx, `503 ${response.reason}`);
    }
    if (response.status < 200) {
      tx.provisional = true;
      if (response.status === 100) return; // §16.7 step 3: 100 is hop-by-hop
      this.remember(response, tx);
      return this.passUp(tx, response);
    }
    const is2xxInvite = tx.method === 'INVITE' && response.status < 300;
    if (tx.finalStatus !== 0 && !is2xxInvite) {
      if (tx.method === 'INVITE' && response.status >= 300) this.ackDownstream(tx, response);
      return;
    }
    const first = tx.finalStatus === 0;
    if (first) this.gatewayOutcome(tx, response.status < 300 ? 'answered' : 'rejected');
    tx.finalStatus = tx.finalStatus === 0 ? response.status : tx.finalStatus;
    tx.timer?.cancel();
    if (tx.method === 'INVITE') {
      if (response.status >= 300) this.ackDownstream(tx, response);
      else if (tx.dialogCreating) {
        const fromTag = from(response).tag;
        const toTag = to(response).tag;
        if (fromTag && toTag) this.options.dialogs.confirm(callId(response), fromTag, toTag, this.usersOf(response), tx.uaFlows);
        // Servers of the topology only: a federation partner's Access Edge (servers.connect) is no peer link.
        if (fromTag && toTag && tx.servers && !tx.servers.connect) this.rememberDialogHop(response, fromTag, toTag, tx.servers.targets[tx.servers.index]!.server);
        this.remember(response, tx);
      }
      if (first) tx.timer = this.options.clock.setTimer(this.lingerMs, () => this.forget(tx));
    } else {
      this.forget(tx);
    }
    this.passUp(tx, response);
  }

  /**
   * A flow closed: transactions waiting on it get an answer; INVITEs from it are cancelled; dialogs
   * with a user agent on it end here (nothing reaches that party through this server any more, and no
   * BYE may ever come: a client that crashed, or reset its connection with the BYE still unread).
   */
  flowClosed(flow: Flow): void {
    this.options.dialogs.flowClosed(flow.id);
    if (this.byBranch.size === 0) return;
    for (const tx of [...this.byBranch.values()]) {
      if (tx.finalStatus !== 0) continue;
      if (tx.outFlow === flow && tx.servers && !tx.provisional) {
        this.nextServer(tx, 'connection closed');
      } else if (tx.outFlow === flow) {
        tx.finalStatus = 503;
        tx.timer?.cancel();
        this.answer(tx.inFlow, tx.request, tx.method === 'INVITE' ? 480 : 503, 'Next hop connection closed');
        this.forget(tx);
      } else if (tx.inFlow === flow && tx.method === 'INVITE') {
        this.cancelDownstream(tx);
      }
    }
  }

  /** The users of our SIP domains a dialog is between (From and To), canonical. */
  private usersOf(message: SipResponse): string[] {
    const view = this.options.view();
    const users: string[] = [];
    for (const uri of [from(message).uri, to(message).uri]) {
      const who = view.userOf(uri);
      if (who !== null && 'user' in who) users.push(who.user);
    }
    return users;
  }

  close(): void {
    for (const tx of this.byBranch.values()) tx.timer?.cancel();
    this.byBranch.clear();
    this.byServerKey.clear();
  }

  // --- routing ---------------------------------------------------------------------------------

  private nextHop(inFlow: Flow, request: SipRequest, context: { poppedOwnRoute: boolean; fromPeer: boolean }, view: PoolView): NextHop {
    const routeValue = headerValue(request, 'Route');
    if (routeValue !== undefined) {
      // Loose routing (§16.12): the next Route decides; only pool servers are reached server-to-server.
      const next = parseNameAddr(routeValue, { requireBrackets: true }).uri;
      if (!isSipUri(next)) return { kind: 'answer', status: 416 };
      const server = view.serverAt(next.host);
      if (server && server.fqdn !== view.self.fqdn) return { kind: 'flow', flow: () => this.options.links.flowTo(server.fqdn), toUa: false, what: server.fqdn };
      const known = this.flowForUri(next, context.poppedOwnRoute);
      return known ?? { kind: 'answer', status: 404, reason: 'No route to the next hop' };
    }
    if (rawHasToTag(request)) {
      const hop = this.dialogHop(request, view);
      if (hop) return hop;
    }
    // A REGISTER we proxy (a Director's, from a server such as an Edge): to the registrar of the To
    // user's home pool; a server never registers users of another pool itself.
    if (request.method === 'REGISTER') return this.registrationHop(request, view);
    if (!rawHasToTag(request) && isTelephoneUri(request.uri)) return this.pstnHop(inFlow, request, view);
    const target = request.uri;
    if (!isSipUri(target)) return { kind: 'answer', status: 416 };
    const who = view.userOf(target);
    if (who !== null && !rawHasToTag(request)) {
      if ('unknown' in who) return { kind: 'answer', status: 404, reason: 'Unknown user' };
      return this.userHop(who.user, view, context.fromPeer, request);
    }
    const server = view.serverAt(target.host);
    if (server && server.fqdn !== view.self.fqdn) return { kind: 'flow', flow: () => this.options.links.flowTo(server.fqdn), toUa: false, what: server.fqdn };
    if (who !== null && 'user' in who) return this.userHop(who.user, view, context.fromPeer, request);
    const known = this.flowForUri(target, context.poppedOwnRoute);
    if (known) return known;
    if (who === null && !server && !rawHasToTag(request) && target.user !== null && !isAddressHost(target.host)) return this.federationHop(request, view);
    return { kind: 'answer', status: 404, reason: 'No route to the target' };
  }

  /**
   * A new request to a user of another SIP domain (federation, issue 14 §4): to the edge pool that
   * federates (topology/federation.ts), its servers in the order of the Call-ID's hash, the next on
   * failure; that Edge checks the partner list and finds the partner's Access Edge. No such pool: 404.
   */
  private federationHop(request: SipRequest, view: PoolView): NextHop {
    const edgePool = federatingEdgePool(view.topology);
    if (!edgePool || view.pool.kind === 'edge') return { kind: 'answer', status: 404, reason: 'No route to the target (another domain, and no edge pool federates)' };
    const route = serversToTry(view.topology, edgePool.fqdn, sequencerOf(edgePool).sequenceOfCanonical(callId(request)), this.options.routable);
    if ('none' in route) return { kind: 'answer', status: request.method === 'INVITE' ? 480 : 503, reason: route.reason };
    this.counters.toFederation++;
    return this.serverHop({ pool: route.pool, targets: route.targets, index: 0, deadlineMs: this.options.clock.nowMs() + this.serverTriesTotalMs, outcomes: [] });
  }

  /**
   * An in-dialog request with no Route left. At a Front End: to the server of another pool the dialog
   * was set up through when the Request-URI is that dialog's remote target (dialogHops). At a
   * Mediation server: 481 when it does not carry the dialog — it restarted since the call was set up
   * (the gateway dropped the call when its connection closed), so the caller gets a final answer at
   * once instead of a BYE the gateway never answers. Not ACK, CANCEL, PRACK or UPDATE: they come
   * before the 2xx, or are hop-by-hop.
   */
  private dialogHop(request: SipRequest, view: PoolView): NextHop | null {
    const fromTag = from(request).tag;
    const toTag = to(request).tag;
    if (!fromTag || !toTag) return null;
    if (view.pool.kind !== 'mediation' && this.dialogHops.size === 0) return null;
    const id = callId(request);
    if (view.pool.kind === 'mediation') {
      if (EARLY_OR_HOP_BY_HOP.has(request.method) || this.options.dialogs.holds(id, fromTag, toTag)) return null;
      this.counters.unknownDialogs++;
      return { kind: 'answer', status: 481, reason: `Call/Transaction Does Not Exist (Mediation server ${view.self.fqdn} does not carry this call)` };
    }
    const hop = this.dialogHops.get(dialogKey(id, fromTag, toTag));
    if (!hop || hop.server === view.self.fqdn || hop.target !== formatUri(request.uri)) return null;
    this.counters.dialogHopsFollowed++;
    const server = hop.server;
    return { kind: 'flow', flow: () => this.options.links.flowTo(server), toUa: false, what: server };
  }

  private rememberDialogHop(response: SipResponse, fromTag: string, toTag: string, server: string): void {
    const contact = headerValue(response, 'Contact');
    if (contact === undefined) return;
    let target: string;
    try {
      target = formatUri(parseNameAddr(contact).uri);
    } catch {
      return;
    }
    const key = dialogKey(callId(response), fromTag, toTag);
    this.dialogHops.delete(key);
    if (this.dialogHops.size >= limits.frontendDialogsMax) {
      const oldest = this.dialogHops.keys().next().value;
      if (oldest !== undefined) this.dialogHops.delete(oldest);
    }
    this.dialogHops.set(key, { server, target });
  }

  /** A request to a user: at its home, to one of its bindings; elsewhere, to its home over the pool link. */
  private userHop(user: string, view: PoolView, fromPeer: boolean, request: SipRequest): NextHop {
    const method = request.method;
    const homePool = this.options.homes.homePoolOf(view, user);
    if ('none' in homePool) return { kind: 'answer', status: 404, reason: `No home pool: ${homePool.reason}` };
    if (homePool.pool !== view.pool.fqdn) {
      const userHome = this.options.homes.homeOf(view, user);
      if ('none' in userHome) return { kind: 'answer', status: 404, reason: `No home pool: ${userHome.reason}` };
      // Topology-aware routing between pools (DESIGN §7): the callee's home server in its home pool,
      // then the next of its sequence there; never DNS.
      const route = serversToTry(view.topology, userHome.pool, userHome.sequence, this.options.routable);
      if ('none' in route) return { kind: 'answer', status: method === 'INVITE' ? 480 : 503, reason: route.reason };
      return this.serverHop({ pool: route.pool, targets: route.targets, index: 0, deadlineMs: this.options.clock.nowMs() + this.serverTriesTotalMs, outcomes: [] });
    }
    const home = homeInSequence(view.sequencer.sequenceOfCanonical(user), this.options.available);
    // Servers of this pool the request has already passed (their Via is on it): never sent back to one,
    // whatever the views say — that would be a loop (482), not a route.
    const passed = poolServersPassed(request, view);
    const binding = pickBinding(this.options.location.bindingsOf(user));
    // A user this server took in backup mode because its home did not answer (registrar-service.ts:
    // the client said so and this server doubts that home too) is delivered here while the doubt
    // lasts: the home, not yet down by the heartbeat's count, would only fail the call (503).
    const homeSilent = home !== null && binding !== undefined && (this.options.doubted?.(home.server) ?? false);
    // A user this server still holds on an open connection — in backup mode until its batch of a
    // hand-back comes, or handed over a moment ago and not registered elsewhere yet — is delivered
    // here: its home by the sequence does not have it yet, and would have to find it again (found by
    // the chaos soak: after a recovery, calls from the backup's own users to users it still held went
    // to the returning home and failed 480).
    const held = home !== null && home.server !== view.self.fqdn && !homeSilent ? this.heldHere(user, binding) : null;
    if (held) return held;
    // A request from a peer is delivered here whatever we think of the user's home: two servers that
    // disagree for a moment must not pass it back and forth.
    if (home !== null && home.server !== view.self.fqdn && !fromPeer && !passed.has(home.server) && !homeSilent) {
      const fqdn = home.server;
      return { kind: 'flow', flow: () => this.options.links.flowTo(fqdn), toUa: false, what: fqdn };
    }
    if (!binding) {
      const left = this.handedOverFlow(user);
      if (left) return left;
      // The user may not be here yet: a hand-over moves users in rate-limited batches, and a blocked
      // server keeps its users until they leave, so for a while the server the sequence names is
      // not the one holding the binding. Ask the first other live, active server of the user's
      // sequence — by rendezvous hashing, the one the user is moving from (commission, recovery) or
      // still on (block, or a drain that has not reached the user's batch yet: the draining server
      // delivers it over the flow it still holds).
      // A request from a peer goes on from the home to the first server of the sequence it has not
      // passed (after a recovery the user is still on the backup after the home, until its batch
      // comes), and from any other server only to one *before* it (the home the user is leaving: a
      // drain or a block) — never to a server it came through, so no server sees it twice and an
      // offline user costs at most three hops (seen in the chaos soak as 482 Loop Detected while a
      // stopped server's users were signing in elsewhere, registered nowhere yet: the answer is 480).
      const sequence = view.sequencer.sequenceOfCanonical(user);
      const selfAt = sequence.indexOf(view.self.fqdn);
      const selfIsHome = home?.server === view.self.fqdn;
      const holder = sequence.find((fqdn, index) => fqdn !== view.self.fqdn && !passed.has(fqdn) && this.options.reachable(fqdn) && (!fromPeer || selfIsHome || index < selfAt));
      if (holder !== undefined) return { kind: 'flow', flow: () => this.options.links.flowTo(holder), toUa: false, what: holder };
      return { kind: 'answer', status: 480, reason: method === 'INVITE' ? 'User not registered' : 'Temporarily Unavailable' };
    }
    const uri = parseContactUri(binding.contact);
    if (!uri) return { kind: 'answer', status: 480, reason: 'Unreachable contact' };
    if (binding.flowId.startsWith(PATH_FLOW_PREFIX)) return this.pathHop(binding.flowId.slice(PATH_FLOW_PREFIX.length), uri, view);
    const open = this.options.transport.flow(binding.flowId);
    if (open && !open.closed) return { kind: 'flow', flow: () => Promise.resolve(open), uri, toUa: true, what: binding.contact };
    // The binding's connection is gone: RFC 3261 §18.1.1 opens a new one to the Contact (not for
    // RFC 5626 outbound bindings, whose flow is the only way in).
    if (binding.instance !== undefined && binding.regId !== undefined) return { kind: 'answer', status: 430, reason: 'Flow Failed' };
    const hop = this.flowForUri(uri, true);
    return hop?.kind === 'flow' ? { ...hop, uri } : { kind: 'answer', status: 480, reason: 'Unreachable contact' };
  }

  /** The user's binding here on a connection still open, or the one it was handed over from (handedOverFlow); else null. */
  private heldHere(user: string, binding: BindingView | undefined): NextHop | null {
    if (!binding) return this.handedOverFlow(user);
    if (binding.flowId.startsWith(PATH_FLOW_PREFIX)) return null;
    const open = this.options.transport.flow(binding.flowId);
    const uri = open && !open.closed ? parseContactUri(binding.contact) : null;
    return open && uri ? { kind: 'flow', flow: () => Promise.resolve(open), uri, toUa: true, what: binding.contact } : null;
  }

  /**
   * Handed over from here a moment ago: its client has not registered elsewhere yet, and still listens
   * on its connection to us (handedOver) — that connection while it is open and the window lasts.
   */
  private handedOverFlow(user: string): NextHop | null {
    const left = this.handedOver.get(user);
    if (left === undefined) return null;
    const open = left.untilMs > this.options.clock.nowMs() ? this.options.transport.flow(left.binding.flowId) : undefined;
    const uri = open && !open.closed ? parseContactUri(left.binding.contact) : null;
    if (open && uri) return { kind: 'flow', flow: () => Promise.resolve(open), uri, toUa: true, what: left.binding.contact };
    this.handedOver.delete(user);
    return null;
  }

  /**
   * A binding registered through an Edge (RFC 3327 §5.4): the request goes to the Edge the Path names,
   * with the Path as its Route (the Edge finds the client's flow by the token in it).
   */
  private pathHop(path: string, contact: SipUri, view: PoolView): NextHop {
    let hop: SipUri;
    try {
      const parsed = parseUri(path);
      if (!isSipUri(parsed)) return { kind: 'answer', status: 480, reason: 'Unreachable Path' };
      hop = parsed;
    } catch {
      return { kind: 'answer', status: 480, reason: 'Unreachable Path' };
    }
    const server = view.serverAt(hop.host);
    if (!server || server.fqdn === view.self.fqdn) return { kind: 'answer', status: 480, reason: 'The Path names no server of the topology' };
    const fqdn = server.fqdn;
    return { kind: 'flow', flow: () => this.options.links.flowTo(fqdn), uri: contact, toUa: false, what: fqdn, headers: [{ name: 'Route', value: `<${path}>` }] };
  }

  /**
   * A UA's URI (remote target or Route): the flow it was last seen on, or a new connection when
   * `mayConnect` (the request follows our Record-Route or a registered Contact; never for arbitrary
   * out-of-dialog targets).
   */
  private flowForUri(uri: SipUri, mayConnect: boolean): NextHop | null {
    const seen = this.contactFlows.get(formatUri(uri));
    const flow = seen === undefined ? undefined : this.options.transport.flow(seen);
    if (flow && !flow.closed) return { kind: 'flow', flow: () => Promise.resolve(flow), toUa: true, what: formatUri(uri) };
    if (!mayConnect || !isAddressHost(uri.host)) return null;
    const transportParam = uriParam(uri.params, 'transport')?.value?.toLowerCase();
    const tls = uri.scheme === 'sips' || transportParam === 'tls';
    if (!tls && transportParam !== undefined && transportParam !== 'tcp') return null; // no UDP, as Lync
    const host = uri.host.startsWith('[') ? uri.host.slice(1, -1) : uri.host;
    const port = uri.port ?? (tls ? 5061 : 5060);
    const key = `${host}:${port}:${tls ? 'tls' : 'tcp'}`;
    const connect = (): Promise<Flow> => {
      const existing = this.uaConnections.get(key);
      if (existing) {
        return existing.then((open) => (open.closed ? Promise.reject(new Error('closed')) : open)).catch(() => {
          this.uaConnections.delete(key);
          return connect();
        });
      }
      const attempt = this.options.transport.connect({ transport: tls ? 'tls' : 'tcp', host, port, localAddress: this.options.view().self.address });
      this.uaConnections.set(key, attempt);
      attempt.then(
        (open) => open.once('close', () => this.uaConnections.get(key) === attempt && this.uaConnections.delete(key)),
        () => this.uaConnections.delete(key),
      );
      return attempt;
    };
    return { kind: 'flow', flow: connect, toUa: true, what: key };
  }

  /**
   * A new call to a telephone number (a `tel:` URI or a SIP URI with `user=phone`), DESIGN §7 Mediation.
   * A Front End (or Director) sends it to the Mediation pool of the number's PSTN route, the servers in
   * the order of the Call-ID's hash (retransmissions and the dialog stay on one), the next on connect
   * failure, no answer or 503 — the inter-pool tries of serversToTry. A Mediation server sends it to
   * its gateways (in topology order); a number coming from a gateway goes to the user whose number it
   * is in the user directory (`number`), retargeted to the user's URI and routed to its home pool as
   * any call to a user — never back to a gateway, so a gateway cannot loop a call to itself.
   */
  private pstnHop(inFlow: Flow, request: SipRequest, view: PoolView): NextHop {
    const number = formatUri(request.uri);
    if (view.pool.kind === 'mediation') {
      const gateways = view.pool.gateways ?? [];
      if (gatewayAt(gateways, inFlow.remoteAddress)) return this.inboundHop(number, request, view);
      if (gateways.length === 0) return { kind: 'answer', status: 503, reason: `Mediation pool ${view.pool.fqdn} has no gateway` };
      this.counters.pstnToGateway++;
      return this.gatewayHop(view.pool.fqdn, gateways);
    }
    const found = routeForNumber(number, view.topology);
    if ('none' in found) {
      this.counters.pstnNoRoute++;
      return { kind: 'answer', status: found.status, reason: found.reason.replace(/[\r\n]+/g, ' ') };
    }
    const route = mediationServersFor(callId(request), view.topology, found.pool, this.options.routable);
    if ('none' in route) return { kind: 'answer', status: 503, reason: route.reason };
    this.counters.pstnToMediation++;
    return this.serverHop({ pool: route.pool, targets: route.targets, index: 0, deadlineMs: this.options.clock.nowMs() + this.serverTriesTotalMs, outcomes: [] });
  }

  /** A call from a gateway to a number: to the user who has it (its home pool, as any call to a user), else 404. */
  private inboundHop(number: string, request: SipRequest, view: PoolView): NextHop {
    const parsed = numberOfUri(number);
    const normal = !('error' in parsed) && parsed.kind === 'global' ? parsed.number : null;
    const user = normal === null ? undefined : this.options.homes.userOfNumber(normal);
    if (user === undefined) {
      this.counters.pstnUnknownNumber++;
      return { kind: 'answer', status: 404, reason: `${normal ?? number.replace(/[\r\n]+/g, ' ')}: no user has this number` };
    }
    const hop = this.userHop(user, view, false, request);
    if (hop.kind !== 'flow') return hop;
    this.counters.pstnFromGateway++;
    return { ...hop, retarget: parseUri(user) as SipUri };
  }

  /** The hop to a Mediation pool's gateways: the first that takes a connection (kept open and reused); none → 503. */
  private gatewayHop(pool: string, gateways: readonly Gateway[]): Extract<NextHop, { kind: 'flow' }> {
    const names = gateways.map((gateway) => gateway.fqdn ?? endpointText(gateway));
    let took: string | null = null;
    const connect = async (): Promise<Flow> => {
      const failures: string[] = [];
      for (const [index, gateway] of gateways.entries()) {
        const host = gateway.endpoint.address.includes(':') ? `[${gateway.endpoint.address}]` : gateway.endpoint.address;
        const hop = this.flowForUri(parseUri(`sip:${host}:${gateway.endpoint.port};transport=${gateway.transport}`) as SipUri, true);
        if (hop?.kind !== 'flow') {
          failures.push(`${names[index]}: no transport`);
          continue;
        }
        try {
          const flow = await hop.flow();
          took = names[index]!;
          return flow;
        } catch (error) {
          failures.push(`${names[index]}: ${(error as Error).message}`);
          this.countGateway(names[index]!, 'unreachable');
        }
      }
      this.counters.pstnGatewayDown++;
      throw new Error(failures.join('; '));
    };
    const gatewayOutcome = (outcome: GatewayOutcome): void => {
      if (took !== null) this.countGateway(took, outcome);
    };
    return { kind: 'flow', flow: connect, toUa: true, what: `gateways of ${pool}`, unreachable: `PSTN gateway unreachable`, gatewayOutcome };
  }

  private countGateway(gateway: string, outcome: GatewayOutcome): void {
    const counts = (this.counters.pstnGateways[gateway] ??= { answered: 0, rejected: 0, timeout: 0, unreachable: 0 });
    counts[outcome]++;
  }

  /** A REGISTER to proxy: to the To user's home pool, its sequence there. */
  private registrationHop(request: SipRequest, view: PoolView): NextHop {
    const who = view.userOf(to(request).uri);
    if (who === null) return { kind: 'answer', status: 404, reason: 'Not a user of this SIP domain' };
    if ('unknown' in who) return { kind: 'answer', status: 404, reason: 'Unknown user' };
    const home = this.options.homes.homeOf(view, who.user);
    if ('none' in home) return { kind: 'answer', status: 404, reason: `No home pool: ${home.reason}` };
    if (home.local) return { kind: 'answer', status: 500, reason: 'A REGISTER for a user of this pool reached the proxy' };
    const route = serversToTry(view.topology, home.pool, home.sequence, this.options.routable);
    if ('none' in route) return { kind: 'answer', status: 503, reason: route.reason };
    return this.serverHop({ pool: route.pool, targets: route.targets, index: 0, deadlineMs: this.options.clock.nowMs() + this.serverTriesTotalMs, outcomes: [] });
  }

  /** The hop to the current server of `servers`. */
  private serverHop(servers: ServerTries): Extract<NextHop, { kind: 'flow' }> {
    const target = servers.targets[servers.index]!;
    const connect = servers.connect;
    const flow = connect ? () => connect(target) : () => this.options.links.flowTo(target.server);
    return { kind: 'flow', flow, toUa: false, what: target.server, servers, recordRoute: servers.recordRoute, headers: servers.headers, spiral: servers.spiral, outward: servers.outward };
  }

  /**
   * The current server of a transaction's ServerTries failed (`why`): send the request to the next one,
   * or — none left, the time bound passed, or the caller cancelled — answer the caller 480 (INVITE) or
   * 503 with what happened at each server.
   */
  private nextServer(tx: ClientTransaction, why: string): void {
    const servers = tx.servers!;
    const failed = servers.targets[servers.index]!.server;
    servers.outcomes.push(`${failed}: ${why}`);
    this.options.logger.debug({ server: failed, why, pool: servers.pool }, 'proxy: server of another pool failed; trying the next');
    if (tx.cancelled) return this.finishLocally(tx, 487);
    servers.index++;
    if (servers.index >= servers.targets.length || this.options.clock.nowMs() >= servers.deadlineMs) {
      this.counters.interPoolExhausted++;
      return this.finishLocally(tx, tx.method === 'INVITE' ? 480 : 503, `No server of ${servers.pool} answered (${servers.outcomes.join('; ')})`.replace(/[\r\n]+/g, ' '));
    }
    this.counters.interPoolFailovers++;
    // A new client transaction for the new server: a fresh branch (the old one's late answers are stray).
    if (this.byBranch.get(tx.branch) === tx) this.byBranch.delete(tx.branch);
    tx.branch = `${BRANCH_PREFIX}${randomToken(this.options.random)}.${loopHash(tx.request, servers.spiral)}`;
    this.byBranch.set(tx.branch, tx);
    tx.sent = null;
    tx.outFlow = null;
    tx.provisional = false;
    this.dispatch(tx, tx.request, this.serverHop(servers), tx.branch, tx.dialogCreating, tx.inFlow, this.options.view());
  }

  // --- forwarding ------------------------------------------------------------------------------

  /** `fromClient`: `inFlow` is a user agent's own flow (not a server's link, nor an Edge relaying remote users). */
  private forward(inFlow: Flow, request: SipRequest, hop: Extract<NextHop, { kind: 'flow' }>, serverKey: string, view: PoolView, fromPeer: boolean, fromClient: boolean): void {
    const dialogCreating = DIALOG_CREATING.has(request.method) && !rawHasToTag(request);
    const stateless = request.method === 'ACK';
    const branch = `${BRANCH_PREFIX}${randomToken(this.options.random)}.${loopHash(request, hop.spiral)}`;
    let tx: ClientTransaction | null = null;
    if (!stateless) {
      tx = { branch, method: request.method, serverKey, inFlow, request, sent: null, outFlow: null, provisional: false, finalStatus: 0, cancelled: false, dialogCreating, timer: null, uaFlows: fromClient && inFlow.direction === 'inbound' ? [inFlow.id] : [] };
      if (hop.servers) tx.servers = hop.servers;
      if (hop.gatewayOutcome && request.method === 'INVITE') tx.gatewayOutcome = hop.gatewayOutcome;
      if (request.method === 'BYE') {
        const fromTag = from(request).tag;
        const toTag = to(request).tag;
        if (fromTag && toTag) tx.endsDialog = { callId: callId(request), fromTag, toTag };
      }
      this.byBranch.set(branch, tx);
      this.byServerKey.set(serverKey, tx);
      const timeoutMs = request.method === 'INVITE' ? this.inviteTimeoutMs : this.nonInviteTimeoutMs;
      const pending = tx;
      tx.timer = this.options.clock.setTimer(timeoutMs, () => this.timedOut(pending));
      // §16.2: a stateful proxy answers an INVITE with 100 Trying itself, at once.
      if (request.method === 'INVITE') inFlow.send(createResponse(request, 100));
      if (request.method === 'INVITE' && dialogCreating && !fromPeer) this.counters.invitesAccepted++;
    }
    if (dialogCreating) {
      const contact = headerValue(request, 'Contact');
      if (contact !== undefined) this.noteContactValue(contact, inFlow);
    }
    this.dispatch(tx, request, hop, branch, dialogCreating, inFlow, view);
  }

  /** Sends `request` (its transaction `tx`, none for an ACK) to `hop` once the flow is there. */
  private dispatch(tx: ClientTransaction | null, request: SipRequest, hop: Extract<NextHop, { kind: 'flow' }>, branch: string, dialogCreating: boolean, inFlow: Flow, view: PoolView): void {
    hop.flow().then(
      (outFlow) => {
        if (tx && (tx.cancelled || tx.finalStatus !== 0 || tx.branch !== branch)) {
          if (tx.cancelled && tx.finalStatus === 0) this.finishLocally(tx, 487);
          return;
        }
        const sent = this.outgoing(request, outFlow, branch, hop, dialogCreating, inFlow, view);
        if (tx) {
          tx.sent = sent;
          tx.outFlow = outFlow;
          if (hop.toUa && outFlow.direction === 'inbound' && !tx.uaFlows.includes(outFlow.id)) tx.uaFlows.push(outFlow.id);
        }
        if (outFlow.send(sent)) {
          this.counters.requestsForwarded++;
          const method = COUNTED_METHODS.has(request.method) ? request.method : 'other';
          this.counters.requestsForwardedByMethod[method] = (this.counters.requestsForwardedByMethod[method] ?? 0) + 1;
          if (tx?.servers) {
            this.counters.interPoolForwarded++;
            if (tx.method === 'INVITE') {
              const pending = tx;
              tx.tryTimer = this.options.clock.setTimer(this.serverTryTimeoutMs, () => {
                pending.tryTimer = null;
                if (pending.finalStatus === 0 && !pending.provisional && pending.branch === branch) this.nextServer(pending, `no answer within ${this.serverTryTimeoutMs} ms`);
              });
            }
          }
        } else if (tx?.servers) this.nextServer(tx, 'connection closed');
        else if (tx) this.finishLocally(tx, 503, 'Next hop connection closed');
      },
      (error: unknown) => {
        this.options.logger.debug({ err: error, to: hop.what }, 'proxy: next hop unreachable');
        if (tx && tx.finalStatus === 0 && tx.branch === branch && tx.servers) return this.nextServer(tx, `unreachable (${(error as Error).message})`);
        if (tx && tx.finalStatus === 0 && hop.unreachable !== undefined) return this.finishLocally(tx, 503, `${hop.unreachable} (${(error as Error).message})`.replace(/[\r\n]+/g, ' '));
        if (tx && tx.finalStatus === 0) this.finishLocally(tx, hop.toUa ? 480 : 503, hop.toUa ? 'Unreachable contact' : 'Next hop unreachable');
      },
    );
  }

  /** §16.6: the copy we send — new Request-URI when retargeted, our Via on top, Max-Forwards−1, Record-Route. */
  private outgoing(request: SipRequest, outFlow: Flow, branch: string, hop: Extract<NextHop, { kind: 'flow' }>, dialogCreating: boolean, inFlow: Flow, view: PoolView): SipRequest {
    const kept = hop.outward ? request.headers.filter((header) => header.name.toLowerCase() !== RELAYED_FLOW_HEADER_LOWER) : request.headers;
    let headers: Header[] = [ownVia(view, outFlow, branch), ...(hop.headers ?? []), ...kept];
    const hops = maxForwards(request);
    headers = withHeader(headers, 'Max-Forwards', String(hops === null ? 70 : hops - 1));
    if (dialogCreating) {
      // One Record-Route facing the UA side: the transport a UA on this hop uses to reach us.
      const facing = hop.toUa ? outFlow.transport : inFlow.transport;
      const index = headers.findIndex((header) => header.name === 'Record-Route');
      const recordRoute: Header = { name: 'Record-Route', value: hop.recordRoute ?? `<${ownUri(view, facing)};lr>` };
      headers = index < 0 ? [...headers.slice(0, 1), recordRoute, ...headers.slice(1)] : [...headers.slice(0, index), recordRoute, ...headers.slice(index)];
    }
    return { kind: 'request', method: request.method, uri: hop.uri ?? request.uri, headers, body: request.body };
  }

  private passUp(tx: ClientTransaction, response: SipResponse): void {
    const upstream: SipResponse = { ...response, headers: withoutFirst(response.headers, 'Via') };
    if (tx.inFlow.send(upstream)) this.counters.responsesForwarded++;
  }

  /** Remembers the Contact of a UA's answer to a dialog-creating request (its remote target). */
  private remember(response: SipResponse, tx: ClientTransaction): void {
    if (!tx.dialogCreating || !tx.outFlow) return;
    const contact = headerValue(response, 'Contact');
    if (contact !== undefined) this.noteContactValue(contact, tx.outFlow);
  }

  private noteContactValue(value: string, flow: Flow): void {
    try {
      this.noteContact(formatUri(parseNameAddr(value).uri), flow);
    } catch {
      // a malformed Contact names no flow
    }
  }

  /** Answers `request` ourselves, counted in `answeredLocally` (the limits step's 503 too). */
  answer(flow: Flow, request: SipRequest, status: number, reason?: string, headers: readonly Header[] = []): void {
    this.counters.answeredLocally[status] = (this.counters.answeredLocally[status] ?? 0) + 1;
    flow.send(createResponse(request, status, { toTag: randomToken(this.options.random, 10), reason, headers }));
  }

  /** Ends a transaction with an answer of our own (no final answer came from downstream). */
  private finishLocally(tx: ClientTransaction, status: number, reason?: string): void {
    tx.finalStatus = status;
    tx.timer?.cancel();
    this.answer(tx.inFlow, tx.request, status, reason);
    this.forget(tx);
  }

  /** Tells a PSTN call's gateway outcome, once. */
  private gatewayOutcome(tx: ClientTransaction, outcome: GatewayOutcome): void {
    const tell = tx.gatewayOutcome;
    tx.gatewayOutcome = undefined;
    tell?.(outcome);
  }

  private timedOut(tx: ClientTransaction): void {
    if (tx.finalStatus !== 0) return;
    this.counters.transactionsTimedOut++;
    this.gatewayOutcome(tx, 'timeout');
    if (tx.method === 'INVITE') this.cancelDownstream(tx);
    this.finishLocally(tx, tx.cancelled ? 487 : 408);
  }

  private forget(tx: ClientTransaction): void {
    tx.timer?.cancel();
    tx.tryTimer?.cancel();
    // §15.1.1: the dialog is over whatever the BYE's answer (a failed BYE ends it too).
    if (tx.endsDialog) {
      this.options.dialogs.end(tx.endsDialog.callId, tx.endsDialog.fromTag, tx.endsDialog.toTag);
      this.dialogHops.delete(dialogKey(tx.endsDialog.callId, tx.endsDialog.fromTag, tx.endsDialog.toTag));
    }
    if (this.byBranch.get(tx.branch) === tx) this.byBranch.delete(tx.branch);
    if (this.byServerKey.get(tx.serverKey) === tx) this.byServerKey.delete(tx.serverKey);
  }

  // --- CANCEL and ACK (§16.10, §17.1.1.3) ------------------------------------------------------

  private cancel(inFlow: Flow, request: SipRequest): void {
    const tx = this.byServerKey.get(serverKeyOf(inFlow, { ...request, method: 'INVITE' }));
    if (!tx) return this.answer(inFlow, request, 481);
    // The CANCEL is answered here, hop by hop; the INVITE gets its 487 from downstream.
    this.answer(inFlow, request, 200);
    if (tx.finalStatus === 0) this.cancelDownstream(tx);
  }

  private cancelDownstream(tx: ClientTransaction): void {
    if (tx.cancelled) return;
    tx.cancelled = true;
    const sent = tx.sent;
    const outFlow = tx.outFlow;
    if (!sent || !outFlow) return; // not sent yet: forward() sees `cancelled` and answers 487
    const keep = ['Route', 'From', 'To', 'Call-ID'];
    const headers: Header[] = [
      ownVia(this.options.view(), outFlow, tx.branch),
      ...sent.headers.filter((header) => keep.includes(header.name)),
      { name: 'CSeq', value: `${cseq(sent).seq} CANCEL` },
      { name: 'Max-Forwards', value: '70' },
    ];
    outFlow.send({ kind: 'request', method: 'CANCEL', uri: sent.uri, headers, body: Buffer.alloc(0) });
    // A UAS that never answers the CANCEL: give the caller its 487 after 64·T1 anyway.
    tx.timer?.cancel();
    tx.timer = this.options.clock.setTimer(this.nonInviteTimeoutMs, () => this.timedOut(tx));
  }

  /** The ACK of a non-2xx final answer to an INVITE we forwarded (hop-by-hop, same branch). */
  private ackDownstream(tx: ClientTransaction, response: SipResponse): void {
    const sent = tx.sent;
    const outFlow = tx.outFlow;
    if (!sent || !outFlow) return;
    const headers: Header[] = [
      ownVia(this.options.view(), outFlow, tx.branch),
      ...sent.headers.filter((header) => header.name === 'Route' || header.name === 'From' || header.name === 'Call-ID'),
      ...response.headers.filter((header) => header.name === 'To'),
      { name: 'CSeq', value: `${cseq(sent).seq} ACK` },
      { name: 'Max-Forwards', value: '70' },
    ];
    outFlow.send({ kind: 'request', method: 'ACK', uri: sent.uri, headers, body: Buffer.alloc(0) });
  }
}

/** The key of the server transaction a request belongs to (§17.2.3), per inbound flow. */
function serverKeyOf(flow: Flow, request: SipRequest): string {
  const branch = topVia(request)?.branch;
  const method = request.method === 'ACK' ? 'INVITE' : request.method;
  if (branch) return `${flow.id}|${branch}|${method}`;
  // RFC 2543 peers send no branch: Call-ID and CSeq number stand in for it.
  return `${flow.id}|${callId(request)}/${cseq(request).seq}|${method}`;
}

/** A telephone number as a Request-URI (RFC 3966 `tel:`, or a SIP URI with `user=phone`, RFC 3261 §19.1.1). */
export function isTelephoneUri(uri: Uri): boolean {
  if (isTelUri(uri)) return true;
  return isSipUri(uri) && uriParam(uri.params, 'user')?.value?.toLowerCase() === 'phone';
}

/** Is `address` (a flow's remote address) one of `gateways`? */
export function gatewayAt(gateways: readonly Gateway[], address: string): Gateway | undefined {
  const bare = address.startsWith('::ffff:') ? address.slice(7) : address;
  return gateways.find((gateway) => gateway.endpoint.address.toLowerCase() === bare.toLowerCase());
}

function endpointText(gateway: Gateway): string {
  const address = gateway.endpoint.address.includes(':') ? `[${gateway.endpoint.address}]` : gateway.endpoint.address;
  return `${address}:${gateway.endpoint.port}`;
}

function rawHasToTag(request: SipRequest): boolean {
  return to(request).tag !== null;
}

/**
 * §16.3 step 4 / §16.6 step 8: a hash of what identifies the request as it reached us. It rides in
 * our branch; the same request coming back with our Via holding the same hash is a loop (482), while
 * a spiral (a changed Request-URI or Route) hashes differently.
 */
export function loopHash(request: SipRequest, spiral = ''): string {
  const parts = [formatUri(request.uri), from(request).tag ?? '', to(request).tag ?? '', callId(request), String(cseq(request).seq), ...headerValues(request, 'Route'), ...proxyRequire(request), ...(spiral === '' ? [] : [spiral])];
  let hash = 0x811c9dc5;
  for (const part of parts) {
    for (let index = 0; index < part.length; index++) hash = Math.imul(hash ^ part.charCodeAt(index), 0x01000193);
    hash = Math.imul(hash ^ 0x1f, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

/** The servers of this server's pool whose Via (with a branch of ours) is on the request: where it has been. */
function poolServersPassed(request: SipRequest, view: PoolView): Set<string> {
  const passed = new Set<string>();
  for (const value of headerValues(request, 'Via')) {
    for (const part of value.split(',')) {
      const branch = /;\s*branch=([^;\s]+)/i.exec(part)?.[1];
      if (!branch || !branch.startsWith(BRANCH_PREFIX)) continue;
      const host = /^\s*SIP\s*\/\s*2\.0\s*\/\s*\S+\s+(\[[^\]]+\]|[^:;\s]+)/i.exec(part)?.[1];
      const server = host === undefined ? undefined : view.serverAt(host);
      if (server && server.fqdn !== view.self.fqdn && view.member(server.fqdn) !== undefined) passed.add(server.fqdn);
    }
  }
  return passed;
}

/** Is the request looping through us? (one of our Vias carries the hash of this very request). */
export function isLoop(request: SipRequest, view: PoolView): boolean {
  const values = headerValues(request, 'Via');
  if (values.length < 2) return false;
  const hash = loopHash(request);
  for (const value of values) {
    const branch = /;\s*branch=([^;\s]+)/i.exec(value)?.[1];
    if (!branch || !branch.startsWith(BRANCH_PREFIX) || !branch.endsWith(`.${hash}`)) continue;
    const host = /^\s*SIP\s*\/\s*2\.0\s*\/\s*\S+\s+(\[[^\]]+\]|[^:;\s]+)/i.exec(value)?.[1];
    if (host && view.isSelf(host)) return true;
  }
  return false;
}

const RELAYED_FLOW_HEADER_LOWER = RELAYED_FLOW_HEADER.toLowerCase();

/** How long a user handed over from this server is still reached over its old connection (Proxy.handedOver). */
const HANDED_OVER_KEEP_MS = 10_000;

/** Of a user's bindings, the one to ring: highest q, then the latest registered (no forking yet). */
function pickBinding(bindings: readonly BindingView[]): BindingView | undefined {
  let best: BindingView | undefined;
  for (const binding of bindings) {
    if (!best || (binding.q ?? 0.5) > (best.q ?? 0.5) || ((binding.q ?? 0.5) === (best.q ?? 0.5) && binding.registeredAtMs >= best.registeredAtMs)) best = binding;
  }
  return best;
}

function parseContactUri(contact: string): SipUri | null {
  try {
    const uri = parseNameAddr(`<${contact}>`).uri;
    return isSipUri(uri) ? uri : null;
  } catch {
    return null;
  }
}

