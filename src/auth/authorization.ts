// Parsing of Authorization / Proxy-Authorization headers: digest credentials (RFC 3261 §25.1 `credentials`,
// RFC 7616 §3.4): quoted strings with escapes, parameters in any order and case, each at most once.
// Anything malformed is an AuthHeaderError (400); a well-formed header dnslb cannot use says why (401).
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { DIGEST_HEX_LENGTH, type DigestAlgorithm } from './digest.ts';

/** What to answer: 400 for a header that breaks the grammar, 401/407 (a fresh challenge) for one dnslb cannot use. */
export class AuthHeaderError extends DnslbError {
  readonly status: 400 | 401;

  constructor(status: 400 | 401, message: string) {
    super('AUTH_HEADER', message);
    this.status = status;
    this.name = 'AuthHeaderError';
  }
}

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  /** The digest-uri as sent: hashed as is (RFC 7616 §3.4.3). */
  uri: string;
  response: string;
  algorithm: DigestAlgorithm;
  cnonce: string;
  /** Eight hex digits as sent. */
  nc: string;
  /** nc as a number. */
  ncValue: number;
  opaque: string | undefined;
}

// RFC 3261 §25.1: token characters.
const TOKEN_CHAR = /[A-Za-z0-9\-.!%*_+`'~]/;

/** The raw parameters of one `Digest …` credentials value, names lower-cased; values unquoted and unescaped. */
export function parseDigestParams(value: string): Map<string, { value: string; quoted: boolean }> {
  let index = 0;
  const length = value.length;
  const skipSpace = (): void => {
    while (index < length && (value[index] === ' ' || value[index] === '\t' || value[index] === '\r' || value[index] === '\n')) index++;
  };
  const token = (): string => {
    const start = index;
    while (index < length && TOKEN_CHAR.test(value[index] as string)) index++;
    return value.slice(start, index);
  };
  skipSpace();
  const scheme = token();
  if (scheme === '') throw new AuthHeaderError(400, 'no authentication scheme');
  // RFC 7235 §2.1: the scheme is case-insensitive.
  if (scheme.toLowerCase() !== 'digest') throw new AuthHeaderError(401, `scheme ${JSON.stringify(scheme.slice(0, 40))} is not supported: only Digest`);
  const params = new Map<string, { value: string; quoted: boolean }>();
  let first = true;
  for (;;) {
    skipSpace();
    if (index >= length) break;
    if (!first) {
      if (value[index] !== ',') throw new AuthHeaderError(400, `expected "," at offset ${index}`);
      index++;
      skipSpace();
      // Empty list elements (",,") are allowed by the #rule (RFC 7230 §7).
      if (value[index] === ',' || index >= length) continue;
    }
    first = false;
    const name = token().toLowerCase();
    if (name === '') throw new AuthHeaderError(400, `expected a parameter name at offset ${index}`);
    skipSpace();
    if (value[index] !== '=') throw new AuthHeaderError(400, `parameter ${name} has no "="`);
    index++;
    skipSpace();
    let parsed: string;
    let quoted = false;
    if (value[index] === '"') {
      quoted = true;
      index++;
      let text = '';
      let closed = false;
      while (index < length) {
        const character = value[index] as string;
        if (character === '\\') {
          // RFC 3261 §25.1 quoted-pair: "\" followed by any character but CR and LF.
          const next = value[index + 1];
          if (next === undefined || next === '\r' || next === '\n') throw new AuthHeaderError(400, `bad escape in parameter ${name}`);
          text += next;
          index += 2;
          continue;
        }
        if (character === '"') {
          closed = true;
          index++;
          break;
        }
        text += character;
        index++;
      }
      if (!closed) throw new AuthHeaderError(400, `unterminated quoted string in parameter ${name}`);
      parsed = text;
    } else {
      parsed = token();
      if (parsed === '') throw new AuthHeaderError(400, `parameter ${name} has no value`);
    }
    if (params.has(name)) throw new AuthHeaderError(400, `parameter ${name} appears twice`);
    if (params.size >= limits.authParamsMax) throw new AuthHeaderError(400, `more than ${limits.authParamsMax} parameters`);
    params.set(name, { value: parsed, quoted });
  }
  return params;
}

/**
 * The digest credentials of one header value. `md5Allowed` says whether MD5 is enabled: when it is
 * not, an MD5 response is "well-formed but unusable" (401, so the client gets the SHA-256 challenge).
 */
export function parseCredentials(value: string, options: { md5Allowed: boolean }): DigestCredentials {
  const params = parseDigestParams(value);
  const required = (name: string): string => {
    const found = params.get(name);
    if (found === undefined) throw new AuthHeaderError(400, `parameter ${name} is missing`);
    if (found.value.length > limits.authParamCharsMax) throw new AuthHeaderError(400, `parameter ${name} is longer than ${limits.authParamCharsMax} characters`);
    return found.value;
  };
  const username = required('username');
  const realm = required('realm');
  const nonce = required('nonce');
  const uri = required('uri');
  const response = required('response');
  // RFC 7616 §3.4: absent algorithm means MD5.
  const algorithmName = params.get('algorithm')?.value ?? 'MD5';
  let algorithm: DigestAlgorithm;
  if (algorithmName.toUpperCase() === 'SHA-256') algorithm = 'SHA-256';
  else if (algorithmName.toUpperCase() === 'MD5') algorithm = 'MD5';
  else throw new AuthHeaderError(401, `algorithm ${JSON.stringify(algorithmName.slice(0, 40))} is not supported (SHA-256${options.md5Allowed ? ', MD5' : ''})`);
  if (algorithm === 'MD5' && !options.md5Allowed) throw new AuthHeaderError(401, 'algorithm MD5 is not enabled here: use SHA-256');
  const qop = params.get('qop');
  // RFC 2069 digests (no qop) carry no nonce count: replay could not be refused, so dnslb requires qop=auth.
  if (qop === undefined) throw new AuthHeaderError(401, 'qop is missing: dnslb requires qop=auth');
  if (qop.value.toLowerCase() !== 'auth') throw new AuthHeaderError(401, `qop ${JSON.stringify(qop.value.slice(0, 40))} is not supported: only auth`);
  const cnonce = required('cnonce');
  const nc = required('nc');
  if (!/^[0-9a-fA-F]{8}$/.test(nc)) throw new AuthHeaderError(400, `nc ${JSON.stringify(nc.slice(0, 40))} is not eight hex digits`);
  const ncValue = parseInt(nc, 16);
  if (ncValue === 0) throw new AuthHeaderError(400, 'nc is 00000000: counts start at 1');
  if (!new RegExp(`^[0-9a-fA-F]{${DIGEST_HEX_LENGTH[algorithm]}}$`).test(response)) throw new AuthHeaderError(400, `response is not ${DIGEST_HEX_LENGTH[algorithm]} hex digits (${algorithm})`);
  const opaque = params.get('opaque')?.value;
  return { username, realm, nonce, uri, response, algorithm, cnonce, nc, ncValue, opaque };
}

/**
 * The request without the Proxy-Authorization headers answering our realm: a proxy that consumed
 * its credentials does not pass them on (RFC 3261 §22.3); credentials for other realms stay.
 */
export function withoutProxyCredentials<T extends { headers: readonly { name: string; value: string }[] }>(request: T, realm: string): T {
  const ours = (header: { name: string; value: string }): boolean => {
    if (header.name.toLowerCase() !== 'proxy-authorization') return false;
    try {
      return parseDigestParams(header.value).get('realm')?.value.toLowerCase() === realm;
    } catch {
      return false;
    }
  };
  if (!request.headers.some(ours)) return request;
  return { ...request, headers: request.headers.filter((header) => !ours(header)) };
}
