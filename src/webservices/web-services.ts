// The Web services of one Front End or Director server (DESIGN §1: HTTPS on 443/4443, behind the
// pool's hardware load balancer): an HTTPS listener per Web site (internal, external) on the server's
// own address with its own certificate from the pool CA, answering the autodiscover document and the
// health endpoint. The server's state comes in through a function, so this folder knows nothing of
// the Front End (the process entry wires FrontEndServer.status() in).
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import type { Pool, Topology, WebServicesSide } from '../topology/schema.ts';
import { AUTODISCOVER_PATH, autodiscoverDocument, domainOfRequest } from './autodiscover.ts';
import { HEALTH_PATH, healthOf, type WebServerState } from './health.ts';

export interface WebServicesOptions {
  topology: Topology;
  /** This server's FQDN; its pool must be a frontend or director pool with `webServices`. */
  server: string;
  tls: { cert: string | Buffer; key: string | Buffer };
  /** The server's state now (read on every request). */
  state: () => WebServerState;
  /** Override the Web site ports (tests); 0 picks a free one. */
  ports?: Partial<Record<WebServicesSide, number>>;
  logger?: Logger;
}

/** Requests answered, by what they asked for (the server-side counts tests and metrics read). */
export interface WebServicesCounters {
  autodiscover: number;
  health: number;
  /** Anything else: 404, 405, a domain we do not serve. */
  other: number;
}

export interface WebServicesStatus {
  listening: Partial<Record<WebServicesSide, string>>;
  requests: Record<WebServicesSide, WebServicesCounters>;
}

function emptyCounters(): WebServicesCounters {
  return { autodiscover: 0, health: 0, other: 0 };
}

/** The pool of `server` when it has Web services, else undefined (mediation servers, pools without them). */
export function webServicesPoolOf(topology: Topology, server: string): Pool | undefined {
  const fqdn = server.toLowerCase();
  return topology.pools.find((pool) => (pool.kind === 'frontend' || pool.kind === 'director') && pool.webServices && pool.servers.some((each) => each.fqdn === fqdn));
}

export class WebServices {
  private topology: Topology;
  private readonly servers = new Map<WebServicesSide, Server>();
  private readonly listening: Partial<Record<WebServicesSide, string>> = {};
  private readonly counters: Record<WebServicesSide, WebServicesCounters> = { internal: emptyCounters(), external: emptyCounters() };

  constructor(private readonly options: WebServicesOptions) {
    this.topology = options.topology;
    if (!webServicesPoolOf(options.topology, options.server)) {
      throw new DnslbError('WEBSERVICES_NO_POOL', `${options.server} is not a server of a frontend or director pool with webServices`);
    }
  }

  /** A newly published topology: documents follow it (the listeners stay where they are until a restart). */
  setTopology(topology: Topology): void {
    if (webServicesPoolOf(topology, this.options.server)) this.topology = topology;
  }

  /** Listens on each Web site the pool has; WEBSERVICES_LISTEN names the address that failed. */
  async start(): Promise<Partial<Record<WebServicesSide, string>>> {
    const pool = webServicesPoolOf(this.topology, this.options.server)!;
    const self = pool.servers.find((each) => each.fqdn === this.options.server.toLowerCase())!;
    const host = self.ipv4 ?? self.ipv6!;
    for (const side of ['internal', 'external'] as const) {
      const web = pool.webServices?.[side];
      if (!web) continue;
      const port = this.options.ports?.[side] ?? web.serverPort;
      const server = createServer({ cert: this.options.tls.cert, key: this.options.tls.key }, (request, response) => this.answer(side, request, response));
      server.headersTimeout = limits.webServicesHeadersTimeoutMs;
      server.requestTimeout = limits.webServicesHeadersTimeoutMs;
      server.maxHeadersCount = limits.webServicesHeadersMax;
      server.on('tlsClientError', () => undefined); // a probe or scanner that hangs up mid-handshake
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        await this.stop();
        throw new DnslbError('WEBSERVICES_LISTEN', `cannot listen for the ${side} Web site on ${host}:${port}: ${(error as Error).message}${(error as NodeJS.ErrnoException).code === 'EACCES' ? ' (ports below 1024 need root, or set webServices.*.serverPort)' : ''}`, { cause: error });
      }
      const address = server.address() as AddressInfo;
      this.servers.set(side, server);
      this.listening[side] = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
    }
    return { ...this.listening };
  }

  status(): WebServicesStatus {
    return { listening: { ...this.listening }, requests: { internal: { ...this.counters.internal }, external: { ...this.counters.external } } };
  }

  async stop(): Promise<void> {
    const servers = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }

  private answer(side: WebServicesSide, request: IncomingMessage, response: ServerResponse): void {
    const state = this.options.state();
    // A draining server closes each connection after its answer, so that a client keeping its
    // connection alive comes back through the load balancer, which sends it elsewhere.
    if (state !== 'active') response.setHeader('Connection', 'close');
    const url = new URL(request.url ?? '/', 'https://localhost');
    const path = url.pathname.toLowerCase().replace(/\/+$/, '');
    const send = (statusCode: number, body: unknown): void => {
      const text = `${JSON.stringify(body)}\n`;
      response.writeHead(statusCode, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : text);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      this.counters[side].other++;
      response.setHeader('Allow', 'GET, HEAD');
      send(405, { error: `${request.method} is not allowed; GET ${AUTODISCOVER_PATH} or ${HEALTH_PATH}` });
      return;
    }
    if (path === HEALTH_PATH) {
      this.counters[side].health++;
      const health = healthOf(this.options.server.toLowerCase(), state);
      send(health.statusCode, health.body);
      return;
    }
    if (path === AUTODISCOVER_PATH) {
      const domain = domainOfRequest(this.topology, request.headers.host, url.searchParams.get('originalDomain'));
      if (domain === undefined) {
        this.counters[side].other++;
        send(404, { error: `not a SIP domain of this deployment: ${url.searchParams.get('originalDomain') ?? request.headers.host ?? ''}` });
        return;
      }
      this.counters[side].autodiscover++;
      const pool = webServicesPoolOf(this.topology, this.options.server)!;
      send(200, autodiscoverDocument({ topology: this.topology, pool, server: this.options.server.toLowerCase(), side, domain }));
      return;
    }
    this.counters[side].other++;
    send(404, { error: `no such resource: ${url.pathname}; try ${AUTODISCOVER_PATH} or ${HEALTH_PATH}` });
  }
}
