// Which requests the authenticate step sees (DESIGN §7): a client's REGISTER (the registrar's 401)
// and its other out-of-dialog requests (a proxy's 407). Not in-dialog requests (the dialog was set up
// by an authenticated request on the flow), not requests from peers or from servers of other pools
// (recognised as servers, not users) unless an Edge relays them for a remote client, never ACK or
// CANCEL (RFC 3261 §22.1: they cannot be challenged, there is no response to resend them on).
import { to } from '../sip/headers.ts';
import type { SipRequest } from '../sip/message.ts';
import type { ChallengeKind } from './challenge.ts';

// A request from a server of another pool (fromServer: a Director, another pool's Front End, a
// Mediation server bringing a gateway's call) was authenticated where it entered: not again — the
// server has no password to answer a challenge with, and every call between pools would fail. The one exception is a request an Edge relays for
// a remote client (`relayed`): the Edge holds no credentials, so the first internal server authenticates it.
export function challengeScope(request: SipRequest, context: { fromPeer: boolean; fromServer?: boolean; relayed?: boolean }): ChallengeKind | 'none' {
  if (context.fromPeer) return 'none';
  if (context.fromServer === true && context.relayed !== true) return 'none';
  if (request.method === 'ACK' || request.method === 'CANCEL') return 'none';
  if (request.method === 'REGISTER') return 'registrar';
  // A To tag marks a request inside a dialog (RFC 3261 §12.2).
  if (to(request).tag !== null) return 'none';
  return 'proxy';
}
