// A user's digest identity from its canonical URI (username = user part, realm = SIP domain) and the
// stored credential made from a password: HA1 hashes only (RFC 7616 §3.4.2), the password dropped.
import type { UserCredential } from '../store/users.ts';
import { ha1 } from './digest.ts';

/** The digest username and realm of a canonical `sip:user@domain`: the user part (escapes decoded) and the domain. */
export function digestIdentityOf(uri: string): { username: string; realm: string } {
  const at = uri.lastIndexOf('@');
  const user = uri.slice(uri.indexOf(':') + 1, at);
  let username = user;
  try {
    username = decodeURIComponent(user);
  } catch {
    // canonicalUser has already refused malformed escapes; keep the text as it is.
  }
  return { username, realm: uri.slice(at + 1) };
}

/** The credential stored for `password`: SHA-256 HA1, and MD5 HA1 when `md5` (clients that cannot do SHA-256). */
export function credentialFor(uri: string, password: string, options: { md5: boolean }): UserCredential {
  const { username, realm } = digestIdentityOf(uri);
  return {
    realm,
    ha1Sha256: ha1('SHA-256', username, realm, password),
    ...(options.md5 ? { ha1Md5: ha1('MD5', username, realm, password) } : {}),
  };
}
