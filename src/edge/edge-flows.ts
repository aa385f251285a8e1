// The remote clients' connections an Edge holds (RFC 5626 flows), each with a flow token: the Edge puts
// the token in the Path of a REGISTER and in its Record-Route, so requests for the client come back to
// this Edge naming the very connection to send them on. A token is 120 random bits; unknown tokens and
// tokens of closed flows are refused, so a token cannot be guessed or reused after its flow ends.
import type { Flow } from '../sip/flow.ts';
import type { Random } from '../shared/clock.ts';
import { randomToken } from '../frontend/wire.ts';

export class EdgeFlows {
  private readonly byToken = new Map<string, Flow>();
  private readonly tokens = new Map<string, string>();
  /** Client flow id → the user that registered on it (canonical), for the drain's hand-over and status. */
  private readonly users = new Map<string, string>();

  constructor(private readonly random: Random) {}

  /** The token of a client flow, made on first use. */
  tokenOf(flow: Flow): string {
    let token = this.tokens.get(flow.id);
    if (token === undefined) {
      token = randomToken(this.random, 20);
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
