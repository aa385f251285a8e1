// The autodiscover document a Lync client fetches through lyncdiscoverinternal.<domain> /
// lyncdiscover.<domain> (Lync 2013): where the pool's SIP access is and where its Web services are.
// A pure function of the topology; src/webservices/README.md says where it differs from Lync's.
import type { Pool, Topology, WebServicesSide } from '../topology/schema.ts';

/** Lync's autodiscover path (its "root" resource); dnslb answers it on both Web sites. */
export const AUTODISCOVER_PATH = '/autodiscover/autodiscoverservice.svc/root';

export interface SipAccess {
  fqdn: string;
  port: number;
}

export interface AutodiscoverDocument {
  /** Which Web site answered: Internal (lyncdiscoverinternal, the internal VIP) or External. */
  AccessLocation: 'Internal' | 'External';
  /** The SIP domain the document is for. */
  Domain: string;
  /** The pool a client inside signs in to (its pool FQDN and TLS port, as Lync's SRV record gives it). */
  SipClientInternalAccess: SipAccess;
  /** The same pool, as servers reach it. */
  SipServerInternalAccess: SipAccess;
  /** The Access Edge for remote clients; absent without an edge pool. */
  SipClientExternalAccess?: SipAccess;
  /** The Access Edge's federation port; absent without an edge pool. */
  SipServerExternalAccess?: SipAccess;
  /** dnslb: every way into the pool, TLS first (Lync names only TLS; dnslb also runs SIP over TCP). */
  SipAccess: (SipAccess & { transport: 'tls' | 'tcp' })[];
  /** HAL-style links, as Lync's JSON form has them: this document, and the two Web sites. */
  _links: Record<string, { href: string }>;
  /** dnslb: the server that answered (behind a load balancer, which one it picked). */
  Server: string;
}

function httpsUrl(fqdn: string, port: number, path: string): string {
  return `https://${fqdn}${port === 443 ? '' : `:${port}`}${path}`;
}

/** The edge pool that remote users of this pool's site come in through: one in the same site, else any. */
function accessEdgeOf(topology: Topology, pool: Pool): Pool | undefined {
  const edges = topology.pools.filter((candidate) => candidate.kind === 'edge' && candidate.edge);
  return edges.find((edge) => edge.site === pool.site) ?? edges[0];
}

export interface AutodiscoverInput {
  topology: Topology;
  /** The pool of the server that answers (a frontend or director pool). */
  pool: Pool;
  server: string;
  side: WebServicesSide;
  domain: string;
}

export function autodiscoverDocument({ topology, pool, server, side, domain }: AutodiscoverInput): AutodiscoverDocument {
  const internal: SipAccess = { fqdn: pool.fqdn, port: pool.sip.tlsPort };
  const edge = accessEdgeOf(topology, pool)?.edge;
  const links: Record<string, { href: string }> = {};
  const discoverName = side === 'internal' ? `lyncdiscoverinternal.${domain}` : `lyncdiscover.${domain}`;
  const own = pool.webServices?.[side];
  links['self'] = { href: `${httpsUrl(discoverName, own?.port ?? 443, AUTODISCOVER_PATH)}?originalDomain=${domain}` };
  for (const each of ['internal', 'external'] as const) {
    const web = pool.webServices?.[each];
    if (!web) continue;
    links[`${each}/autodiscover`] = { href: httpsUrl(web.fqdn, web.port, AUTODISCOVER_PATH) };
    links[`${each}/webservices`] = { href: httpsUrl(web.fqdn, web.port, '/') };
  }
  return {
    AccessLocation: side === 'internal' ? 'Internal' : 'External',
    Domain: domain,
    SipClientInternalAccess: internal,
    SipServerInternalAccess: internal,
    ...(edge
      ? {
          SipClientExternalAccess: { fqdn: edge.accessEdge.fqdn, port: edge.accessEdge.port ?? 443 },
          SipServerExternalAccess: { fqdn: edge.accessEdge.fqdn, port: edge.accessEdge.federationPort },
        }
      : {}),
    SipAccess: [
      { fqdn: pool.fqdn, port: pool.sip.tlsPort, transport: 'tls' },
      { fqdn: pool.fqdn, port: pool.sip.tcpPort, transport: 'tcp' },
    ],
    _links: links,
    Server: server,
  };
}

/**
 * The SIP domain a request is for: `originalDomain` in the query (Lync's parameter), else the Host
 * the client asked for minus its lyncdiscover label; undefined when it is none of the topology's.
 */
export function domainOfRequest(topology: Topology, host: string | undefined, originalDomain: string | null): string | undefined {
  const fromHost = host
    ?.replace(/:\d+$/, '')
    .toLowerCase()
    .replace(/^lyncdiscover(internal)?\./, '');
  const wanted = (originalDomain ?? fromHost)?.toLowerCase();
  if (wanted !== undefined && topology.sipDomains.includes(wanted)) return wanted;
  // A client that asked by the Web services FQDN or an address: the first SIP domain.
  if (originalDomain === null) return topology.sipDomains[0];
  return undefined;
}
