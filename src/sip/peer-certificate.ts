// What the other end of a TLS flow proved: the DNS names (subjectAltName dNSName entries) of a
// certificate that verified against the CA we were given. Mutual TLS between servers recognises a peer
// by these names (frontend/peer-identity.ts), never by the source address.
import type { X509Certificate } from 'node:crypto';
import { TLSSocket } from 'node:tls';

/**
 * The DNS names of Node's `subjectaltname` string (`DNS:fe1.contoso.com, IP Address:127.0.0.1`;
 * a value with a comma or quote in it is written as a JSON string: `DNS:"a,b"`). Other kinds (IP
 * Address, URI, email) are skipped: a peer is named by its FQDN. Lower case, trailing dot removed.
 */
export function dnsNamesOf(subjectAltName: string | undefined): string[] {
  const names: string[] = [];
  if (subjectAltName === undefined) return names;
  let at = 0;
  const text = subjectAltName;
  while (at < text.length) {
    while (text[at] === ' ' || text[at] === ',') at++;
    if (at >= text.length) break;
    const colon = text.indexOf(':', at);
    if (colon < 0) break;
    const kind = text.slice(at, colon);
    let value: string;
    at = colon + 1;
    if (text[at] === '"') {
      // A JSON string: find its closing quote (not one escaped by a backslash).
      let end = at + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(at, end + 1)) as string;
      } catch {
        return names; // not what Node writes: stop rather than guess
      }
      at = end + 1;
    } else {
      const end = text.indexOf(', ', at);
      value = text.slice(at, end < 0 ? text.length : end);
      at = end < 0 ? text.length : end;
    }
    if (kind === 'DNS' && value.length > 0) names.push(value.toLowerCase().replace(/\.$/, ''));
  }
  return names;
}

/**
 * The DNS names the other end of `socket` proved, or null: null for plain TCP, for a TLS client that
 * presented no certificate, and for a certificate that did not verify against our CA (another CA's,
 * self-signed, expired). On an outbound flow it is the server's certificate (verified by the connect).
 */
export function verifiedNamesOf(socket: unknown): readonly string[] | null {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  const certificate = socket.getPeerCertificate();
  if (certificate === null || typeof certificate !== 'object' || Object.keys(certificate).length === 0) return null;
  return dnsNamesOf(certificate.subjectaltname);
}

/**
 * The certificates the other end of `socket` presented, leaf first, whether or not they verified
 * against our CA (a federation partner's are checked against the CAs trusted for it:
 * src/edge/partner-identity.ts). Empty for plain TCP and for a TLS peer that presented none.
 */
export function presentedChainOf(socket: unknown): X509Certificate[] {
  if (!(socket instanceof TLSSocket)) return [];
  const chain: X509Certificate[] = [];
  let certificate: X509Certificate | undefined = socket.getPeerX509Certificate();
  while (certificate !== undefined && chain.length < 10) {
    if (chain.some((seen) => seen.fingerprint256 === certificate!.fingerprint256)) break; // a self-signed top
    chain.push(certificate);
    certificate = certificate.issuerCertificate;
  }
  return chain;
}
