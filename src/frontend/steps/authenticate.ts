// The authenticate step (DESIGN §7 "Trust", src/auth/README.md): when the topology turns
// `settings.auth` on, a client's REGISTER and its out-of-dialog requests go on only as a user the
// flow has proven (SIP digest against the user directory). Off, the step costs one field read.
//
// Not challenged: requests from pool peers (servers, not users), ACK and CANCEL (RFC 3261 §22.1),
// in-dialog requests (set up by an authenticated request on the flow), and OPTIONS to the server
// itself (a keep-alive or capability probe: it names no user and reveals none).
//
// A flow that already carries an identity is decided at once; otherwise the digest is checked
// against the user directory held in memory (src/auth/user-table.ts), also at once: the request
// goes on, or is answered (after the brute-force limiter's delay when it says so).
import type { Logger } from 'pino';
import { withoutProxyCredentials } from '../../auth/authorization.ts';
import { relayedFlowOf } from '../../auth/relayed.ts';
import { challengeScope } from '../../auth/scope.ts';
import { digestIdentityOf } from '../../auth/user-credential.ts';
import type { Authenticator, AuthOutcome } from '../../auth/authenticate.ts';
import type { Clock, Random, Timer } from '../../shared/clock.ts';
import type { RegisterAnswers } from '../register-answers.ts';
import { limits } from '../../shared/limits.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

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
  /** Answers held back by the limiter, cancelled at close. */
  private readonly held = new Set<Timer>();
  /** Remote clients' flow identities (link id/token) → the Edge link they came over. */
  private readonly relayed = new Map<string, string>();
  /** The same identities by the link they came through, so that a closing link costs only its own. */
  private readonly relayedByLink = new Map<string, Set<string>>();

  constructor(private readonly options: AuthenticateStepOptions) {}

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
    const outcome = auth.authenticate(request, authFlow);
    if (outcome.kind === 'authenticated') {
      if (request.method !== 'REGISTER') context.request = withoutProxyCredentials(request, digestIdentityOf(outcome.identity).realm);
      return 'continue';
    }
    this.answer(context, outcome);
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
        const oldest = this.relayed.entries().next().value;
        if (oldest !== undefined) {
          this.forgetRelayed(oldest[0], oldest[1]);
          this.options.auth()?.flowClosed(oldest[0]);
        }
      }
      this.relayed.set(id, link.id);
      let ids = this.relayedByLink.get(link.id);
      if (ids === undefined) this.relayedByLink.set(link.id, (ids = new Set()));
      ids.add(id);
    }
    return { id, remoteAddress: source };
  }

  private forgetRelayed(id: string, linkId: string): void {
    this.relayed.delete(id);
    const ids = this.relayedByLink.get(linkId);
    ids?.delete(id);
    if (ids?.size === 0) this.relayedByLink.delete(linkId);
  }

  /** A link closed (any flow: a client's too, so this must not cost more than that link's own entries): the remote clients' identities bound through it go. */
  linkClosed(linkId: string, auth: { flowClosed(id: string): void } | null): void {
    const ids = this.relayedByLink.get(linkId);
    if (ids === undefined) return;
    this.relayedByLink.delete(linkId);
    for (const id of ids) {
      this.relayed.delete(id);
      auth?.flowClosed(id);
    }
  }

  /** Cancels the answers still held back (the server stops). */
  close(): void {
    for (const timer of this.held) timer.cancel();
    this.held.clear();
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
