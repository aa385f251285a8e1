// Clients behind an Edge (DESIGN §7 "Edge", src/edge/README.md): the Edge holds the client's own
// connection, and relays its requests to the Director (or the home pool) over one server link shared
// by every remote user. It says which client flow a relayed request came on, and from which address,
// in one header it alone may set (it removes any a client sent). The first internal server that gets
// the request from the Edge authenticates it with that flow as the unit of trust: one identity per
// remote client flow (RFC 5626), the brute-force limiter counting the client's own address.
// Every request from outside that an Edge sends inside carries it (a partner's with `partner=`): a
// request from an Edge without it is refused where it would be challenged (auth/scope.ts).
import { headerValue, type Header, type SipRequest } from '../sip/message.ts';

/** The header an Edge puts on the requests it relays for a remote client. */
export const RELAYED_FLOW_HEADER = 'X-Dnslb-Remote-Flow';

export interface RelayedFlow {
  /** The Edge's flow token of the client's connection (unique at that Edge). */
  token: string;
  /** The client's address as the Edge saw it. */
  source: string;
  /**
   * A federation partner's request (its From in this listed partner domain, checked by the Edge): a new
   * request from it is not challenged (its organisation vouched for its user), a REGISTER is.
   */
  partner?: string;
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const SOURCE = /^[0-9A-Fa-f.:]{2,45}$/;
const DOMAIN = /^[A-Za-z0-9.-]{1,253}$/;

export function relayedFlowHeader(flow: RelayedFlow): Header {
  return { name: RELAYED_FLOW_HEADER, value: `token=${flow.token};source=${flow.source}${flow.partner !== undefined ? `;partner=${flow.partner}` : ''}` };
}

/** `request` with the relayed-flow header added (at the end: the proxy puts its Via on top). */
export function withRelayedFlow(request: SipRequest, flow: RelayedFlow): SipRequest {
  return { ...request, headers: [...request.headers, relayedFlowHeader(flow)] };
}

/** The relayed flow a request names; null when it names none or the value is malformed. */
export function relayedFlowOf(request: SipRequest): RelayedFlow | null {
  const value = headerValue(request, RELAYED_FLOW_HEADER);
  if (value === undefined) return null;
  let token: string | undefined;
  let source: string | undefined;
  let partner: string | undefined;
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    const inner = part.slice(eq + 1).trim();
    if (name === 'token') token = inner;
    else if (name === 'source') source = inner;
    else if (name === 'partner') partner = inner;
  }
  if (token === undefined || source === undefined || !TOKEN.test(token) || !SOURCE.test(source)) return null;
  if (partner !== undefined) return DOMAIN.test(partner) ? { token, source, partner } : null;
  return { token, source };
}
