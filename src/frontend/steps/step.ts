// One step of a request path (DESIGN §7): a small object that looks at a request and either answers
// it or lets the next step have it, and the context the steps share while one request passes.
import type { Flow } from '../../sip/flow.ts';
import { createResponse, type Header, type SipRequest } from '../../sip/message.ts';
import type { Random } from '../../shared/clock.ts';
import { randomToken } from '../wire.ts';

/** `answered`: the step dealt with the request (answered it, forwarded it or dropped it); the path ends. */
export type StepOutcome = 'answered' | 'continue';

/**
 * What a request is addressed to at this server, decided once by the classify step so that later
 * steps compare one value instead of re-reading headers:
 * - `register`: a REGISTER with no Route left (we are its registrar);
 * - `reg-subscribe`: a SUBSCRIBE to the reg event with no Route left (RFC 3680, we are its notifier);
 * - `options`: an OPTIONS to this server or its pool with no Route left, or any OPTIONS with
 *   Max-Forwards 0 (§11: the first server answers it — the heartbeat's probe);
 * - `self`: any other request to this server or its pool (not a user), CANCEL excepted;
 * - `proxy`: everything else — a request to a user, along a Route, or a CANCEL.
 */
export type RequestKind = 'register' | 'reg-subscribe' | 'options' | 'self' | 'proxy';

/**
 * The per-request context. One instance per server is reused for every request (requests are handled
 * synchronously, one at a time): `reset` fills it, the classify step computes the rest, each later
 * step reads it. A step must not keep it, or anything it holds, beyond its `run`.
 */
export class RequestContext {
  flow!: Flow;
  /** The request as it arrived. */
  received!: SipRequest;
  /** The request with the Routes naming us removed (§16.4); `received` when none was. */
  request!: SipRequest;
  /** A Route naming us was removed: the request follows our Record-Route, or was preloaded to us. */
  poppedOwnRoute = false;
  /** The user part of the first Route naming us that was removed (an Edge's flow token: src/edge/); null when none had one. */
  ownRouteUser: string | null = null;
  /** A Route is left after ours: the request goes on along it (loose routing, §16.12). */
  routeLeft = false;
  /** The Request-URI names this server or its pool, with no user part. */
  addressedToUs = false;
  /** Max-Forwards as received; null when absent. */
  hops: number | null = null;
  /** It came over a pool peer's connection (server-to-server). */
  fromPeer = false;
  /** It came from a server of another pool of the topology (a Director, an Edge, another pool's Front End): proxied, never redirected. */
  fromServer = false;
  /** fromServer, and that server is an Edge (its internal address): it relays remote clients' requests. */
  fromEdge = false;
  /** It arrived on an Edge's external interface (src/edge/): from the Internet, never from a server. */
  outside = false;
  kind: RequestKind = 'proxy';

  reset(flow: Flow, request: SipRequest): this {
    this.flow = flow;
    this.received = request;
    this.request = request;
    this.poppedOwnRoute = false;
    this.ownRouteUser = null;
    this.routeLeft = false;
    this.addressedToUs = false;
    this.hops = null;
    this.fromPeer = false;
    this.fromServer = false;
    this.fromEdge = false;
    this.outside = false;
    this.kind = 'proxy';
    return this;
  }
}

/**
 * A step: built once per server with what it needs (no closures per request), `run` once per request.
 * `name` is for logs, status and tests.
 */
export interface Step {
  readonly name: string;
  run(context: RequestContext): StepOutcome;
}

/** Runs the steps in order until one answers. The last step of a role's path always answers. */
export function runPath(path: readonly Step[], context: RequestContext): void {
  for (let index = 0; index < path.length; index++) {
    if (path[index]!.run(context) === 'answered') return;
  }
}

/** Sends a response of our own to `request` on `flow`, with a fresh To tag (§8.2.6.2). */
export function reply(flow: Flow, request: SipRequest, status: number, random: Random, options: { reason?: string; headers?: readonly Header[] } = {}): void {
  flow.send(createResponse(request, status, { toTag: randomToken(random, 10), reason: options.reason, headers: options.headers }));
}
