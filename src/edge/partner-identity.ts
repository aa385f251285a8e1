// Who is at the other end of a federation connection (issue 14 §4): a partner organisation is believed
// by its certificate, never by the From domain it writes. As Lync/OCS federation does, a request from
// outside whose From is a listed partner's user is let in only when the connection it came on presented
// a certificate that
//   1. verifies against the CAs trusted for that partner — `edge.federation.trustedCas[domain]` (a PEM
//      file, read when needed: it may appear after the start), else the public roots (Node's store) —
//      through the chain the partner presented (leaf, intermediates that are CAs), each within its
//      validity dates; and
//   2. names, in its subjectAltName DNS names (exact, case aside; no wildcards), one of the partner's
//      Access Edge FQDNs: the targets of `_sipfederationtls._tcp.<domain>` in the partner's DNS (the
//      name its edge's certificate must match, as our connections to it check the other way round).
// Anything else is 403 with the reason; a DNS failure while finding the partner's Access Edge is 503.
// A flow's verdict is kept for the flow's life (its certificate cannot change), except DNS failures.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import type { Flow } from '../sip/flow.ts';
import { dnsNamesOf } from '../sip/peer-certificate.ts';
import type { Clock } from '../shared/clock.ts';
import { systemClock } from '../shared/clock.ts';
import type { Topology } from '../topology/schema.ts';
import { federatingEdgePool } from '../topology/federation.ts';

export type PartnerVerdict = { ok: true } | { ok: false; status: 403 | 503; reason: string };

/** The partner's Access Edge FQDNs (its `_sipfederationtls._tcp` SRV targets), or why they are unknown. */
export type AccessEdgeNames = { names: string[] } | { status: number; reason: string };

export interface PartnerIdentityOptions {
  topology: () => Topology;
  accessEdgesOf: (domain: string) => Promise<AccessEdgeNames>;
  /** Reads a trusted CA file (default: fs readFile as UTF-8). */
  readCaFile?: (path: string) => Promise<string>;
  clock?: Clock;
}

/** The PEM certificates of a file (a bundle may hold several). */
export function certificatesOfPem(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

let publicRoots: X509Certificate[] | undefined;
function publicRootCertificates(): X509Certificate[] {
  publicRoots ??= rootCertificates.flatMap((pem) => {
    try {
      return [new X509Certificate(pem)];
    } catch {
      return [];
    }
  });
  return publicRoots;
}

const subjectOf = (certificate: X509Certificate): string => certificate.subject.replace(/\n/g, ', ');

/**
 * Does `chain` (leaf first, as presented) lead to one of `trusted`? null when it does, else why not.
 * Each certificate must be within its dates; an intermediate must be a CA and must have signed the one
 * below it; the walk ends at the first certificate a trusted CA signed (or that is a trusted CA).
 */
export function chainProblem(chain: readonly X509Certificate[], trusted: readonly X509Certificate[], nowMs: number): string | null {
  if (chain.length === 0) return 'no certificate presented';
  for (let index = 0; index < chain.length; index++) {
    const certificate = chain[index]!;
    const from = Date.parse(certificate.validFrom);
    const to = Date.parse(certificate.validTo);
    if (!(from <= nowMs && nowMs <= to)) return `certificate "${subjectOf(certificate)}" is not valid now (${certificate.validFrom} – ${certificate.validTo})`;
    if (trusted.some((anchor) => anchor.fingerprint256 === certificate.fingerprint256)) return null;
    const anchor = trusted.find((candidate) => certificate.checkIssued(candidate) && certificate.verify(candidate.publicKey));
    if (anchor !== undefined) return null;
    const next = chain[index + 1];
    if (next === undefined || !next.ca || !certificate.checkIssued(next) || !certificate.verify(next.publicKey)) break;
  }
  return `certificate "${subjectOf(chain[0]!)}" does not verify against the CAs trusted for this partner`;
}

export class PartnerIdentity {
  private readonly clock: Clock;
  private readonly verdicts = new WeakMap<Flow, Map<string, PartnerVerdict>>();

  constructor(private readonly options: PartnerIdentityOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** May `flow` speak for the partner organisation `domain` (a listed partner)? */
  async check(flow: Flow, domain: string): Promise<PartnerVerdict> {
    const known = this.verdicts.get(flow)?.get(domain);
    if (known !== undefined) return known;
    const verdict = await this.decide(flow.presentedCertificates(), domain);
    // A DNS failure (503) may pass; a certificate does not change during a flow's life.
    if (verdict.ok || verdict.status === 403) {
      let byDomain = this.verdicts.get(flow);
      if (byDomain === undefined) this.verdicts.set(flow, (byDomain = new Map()));
      byDomain.set(domain, verdict);
    }
    return verdict;
  }

  /** The decision on a presented chain (leaf first). */
  async decide(chain: readonly X509Certificate[], domain: string): Promise<PartnerVerdict> {
    const refuse = (reason: string): PartnerVerdict => ({ ok: false, status: 403, reason: `Not ${domain}'s Access Edge: ${reason}` });
    if (chain.length === 0) return refuse('the connection presented no certificate (a partner\'s Access Edge must: mutual TLS)');
    let trusted: X509Certificate[];
    const caFile = federatingEdgePool(this.options.topology())?.edge.federation.trustedCas?.[domain];
    if (caFile !== undefined) {
      try {
        trusted = certificatesOfPem(await (this.options.readCaFile ?? ((path) => readFile(path, 'utf8')))(caFile));
      } catch (error) {
        return { ok: false, status: 503, reason: `The CA trusted for ${domain} cannot be read (${caFile}: ${(error as Error).message.split('\n')[0]})` };
      }
      if (trusted.length === 0) return { ok: false, status: 503, reason: `The CA file trusted for ${domain} holds no certificate (${caFile})` };
    } else {
      trusted = publicRootCertificates();
    }
    const problem = chainProblem(chain, trusted, this.clock.nowMs());
    if (problem !== null) return refuse(`${problem}${caFile !== undefined ? ` (${caFile})` : ' (public roots; edge.federation.trustedCas names none for it)'}`);
    const edges = await this.options.accessEdgesOf(domain);
    if ('status' in edges) return edges.status === 503 ? { ok: false, status: 503, reason: edges.reason } : refuse(edges.reason);
    const names = dnsNamesOf(chain[0]!.subjectAltName);
    const wanted = edges.names.map((name) => name.toLowerCase().replace(/\.$/, ''));
    if (!names.some((name) => wanted.includes(name))) {
      return refuse(`its certificate names ${names.length > 0 ? names.join(', ') : 'no DNS name'}, not the Access Edge ${wanted.join(', ')} that _sipfederationtls._tcp.${domain} names`);
    }
    return { ok: true };
  }
}
