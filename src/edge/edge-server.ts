// An edge server process (DESIGN §7 "Edge", issue 14): the SIP server of src/frontend/ in the Edge role
// — heartbeat with the edge pool, liveness, drain/block/decommission, admin status — plus its external
// interface: TLS on its Access Edge address (the client port, and the federation port when it differs),
// where remote users connect. Its internal interface is the server's own address (TLS 5061 / TCP 5060).
import { FrontEndServer, type FrontEndOptions } from '../frontend/server.ts';
import type { PathServices } from '../frontend/request-path.ts';
import type { Step } from '../frontend/steps/step.ts';
import { PoolView } from '../frontend/pool-view.ts';
import type { Flow } from '../sip/flow.ts';
import { EdgeFlows } from './edge-flows.ts';
import { EdgeHandover } from './handover.ts';
import { edgeInterfacesOf, type EdgeInterfaces } from './interfaces.ts';
import { buildEdgeRole, type EdgeSteps } from './path.ts';
import { systemClock, systemRandom } from '../shared/clock.ts';
import { pino } from 'pino';

export interface EdgeServerOptions extends Omit<FrontEndOptions, 'edge'> {
  /** Override the external ports (tests); 0 picks a free one. */
  externalPorts?: { client?: number; federation?: number };
  /**
   * FEDERATION SEAM: builds the federation step, placed before edge-route (path.ts). It gets the
   * server's services (the proxy's `forwardTo`, the view, routable…), the client flows and the interfaces.
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
  private external: string[] = [];

  constructor(private readonly options: EdgeServerOptions) {
    const clock = options.clock ?? systemClock;
    const random = options.random ?? systemRandom;
    const logger = options.logger ?? pino({ level: 'silent' });
    const view = new PoolView(options.topology, options.server, options.topologyVersion ?? 0);
    this.interfaces = edgeInterfacesOf(view.pool, view.self.fqdn);
    this.flows = new EdgeFlows(random);
    const linkTransport = (): 'tcp' | 'tls' => options.peerTransport ?? (options.tls ? 'tls' : 'tcp');
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
          const federation = options.federation?.({ services, flows: this.flows, interfaces: this.interfaces });
          this.steps = buildEdgeRole(services, { interfaces: this.interfaces, flows: this.flows, linkTransport, ...(federation ? { federation } : {}) });
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
    this.server.transport.on('flowClosed', (flow: Flow) => this.flows.closed(flow));
  }

  get self(): string {
    return this.server.self;
  }

  async start(): Promise<EdgeListening> {
    const internal = await this.server.start();
    const tls = this.options.tls;
    const transport = tls ? 'tls' : 'tcp';
    const host = this.interfaces.externalAddress;
    const ports = [this.options.externalPorts?.client ?? this.interfaces.clientPort];
    const federation = this.options.externalPorts?.federation ?? this.interfaces.federationPort;
    if (federation !== ports[0]) ports.push(federation);
    for (const port of ports) {
      const bound = await this.server.transport.listen({ transport, host, port, ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}) });
      this.external.push(`${transport}://${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`);
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
      handover: this.handover.status(),
    };
  }
}
