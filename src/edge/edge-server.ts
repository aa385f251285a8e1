// An edge server process (DESIGN §7 "Edge", issue 14): the SIP server of src/frontend/ in the Edge role
// — heartbeat with the edge pool, liveness, drain/block/decommission, admin status — plus its external
// interface: TLS on its Access Edge address (the client port, and the federation port when it differs),
// where remote users connect. Its internal interface is the server's own address (TLS 5061 / TCP 5060).
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { PartnerEdges, type PartnerEndpoint } from '../frontend/federation.ts';
import { FrontEndServer, type FrontEndOptions } from '../frontend/server.ts';
import type { PathServices } from '../frontend/request-path.ts';
import type { Step } from '../frontend/steps/step.ts';
import { PoolView } from '../frontend/pool-view.ts';
import type { Flow } from '../sip/flow.ts';
import { EdgeFlows } from './edge-flows.ts';
import { EdgeHandover } from './handover.ts';
import { edgeInterfacesOf, type EdgeInterfaces } from './interfaces.ts';
import { buildEdgeRole, type EdgeSteps } from './path.ts';
import { FederationStep } from './steps/federation.ts';
import { PartnerIdentity } from './partner-identity.ts';
import { federatingEdgePool } from '../topology/federation.ts';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { systemClock, systemRandom } from '../shared/clock.ts';
import { pino } from 'pino';

export interface EdgeServerOptions extends Omit<FrontEndOptions, 'edge'> {
  /** Override the external ports (tests); 0 picks a free one. */
  externalPorts?: { client?: number; federation?: number };
  /**
   * Builds another federation step than the topology's (steps/federation.ts), placed before edge-route
   * (path.ts): tests plug in their own. It gets the server's services, the client flows and the interfaces.
   */
  federation?: (parts: { services: Omit<PathServices, 'edge'>; flows: EdgeFlows; interfaces: EdgeInterfaces }) => Step;
}

export interface EdgeListening {
  tcp: { host: string; port: number };
  tls: { host: string; port: number } | null;
  /** The external interface: `tls://address:port` (or tcp:// without a certificate, for tests only). */
  external: string[];
}

export class EdgeServer {
  readonly server: FrontEndServer;
  readonly flows: EdgeFlows;
  readonly interfaces: EdgeInterfaces;
  private readonly handover: EdgeHandover;
  private steps: EdgeSteps | null = null;
  private federation: FederationStep | null = null;
  /** Open connections to partners' Access Edges, by "address:port" (kept and reused, like server links). */
  private readonly partnerLinks = new Map<string, Promise<Flow>>();
  /** The open partner connections, by flow: a closed one leaves partnerLinks. */
  private readonly partnerLinkOf = new Map<Flow, { key: string; opening: Promise<Flow> }>();
  /** The federation port as bound (tests may ask for port 0). */
  private federationPortBound: number | undefined;
  private external: string[] = [];
  private readonly logger: Logger;

  constructor(private readonly options: EdgeServerOptions) {
    const clock = options.clock ?? systemClock;
    const random = options.random ?? systemRandom;
    const logger = options.logger ?? pino({ level: 'silent' });
    this.logger = logger;
    const view = new PoolView(options.topology, options.server, options.topologyVersion ?? 0);
    this.interfaces = edgeInterfacesOf(view.pool, view.self.fqdn);
    this.flows = new EdgeFlows();
    // The internal side links to servers as every server does (settings.interServer.transport, mutual TLS by default).
    const linkTransport = (): 'tcp' | 'tls' => options.topology.settings.interServer.transport;
    this.handover = new EdgeHandover({
      clock,
      logger,
      users: () => this.flows.userFlows(),
      busy: (user) => this.server.dialogs.inDialog(user),
      // The pool's re-home rate of the version the server follows now.
      batchSize: () => this.server.topology.settings.rehome.batchSize,
      intervalMs: () => this.server.topology.settings.rehome.intervalMs,
    });
    this.server = new FrontEndServer({
      ...options,
      clock,
      random,
      logger,
      edge: {
        role: (services) => {
          // The topology's federation (steps/federation.ts), unless the caller plugs in its own step.
          const plugged = options.federation?.({ services, flows: this.flows, interfaces: this.interfaces });
          const partners = new PartnerEdges({ topology: () => services.view().topology, localAddress: this.interfaces.externalAddress, clock, random });
          const identity = new PartnerIdentity({
            topology: () => services.view().topology,
            clock,
            accessEdgesOf: async (domain) => {
              const route = await partners.route(domain);
              return route.kind === 'partner' ? { names: [...new Set(route.endpoints.map((endpoint) => endpoint.host))] } : { status: route.status, reason: route.reason };
            },
          });
          const federation = plugged ?? new FederationStep({
            view: services.view,
            proxy: services.proxy,
            flows: this.flows,
            homes: services.homes,
            routable: services.routable,
            random,
            clock,
            partners,
            identity,
            connect: (endpoint) => this.partnerFlow(endpoint),
            ownUri: (token) => {
              const view = services.view();
              const transport = linkTransport();
              const address = view.self.address.includes(':') ? `[${view.self.address}]` : view.self.address;
              return `sip:${token}@${address}:${transport === 'tls' ? view.tlsPort : view.tcpPort};transport=${transport};lr`;
            },
            externalUri: (user) => {
              const address = this.interfaces.externalAddress.includes(':') ? `[${this.interfaces.externalAddress}]` : this.interfaces.externalAddress;
              return `sip:${user}@${address}:${this.federationPortBound ?? this.interfaces.federationPort};transport=${options.tls ? 'tls' : 'tcp'};lr`;
            },
          });
          if (federation instanceof FederationStep) this.federation = federation;
          this.steps = buildEdgeRole(services, { interfaces: this.interfaces, flows: this.flows, linkTransport, federation });
          return this.steps.role;
        },
        drain: {
          left: () => this.flows.remoteUsers,
          start: () => this.handover.start(),
          cancel: () => this.handover.cancel(),
          handedOver: () => this.handover.handedOver,
          endLeft: () => void this.handover.releaseAll('edge drain timed out'),
        },
        status: () => this.status(),
      },
    });
    this.server.transport.on('flowClosed', (flow: Flow) => {
      this.flows.closed(flow);
      const link = this.partnerLinkOf.get(flow);
      if (link === undefined) return;
      this.partnerLinkOf.delete(flow);
      this.forgetPartnerLink(link.key, link.opening);
    });
  }

  get self(): string {
    return this.server.self;
  }

  /**
   * A connection to a partner's Access Edge, from our Access Edge address (the partner sees us from
   * outside), kept open for the next request. TLS trusts the public roots and our pool's CA; without
   * a certificate (tests with --no-tls) plain TCP, as the external interface then listens.
   */
  private partnerFlow(endpoint: PartnerEndpoint): Promise<Flow> {
    const key = `${endpoint.address}:${endpoint.port}`;
    const open = this.partnerLinks.get(key);
    if (open) {
      return open.then(
        (flow) => (flow.closed ? this.openPartnerFlow(endpoint, key) : flow),
        () => this.openPartnerFlow(endpoint, key),
      );
    }
    return this.openPartnerFlow(endpoint, key);
  }

  private openPartnerFlow(endpoint: PartnerEndpoint, key: string): Promise<Flow> {
    const tls = this.options.tls;
    const opening = (async () => {
      // The partner's certificate must verify against the public roots, our pool CA or a CA trusted for a
      // partner (edge.federation.trustedCas, read now: a file may appear after our start), and name the
      // Access Edge FQDN its SRV record gave (servername). We present our own certificate (it names our
      // Access Edge): the partner checks it the same way (partner-identity.ts).
      const ca = tls ? [...rootCertificates, ...(tls.ca !== undefined ? [String(tls.ca)] : []), ...(await this.partnerCas())].join('\n') : '';
      return this.server.transport.connect({
        transport: tls ? 'tls' : 'tcp',
        host: endpoint.address,
        port: endpoint.port,
        localAddress: this.interfaces.externalAddress,
        // SNI carries names only (RFC 6066 §3): a dialog's Route names the partner's Access Edge by address.
        ...(tls ? { tls: { ca, cert: tls.cert, key: tls.key, ...(isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}) } } : {}),
      });
    })();
    this.partnerLinks.set(key, opening);
    // Forgotten when it fails or its connection closes: the next request opens a new one.
    opening.then(
      (flow) => {
        if (flow.closed) this.forgetPartnerLink(key, opening);
        else this.partnerLinkOf.set(flow, { key, opening });
      },
      () => this.forgetPartnerLink(key, opening),
    );
    return opening;
  }

  private forgetPartnerLink(key: string, opening: Promise<Flow>): void {
    if (this.partnerLinks.get(key) === opening) this.partnerLinks.delete(key);
  }

  /** The PEM texts of edge.federation.trustedCas that can be read now (one unreadable is logged and left out). */
  private async partnerCas(): Promise<string[]> {
    const files = Object.values(federatingEdgePool(this.server.topology)?.edge.federation.trustedCas ?? {});
    const texts = await Promise.all(
      files.map((file) =>
        readFile(file, 'utf8').catch((error: unknown) => {
          this.logger.warn({ file, error: (error as Error).message }, 'edge: a federation partner CA file cannot be read');
          return '';
        }),
      ),
    );
    return texts.filter((text) => text.length > 0);
  }

  async start(): Promise<EdgeListening> {
    const internal = await this.server.start();
    const tls = this.options.tls;
    const transport = tls ? 'tls' : 'tcp';
    const host = this.interfaces.externalAddress;
    const ports = [this.options.externalPorts?.client ?? this.interfaces.clientPort];
    const federation = this.options.externalPorts?.federation ?? this.interfaces.federationPort;
    if (federation !== ports[0]) ports.push(federation);
    for (const [index, port] of ports.entries()) {
      // The federation port asks for a certificate (a partner's Access Edge presents one: mutual TLS) and
      // lets the federation step judge it against the CAs trusted for the partner it claims to be.
      const federationListener = index === ports.length - 1;
      // (The transport verifies against our pool CA too; from outside that names nobody: edge-guard.)
      const askCertificate = federationListener && tls?.ca !== undefined;
      const bound = await this.server.transport.listen({ transport, host, port, ...(tls ? { tls: { cert: tls.cert, key: tls.key, ...(askCertificate ? { ca: tls.ca, clientCertificates: 'optional' as const } : {}) } } : {}) });
      this.external.push(`${transport}://${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`);
      if (index === ports.length - 1) this.federationPortBound = bound.port;
    }
    return { ...internal, external: [...this.external] };
  }

  async stop(): Promise<void> {
    this.handover.cancel();
    await this.server.stop();
  }

  status(): Record<string, unknown> {
    return {
      external: [...this.external],
      accessEdge: this.interfaces.accessEdgeFqdn,
      remoteUsers: this.flows.remoteUsers,
      clientFlows: this.flows.flows,
      guard: this.steps ? { ...this.steps.guard.counters } : null,
      route: this.steps ? { ...this.steps.route.counters } : null,
      federation: this.federation ? { ...this.federation.counters } : null,
      handover: this.handover.status(),
    };
  }
}
