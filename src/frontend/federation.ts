// The Edge's way to a partner organisation (issue 14 §4): a request for a partner's user leaves through
// our Access Edge to the partner's Access Edge, found in DNS as Lync's enhanced federation does —
// `_sipfederationtls._tcp.<partner domain>` SRV → the Access Edge FQDN → one address per partner edge
// server (src/client/discover.ts, service `federation`) — and tried in that order, the next on connect
// failure, no answer or 503, at most `edge.federation.triesMax` of them. Unlike routing between our own
// pools (no DNS: the published topology), the partner's servers are known only through its DNS.
import { PoolDiscoverer, type Discovery, type DiscoveryStep } from '../client/discover.ts';
import type { Clock, Random } from '../shared/clock.ts';
import { systemClock, systemRandom } from '../shared/clock.ts';
import { federationDecision } from '../topology/federation.ts';
import type { Endpoint, Topology } from '../topology/schema.ts';

export interface PartnerEdgesOptions {
  /** The published topology now (its `edge.federation` says who is a partner and which DNS server to ask). */
  topology: () => Topology;
  /** Our Access Edge address: the DNS queries leave from it, so that the partner's DNS gives its outside view. */
  localAddress?: string;
  /** Per DNS query. Default 2000 ms. */
  dnsTimeoutMs?: number;
  clock?: Clock;
  random?: Random;
}

/** One partner Access Edge address to try, with the name its certificate must carry. */
export interface PartnerEndpoint {
  address: string;
  port: number;
  transport: 'tls';
  host: string;
}

export type PartnerRoute =
  /** Try these in order (already capped at triesMax). */
  | { kind: 'partner'; domain: string; endpoints: PartnerEndpoint[]; via: string; steps: DiscoveryStep[] }
  /** Answer the request with this status and one-line reason: 403 not a partner, 404 no Access Edge in DNS, 503 DNS failed. */
  | { kind: 'answer'; domain: string; status: number; reason: string };

const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ');

export class PartnerEdges {
  private readonly clock: Clock;
  private readonly random: Random;
  /** One discoverer (and its TTL cache) per DNS server configured, so that a new topology with another resolver starts afresh. */
  private readonly discoverers = new Map<string, PoolDiscoverer>();

  constructor(private readonly options: PartnerEdgesOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
  }

  /** Where a request to `uri` (a partner user's URI, or a bare domain) goes; or the answer instead. */
  async route(uri: string): Promise<PartnerRoute> {
    const topology = this.options.topology();
    const decision = federationDecision(topology, uri);
    if (decision.kind === 'ours') return { kind: 'answer', domain: decision.domain, status: 500, reason: `${decision.domain} is one of our SIP domains, not a partner's` };
    if (decision.kind === 'refused') return { kind: 'answer', domain: decision.domain, status: 403, reason: oneLine(decision.reason) };
    const { federation } = decision;
    let discovery: Discovery;
    try {
      discovery = await this.discoverer(federation.resolver).discover(decision.domain);
    } catch (error) {
      const message = oneLine((error as Error).message);
      // NXDOMAIN / no SRV: the partner publishes no Access Edge (404, RFC 3261 §21.4.5 "does not exist at the domain").
      const notFound = /no federation Access Edge found/.test(message);
      return { kind: 'answer', domain: decision.domain, status: notFound ? 404 : 503, reason: notFound ? `No Access Edge for partner ${decision.domain} (${message})` : `Partner ${decision.domain} lookup failed (${message})` };
    }
    const endpoints = discovery.endpoints.slice(0, federation.triesMax).map((endpoint) => ({ address: endpoint.address, port: endpoint.port, transport: 'tls' as const, host: endpoint.host }));
    return { kind: 'partner', domain: decision.domain, endpoints, via: discovery.via, steps: discovery.steps };
  }

  private discoverer(resolver: Endpoint | undefined): PoolDiscoverer {
    const key = resolver ? `${resolver.address.includes(':') ? `[${resolver.address}]` : resolver.address}:${resolver.port}` : '';
    let discoverer = this.discoverers.get(key);
    if (!discoverer) {
      discoverer = new PoolDiscoverer({
        dnsServers: key === '' ? [] : [key],
        service: 'federation',
        timeoutMs: this.options.dnsTimeoutMs ?? 2000,
        clock: this.clock,
        random: this.random,
        ...(this.options.localAddress !== undefined ? { localAddress: this.options.localAddress } : {}),
      });
      this.discoverers.set(key, discoverer);
    }
    return discoverer;
  }
}
