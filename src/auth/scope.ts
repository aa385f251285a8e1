// Which requests the authenticate step sees (DESIGN §7): a client's REGISTER (the registrar's 401)
// and its other out-of-dialog requests (a proxy's 407). Not in-dialog requests (the dialog was set up
// by an authenticated request on the flow), not requests from peers or, but for REGISTER, from servers
// of other pools (recognised as servers, not users), never ACK or CANCEL (RFC 3261 §22.1: they cannot be challenged, there is no response to resend them on).
import { to } from '../sip/headers.ts';
import type { SipRequest } from '../sip/message.ts';
import type { ChallengeKind } from './challenge.ts';

export function challengeScope(request: SipRequest, context: { fromPeer: boolean; fromServer?: boolean }): ChallengeKind | 'none' {
  if (context.fromPeer) return 'none';
  if (request.method === 'ACK' || request.method === 'CANCEL') return 'none';
  if (request.method === 'REGISTER') return 'registrar';
  // A call or IM from a server of another pool (a Front End, a Director, a Mediation server of the
  // topology) was authenticated where it entered: the caller's flow at its own home, or it came from
  // a PSTN gateway. Challenging it again would fail every call between pools (the server has no
  // password to answer with). A REGISTER proxied by a server is still challenged: the client answers.
  if (context.fromServer === true) return 'none';
  // A To tag marks a request inside a dialog (RFC 3261 §12.2).
  if (to(request).tag !== null) return 'none';
  return 'proxy';
}
