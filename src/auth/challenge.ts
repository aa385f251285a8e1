// Digest challenges (RFC 3261 §22.1/§22.3, RFC 7616 §3.3, RFC 8760 §2.4): one WWW-Authenticate (a
// registrar's 401) or Proxy-Authenticate (a proxy's 407) per algorithm offered, most preferred first.
import type { Header } from '../sip/message.ts';
import type { DigestAlgorithm } from './digest.ts';

/** Who challenges: the registrar (401, WWW-Authenticate / Authorization) or a proxy (407, Proxy-Authenticate / Proxy-Authorization). */
export type ChallengeKind = 'registrar' | 'proxy';

export const CHALLENGE_STATUS: Readonly<Record<ChallengeKind, 401 | 407>> = { registrar: 401, proxy: 407 };
export const CHALLENGE_HEADER: Readonly<Record<ChallengeKind, string>> = { registrar: 'WWW-Authenticate', proxy: 'Proxy-Authenticate' };
export const CREDENTIALS_HEADER: Readonly<Record<ChallengeKind, string>> = { registrar: 'Authorization', proxy: 'Proxy-Authorization' };

/** A quoted-string (RFC 3261 §25.1): `"` and `\` escaped. Realms and nonces we make need none, a configured realm might. */
export function quote(value: string): string {
  return `"${value.replace(/["\\]/g, (character) => `\\${character}`)}"`;
}

export interface ChallengeInput {
  kind: ChallengeKind;
  realm: string;
  nonce: string;
  /** SHA-256 first, then MD5 where enabled: RFC 7616 §3.7, the client takes the first it supports. */
  algorithms: readonly DigestAlgorithm[];
  /** RFC 7616 §3.3: the nonce the client used is merely old; retry with the new one without asking the user. */
  stale: boolean;
}

/** The challenge header fields, one per algorithm. */
export function challengeHeaders(input: ChallengeInput): Header[] {
  return input.algorithms.map((algorithm) => ({
    name: CHALLENGE_HEADER[input.kind],
    value: `Digest realm=${quote(input.realm)}, nonce=${quote(input.nonce)}, algorithm=${algorithm}, qop="auth"${input.stale ? ', stale=true' : ''}`,
  }));
}
