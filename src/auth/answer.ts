// The client side of digest (RFC 7616 §3.4): the Authorization / Proxy-Authorization value answering
// a challenge. Used by tests and by clients that sign in (the user agent, the simulator).
import { quote } from './challenge.ts';
import { parseDigestParams } from './authorization.ts';
import { expectedResponse, ha1, type DigestAlgorithm } from './digest.ts';

export interface ParsedChallenge {
  realm: string;
  nonce: string;
  algorithm: DigestAlgorithm;
  stale: boolean;
  opaque: string | undefined;
}

/** A WWW-Authenticate / Proxy-Authenticate value; throws AuthHeaderError when malformed or not SHA-256/MD5 with qop auth. */
export function parseChallenge(value: string): ParsedChallenge {
  const params = parseDigestParams(value);
  const get = (name: string): string | undefined => params.get(name)?.value;
  const realm = get('realm');
  const nonce = get('nonce');
  const algorithm = (get('algorithm') ?? 'MD5').toUpperCase();
  if (realm === undefined || nonce === undefined) throw new Error('a challenge without realm or nonce');
  if (algorithm !== 'SHA-256' && algorithm !== 'MD5') throw new Error(`algorithm ${algorithm} is not supported`);
  if (!(get('qop') ?? '').split(',').map((qop) => qop.trim().toLowerCase()).includes('auth')) throw new Error('the challenge does not offer qop=auth');
  return { realm, nonce, algorithm, stale: (get('stale') ?? '').toLowerCase() === 'true', opaque: get('opaque') };
}

export interface AnswerInput {
  challenge: ParsedChallenge;
  username: string;
  password: string;
  method: string;
  /** The Request-URI as sent. */
  uri: string;
  cnonce: string;
  /** The count of requests made with this nonce, from 1. */
  nc: number;
}

/** The credentials value for one request. */
export function answerChallenge(input: AnswerInput): string {
  const { challenge } = input;
  const nc = input.nc.toString(16).padStart(8, '0');
  const response = expectedResponse({ algorithm: challenge.algorithm, ha1: ha1(challenge.algorithm, input.username, challenge.realm, input.password), nonce: challenge.nonce, nc, cnonce: input.cnonce, method: input.method, digestUri: input.uri });
  return [
    `Digest username=${quote(input.username)}`,
    `realm=${quote(challenge.realm)}`,
    `nonce=${quote(challenge.nonce)}`,
    `uri=${quote(input.uri)}`,
    `response=${quote(response)}`,
    `algorithm=${challenge.algorithm}`,
    `cnonce=${quote(input.cnonce)}`,
    'qop=auth',
    `nc=${nc}`,
    ...(challenge.opaque === undefined ? [] : [`opaque=${quote(challenge.opaque)}`]),
  ].join(', ');
}
