// Sending a client to its home pool (DESIGN §7): a user is homed on one Front End pool (the store's
// assignment, then the topology's rules, then the default pool — frontend/homes.ts).
//
// - Director: every new out-of-dialog request from a client (REGISTER, reg SUBSCRIBE, an INVITE, a
//   MESSAGE…) gets `301 Redirect request to Home Server` with the user's home pool servers as
//   Contacts, in the user's registrar sequence of that pool with falling q-values, only the servers
//   that may get traffic now (pool/membership.ts isRoutable) — never a binding here.
// - Front End: a REGISTER or reg SUBSCRIBE of a user homed on another pool gets the same 301 (a moved
//   user re-registering on its old flow lands in its new pool).
//
// No home: 404 with the reason. A home pool with no routable server: 503 + Retry-After and a reason,
// never a Contact list of dead servers. Requests from servers (a pool peer, an Edge, a Director) and
// in-dialog requests go on: they are proxied (route step), not redirected.
import type { Random } from '../../shared/clock.ts';
import { from, to } from '../../sip/headers.ts';
import type { Header } from '../../sip/message.ts';
import { formatQ, redirectQValues } from '../../registrar/sequence.ts';
import { serversToTry, type Routable } from '../../pool/routing.ts';
import type { UserHomes } from '../homes.ts';
import type { PoolView } from '../pool-view.ts';
import type { RegisterAnswers } from '../register-answers.ts';
import { REDIRECT_REASON } from '../registrar-service.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

const RETRY_AFTER: readonly Header[] = [{ name: 'Retry-After', value: '30' }];

export interface RedirectHomeCounters {
  /** 301s sent to a home pool. */
  redirected: number;
  /** 404s: the user has no home pool. */
  noHome: number;
  /** 503s: the home pool has no server that may get traffic. */
  homeUnavailable: number;
}

export interface RedirectHomeOptions {
  /** `director`: every new out-of-dialog client request; `frontend`: REGISTER and reg SUBSCRIBE of users homed on another pool. */
  role: 'director' | 'frontend';
  view: () => PoolView;
  homes: UserHomes;
  /** May a server get traffic now (pool/membership.ts isRoutable)? */
  routable: Routable;
  random: Random;
  registerAnswers: RegisterAnswers;
}

export class RedirectHomeStep implements Step {
  readonly name = 'redirect-home';
  readonly counters: RedirectHomeCounters = { redirected: 0, noHome: 0, homeUnavailable: 0 };

  constructor(private readonly options: RedirectHomeOptions) {}

  run(context: RequestContext): StepOutcome {
    const kind = context.kind;
    if (kind === 'options' || kind === 'self') return 'continue';
    if (context.fromPeer || context.fromServer || context.routeLeft) return 'continue';
    const request = context.request;
    if (request.method === 'ACK' || request.method === 'CANCEL') return 'continue';
    const registration = kind === 'register' || kind === 'reg-subscribe';
    if (this.options.role === 'frontend' && !registration) return 'continue';
    const toHeader = to(request);
    if (toHeader.tag !== null) return 'continue';
    const view = this.options.view();
    // The user the request is for: the AOR of a REGISTER or reg SUBSCRIBE, the caller otherwise.
    const who = view.userOf(registration ? toHeader.uri : from(request).uri);
    if (who === null || !('user' in who)) {
      // Not our user: a Front End's registrar answers it (404); a Director registers nobody.
      if (this.options.role === 'frontend' || !registration) return 'continue';
      return this.answer(context, 404, who === null ? 'Not a user of this SIP domain' : 'Unknown user');
    }
    const pool = this.options.homes.homePoolOf(view, who.user);
    if ('none' in pool) {
      this.counters.noHome++;
      return this.answer(context, 404, `No home pool: ${pool.reason}`);
    }
    if (pool.pool === view.pool.fqdn) return 'continue'; // ours: the registrar's (no sequence computed here)
    const home = this.options.homes.homeOf(view, who.user);
    if ('none' in home) return this.answer(context, 404, `No home pool: ${home.reason}`);
    const route = serversToTry(view.topology, home.pool, home.sequence, this.options.routable);
    if ('none' in route) {
      this.counters.homeUnavailable++;
      return this.answer(context, 503, `Home pool unavailable: ${route.reason}`, RETRY_AFTER);
    }
    const transport = context.flow.transport;
    const q = redirectQValues(route.targets.length);
    const contacts: Header[] = route.targets.map((target, index) => ({
      name: 'Contact',
      // maddr (RFC 3261 §19.1.1) carries the address, so a client without the topology's DNS still reaches the server.
      value: `<sip:${target.server}:${transport === 'tls' ? target.tlsPort : target.tcpPort};transport=${transport};maddr=${target.address}>;q=${formatQ(q[index]!)}`,
    }));
    this.counters.redirected++;
    return this.answer(context, 301, REDIRECT_REASON, contacts);
  }

  private answer(context: RequestContext, status: number, reason: string, headers: readonly Header[] = []): StepOutcome {
    this.options.registerAnswers.count(context.request, status);
    // A reason phrase is one line of text (RFC 3261 §25.1): no CR/LF from a topology name can break it.
    reply(context.flow, context.request, status, this.options.random, { reason: reason.replace(/[\r\n]+/g, ' ').slice(0, 400), headers });
    return 'answered';
  }
}
