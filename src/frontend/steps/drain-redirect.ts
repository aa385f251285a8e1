// Draining (DESIGN §1): a draining (or drained) server answers every new out-of-dialog request from a
// client — no To tag, no Route left, not over a pool link — with `302 Moved Temporarily` to the
// user's next available servers, REGISTER included, so that a user leaves with its first request;
// `503` with Retry-After when no other server is available. In-dialog requests, requests from peers
// and OPTIONS to the server itself go on: every dialog in progress keeps working.
import type { Random } from '../../shared/clock.ts';
import type { Flow } from '../../sip/flow.ts';
import { from, to } from '../../sip/headers.ts';
import type { Header } from '../../sip/message.ts';
import { redirectContactsInSequence, type RedirectContact } from '../../registrar/sequence.ts';
import type { PoolView } from '../pool-view.ts';
import type { RegisterAnswers } from '../register-answers.ts';
import type { OwnState } from '../status.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

const RETRY_AFTER: readonly Header[] = [{ name: 'Retry-After', value: '30' }];

export interface DrainRedirectOptions {
  view: () => PoolView;
  ownState: () => OwnState;
  /** The physical registrar sequence: may `fqdn` take users now? */
  available: (fqdn: string) => boolean;
  /** The Contacts of the 302, formatted as the registrar's 301 (RegistrarService.contactHeaders). */
  contactHeaders: (contacts: readonly RedirectContact[], flow: Flow) => Header[];
  random: Random;
  registerAnswers: RegisterAnswers;
}

export class DrainRedirectStep implements Step {
  readonly name = 'drain';
  /** Out-of-dialog requests answered 302 (or 503) while draining (status().resilience.drainRedirects). */
  redirects = 0;

  constructor(private readonly options: DrainRedirectOptions) {}

  run(context: RequestContext): StepOutcome {
    if (this.options.ownState() === 'active') return 'continue';
    const request = context.request;
    if (request.method === 'ACK' || request.method === 'CANCEL') return 'continue';
    if (context.kind === 'options' || context.fromPeer || context.fromServer || context.routeLeft) return 'continue';
    const toHeader = to(request);
    if (toHeader.tag !== null) return 'continue';
    const view = this.options.view();
    // The user the request is for: the AOR of a REGISTER or reg SUBSCRIBE, the caller otherwise.
    const aor = context.kind === 'register' || context.kind === 'reg-subscribe' ? toHeader.uri : from(request).uri;
    const who = view.userOf(aor);
    if (who === null || !('user' in who)) return 'continue';
    const contacts = redirectContactsInSequence(view.sequencer.sequenceOfCanonical(who.user), this.options.available);
    this.redirects++;
    if (contacts.length === 0) {
      this.options.registerAnswers.count(request, 503);
      reply(context.flow, request, 503, this.options.random, { reason: 'Draining, no other server available', headers: RETRY_AFTER });
      return 'answered';
    }
    this.options.registerAnswers.count(request, 302);
    reply(context.flow, request, 302, this.options.random, { reason: 'Moved Temporarily', headers: this.options.contactHeaders(contacts, context.flow) });
    return 'answered';
  }
}
