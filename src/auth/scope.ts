// Which requests the authenticate step sees (DESIGN §7): a client's REGISTER (the registrar's 401)
// and its other out-of-dialog requests (a proxy's 407). Not in-dialog requests (the dialog was set up
// by an authenticated request on the flow), not requests from peers or from servers of other pools
// (recognised as servers, not users) — an Edge is no such server: what it relays came from outside —, never ACK or
// CANCEL (RFC 3261 §22.1: they cannot be challenged, there is no response to resend them on).
import { to } from '../sip/headers.ts';
import type { SipRequest } from '../sip/message.ts';
import type { ChallengeKind } from './challenge.ts';

// A request from a server of another pool (fromServer: a Director, another pool's Front End, a
// Mediation server bringing a gateway's call) was authenticated where it entered: not again — the
// server has no password to answer a challenge with, and every call between pools would fail. An Edge
// is the exception (`fromEdge`): what it sends inside came from the Internet and nobody there was
// authenticated, so it is a client's request like any other — in a dialog (the Edge let it follow the
// route set only with the token it issued for that dialog or connection, src/edge/steps/edge-guard.ts)
// it passes, else the first internal server challenges it. A listed federation partner's new request
// (`partner`: the Edge checked its From domain) is not challenged: its organisation vouched for its user.
export function challengeScope(request: SipRequest, context: { fromPeer: boolean; fromServer?: boolean; fromEdge?: boolean; partner?: boolean }): ChallengeKind | 'none' {
  if (context.fromPeer) return 'none';
  if (context.fromServer === true && context.fromEdge !== true) return 'none';
  if (request.method === 'ACK' || request.method === 'CANCEL') return 'none';
  if (request.method === 'REGISTER') return 'registrar';
  // A To tag marks a request inside a dialog (RFC 3261 §12.2).
  if (to(request).tag !== null) return 'none';
  if (context.fromEdge === true && context.partner === true) return 'none';
  return 'proxy';
}
