// The remote clients' connections an Edge holds (RFC 5626 flows), each with a flow token: the Edge puts
// the token in the Path of a REGISTER and in its Record-Route, so requests for the client come back to
// this Edge naming the very connection to send them on. A token is 120 random bits (crypto.randomBytes); unknown tokens and
// tokens of closed flows are refused, so a token cannot be guessed or reused after its flow ends.
//
// A dialog this Edge sends out to a federation partner is not bound to a connection (the partner may
// send its in-dialog requests on a connection of its own): its Record-Route carries a dialog token
// instead, an HMAC of the Call-ID and our side's tag under a key made at start (crypto.randomBytes),
// so a request from outside may follow that Record-Route only inside that very dialog.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Flow } from '../sip/flow.ts';

/** Dialog tokens start with this (and are longer than flow tokens: the two never meet). */
export const DIALOG_TOKEN_PREFIX = 'fed-';

export class EdgeFlows {
  private readonly byToken = new Map<string, Flow>();
  private readonly tokens = new Map<string, string>();
  /** Client flow id → the user that registered on it (canonical), for the drain's hand-over and status. */
  private readonly users = new Map<string, string>();

  /** `dialogKey`: the key of the dialog tokens (32 random bytes unless a test gives one). */
  constructor(private readonly dialogKey: Buffer = randomBytes(32)) {}

  /** The token of the Record-Route of a dialog sent out: bound to its Call-ID and our side's tag. */
  dialogToken(callId: string, ownTag: string): string {
    return DIALOG_TOKEN_PREFIX + createHmac('sha256', this.dialogKey).update(`${callId}\n${ownTag}`).digest('base64url').slice(0, 27);
  }

  /** Is `token` the dialog token of the dialog with this Call-ID and our side's tag? */
  isDialogToken(token: string, callId: string, ownTag: string | null): boolean {
    if (ownTag === null || !token.startsWith(DIALOG_TOKEN_PREFIX)) return false;
    const expected = Buffer.from(this.dialogToken(callId, ownTag));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The token of a client flow, made on first use. */
  tokenOf(flow: Flow): string {
    let token = this.tokens.get(flow.id);
    if (token === undefined) {
      token = randomBytes(15).toString('base64url');
      this.tokens.set(flow.id, token);
      this.byToken.set(token, flow);
    }
    return token;
  }

  /** The open client flow a token names; undefined for an unknown token or a closed flow. */
  flowOf(token: string): Flow | undefined {
    const flow = this.byToken.get(token);
    return flow !== undefined && !flow.closed ? flow : undefined;
  }

  /** Does `token` name `flow` itself (a request from outside may carry only its own connection's token)? */
  isTokenOf(token: string, flow: Flow): boolean {
    return this.tokens.get(flow.id) === token;
  }

  /** A REGISTER on `flow` for `user`: the flow carries that remote user. */
  noteUser(flow: Flow, user: string): void {
    this.tokenOf(flow);
    this.users.set(flow.id, user);
  }

  userOf(flowId: string): string | undefined {
    return this.users.get(flowId);
  }

  /** The client flows that registered a user, oldest first. */
  *userFlows(): IterableIterator<{ flow: Flow; user: string }> {
    for (const [id, user] of this.users) {
      const token = this.tokens.get(id);
      const flow = token === undefined ? undefined : this.byToken.get(token);
      if (flow !== undefined && !flow.closed) yield { flow, user };
    }
  }

  get remoteUsers(): number {
    return this.users.size;
  }

  get flows(): number {
    return this.tokens.size;
  }

  closed(flow: Flow): void {
    const token = this.tokens.get(flow.id);
    if (token === undefined) return;
    this.tokens.delete(flow.id);
    this.byToken.delete(token);
    this.users.delete(flow.id);
  }
}
