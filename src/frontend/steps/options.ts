// The server as the UAS of requests addressed to itself: OPTIONS (to this server or its pool, or with
// Max-Forwards 0 — the heartbeat's probe) → 200 with what it supports, and to a pool peer its own
// state, which the peers' heartbeat reads (DESIGN §3 "Heartbeat"); any other method to us → 405 with Allow (§8.2.1).
import type { Random } from '../../shared/clock.ts';
import type { Header } from '../../sip/message.ts';
import { REGINFO_CONTENT_TYPE } from '../../registrar/reg-event.ts';
import type { PoolView } from '../pool-view.ts';
import type { OwnState } from '../status.ts';
import { SUPPORTED } from './require.ts';
import { reply, type RequestContext, type Step, type StepOutcome } from './step.ts';

/** Headers of an OPTIONS answer (and of our heartbeat OPTIONS) that carry a server's view of itself. */
export const STATE_HEADER = 'X-Dnslb-State';
export const TOPOLOGY_VERSION_HEADER = 'X-Dnslb-Topology-Version';
export const SERVER_HEADER = 'X-Dnslb-Server';

const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, REGISTER, INFO, UPDATE, REFER';
const ACCEPT = `application/sdp, ${REGINFO_CONTENT_TYPE}`;
/** What an OPTIONS answer says to anyone (a client's capability query or keep-alive). */
const TO_ANYONE: readonly Header[] = [
  { name: 'Allow', value: ALLOW },
  { name: 'Accept', value: ACCEPT },
  { name: 'Supported', value: SUPPORTED.join(', ') },
];
/** What a request to the server itself (not to a user) may be. */
const ALLOW_TO_US: readonly Header[] = [{ name: 'Allow', value: 'OPTIONS, REGISTER, SUBSCRIBE' }];

export class OptionsStep implements Step {
  readonly name = 'options';

  constructor(
    private readonly view: () => PoolView,
    private readonly ownState: () => OwnState,
    private readonly random: Random,
  ) {}

  run(context: RequestContext): StepOutcome {
    if (context.kind === 'self') {
      if (context.request.method !== 'ACK') reply(context.flow, context.request, 405, this.random, { headers: ALLOW_TO_US });
      return 'answered';
    }
    if (context.kind !== 'options') return 'continue';
    // The heartbeat's answer — which server, its state, its topology version — goes to pool peers
    // only (recognised by certificate, peer-identity.ts); anyone else gets what any UAS says of itself.
    if (!context.fromPeer) {
      reply(context.flow, context.request, 200, this.random, { headers: TO_ANYONE });
      return 'answered';
    }
    const view = this.view();
    const headers: Header[] = [
      ...TO_ANYONE,
      { name: SERVER_HEADER, value: view.self.fqdn },
      { name: STATE_HEADER, value: this.ownState() },
      { name: TOPOLOGY_VERSION_HEADER, value: String(view.topologyVersion) },
    ];
    reply(context.flow, context.request, 200, this.random, { headers });
    return 'answered';
  }
}
