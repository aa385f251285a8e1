// The authenticate step of the request path (DESIGN §7 "Trust"): a request either goes on with an
// authenticated identity, or is answered (400, 401/407 with a challenge, 403, 503 Retry-After). An
// identity proven on a flow is bound to it (RFC 5626 flows; src/auth/README.md says why), so later
// requests on that flow are not challenged again, and may only speak for that user.
import { canonicalUser } from '../registrar/sequence.ts';
import type { Clock } from '../shared/clock.ts';
import { isDnslbError } from '../shared/errors.ts';
import { from as fromHeader, to as toHeader } from '../sip/headers.ts';
import type { Header, SipRequest } from '../sip/message.ts';
import { formatUri } from '../sip/uri.ts';
import { AuthHeaderError, parseCredentials, type DigestCredentials } from './authorization.ts';
import { CHALLENGE_STATUS, challengeHeaders, CREDENTIALS_HEADER, type ChallengeKind } from './challenge.ts';
import { expectedResponse, responseMatches, type DigestAlgorithm } from './digest.ts';
import { BruteForceLimiter } from './limiter.ts';
import { checkNonce, issueNonce, NonceCounts, type RandomBytes } from './nonce.ts';
import { digestIdentityOf } from './user-credential.ts';
import type { AuthUser } from './user-table.ts';

/**
 * Where the step reads users: in memory, never the disk (user-table.ts `UserTable`, which the server
 * keeps current from the store's 'user' events).
 */
export interface AuthDirectory {
  user(uri: string): AuthUser | undefined;
}

export interface AuthConfig {
  /** Offer and accept MD5 beside SHA-256 (RFC 8760 §2.4: only for clients that cannot do SHA-256). */
  md5: boolean;
  /** The algorithms offered, in order (one challenge each); default SHA-256, then MD5 when `md5`. */
  algorithms?: readonly DigestAlgorithm[];
  /** A nonce older than this is stale: the client is challenged again with stale=true. */
  nonceLifetimeMs: number;
}

export const AUTH_DEFAULTS: AuthConfig = {
  md5: false,
  nonceLifetimeMs: 300_000, // 5 min
};

/** The flow a request came on: its id (to bind an identity to) and its source address (for the limiter). */
export interface AuthFlow {
  id: string;
  remoteAddress: string;
}

export type AuthOutcome =
  | { kind: 'authenticated'; identity: string; via: 'digest' | 'flow' }
  | {
      kind: 'answer';
      status: 400 | 401 | 403 | 407 | 503;
      reason: string;
      headers: Header[];
      /** Hold the answer back this long (the brute-force limiter slowing a source down). */
      delayMs: number;
      /** For logs and metrics only: never sent, so that the answer does not tell whether a user exists. */
      why: string;
      /** A failed attempt (wrong password, unknown user, replayed count) or a refusal: worth a log line with the source. */
      failed?: boolean;
    };

export interface AuthenticatorOptions {
  directory: AuthDirectory;
  /** The pool's nonce secret (the store's authSecret). */
  secret: Buffer;
  /** The SIP domains of the topology: one realm each. */
  realms: readonly string[];
  clock: Clock;
  randomBytes: RandomBytes;
  config?: Partial<AuthConfig>;
  limiter?: BruteForceLimiter;
}

export interface AuthCounters {
  challenged: number;
  authenticated: number;
  viaFlow: number;
  failed: number;
  stale: number;
  replayed: number;
  forbidden: number;
  refused: number;
  malformed: number;
}

/** An HA1 that matches no password: unknown users cost the same hashing as known ones. */
const NO_USER_HA1: Readonly<Record<DigestAlgorithm, string>> = { 'SHA-256': '0'.repeat(64), MD5: '0'.repeat(32) };

export class Authenticator {
  readonly config: AuthConfig;
  readonly limiter: BruteForceLimiter;
  readonly counters: AuthCounters = { challenged: 0, authenticated: 0, viaFlow: 0, failed: 0, stale: 0, replayed: 0, forbidden: 0, refused: 0, malformed: 0 };
  private readonly counts: NonceCounts;
  /** flow id → the identity proven on it. */
  private readonly flows = new Map<string, string>();
  private realms: ReadonlySet<string>;

  constructor(private readonly options: AuthenticatorOptions) {
    this.config = { ...AUTH_DEFAULTS, ...options.config };
    this.limiter = options.limiter ?? new BruteForceLimiter();
    this.counts = new NonceCounts({ lifetimeMs: this.config.nonceLifetimeMs });
    this.realms = new Set(options.realms.map((realm) => realm.toLowerCase()));
  }

  /** A newly published topology's SIP domains (one realm each). */
  setRealms(realms: readonly string[]): void {
    this.realms = new Set(realms.map((realm) => realm.toLowerCase()));
  }

  /** The identity bound to a flow, if any. */
  identityOf(flowId: string): string | undefined {
    return this.flows.get(flowId);
  }

  /** A closed flow's identity goes with it (RFC 5626: the flow is the unit of trust). */
  flowClosed(flowId: string): void {
    this.flows.delete(flowId);
  }

  /** How many flows carry an identity. */
  get boundFlows(): number {
    return this.flows.size;
  }

  private get algorithms(): readonly DigestAlgorithm[] {
    return this.config.algorithms ?? (this.config.md5 ? ['SHA-256', 'MD5'] : ['SHA-256']);
  }

  private challenge(kind: ChallengeKind, realm: string, why: string, options: { stale?: boolean; delayMs?: number; failed?: boolean } = {}): AuthOutcome {
    this.counters.challenged++;
    const nonce = issueNonce({ secret: this.options.secret, lifetimeMs: this.config.nonceLifetimeMs, randomBytes: this.options.randomBytes }, realm, this.options.clock.nowMs());
    const status = CHALLENGE_STATUS[kind];
    return { kind: 'answer', status, reason: status === 401 ? 'Unauthorized' : 'Proxy Authentication Required', headers: challengeHeaders({ kind, realm, nonce, algorithms: this.algorithms, stale: options.stale === true }), delayMs: options.delayMs ?? 0, why, failed: options.failed === true };
  }

  private forbidden(why: string, reason = 'Forbidden'): AuthOutcome {
    this.counters.forbidden++;
    return { kind: 'answer', status: 403, reason, headers: [], delayMs: 0, why };
  }

  /** The limiter's refusal of this source or user, as an answer; undefined when it may try. */
  private refusal(source: string, claimed: string, nowMs: number): AuthOutcome | undefined {
    const admission = this.limiter.admit(source, claimed, nowMs);
    if (admission.kind === 'go') return undefined;
    this.counters.refused++;
    if (admission.who === 'source') return { kind: 'answer', status: 403, reason: 'Too many failed attempts', headers: [], delayMs: 0, why: `source ${source} refused until ${new Date(admission.untilMs).toISOString()}` };
    return { kind: 'answer', status: 503, reason: 'Too many failed attempts', headers: [{ name: 'Retry-After', value: String(admission.retryAfterS) }], delayMs: 0, why: `user ${claimed} refused until ${new Date(admission.untilMs).toISOString()}` };
  }

  /**
   * The answer for a request on a flow that already carries an identity, without waiting for
   * anything (the request path's fast path); undefined when the flow carries none (call `authenticate`).
   */
  flowOutcome(request: SipRequest, flowId: string): AuthOutcome | undefined {
    const bound = this.flows.get(flowId);
    if (bound === undefined) return undefined;
    const party = this.claimedParty(request);
    return typeof party === 'string' ? this.boundOutcome(bound, party) : party;
  }

  /** RFC 5626: the flow already proved who it speaks for; it speaks for no one else. */
  private boundOutcome(bound: string, claimed: string): AuthOutcome {
    if (bound === claimed) {
      this.counters.viaFlow++;
      return { kind: 'authenticated', identity: claimed, via: 'flow' };
    }
    return this.forbidden(`the flow is authenticated as ${bound}, the request claims ${claimed}`, 'Identity does not match the connection');
  }

  /** The user a request speaks for (REGISTER: the To user; otherwise the From user), or the answer when it names none. */
  private claimedParty(request: SipRequest): string | AuthOutcome {
    const registrar = request.method === 'REGISTER';
    const party = registrar ? 'To' : 'From';
    let partyUri: string;
    try {
      partyUri = formatUri((registrar ? toHeader(request) : fromHeader(request)).uri);
    } catch (error) {
      this.counters.malformed++;
      return { kind: 'answer', status: 400, reason: `Bad ${party}`, headers: [], delayMs: 0, why: (error as Error).message };
    }
    let claimed: string;
    try {
      claimed = canonicalUser(partyUri);
    } catch (error) {
      if (!isDnslbError(error)) throw error;
      return this.forbidden(`${party} is not a SIP user: ${error.message}`);
    }
    if (!claimed.includes('@')) return this.forbidden(`${claimed} names no user`);
    return claimed;
  }

  /**
   * Decides one request. REGISTER is the registrar's (401, the To user); any other request is a
   * proxy's (407, the From user). The caller chooses which requests come here (out-of-dialog, from
   * clients: DESIGN §7) and sends the answer after `delayMs`. Synchronous: the directory is in memory.
   */
  authenticate(request: SipRequest, flow: AuthFlow): AuthOutcome {
    const party = this.claimedParty(request);
    if (typeof party !== 'string') return party;
    const claimed = party;
    const kind: ChallengeKind = request.method === 'REGISTER' ? 'registrar' : 'proxy';
    const bound = this.flows.get(flow.id);
    if (bound !== undefined) return this.boundOutcome(bound, claimed);

    const { username, realm } = digestIdentityOf(claimed);
    if (!this.realms.has(realm)) return this.forbidden(`${realm} is not a SIP domain of this pool`, 'Domain not served here');

    let credentials: DigestCredentials | undefined;
    for (const header of request.headers) {
      if (header.name.toLowerCase() !== CREDENTIALS_HEADER[kind].toLowerCase()) continue;
      try {
        const parsed = parseCredentials(header.value, { md5Allowed: this.algorithms.includes('MD5') });
        // RFC 3261 §22.3: credentials for other realms (other proxies on the path) are not ours.
        if (parsed.realm.toLowerCase() === realm) {
          credentials = parsed;
          break;
        }
      } catch (error) {
        if (!(error instanceof AuthHeaderError)) throw error;
        if (error.status === 400) {
          this.counters.malformed++;
          return { kind: 'answer', status: 400, reason: `Bad ${CREDENTIALS_HEADER[kind]}: ${error.message}`.slice(0, 200), headers: [], delayMs: 0, why: error.message };
        }
        return this.challenge(kind, realm, error.message);
      }
    }
    if (credentials === undefined) return this.challenge(kind, realm, 'no credentials for this realm');

    const nowMs = this.options.clock.nowMs();
    const refused = this.refusal(flow.remoteAddress, claimed, nowMs);
    if (refused !== undefined) return refused;

    const nonce = checkNonce({ secret: this.options.secret, lifetimeMs: this.config.nonceLifetimeMs, randomBytes: this.options.randomBytes }, realm, credentials.nonce, nowMs);
    if (nonce.kind === 'invalid') return this.challenge(kind, realm, 'a nonce this pool did not issue');
    if (nonce.kind === 'stale') {
      this.counters.stale++;
      return this.challenge(kind, realm, 'stale nonce', { stale: true });
    }
    // RFC 7616 §3.4.6: the digest-uri must be the Request-URI, or a response for one request could be used for another.
    if (credentials.uri.toLowerCase() !== formatUri(request.uri).toLowerCase()) {
      this.counters.malformed++;
      return { kind: 'answer', status: 400, reason: 'Authorization uri does not match the Request-URI', headers: [], delayMs: 0, why: `digest uri ${credentials.uri}` };
    }
    // Credentials for another user than the one the request speaks for: refused whatever the password.
    if (credentials.username !== username) return this.forbidden(`credentials of ${credentials.username} for ${claimed}`, 'Credentials do not match the user');

    const user = this.options.directory.user(claimed);
    const ha1 = user === undefined ? NO_USER_HA1[credentials.algorithm] : credentials.algorithm === 'MD5' ? user.ha1Md5() : user.ha1Sha256();
    if (ha1 === undefined) return this.challenge(kind, realm, `${claimed} has no MD5 hash: SHA-256 only`);
    const expected = expectedResponse({ algorithm: credentials.algorithm, ha1, nonce: credentials.nonce, nc: credentials.nc, cnonce: credentials.cnonce, method: request.method, digestUri: credentials.uri });
    if (user === undefined || !responseMatches(expected, credentials.response)) {
      // The same answer for an unknown user as for a wrong password (issue 13 §6).
      this.counters.failed++;
      const { delayMs } = this.limiter.failed(flow.remoteAddress, claimed, nowMs);
      return this.challenge(kind, realm, user === undefined ? `unknown user ${claimed}` : `wrong password for ${claimed}`, { delayMs, failed: true });
    }
    // Counted only once the response is proven: a forged response cannot burn another client's counts.
    const count = this.counts.check(credentials.nonce, nonce.issuedAtMs, credentials.ncValue, nowMs);
    if (count !== 'fresh') {
      this.counters.replayed++;
      if (count === 'replayed') this.limiter.failed(flow.remoteAddress, undefined, nowMs);
      return this.challenge(kind, realm, count === 'replayed' ? `nonce count ${credentials.nc} replayed` : 'nonce forgotten (count table full)', { stale: true, failed: count === 'replayed' });
    }
    if (user.disabled) return this.forbidden(`${claimed} is disabled`, 'User disabled');
    this.limiter.succeeded(flow.remoteAddress, claimed, nowMs);
    this.flows.set(flow.id, claimed);
    this.counters.authenticated++;
    return { kind: 'authenticated', identity: claimed, via: 'digest' };
  }
}
