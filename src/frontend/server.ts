// The Front End server process, its composition root: SIP over TCP/TLS on its own address, the
// registrar, the proxy, server-to-server links with the heartbeat over them, the pool membership
// table (src/pool/membership.ts), the request path of its role (request-path.ts: an ordered list of
// steps), drain and hand-over, and the state it exposes (status(), users()) to the admin API.
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { Authenticator } from '../auth/authenticate.ts';
import { UserTable } from '../auth/user-table.ts';
import type { UserRecord } from '../store/users.ts';
import type { Flow } from '../sip/flow.ts';
import { createResponse, type SipResponse } from '../sip/message.ts';
import { topVia } from '../sip/headers.ts';
import { SipTransport, type TlsClientOptions } from '../sip/transport.ts';
import { systemClock, systemRandom, type Clock, type Random } from '../shared/clock.ts';
import { DnslbError, isDnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { LocationService, type RegistrarConfig } from '../registrar/location.ts';
import { Heartbeat } from '../pool/heartbeat.ts';
import { availableMembers } from '../pool/membership.ts';
import type { AdminState, LivenessRecord, LivenessReport } from '../store/store.ts';
import type { Topology } from '../topology/schema.ts';
import { DialogCounter } from './dialogs.ts';
import type { DrainCause } from './drain.ts';
import { DrainControl } from './drain-control.ts';
import { Handover } from './handover.ts';
import { UserHomes } from './homes.ts';
import { MembershipControl } from './membership-control.ts';
import { probePeer } from './heartbeat-probe.ts';
import { PoolView } from './pool-view.ts';
import { Proxy } from './proxy.ts';
import { RegisterAnswers } from './register-answers.ts';
import { RegistrarService } from './registrar-service.ts';
import { buildPath, ROLE_OF_KIND, type EdgeRole, type PathServices, type RequestPath } from './request-path.ts';
import { PeerLinks } from './s2s.ts';
import type { TlsFiles } from './tls-files.ts';
import type { InterServerTransport } from './peer-identity.ts';
import { peerStatuses, userDetail, userPage, type AuthStatus, type FrontEndStatus, type LivenessStats, type OwnState, type UserDetail, type UserEntry } from './status.ts';
import { AuthenticateStep } from './steps/authenticate.ts';
import { RequestContext, runPath } from './steps/step.ts';
import { LocalRequests, randomToken } from './wire.ts';

export type { FrontEndStatus, OwnState, PeerStatus, ResilienceStatus, StatusClass, UserDetail, UserEntry } from './status.ts';
export { STATUS_CLASSES } from './status.ts';
export { SERVER_HEADER, STATE_HEADER, TOPOLOGY_VERSION_HEADER } from './steps/options.ts';

export interface FrontEndOptions {
  topology: Topology;
  /** The published version the topology came from; 0 for a file that was never published. */
  topologyVersion?: number;
  /** This server's FQDN (a frontend or director server of the topology). */
  server: string;
  /**
   * Certificate and key to listen for TLS on the pool's TLS port. With TLS between servers
   * (settings.interServer.transport `tls`, the default) they are also this server's identity on its
   * links, and `ca` (the pool CA) verifies the peers': all three are then required (FRONTEND_TLS).
   */
  tls?: TlsFiles;
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
  /**
   * The user directory and the pool's nonce secret (the store's `user` and `authSecret`): needed when
   * the topology turns `settings.auth` on (FRONTEND_AUTH_NO_DIRECTORY otherwise).
   */
  auth?: { secret: Buffer };
  /**
   * An edge server's role (src/edge/edge-server.ts builds it): its steps from the server's services,
   * what a drain hands over instead of bindings, and its part of status().
   */
  edge?: EdgeExtension;
}

/** What src/edge/ adds to a server of an edge pool; the frontend folder knows only this shape. */
export interface EdgeExtension {
  role: (services: Omit<PathServices, 'edge'>) => EdgeRole;
  /** The drain's work on an Edge: its remote users (not bindings) are handed over. */
  drain: EdgeDrainWork;
  status: () => Record<string, unknown>;
}

export interface EdgeDrainWork {
  /** Remote users still on this Edge (the drain's `bindingsLeft`). */
  left: () => number;
  /** Starts handing them over (rate-limited); `cancel` stops (resumed). */
  start: () => void;
  cancel: () => void;
  handedOver: () => number;
  /** The drain timed out: let go of every remote user. */
  endLeft: () => void;
}

export class FrontEndServer {
  readonly transport: SipTransport;
  readonly location: LocationService;
  readonly registrar: RegistrarService;
  readonly proxy: Proxy;
  readonly dialogs: DialogCounter;
  private view: PoolView;
  /** Who of the pool is available, reachable, movable (pool/membership.ts), and what follows a change. */
  private readonly members: MembershipControl;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly links: PeerLinks;
  private readonly local: LocalRequests;
  private readonly heartbeat: Heartbeat;
  private readonly handover: Handover;
  private readonly drain: DrainControl;
  private readonly path: RequestPath;
  /**
   * The user directory in memory (src/auth/user-table.ts): HA1s for the digest check, home pools and
   * numbers for routing; loaded and kept current by the store follower (setUsers, setUser).
   */
  readonly directory = new UserTable();
  /** Users' home pools: the directory's assignments over the topology's rules. */
  readonly homes = new UserHomes(this.directory);
  private fromOtherPools = 0;
  /** Built when a user directory is given; used while the topology's settings.auth.enabled is on. */
  private readonly authenticator: Authenticator | null;
  private authOn: Authenticator | null = null;
  private readonly authenticateStep: AuthenticateStep;
  /** Reused for every request (they are handled one at a time): no allocation per request for it. */
  private readonly context = new RequestContext();
  private readonly registerAnswers = new RegisterAnswers();
  private listening: { tcp: string | null; tls: string | null } = { tcp: null, tls: null };
  private readonly startedAtMs: number;
  private readonly changeListeners = new Set<() => void>();
  /** How this server links to and recognises other servers (settings.interServer.transport at start). */
  readonly interServer: InterServerTransport;
  private readonly livenessStats: LivenessStats = { reportsWritten: 0, failures: 0, lastReportAtMs: null, lastError: null };

  constructor(private readonly options: FrontEndOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.startedAtMs = this.clock.nowMs();
    // The transport between servers is fixed for the life of the process (a later version that changes
    // it is logged in setTopology and takes effect at the next start).
    this.interServer = options.topology.settings.interServer.transport;
    this.view = new PoolView(options.topology, options.server, options.topologyVersion ?? 0, this.interServer);
    if (this.interServer === 'tls' && (options.tls === undefined || options.tls.ca === undefined)) {
      throw new DnslbError(
        'FRONTEND_TLS',
        `${this.view.self.fqdn}: links between servers use mutual TLS (settings.interServer.transport: tls, the default), and this server was given ${options.tls ? 'no CA' : 'no certificate'}: start it with --tls-cert, --tls-key and --tls-ca (the pool CA; \`dnslb certs issue --server ${this.view.self.fqdn}\` makes them), or publish settings.interServer.transport: tcp`,
      );
    }
    this.transport = new SipTransport({ clock: this.clock, random: this.random, idleTimeoutMs: options.idleTimeoutMs, connectionsMax: options.connectionsMax, tlsHandshakeTimeoutMs: options.tlsHandshakeTimeoutMs });
    this.local = new LocalRequests(this.clock, this.random);
    this.dialogs = new DialogCounter({ clock: this.clock });
    // Over TLS this server presents its own certificate and verifies the peer's against the pool CA.
    const peerTls: TlsClientOptions | undefined = this.interServer === 'tls' ? { ca: options.tls!.ca, cert: options.tls!.cert, key: options.tls!.key } : undefined;
    this.links = new PeerLinks(this.view, { transport: this.transport, linkTransport: this.interServer, tls: peerTls });
    this.location = new LocationService({ clock: this.clock, config: options.registrar, onExpired: (bindings) => this.registrar.expired(bindings) });
    const view = (): PoolView => this.view;
    const probeContext = { view, ownState: () => this.members.table.ownState, links: this.links, local: this.local, random: this.random };
    this.heartbeat = new Heartbeat(this.view.self.fqdn, this.view.peers.map((peer) => peer.fqdn), (peer) => probePeer(peer, probeContext), this.view.topology.settings.heartbeat, this.clock);
    this.members = new MembershipControl({
      self: this.view.self.fqdn,
      members: this.view.members.map((member) => member.fqdn),
      heartbeat: this.heartbeat.view(),
      logger: this.logger,
      reconcile: (reason) => this.handover.reconcile(reason),
      drain: () => this.drain,
      changed: () => this.changed(),
    });
    this.heartbeat.onChange((change) => this.members.peerChanged(change));
    // A peer's link reset is news the heartbeat should not wait a whole interval to check.
    this.links.onLost((peer) => this.heartbeat.linkLost(peer));
    const { available, reachable, movable, routable, ownState, doubted } = this.members;
    this.proxy = new Proxy({ clock: this.clock, random: this.random, logger: this.logger, transport: this.transport, links: this.links, location: this.location, dialogs: this.dialogs, view, available, reachable, doubted, routable, homes: this.homes, inviteTimeoutMs: options.inviteTimeoutMs });
    this.registrar = new RegistrarService({
      clock: this.clock,
      random: this.random,
      logger: this.logger,
      location: this.location,
      local: this.local,
      flowById: (id) => this.transport.flow(id),
      view,
      available,
      doubted,
      onContact: (contact, flow) => this.proxy.noteContact(contact, flow),
    });
    this.handover = new Handover({
      clock: this.clock,
      logger: this.logger,
      location: this.location,
      self: () => this.view.self.fqdn,
      sequencer: () => this.view.sequencer,
      movable,
      deactivate: (user) => {
        const ended = this.registrar.deactivate(user);
        this.proxy.noteHandedOver(ended);
        return ended;
      },
      busy: (user) => this.dialogs.inDialog(user),
      batchSize: this.view.topology.settings.rehome.batchSize,
      intervalMs: this.view.topology.settings.rehome.intervalMs,
      poolSize: this.view.members.length,
      homedOnOtherPool: (user) => {
        const home = this.homes.homePoolOf(this.view, user);
        // A user with no home at all stays: deactivating it would only make it fail to register anywhere.
        return !('none' in home) && home.pool !== this.view.pool.fqdn;
      },
    });
    this.drain = new DrainControl({
      clock: this.clock,
      logger: this.logger,
      transport: this.transport,
      location: this.location,
      dialogs: this.dialogs,
      handover: this.handover,
      registrar: this.registrar,
      view,
      setOwnState: (state) => this.members.setOwnState(state),
      removedFromTopology: () => this.members.table.removedFromTopology,
      changed: () => this.changed(),
      edge: options.edge?.drain,
    });
    const authSettings = this.view.topology.settings.auth;
    this.authenticator = options.auth
      ? new Authenticator({ directory: this.directory, secret: options.auth.secret, realms: this.view.topology.sipDomains, clock: this.clock, randomBytes, config: { md5: authSettings.algorithms.includes('MD5'), algorithms: authSettings.algorithms, nonceLifetimeMs: authSettings.nonceLifetimeMs } })
      : null;
    this.applyAuthSettings(this.view.topology);
    this.authenticateStep = new AuthenticateStep({ auth: () => this.authOn, clock: this.clock, random: this.random, logger: this.logger, registerAnswers: this.registerAnswers });
    const services: Omit<PathServices, 'edge'> = { view, ownState, available, routable, homes: this.homes, random: this.random, proxy: this.proxy, registrar: this.registrar, registerAnswers: this.registerAnswers, authenticate: this.authenticateStep };
    const role = ROLE_OF_KIND[this.view.pool.kind];
    if (role === 'edge' && options.edge === undefined) throw new DnslbError('EDGE_NO_ACCESS_EDGE', `${options.server} is an edge server: it runs as an Edge (src/edge/edge-server.ts)`);
    this.path = buildPath(role, { ...services, edge: role === 'edge' ? options.edge!.role(services) : undefined });
    this.transport.on('message', (flow, message) => {
      try {
        if (message.kind === 'request') {
          runPath(this.path.steps, this.context.reset(flow, message));
          if (this.context.fromServer) this.fromOtherPools++;
        } else this.onResponse(message);
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
    return this.members.table.ownState;
  }

  get heartbeatIntervalMs(): number {
    return this.view.topology.settings.heartbeat.intervalMs;
  }

  get topologyVersion(): number {
    return this.view.topologyVersion;
  }

  /** The published topology this server follows now. */
  get topology(): Topology {
    return this.view.topology;
  }

  /** Sets the state this server announces by hand (tests); the drain sets it through startDrain/resumeDrain. */
  setOwnState(state: OwnState): void {
    this.members.setOwnState(state);
    this.changed();
  }

  /** Servers taken out by an operator, as one set (tests inject a view with it; the store's come through applyAdminStates). */
  setAdminUnavailable(servers: Iterable<string>): void {
    this.members.setAdminUnavailable(servers);
  }

  /** The admin state of every server as the store says (membership-control.ts). */
  applyAdminStates(states: ReadonlyMap<string, AdminState>): void {
    this.members.applyAdminStates(states);
  }

  /** A newly published topology: the sequences, the peers and the links follow it; users whose home changed move. */
  setTopology(topology: Topology, version: number): void {
    let view: PoolView;
    try {
      view = new PoolView(topology, this.view.self.fqdn, version, this.interServer);
    } catch (error) {
      if (!isDnslbError(error, 'FRONTEND_UNKNOWN_SERVER')) throw error;
      // Decommissioned: keep the last pool view (its peers still serve), hand every user over, drain.
      return this.members.removedFromTopology(version);
    }
    this.applyAuthSettings(topology);
    if (topology.settings.interServer.transport !== this.interServer) {
      this.logger.warn({ version, published: topology.settings.interServer.transport, running: this.interServer }, `frontend: version ${version} sets settings.interServer.transport ${topology.settings.interServer.transport}; links stay ${this.interServer} until this server restarts`);
    }
    this.view = view;
    this.links.setView(view);
    this.heartbeat.setPeers(view.peers.map((peer) => peer.fqdn));
    this.heartbeat.setSettings(topology.settings.heartbeat);
    this.handover.setRate(topology.settings.rehome.batchSize, topology.settings.rehome.intervalMs, view.members.length);
    this.members.setMembers(view.members.map((member) => member.fqdn), version);
    // New home rules or pools may home some users on another pool now.
    this.handover.reconcileMoves();
  }

  /**
   * The whole user directory (at start, or when the store asks for a full read again). Users held
   * here whose home pool is now another one are handed over there, rate-limited (Handover moves).
   */
  setUsers(records: readonly UserRecord[]): void {
    this.directory.replace(records);
    this.handover.reconcileMoves();
  }

  /**
   * One user's change (its record now; undefined: removed), in effect for the next request: a
   * disabled user's next REGISTER is refused, a moved user's next one redirected to its new home,
   * and its bindings here handed over there when its home pool is another one now.
   */
  setUser(uri: string, record: UserRecord | undefined): void {
    const change = this.directory.set(uri, record);
    if (change.homePoolBefore !== change.homePoolAfter) this.handover.reconcileMovesOf([uri]);
  }

  /** Authentication follows the topology's settings.auth (its realms: the SIP domains). */
  private applyAuthSettings(topology: Topology): void {
    const settings = topology.settings.auth;
    if (settings.enabled && this.authenticator === null) {
      throw new DnslbError('FRONTEND_AUTH_NO_DIRECTORY', `${this.options.server}: the topology turns settings.auth on, but this server was given no user directory (start it with --store or --data-dir)`);
    }
    if (this.authenticator !== null) {
      this.authenticator.setRealms(topology.sipDomains);
      this.authenticator.config.md5 = settings.algorithms.includes('MD5');
      this.authenticator.config.algorithms = settings.algorithms;
      this.authenticator.config.nonceLifetimeMs = settings.nonceLifetimeMs;
    }
    this.authOn = settings.enabled ? this.authenticator : null;
  }

  /** Whether clients are authenticated now (settings.auth.enabled with a user directory). */
  get authenticating(): boolean {
    return this.authOn !== null;
  }

  /** The authenticator's and its limiter's counters (status().auth, metrics); null without a user directory. */
  private authStatus(): AuthStatus | null {
    const auth = this.authenticator;
    if (auth === null) return null;
    return { enabled: this.authOn !== null, boundFlows: auth.boundFlows, users: this.directory.size, counters: { ...auth.counters }, limiter: { ...auth.limiter.counters } };
  }

  /** The physical registrar sequence: may `fqdn` take users now? (pool/membership.ts) */
  isAvailable(fqdn: string): boolean {
    return this.members.available(fqdn);
  }

  /** Called when something liveness reports carry changed (own state, a peer's state). */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  /** Starts draining (drain-control.ts). Idempotent. */
  startDrain(cause: DrainCause): void {
    this.drain.start(cause);
  }

  /** Back to active (the operator resumed): accept again; peers send the users back in batches. */
  resumeDrain(): void {
    this.drain.resume();
  }

  /** Every server's liveness reports the store holds now (store-follower.ts): the pool's consensus. */
  applyLiveness(records: readonly LivenessRecord[]): void {
    this.members.applyLiveness(records, this.clock.nowMs());
  }

  /** What this server reports to the store (pool/membership.ts livenessRecords): its whole view as one report. */
  livenessReport(ttlMs: number): LivenessReport {
    const at = { atMs: this.clock.nowMs(), ttlMs, topologyVersion: this.view.topologyVersion };
    const states = this.members.livenessRecords(at).map(({ server, state }) => ({ server, state }));
    return { reporter: this.self, ...at, states };
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
      // Clients and peers share the port: a certificate is asked for, not required; only one the pool
      // CA signed for a topology server's FQDN makes a peer (peer-identity.ts).
      const peers = this.interServer === 'tls';
      tls = await this.transport.listen({
        transport: 'tls',
        host,
        port: this.options.ports?.tls ?? this.view.tlsPort,
        tls: { cert: this.options.tls.cert, key: this.options.tls.key, ca: peers ? this.options.tls.ca : undefined, clientCertificates: peers ? 'optional' : 'none' },
      });
    }
    if (this.interServer === 'tcp') {
      this.logger.warn({ server: this.view.self.fqdn }, 'frontend: settings.interServer.transport is tcp: links between servers are plain TCP and a peer is recognised by its source address alone; any process that can use a server\'s address is trusted as that server');
    }
    this.listening = { tcp: `${tcp.host}:${tcp.port}`, tls: tls ? `${tls.host}:${tls.port}` : null };
    this.location.start();
    this.heartbeat.start();
    return { tcp, tls };
  }

  async stop(): Promise<void> {
    this.drain.stop();
    this.authenticateStep.close();
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
    const memory = process.memoryUsage();
    const dialogs = this.dialogs.stats();
    const table = this.members.table;
    return {
      server: this.view.self.fqdn,
      pool: this.view.pool.fqdn,
      state: table.ownState,
      topologyVersion: this.view.topologyVersion,
      pid: process.pid,
      startedAtMs: this.startedAtMs,
      listening: this.listening,
      bindings: this.location.counts(),
      dialogs: { active: dialogs.active, startedTotal: dialogs.startedTotal, endedTotal: dialogs.endedTotal },
      transactions: { pending: this.proxy.pendingTransactions },
      heartbeat: { intervalMs: this.view.topology.settings.heartbeat.intervalMs, peers: peerStatuses(this.heartbeat.view()) },
      available: availableMembers(table),
      registrar: { ...this.registrar.counters },
      registerAnswersByClass: { ...this.registerAnswers.byClass },
      proxy: { ...this.proxy.counters, requestsForwardedByMethod: { ...this.proxy.counters.requestsForwardedByMethod }, answeredLocally: { ...this.proxy.counters.answeredLocally } },
      links: this.links.stats(),
      roles: { role: this.path.role, assignments: this.homes.assigned, numbers: this.homes.numbered, redirectHome: { ...this.path.redirectHome.counters }, fromOtherPools: this.fromOtherPools, notRoutable: this.notRoutable() },
      transport: this.transport.stats(),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
      resilience: {
        adminState: table.adminState,
        adminUnavailable: [...table.adminUnavailable],
        removedFromTopology: table.removedFromTopology,
        commissioning: [...table.commissioning],
        acceptingConnections: this.transport.isAccepting,
        drain: this.drain.progress(),
        drainRedirects: this.path.drain.redirects,
        handover: this.handover.status(),
        liveness: { ...this.livenessStats },
      },
      auth: this.authStatus(),
      edge: this.options.edge?.status() ?? null,
    };
  }

  /** The SIP servers of other pools that may get no traffic now. */
  private notRoutable(): string[] {
    return this.view.topology.pools.filter((pool) => pool !== this.view.pool && pool.kind !== 'edge').flatMap((pool) => pool.servers.map((server) => server.fqdn)).filter((fqdn) => !this.members.routable(fqdn));
  }

  /** The users registered here, with their mode and home by this server's view (`GET /users`). */
  users(offset = 0, limit: number = limits.frontendUsersPageMax): { total: number; users: UserEntry[] } {
    return userPage(this.location, this.view, this.members.available, offset, limit);
  }

  /** One user: sequence, home, bindings here (`GET /users/:uri`). */
  user(uri: string): UserDetail {
    return userDetail(uri, this.location, this.view, this.members.available);
  }

  private onResponse(response: SipResponse): void {
    const branch = topVia(response)?.branch;
    if (branch && this.local.offer(branch, response)) return;
    this.proxy.response(response);
  }

  private onFlowClosed(flow: Flow): void {
    this.proxy.flowClosed(flow);
    this.registrar.flowClosed(flow.id);
    this.authenticator?.flowClosed(flow.id);
    this.authenticateStep.linkClosed(flow.id, this.authenticator);
    // RFC 5626 §5.2: an outbound binding dies with its flow. Plain RFC 3261 bindings stay until they
    // expire; the proxy reaches them by connecting to their Contact.
    const onFlow = this.location.bindingsOnFlow(flow.id);
    if (onFlow.length > 0 && onFlow.every((binding) => binding.instance !== undefined && binding.regId !== undefined)) this.location.dropFlow(flow.id);
  }
}
