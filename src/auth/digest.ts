// Digest arithmetic (RFC 7616 §3.4.1–§3.4.3, RFC 8760 for SIP): HA1, HA2 and the response for
// qop=auth with SHA-256 or MD5. Pure functions of strings; no state, no I/O.
import { createHash, timingSafeEqual } from 'node:crypto';

/** The algorithms dnslb accepts: SHA-256 always, MD5 only where the configuration enables it (RFC 8760 §2.4). */
export type DigestAlgorithm = 'SHA-256' | 'MD5';

/** Hex digits of each algorithm's output. */
export const DIGEST_HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { 'SHA-256': 64, MD5: 32 };

function hash(algorithm: DigestAlgorithm, text: string): string {
  // RFC 7616 §3.4.1: the strings are hashed as UTF-8 (§4: "charset=UTF-8" is the only one).
  return createHash(algorithm === 'SHA-256' ? 'sha256' : 'md5')
    .update(text, 'utf8')
    .digest('hex');
}

/** RFC 7616 §3.4.2: A1 = username ":" realm ":" passwd (the non-"-sess" algorithms); HA1 = H(A1). */
export function ha1(algorithm: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hash(algorithm, `${username}:${realm}:${password}`);
}

/** RFC 7616 §3.4.3, qop=auth: A2 = Method ":" request-uri (the digest-uri as sent, not the Request-URI re-parsed). */
export function ha2(algorithm: DigestAlgorithm, method: string, digestUri: string): string {
  return hash(algorithm, `${method}:${digestUri}`);
}

export interface ResponseInput {
  algorithm: DigestAlgorithm;
  /** The stored HA1 (lower-case hex). */
  ha1: string;
  nonce: string;
  /** Eight hex digits as sent (RFC 7616 §3.4: nc is part of the hashed string as it appears). */
  nc: string;
  cnonce: string;
  method: string;
  digestUri: string;
}

/** RFC 7616 §3.4.1: response = KD(HA1, nonce ":" nc ":" cnonce ":" qop ":" HA2) with qop=auth, KD(s, d) = H(s ":" d). */
export function expectedResponse(input: ResponseInput): string {
  return hash(input.algorithm, `${input.ha1}:${input.nonce}:${input.nc}:${input.cnonce}:auth:${ha2(input.algorithm, input.method, input.digestUri)}`);
}

/** Compares a received response with the expected one in constant time (no timing oracle on the digest). */
export function responseMatches(expected: string, received: string): boolean {
  const a = Buffer.from(expected, 'latin1');
  const b = Buffer.from(received.toLowerCase(), 'latin1');
  return a.length === b.length && timingSafeEqual(a, b);
}
