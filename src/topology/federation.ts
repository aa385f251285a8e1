// Federation (issue 14 §4): which organisations' users ours may talk to through the Access Edge, and the
// rules of the `edge.federation` key. Pure: the edge process (src/frontend/federation.ts) asks
// `federationDecision` for every request that crosses the Access Edge.
import type { YamlPath } from './problem.ts';
import { formatPath } from './problem.ts';
import type { Rule, RuleProblem } from './rules.ts';
import type { Federation, Pool, Topology } from './schema.ts';

/**
 * The edge pool that federates: the first edge pool, the one the `_sipfederationtls._tcp` SRV records of
 * our SIP domains name (src/dns/zone.ts), when it has `edge.federation`. Undefined: no federation.
 */
export function federatingEdgePool(topology: Topology): (Pool & { edge: { federation: Federation } }) | undefined {
  const edgePool = topology.pools.find((pool) => pool.edge !== undefined);
  return edgePool?.edge?.federation ? (edgePool as Pool & { edge: { federation: Federation } }) : undefined;
}

/** The SIP domain of a SIP URI or bare domain, lower case, without port or parameters. */
function hostOf(uriOrDomain: string): string {
  const at = uriOrDomain.lastIndexOf('@');
  const host = at >= 0 ? uriOrDomain.slice(at + 1) : uriOrDomain.replace(/^sips?:/i, '');
  return (host.split(/[;:?>]/)[0] ?? '').toLowerCase().replace(/\.$/, '');
}

export type FederationDecision =
  /** One of our SIP domains: not federation at all (remote users, or our own servers). */
  | { kind: 'ours'; domain: string }
  /** A listed partner: the Access Edge lets it through. */
  | { kind: 'partner'; domain: string; federation: Federation }
  /** Anyone else: answered 403 with `reason` (a reason phrase, one line). */
  | { kind: 'refused'; domain: string; reason: string };

/**
 * What the Access Edge does with a request between `domain` (the other side's SIP domain: the From of a
 * request arriving from outside, the Request-URI of one leaving) and our users. Exact domain match,
 * as Lync's allowed-domains list: a partner `fabrikam.com` does not admit `eu.fabrikam.com`.
 */
export function federationDecision(topology: Topology, uriOrDomain: string): FederationDecision {
  const domain = hostOf(uriOrDomain);
  if (topology.sipDomains.includes(domain)) return { kind: 'ours', domain };
  const pool = federatingEdgePool(topology);
  if (!pool) return { kind: 'refused', domain, reason: `Federation is not enabled (no edge.federation in the topology); ${domain} is not a partner` };
  const { federation } = pool.edge;
  if (!federation.partners.includes(domain)) return { kind: 'refused', domain, reason: `${domain} is not a federation partner of ${topology.sipDomains.join(', ')}` };
  return { kind: 'partner', domain, federation };
}

const federationRules: Rule = {
  name: 'federation partners are other organisations, listed once, on the edge pool the federation SRV names',
  check(topology) {
    const problems: RuleProblem[] = [];
    let firstEdge: number | undefined;
    topology.pools.forEach((pool, poolIndex) => {
      if (pool.edge === undefined) return;
      firstEdge ??= poolIndex;
      const federation = pool.edge.federation;
      if (!federation) return;
      const at: YamlPath = ['pools', poolIndex, 'edge', 'federation'];
      if (poolIndex !== firstEdge) {
        const first = topology.pools[firstEdge]!;
        problems.push({
          code: 'TOPOLOGY_FEDERATION',
          path: at,
          message: `federation goes through one edge pool: ${first.fqdn} (${formatPath(['pools', firstEdge])}), whose Access Edge the _sipfederationtls._tcp SRV records of ${topology.sipDomains.join(', ')} name; move "federation" there`,
        });
      }
      const seen = new Map<string, number>();
      federation.partners.forEach((partner, index) => {
        const path: YamlPath = [...at, 'partners', index];
        if (topology.sipDomains.includes(partner)) {
          problems.push({ code: 'TOPOLOGY_FEDERATION', path, message: `${partner} is a SIP domain of this topology: its users are ours (remote users sign in through the Access Edge), not a federation partner's` });
          return;
        }
        const earlier = seen.get(partner);
        if (earlier !== undefined) problems.push({ code: 'TOPOLOGY_DUPLICATE_NAME', path, message: `federation partner ${partner} is already listed at ${formatPath([...at, 'partners', earlier])}` });
        else seen.set(partner, index);
      });
      for (const domain of Object.keys(federation.trustedCas ?? {})) {
        if (!federation.partners.includes(domain)) {
          problems.push({ code: 'TOPOLOGY_FEDERATION', path: [...at, 'trustedCas', domain], message: `trustedCas names ${domain}, which is not in partners: list it there, or remove its CA` });
        }
      }
    });
    return problems;
  },
};

export const FEDERATION_RULES: readonly Rule[] = [federationRules];
