// The Front End server process: SIP over TCP/TLS on its own address, the registrar (REGISTER, reg
// event), the proxy, server-to-server links with the heartbeat over them, and the state it exposes
// (status(), users()) to the admin API. Its own state and the available-servers view are explicit
// values the registrar decision reads, so draining and admin blocking slot in later.
import { pino, type Logger } from 'pino';
import type { Flow } from '../sip/flow.ts';
import { createResponse, headerValue, type Header, type SipRequest, type SipResponse } from '../sip/message.ts';
import { from, maxForwards, parseNameAddr, proxyRequire, to, topVia } from '../sip/headers.ts';
import { checkRequire, answerFor } from '../sip/problem.ts';
import { isSipUri, parseUri } from '../sip/uri.ts';
import { SipTransport, type TlsClientOptions, type TransportStats } from '../sip/transport.ts';
import { systemClock, systemRandom, type Clock, type Random } from '../shared/clock.ts';
import { DnslbError, isDnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { LocationService, type LocationCounts, type RegistrarConfig } from '../registrar/location.ts';
import { canonicalUser, homeInSequence, redirectContactsInSequence, type RegistrarMode } from '../registrar/sequence.ts';
import { REGINFO_CONTENT_TYPE } from '../registrar/reg-event.ts';
import { Heartbeat } from '../pool/heartbeat.ts';
import { isAvailable, type MemberState, type ProbeResult, type ReportedState } from '../pool/member-state.ts';
import type { AdminState, LivenessRecord } from '../store/store.ts';
import type { Topology } from '../topology/schema.ts';
import { DialogCounter } from './dialogs.ts';
import { Drain, type DrainCause, type DrainLeft, type DrainProgress } from './drain.ts';
import { Handover, type HandoverStatus } from './handover.ts';
import { PoolView } from './pool-view.ts';
import { isLoop, Proxy, type ProxyCounters } from './proxy.ts';
import { RegistrarService, type RegistrarCounters } from './registrar-service.ts';
import { PeerLinks } from './s2s.ts';
import { LocalRequests, ownVia, randomToken, withoutFirst } from './wire.ts';

/** What a server says of itself in its OPTIONS answers (DESIGN §3 "Heartbeat"). */
export type OwnState = ReportedState;

/** Headers of an OPTIONS answer that carry the answering server's view of itself. */
export const STATE_HEADER = 'X-Dnslb-State';
export const TOPOLOGY_VERSION_HEADER = 'X-Dnslb-Topology-Version';
export const SERVER_HEADER = 'X-Dnslb-Server';

const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, REGISTER, INFO, UPDATE, REFER';
/** §8.2.2.3: options a REGISTER or reg SUBSCRIBE may require of us. */
const SUPPORTED = ['path', 'outbound'];

export interface FrontEndOptions {
  topology: Topology;
  /** The published version the topology came from; 0 for a file that was never published. */
  topologyVersion?: number;
  /** This server's FQDN (a frontend or director server of the topology). */
  server: string;
  /** Certificate and key to listen for TLS on the pool's TLS port; `ca` verifies peers on server-to-server TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** Server-to-server links: `tls` (default when `tls` is given) or `tcp`. */
  peerTransport?: 'tcp' | 'tls';
  /** Override the ports of the pool (tests); 0 picks a free one. */
  ports?: { tcp?: number; tls?: number };
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  idleTimeoutMs?: number;
  connectionsMax?: number;
  tlsHandshakeTimeoutMs?: number;
  registrar?: Partial<RegistrarConfig>;
  inviteTimeoutMs?: number;
}

export interface PeerStatus {
  state: MemberState;
  reportedState: ReportedState | null;
  topologyVersion: number | null;
  lastAnswerAtMs: number | null;
  misses: number;
  lastReason: string | null;
}

/** The JSON of `GET /status` (documented in src/frontend/README.md). */
export interface FrontEndStatus {
  server: string;
  pool: string;
  state: OwnState;
  topologyVersion: number;
  pid: number;
  startedAtMs: number;
  listening: { tcp: string | null; tls: string | null };
  bindings: LocationCounts;
  dialogs: { active: number; startedTotal: number; endedTotal: number };
  transactions: { pending: number };
  heartbeat: { intervalMs: number; peers: Record<string, PeerStatus> };
  /** The physical registrar sequence: the pool's servers that may take users now (self included). */
  available: string[];
  registrar: RegistrarCounters;
  /** Every REGISTER this server answered, by status class (draining's 302/503 and Require's 420 included). */
  registerAnswersByClass: Record<StatusClass, number>;
  proxy: ProxyCounters;
  links: { open: string[]; connectFailures: number };
  transport: TransportStats;
  memory: { rssBytes: number; heapUsedBytes: number };
  resilience: ResilienceStatus;
}

/** Drain, hand-over and store-driven state (src/frontend/README.md "Resilience"). */
export interface ResilienceStatus {
  /** This server's admin state as the store says (`active` without a store). */
  adminState: AdminState;
  /** Servers an operator took out of the pool (blocked anywhere, draining peers): no home for anyone. */
  adminUnavailable: string[];
  /** The published topology no longer lists this server: it drains and keeps its last pool view. */
  removedFromTopology: boolean;
  /** Peers added by a published version and not heard from yet (no home, no move target). */
  commissioning: string[];
  acceptingConnections: boolean;
  /** The current (or last) drain; null when this server never drained. */
  drain: DrainProgress | null;
  /** Out-of-dialog requests answered 302 while draining. */
  drainRedirects: number;
  handover: HandoverStatus;
  liveness: { reportsWritten: number; failures: number; lastReportAtMs: number | null; lastError: string | null };
}

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | '6xx';
export const STATUS_CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx'];

export interface UserEntry {
  user: string;
  mode: RegistrarMode;
  bindings: number;
  /** The user's home by this server's current view. */
  home: string | null;
}

export class FrontEndServer {
  readonly transport: SipTransport;
  readonly location: LocationService;
  readonly registrar: RegistrarService;
  readonly proxy: Proxy;
  readonly dialogs: DialogCounter;
  private view: PoolView;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly links: PeerLinks;
  private readonly local: LocalRequests;
  private readonly heartbeat: Heartbeat;
  private ownState: OwnState = 'active';
  /** Servers an operator took out (blocked, from the store); never the same as unhealthy. */
  private adminUnavailable: ReadonlySet<string> = new Set();
  /** Peers the store says are draining: they take no new calls, before heartbeat reports it too. */
  private adminDraining: ReadonlySet<string> = new Set();
  private listening: { tcp: string | null; tls: string | null } = { tcp: null, tls: null };
  private readonly startedAtMs: number;
  private readonly handover: Handover;
  private drain: Drain | null = null;
  private drainRedirects = 0;
  private readonly registerAnswers: Record<StatusClass, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, '6xx': 0 };
  private adminState: AdminState = 'active';
  private removedFromTopology = false;
  /** Peers added by a published version and not heard from yet. */
  private readonly commissioning = new Set<string>();
  private readonly changeListeners = new Set<() => void>();
  private readonly livenessStats: ResilienceStatus['liveness'] = { reportsWritten: 0, failures: 0, lastReportAtMs: null, lastError: null };

  constructor(private readonly options: FrontEndOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.startedAtMs = this.clock.nowMs();
    this.view = new PoolView(options.topology, options.server, options.topologyVersion ?? 0);
    this.transport = new SipTransport({ clock: this.clock, random: this.random, idleTimeoutMs: options.idleTimeoutMs, connectionsMax: options.connectionsMax, tlsHandshakeTimeoutMs: options.tlsHandshakeTimeoutMs });
    this.local = new LocalRequests(this.clock, this.random);
    this.dialogs = new DialogCounter({ clock: this.clock });
    const peerTransport = options.peerTransport ?? (options.tls ? 'tls' : 'tcp');
    const peerTls: TlsClientOptions | undefined = options.tls ? { ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key } : undefined;
    this.links = new PeerLinks(this.view, { transport: this.transport, linkTransport: peerTransport, tls: peerTls });
    this.location = new LocationService({ clock: this.clock, config: options.registrar, onExpired: (bindings) => this.registrar.expired(bindings) });
    const available = (fqdn: string): boolean => this.isAvailable(fqdn);
    this.proxy = new Proxy({
      clock: this.clock,
      random: this.random,
      logger: this.logger,
      transport: this.transport,
      links: this.links,
      location: this.location,
      dialogs: this.dialogs,
      view: () => this.view,
      available,
      reachable: (fqdn) => this.isReachable(fqdn),
      inviteTimeoutMs: options.inviteTimeoutMs,
    });
    this.registrar = new RegistrarService({
      clock: this.clock,
      random: this.random,
      logger: this.logger,
      location: this.location,
      local: this.local,
      flowById: (id) => this.transport.flow(id),
      view: () => this.view,
      available,
      onContact: (contact, flow) => this.proxy.noteContact(contact, flow),
    });
    const settings = this.view.topology.settings.heartbeat;
    this.heartbeat = new Heartbeat(this.view.self.fqdn, this.view.peers.map((peer) => peer.fqdn), (peer) => this.probe(peer), settings, this.clock);
    this.heartbeat.onChange((change) => {
      this.logger.info({ peer: change.peer, from: change.from, to: change.to, reason: change.health.lastReason }, 'heartbeat: peer changed state');
      if (isAvailable(change.to)) {
        // A peer came back (recovery), answered for the first time after a commission, or resumed
        // from a drain: the users held here whose home it is go back in batches.
        const commissioned = this.commissioning.delete(change.peer);
        this.handover.reconcile(commissioned ? 'commission' : 'recovery');
      }
      this.changed();
    });
    this.handover = new Handover({
      clock: this.clock,
      logger: this.logger,
      location: this.location,
      self: () => this.view.self.fqdn,
      sequencer: () => this.view.sequencer,
      movable: (fqdn) => this.isMovable(fqdn),
      deactivate: (user) => this.registrar.deactivate(user),
      busy: (user) => this.dialogs.inDialog(user),
      batchSize: this.view.topology.settings.rehome.batchSize,
      intervalMs: this.view.topology.settings.rehome.intervalMs,
      poolSize: this.view.members.length,
    });
    this.transport.on('message', (flow, message) => {
      try {
        if (message.kind === 'request') this.onRequest(flow, message);
        else this.onResponse(message);
      } catch (error) {
        // A header the parser let through but a typed accessor refuses: answer 400, keep serving.
        this.logger.debug({ err: error }, 'frontend: message refused');
        if (message.kind === 'request' && message.method !== 'ACK') flow.send(createResponse(message, 400, { toTag: randomToken(this.random, 10), reason: 'Malformed header' }));
      }
    });
    this.transport.on('flowClosed', (flow) => this.onFlowClosed(flow));
  }

  get self(): string {
    return this.view.self.fqdn;
  }

  get state(): OwnState {
    return this.ownState;
  }

  get heartbeatIntervalMs(): number {
    return this.view.topology.settings.heartbeat.intervalMs;
  }

  get topologyVersion(): number {
    return this.view.topologyVersion;
  }

  /** Sets the state this server announces by hand (tests); the drain sets it through startDrain/resumeDrain. */
  setOwnState(state: OwnState): void {
    this.ownState = state;
    this.changed();
  }

  /**
   * Servers taken out by an operator, as one set (tests inject a view with it). The store's admin
   * states come through applyAdminStates, which computes this set.
   */
  setAdminUnavailable(servers: Iterable<string>): void {
    const before = this.adminUnavailable;
    this.adminUnavailable = new Set([...servers].map((server) => server.toLowerCase()));
    // A server back from blocked (or from a drain) may be some users' home again.
    if ([...before].some((server) => !this.adminUnavailable.has(server))) this.handover.reconcile('recovery');
    this.changed();
  }

  /**
   * The admin state of every server as the store says (src/frontend/README.md "Resilience"):
   * `blocked` (any server) and `draining` (a peer) take a server out of the physical sequence;
   * this server's own `draining` starts its drain and `active` resumes it. Blocking moves nobody.
   */
  applyAdminStates(states: ReadonlyMap<string, AdminState>): void {
    const self = this.view.self.fqdn;
    const out: string[] = [];
    let own: AdminState = 'active';
    for (const [server, state] of states) {
      const fqdn = server.toLowerCase();
      if (fqdn === self) own = state;
      if (state === 'blocked' || (state === 'draining' && fqdn !== self)) out.push(fqdn);
    }
    this.adminDraining = new Set([...states].filter(([server, state]) => state === 'draining' && server.toLowerCase() !== self).map(([server]) => server.toLowerCase()));
    const ownBefore = this.adminState;
    this.adminState = own;
    if (own !== ownBefore) this.logger.info({ from: ownBefore, to: own }, 'frontend: admin state changed in the store');
    if (own === 'draining') this.startDrain('admin');
    else if (this.drain?.phase !== 'resumed' && this.drain?.cause === 'admin') this.resumeDrain();
    this.setAdminUnavailable(out);
  }

  /** A newly published topology: the sequences, the peers and the links follow it; users whose home changed move. */
  setTopology(topology: Topology, version: number): void {
    const self = this.view.self.fqdn;
    let view: PoolView;
    try {
      view = new PoolView(topology, self, version);
    } catch (error) {
      if (!isDnslbError(error, 'FRONTEND_UNKNOWN_SERVER')) throw error;
      // Decommissioned: keep the last pool view (its peers still serve), hand every user over, drain.
      if (!this.removedFromTopology) this.logger.warn({ version }, 'frontend: this server is no longer in the published topology; draining');
      this.removedFromTopology = true;
      this.startDrain('decommission');
      this.changed();
      return;
    }
    const before = new Set(this.view.members.map((member) => member.fqdn));
    const added = view.peers.map((peer) => peer.fqdn).filter((fqdn) => !before.has(fqdn));
    const removed = [...before].filter((fqdn) => view.member(fqdn) === undefined);
    this.view = view;
    this.links.setView(view);
    this.heartbeat.setPeers(view.peers.map((peer) => peer.fqdn));
    this.heartbeat.setSettings(topology.settings.heartbeat);
    this.handover.setRate(topology.settings.rehome.batchSize, topology.settings.rehome.intervalMs, view.members.length);
    for (const fqdn of added) this.commissioning.add(fqdn);
    for (const fqdn of [...this.commissioning]) if (view.member(fqdn) === undefined) this.commissioning.delete(fqdn);
    this.logger.info({ version, added, removed }, 'frontend: following a newly published topology');
    if (this.removedFromTopology) {
      // Listed again: back to work unless an operator wants it drained.
      this.removedFromTopology = false;
      if (this.drain?.cause === 'decommission' && this.adminState !== 'draining') this.resumeDrain();
    }
    this.handover.reconcile(removed.length > 0 && added.length === 0 ? 'decommission' : 'commission');
    this.changed();
  }

  /** The physical registrar sequence: may `fqdn` take users now? */
  isAvailable(fqdn: string): boolean {
    if (this.adminUnavailable.has(fqdn)) return false;
    if (fqdn === this.view.self.fqdn) return this.ownState === 'active' && !this.removedFromTopology;
    if (!this.view.member(fqdn)) return false;
    const health = this.heartbeat.view().get(fqdn);
    // A commissioned server is nobody's home until it has answered once (it may not run yet).
    if (health?.unknown && this.commissioning.has(fqdn)) return false;
    return isAvailable(health?.state ?? 'suspect');
  }

  /**
   * A peer that is up, takes calls and may hold bindings, whatever the admin state says (a blocked
   * server keeps its users until they leave): it has answered and says it is active, and the store
   * does not say it is draining. A draining server takes no new calls (DESIGN §1: its users are
   * handed over), so it is not reachable here.
   */
  isReachable(fqdn: string): boolean {
    // The store's word comes first: heartbeat learns of a drain up to an interval later.
    if (fqdn === this.view.self.fqdn || !this.view.member(fqdn) || this.adminDraining.has(fqdn)) return false;
    const health = this.heartbeat.view().get(fqdn);
    return health !== undefined && !health.unknown && (health.state === 'active' || health.state === 'suspect');
  }

  /**
   * Where users may be moved to: as isAvailable, but a peer must have answered (a server that just
   * started knows nothing of its peers yet), and this server counts while it keeps its users —
   * blocked included (blocking redirects new registrations; it does not move anyone).
   */
  isMovable(fqdn: string): boolean {
    const self = this.view.self.fqdn;
    if (fqdn === self) return this.ownState === 'active' && !this.removedFromTopology;
    if (this.adminUnavailable.has(fqdn) || !this.view.member(fqdn)) return false;
    const health = this.heartbeat.view().get(fqdn);
    if (!health || health.unknown) return false;
    return isAvailable(health.state);
  }

  /** Called when something liveness reports carry changed (own state, a peer's state). */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  // --- drain -------------------------------------------------------------------------------------

  /**
   * Starts draining (DESIGN §1): no new connections from clients (pool peers still get in), 302 for
   * new out-of-dialog requests, users handed to their next servers in batches, dialogs left to end;
   * drained when nothing is left or at `settings.drain.timeoutMs`. Idempotent.
   */
  startDrain(cause: DrainCause): void {
    if (this.drain && this.drain.phase !== 'resumed') return;
    const self = this.view.self;
    this.ownState = 'draining';
    this.transport.stopAccepting({
      except: (address) => {
        const member = this.view.memberAt(address);
        return member !== undefined && member.fqdn !== self.fqdn;
      },
    });
    const handedOverBefore = this.handover.handedOver('drain');
    const intervalMs = this.view.topology.settings.heartbeat.intervalMs;
    this.drain = new Drain({
      clock: this.clock,
      cause,
      timeoutMs: this.view.topology.settings.drain.timeoutMs,
      checkIntervalMs: Math.min(intervalMs, 1000),
      left: () => this.drainLeft(),
      handedOver: () => this.handover.handedOver('drain') - handedOverBefore,
      endLeft: () => this.endLeft(),
      onDrained: (progress) => {
        this.ownState = 'drained';
        this.logger.info({ cause: progress.cause, startedAt: new Date(progress.startedAtMs).toISOString(), finishedAt: new Date(progress.finishedAtMs ?? 0).toISOString(), handedOver: progress.handedOver, timedOut: progress.timedOut, endedAtTimeout: progress.endedAtTimeout }, 'drain: drained');
        this.changed();
      },
    });
    const left = this.drainLeft();
    this.logger.info({ cause, startedAt: new Date(this.clock.nowMs()).toISOString(), bindings: left.bindings, dialogs: left.dialogs, timeoutMs: this.view.topology.settings.drain.timeoutMs }, 'drain: started');
    this.handover.reconcile('drain');
    this.drain.check();
    this.changed();
  }

  /** Back to active (the operator resumed): accept again; peers see `active` and send the users back in batches. */
  resumeDrain(): void {
    if (!this.drain || this.drain.phase === 'resumed' || this.removedFromTopology) return;
    this.drain.resume();
    this.ownState = 'active';
    this.transport.startAccepting();
    this.logger.info({ resumedAt: new Date(this.clock.nowMs()).toISOString() }, 'drain: resumed');
    this.changed();
  }

  private drainLeft(): DrainLeft {
    return { bindings: this.location.counts().bindings, dialogs: this.dialogs.active() };
  }

  /** The drain timed out: end every binding (deactivated NOTIFY), forget the dialogs and close client flows. */
  private endLeft(): DrainLeft {
    const left = this.drainLeft();
    for (const user of [...this.location.users()]) this.registrar.deactivate(user);
    this.dialogs.endAll();
    for (const flow of this.transport.flows()) if (!this.isPeerAddress(flow.remoteAddress)) flow.close('local', 'drain timed out');
    this.logger.warn({ bindings: left.bindings, dialogs: left.dialogs }, 'drain: timed out; ended what was left');
    return left;
  }

  private isPeerAddress(address: string): boolean {
    const member = this.view.memberAt(address.startsWith('::ffff:') ? address.slice(7) : address);
    return member !== undefined && member !== this.view.self;
  }

  // --- liveness ----------------------------------------------------------------------------------

  /**
   * What this server reports to the store (DNS reads them, src/dns/zone.ts): its own state, and its
   * heartbeat view of each peer it has heard from or given up on. Reporter = this server.
   */
  livenessRecords(ttlMs: number): LivenessRecord[] {
    const atMs = this.clock.nowMs();
    const self = this.view.self.fqdn;
    const topologyVersion = this.view.topologyVersion;
    const ownState = this.ownState === 'active' ? (this.adminState === 'blocked' ? 'blocked' : 'active') : this.ownState;
    const records: LivenessRecord[] = [{ server: self, reporter: self, state: ownState, atMs, ttlMs, topologyVersion }];
    if (this.removedFromTopology) return records;
    for (const [peer, health] of this.heartbeat.view()) {
      // Never heard and not yet given up on: nothing to say (a server that just started knows nothing).
      if (health.unknown) continue;
      records.push({ server: peer, reporter: self, state: health.state, atMs, ttlMs, topologyVersion });
    }
    return records;
  }

  /** The store follower tells how writing the reports went (for status()). */
  noteLivenessReport(outcome: { ok: true } | { ok: false; error: string }): void {
    if (outcome.ok) {
      this.livenessStats.reportsWritten++;
      this.livenessStats.lastReportAtMs = this.clock.nowMs();
    } else {
      this.livenessStats.failures++;
      this.livenessStats.lastError = outcome.error;
    }
  }

  async start(): Promise<{ tcp: { host: string; port: number }; tls: { host: string; port: number } | null }> {
    const host = this.view.self.address;
    const tcp = await this.transport.listen({ transport: 'tcp', host, port: this.options.ports?.tcp ?? this.view.tcpPort });
    let tls: { host: string; port: number } | null = null;
    if (this.options.tls) {
      tls = await this.transport.listen({ transport: 'tls', host, port: this.options.ports?.tls ?? this.view.tlsPort, tls: { cert: this.options.tls.cert, key: this.options.tls.key } });
    }
    this.listening = { tcp: `${tcp.host}:${tcp.port}`, tls: tls ? `${tls.host}:${tls.port}` : null };
    this.location.start();
    this.heartbeat.start();
    return { tcp, tls };
  }

  async stop(): Promise<void> {
    this.drain?.resume();
    this.handover.cancel();
    this.heartbeat.stop();
    this.location.stop();
    this.registrar.close();
    this.proxy.close();
    this.local.close();
    this.links.close();
    await this.transport.close();
  }

  status(): FrontEndStatus {
    const peers: Record<string, PeerStatus> = {};
    for (const [peer, health] of this.heartbeat.view()) {
      peers[peer] = {
        state: health.state,
        reportedState: health.reportedState ?? null,
        topologyVersion: health.topologyVersion ?? null,
        lastAnswerAtMs: health.lastAnswerAtMs ?? null,
        misses: health.misses,
        lastReason: health.lastReason ?? null,
      };
    }
    const memory = process.memoryUsage();
    const dialogs = this.dialogs.stats();
    return {
      server: this.view.self.fqdn,
      pool: this.view.pool.fqdn,
      state: this.ownState,
      topologyVersion: this.view.topologyVersion,
      pid: process.pid,
      startedAtMs: this.startedAtMs,
      listening: this.listening,
      bindings: this.location.counts(),
      dialogs: { active: dialogs.active, startedTotal: dialogs.startedTotal, endedTotal: dialogs.endedTotal },
      transactions: { pending: this.proxy.pendingTransactions },
      heartbeat: { intervalMs: this.view.topology.settings.heartbeat.intervalMs, peers },
      available: this.view.members.map((member) => member.fqdn).filter((fqdn) => this.isAvailable(fqdn)),
      registrar: { ...this.registrar.counters },
      registerAnswersByClass: { ...this.registerAnswers },
      proxy: { ...this.proxy.counters, requestsForwardedByMethod: { ...this.proxy.counters.requestsForwardedByMethod }, answeredLocally: { ...this.proxy.counters.answeredLocally } },
      links: this.links.stats(),
      transport: this.transport.stats(),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
      resilience: {
        adminState: this.adminState,
        adminUnavailable: [...this.adminUnavailable],
        removedFromTopology: this.removedFromTopology,
        commissioning: [...this.commissioning],
        acceptingConnections: this.transport.isAccepting,
        drain: this.drain?.progress() ?? null,
        drainRedirects: this.drainRedirects,
        handover: this.handover.status(),
        liveness: { ...this.livenessStats },
      },
    };
  }

  /** The users registered here, with their mode and home by this server's view (`GET /users`). */
  users(offset = 0, limit: number = limits.frontendUsersPageMax): { total: number; users: UserEntry[] } {
    const all = [...this.location.users()];
    const page = all.slice(offset, offset + Math.min(limit, limits.frontendUsersPageMax));
    const users: UserEntry[] = [];
    for (const user of page) {
      const bindings = this.location.bindingsOf(user);
      if (bindings.length === 0) continue;
      const home = homeInSequence(this.view.sequencer.sequenceOfCanonical(user), (fqdn) => this.isAvailable(fqdn));
      users.push({ user, mode: bindings[0]!.mode, bindings: bindings.length, home: home?.server ?? null });
    }
    return { total: all.length, users };
  }

  /** One user: sequence, home, bindings here (`GET /users/:uri`). */
  user(uri: string): { user: string; sequence: string[]; home: string | null; mode: RegistrarMode | null; bindings: ReturnType<LocationService['bindingsOf']> } {
    const user = canonicalUser(uri);
    const sequence = this.view.sequencer.sequenceOfCanonical(user);
    const home = homeInSequence(sequence, (fqdn) => this.isAvailable(fqdn));
    return { user, sequence, home: home?.server ?? null, mode: home?.mode ?? null, bindings: this.location.bindingsOf(user) };
  }

  // --- SIP ---------------------------------------------------------------------------------------

  private onRequest(flow: Flow, request: SipRequest): void {
    const view = this.view;
    if (request.method !== 'ACK' && request.method !== 'CANCEL') {
      const required = proxyRequire(request);
      if (required.length > 0) {
        // §16.3 step 5: we support no proxy extension.
        flow.send(createResponse(request, 420, { toTag: randomToken(this.random, 10), headers: [{ name: 'Unsupported', value: required.join(', ') }] }));
        return;
      }
    }
    // §16.4: Routes naming us are ours to remove (we record-routed, or the client preloaded us).
    let headers = request.headers;
    let poppedOwnRoute = false;
    for (;;) {
      const route = headerValue({ headers }, 'Route');
      if (route === undefined) break;
      const uri = parseNameAddr(route, { requireBrackets: true }).uri;
      if (!isSipUri(uri) || !view.isSelf(uri.host)) break;
      headers = withoutFirst(headers, 'Route');
      poppedOwnRoute = true;
    }
    const routed: SipRequest = poppedOwnRoute ? { ...request, headers } : request;
    const routeLeft = headerValue(routed, 'Route') !== undefined;
    const uri = routed.uri;
    const addressedToUs = !routeLeft && isSipUri(uri) && uri.user === null && view.isServiceHost(uri.host);
    const hops = maxForwards(routed);

    if (this.ownState !== 'active' && this.redirectedAway(flow, routed, { routeLeft, addressedToUs, hops })) return;
    if (!routeLeft && routed.method === 'REGISTER') return this.answerLocally(flow, routed, () => this.registrar.handleRegister(flow, routed));
    if (!routeLeft && RegistrarService.isRegSubscribe(routed)) return this.answerLocally(flow, routed, () => this.registrar.handleSubscribe(flow, routed));
    if (routed.method === 'OPTIONS' && (addressedToUs || hops === 0)) return this.answerOptions(flow, routed);
    if (addressedToUs && routed.method !== 'CANCEL') {
      if (routed.method !== 'ACK') flow.send(createResponse(routed, 405, { toTag: randomToken(this.random, 10), headers: [{ name: 'Allow', value: 'OPTIONS, REGISTER, SUBSCRIBE' }] }));
      return;
    }
    if (hops !== null && hops <= 0 && routed.method !== 'CANCEL') {
      if (routed.method !== 'ACK') flow.send(createResponse(routed, 483, { toTag: randomToken(this.random, 10) }));
      return;
    }
    if (isLoop(routed, view)) {
      this.proxy.counters.loopsDetected++;
      if (routed.method !== 'ACK') flow.send(createResponse(routed, 482, { toTag: randomToken(this.random, 10) }));
      return;
    }
    const fromPeer = view.peers.some((peer) => peer.address === flow.remoteAddress);
    this.proxy.route(flow, routed, { poppedOwnRoute, fromPeer });
  }

  /**
   * A draining (or drained) server answers every new out-of-dialog request from a client (no To tag,
   * not over a pool link) with `302 Moved Temporarily` to the user's next available servers — REGISTER
   * included, so a user leaves with its first request. In-dialog requests, requests from peers and
   * OPTIONS to the server itself go on as usual. True when it answered.
   */
  private redirectedAway(flow: Flow, request: SipRequest, context: { routeLeft: boolean; addressedToUs: boolean; hops: number | null }): boolean {
    if (request.method === 'ACK' || request.method === 'CANCEL') return false;
    if (request.method === 'OPTIONS' && (context.addressedToUs || context.hops === 0)) return false;
    if (this.isPeerAddress(flow.remoteAddress)) return false;
    const toHeader = to(request);
    if (toHeader.tag !== null || context.routeLeft) return false;
    const view = this.view;
    const aor = request.method === 'REGISTER' || RegistrarService.isRegSubscribe(request) ? toHeader.uri : from(request).uri;
    const who = view.userOf(aor);
    if (who === null || !('user' in who)) return false;
    const contacts = redirectContactsInSequence(view.sequencer.sequenceOfCanonical(who.user), (fqdn) => this.isAvailable(fqdn));
    this.drainRedirects++;
    if (contacts.length === 0) {
      this.countRegisterAnswer(request, 503);
      flow.send(createResponse(request, 503, { toTag: randomToken(this.random, 10), reason: 'Draining, no other server available', headers: [{ name: 'Retry-After', value: '30' }] }));
      return true;
    }
    this.countRegisterAnswer(request, 302);
    flow.send(createResponse(request, 302, { toTag: randomToken(this.random, 10), reason: 'Moved Temporarily', headers: this.registrar.contactHeaders(contacts, flow) }));
    return true;
  }

  /** A request this server answers itself (REGISTER, reg SUBSCRIBE): Require checked first (§8.2.2.3). */
  private answerLocally(flow: Flow, request: SipRequest, handle: () => SipResponse): void {
    const bad = checkRequire(request, SUPPORTED);
    if (bad) {
      const answer = answerFor(bad, { toTag: randomToken(this.random, 10) });
      if (answer.response) {
        this.countRegisterAnswer(request, answer.response.status);
        flow.send(answer.response);
      }
      return;
    }
    const response = handle();
    this.countRegisterAnswer(request, response.status);
    flow.send(response);
  }

  /** For `registerAnswersByClass` (the metrics' REGISTER answers by class). */
  private countRegisterAnswer(request: SipRequest, status: number): void {
    if (request.method !== 'REGISTER') return;
    const statusClass = STATUS_CLASSES[Math.floor(status / 100) - 1];
    if (statusClass) this.registerAnswers[statusClass]++;
  }

  private answerOptions(flow: Flow, request: SipRequest): void {
    const headers: Header[] = [
      { name: 'Allow', value: ALLOW },
      { name: 'Accept', value: `application/sdp, ${REGINFO_CONTENT_TYPE}` },
      { name: 'Supported', value: SUPPORTED.join(', ') },
      { name: SERVER_HEADER, value: this.view.self.fqdn },
      { name: STATE_HEADER, value: this.ownState },
      { name: TOPOLOGY_VERSION_HEADER, value: String(this.view.topologyVersion) },
    ];
    flow.send(createResponse(request, 200, { toTag: randomToken(this.random, 10), headers }));
  }

  private onResponse(response: SipResponse): void {
    const branch = topVia(response)?.branch;
    if (branch && this.local.offer(branch, response)) return;
    this.proxy.response(response);
  }

  private onFlowClosed(flow: Flow): void {
    this.proxy.flowClosed(flow);
    this.registrar.flowClosed(flow.id);
    // RFC 5626 §5.2: an outbound binding dies with its flow. Plain RFC 3261 bindings stay until they
    // expire; the proxy reaches them by connecting to their Contact.
    const onFlow = this.location.bindingsOnFlow(flow.id);
    if (onFlow.length > 0 && onFlow.every((binding) => binding.instance !== undefined && binding.regId !== undefined)) this.location.dropFlow(flow.id);
  }

  /** The heartbeat's probe: OPTIONS over the link to the peer; its answer says the peer's state. */
  private async probe(peer: string): Promise<ProbeResult> {
    let flow: Flow;
    try {
      flow = await this.links.flowTo(peer);
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
    const view = this.view;
    const target = view.member(peer);
    if (!target) return { ok: false, reason: 'not in the pool' };
    const timeoutMs = view.topology.settings.heartbeat.intervalMs;
    const response = await this.local.send(
      flow,
      (branch) => ({
        kind: 'request',
        method: 'OPTIONS',
        uri: parseUri(`sip:${peer}`),
        headers: [
          ownVia(view, flow, branch),
          // §11: an OPTIONS with Max-Forwards 0 is answered by the first server; it never travels on.
          { name: 'Max-Forwards', value: '0' },
          { name: 'From', value: `<sip:${view.self.fqdn}>;tag=${randomToken(this.random, 10)}` },
          { name: 'To', value: `<sip:${peer}>` },
          { name: 'Call-ID', value: `hb-${randomToken(this.random, 20)}@${view.self.fqdn}` },
          { name: 'CSeq', value: '1 OPTIONS' },
          { name: STATE_HEADER, value: this.ownState },
          { name: TOPOLOGY_VERSION_HEADER, value: String(view.topologyVersion) },
        ],
        body: Buffer.alloc(0),
      }),
      timeoutMs,
    );
    if (!response) return { ok: false, reason: 'no answer' };
    if (response.status !== 200) return { ok: false, reason: `answered ${response.status}` };
    const reported = headerValue(response, STATE_HEADER)?.trim();
    const version = Number(headerValue(response, TOPOLOGY_VERSION_HEADER) ?? 'NaN');
    if (reported !== 'active' && reported !== 'draining' && reported !== 'drained') return { ok: false, reason: `no ${STATE_HEADER} in the answer` };
    return { ok: true, reportedState: reported, topologyVersion: Number.isInteger(version) ? version : 0 };
  }
}

/** Reads PEM files for the TLS options; FRONTEND_TLS when one cannot be read. */
export async function readTlsFiles(files: { cert?: string; key?: string; ca?: string }): Promise<FrontEndOptions['tls']> {
  if (files.cert === undefined && files.key === undefined) return undefined;
  if (files.cert === undefined || files.key === undefined) throw new DnslbError('FRONTEND_TLS', '--tls-cert and --tls-key go together');
  const { readFile } = await import('node:fs/promises');
  const read = async (file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new DnslbError('FRONTEND_TLS', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
    }
  };
  return { cert: await read(files.cert), key: await read(files.key), ca: files.ca === undefined ? undefined : await read(files.ca) };
}
