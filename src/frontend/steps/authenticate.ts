// The authenticate step (DESIGN §7 "Trust", src/auth/README.md): when the topology turns
// `settings.auth` on, a client's REGISTER and its out-of-dialog requests go on only as a user the
// flow has proven (SIP digest against the user directory). Off, the step costs one field read.
//
// Not challenged: requests from pool peers (servers, not users), ACK and CANCEL (RFC 3261 §22.1),
// in-dialog requests (set up by an authenticated request on the flow), and OPTIONS to the server
// itself (a keep-alive or capability probe: it names no user and reveals none).
//
// A flow that already carries an identity is decided at once. Otherwise the digest is checked
// against the store, which takes a while: the step answers the path ("answered"), and when the
// check ends either sends the answer (after the brute-force limiter's delay) or runs the rest of the
// path on a copy of the context (the path's own context is reused by the next request meanwhile).
import type { Logger } from 'pino';
import { withoutProxyCredentials } from '../../auth/authorization.ts';
import { relayedFlowOf } from '../../auth/relayed.ts';
import { challengeScope } from '../../auth/scope.ts';
import { digestIdentityOf } from '../../auth/user-credential.ts';
import type { Authenticator, AuthOutcome } from '../../auth/authenticate.ts';
import type { Clock, Random, Timer } from '../../shared/clock.ts';
import type { RegisterAnswers } from '../register-answers.ts';
import { limits } from '../../shared/limits.ts';
import type { Header } from '../../sip/message.ts';
import { reply, RequestContext, type Step, type StepOutcome } from './step.ts';

const RETRY_AFTER: readonly Header[] = [{ name: 'Retry-After', value: '5' }];

export interface AuthenticateStepOptions {
  /** The authenticator when the topology turns authentication on; null when off (read per request). */
  auth: () => Authenticator | null;
  clock: Clock;
  random: Random;
  logger: Logger;
  registerAnswers: RegisterAnswers;
}

export class AuthenticateStep implements Step {
  readonly name = 'authenticate';
  /** The steps after this one, for requests that go on once their digest is checked (set by `follow`). */
  private rest: readonly Step[] = [];
  /** Answers held back by the limiter, cancelled at close. */
  private readonly held = new Set<Timer>();
  /** Checks against the store in progress. */
  pending = 0;
  /** The store could not be read: answered 503 (the client retries; nobody is let in unchecked). */
  directoryErrors = 0;
  /** Remote clients' flow identities (link id/token) → the Edge link they came over. */
  private readonly relayed = new Map<string, string>();

  constructor(private readonly options: AuthenticateStepOptions) {}

  /** Tells the step the path it is part of: requests it lets through later continue after it. */
  follow(path: readonly Step[]): void {
    const index = path.indexOf(this);
    if (index < 0) throw new Error('the authenticate step is not in this path');
    this.rest = path.slice(index + 1);
  }

  run(context: RequestContext): StepOutcome {
    const auth = this.options.auth();
    if (auth === null) return 'continue';
    const request = context.request;
    // A request an Edge relays for a remote client (auth/relayed.ts): the client's flow at the Edge is the
    // unit of trust, its own address the limiter's source.
    const relayed = context.fromServer && context.fromEdge ? relayedFlowOf(request) : null;
    if (context.kind === 'options' || challengeScope(request, { fromPeer: context.fromPeer, fromServer: context.fromServer, fromEdge: context.fromEdge, partner: relayed?.partner !== undefined }) === 'none') return 'continue';
    const flow = context.flow;
    if (context.fromEdge && relayed === null) {
      // An Edge marks every request it brings from outside; one without the mark has no client flow to
      // hold an identity (the Edge link itself must never get one: every remote client shares it).
      reply(flow, request, 403, this.options.random, { reason: 'A request relayed by an Edge must name its client flow' });
      return 'answered';
    }
    const authFlow = relayed === null ? flow : this.relayedFlow(flow, relayed.token, relayed.source);
    const known = auth.flowOutcome(request, authFlow.id);
    if (known !== undefined) {
      if (known.kind === 'authenticated') return 'continue';
      this.answer(context, known);
      return 'answered';
    }
    if (this.pending >= limits.authPendingMax) {
      this.options.registerAnswers.count(request, 503);
      reply(flow, request, 503, this.options.random, { reason: 'Too many sign-ins in progress', headers: RETRY_AFTER });
      return 'answered';
    }
    const later = Object.assign(new RequestContext(), context);
    this.pending++;
    auth.authenticate(request, authFlow).then(
      (outcome) => {
        this.pending--;
        if (flow.closed) {
          // The flow went while its password was checked: it must not keep an identity.
          auth.flowClosed(authFlow.id);
          return;
        }
        if (outcome.kind === 'authenticated') {
          if (request.method !== 'REGISTER') later.request = withoutProxyCredentials(later.request, digestIdentityOf(outcome.identity).realm);
          this.continueWith(later);
        }
        else this.answer(later, outcome);
      },
      (error: unknown) => {
        this.pending--;
        this.directoryErrors++;
        this.options.logger.warn({ err: error, source: authFlow.remoteAddress }, 'auth: the user directory could not be read; answered 503');
        this.options.registerAnswers.count(request, 503);
        reply(flow, request, 503, this.options.random, { reason: 'User directory unavailable', headers: RETRY_AFTER });
      },
    );
    return 'answered';
  }

  /**
   * The flow identity of a remote client behind an Edge link: `link id/token`. They are forgotten with
   * the link (linkClosed), and at most limits.authRelayedFlowsMax are kept (the oldest go first): the
   * Edge does not tell when a client's connection ends.
   */
  private relayedFlow(link: { id: string }, token: string, source: string): { id: string; remoteAddress: string } {
    const id = `${link.id}/${token}`;
    if (!this.relayed.has(id)) {
      if (this.relayed.size >= limits.authRelayedFlowsMax) {
        const oldest = this.relayed.keys().next().value;
        if (oldest !== undefined) {
          this.relayed.delete(oldest);
          this.options.auth()?.flowClosed(oldest);
        }
      }
      this.relayed.set(id, link.id);
    }
    return { id, remoteAddress: source };
  }

  /** A server link closed: the remote clients' identities bound through it go. */
  linkClosed(linkId: string, auth: { flowClosed(id: string): void } | null): void {
    if (this.relayed.size === 0) return;
    for (const [id, link] of this.relayed) {
      if (link !== linkId) continue;
      this.relayed.delete(id);
      auth?.flowClosed(id);
    }
  }

  /** Cancels the answers still held back (the server stops). */
  close(): void {
    for (const timer of this.held) timer.cancel();
    this.held.clear();
  }

  private continueWith(context: RequestContext): void {
    for (let index = 0; index < this.rest.length; index++) {
      if (this.rest[index]!.run(context) === 'answered') return;
    }
  }

  private answer(context: RequestContext, outcome: Extract<AuthOutcome, { kind: 'answer' }>): void {
    const { flow, request } = context;
    // Failures are logged with their source; the limiter bounds them (about 10 per source per 5 min).
    // Refusals of an already refused source or user are counted in the metrics only: a flood would flood the log.
    if (outcome.failed === true || outcome.status === 403) {
      const refusedAgain = outcome.reason === 'Too many failed attempts';
      this.options.logger[refusedAgain ? 'debug' : 'info']({ source: flow.remoteAddress, method: request.method, status: outcome.status, why: outcome.why, delayMs: outcome.delayMs }, 'auth: refused');
    }
    const send = (): void => {
      this.options.registerAnswers.count(request, outcome.status);
      reply(flow, request, outcome.status, this.options.random, { reason: outcome.reason, headers: outcome.headers });
    };
    if (outcome.delayMs <= 0) return send();
    const timer = this.options.clock.setTimer(outcome.delayMs, () => {
      this.held.delete(timer);
      send();
    });
    this.held.add(timer);
  }
}
