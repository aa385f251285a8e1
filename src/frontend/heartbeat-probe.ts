// The heartbeat's probe (pool/heartbeat.ts asks, this sends): OPTIONS with Max-Forwards 0 over the
// kept-open link to the peer; a 200 carrying X-Dnslb-State is an answer with the peer's state,
// anything else (no link, no answer within the interval, another status) a miss.
import type { Flow } from '../sip/flow.ts';
import { headerValue } from '../sip/message.ts';
import { parseUri } from '../sip/uri.ts';
import type { Random } from '../shared/clock.ts';
import type { ProbeResult } from '../pool/member-state.ts';
import type { PoolView } from './pool-view.ts';
import type { PeerLinks } from './s2s.ts';
import type { OwnState } from './status.ts';
import { STATE_HEADER, TOPOLOGY_VERSION_HEADER } from './steps/options.ts';
import { ownVia, randomToken, type LocalRequests } from './wire.ts';

/** Built once per server; the getters are read when the probe is sent (after the link is up). */
export interface ProbeContext {
  view: () => PoolView;
  ownState: () => OwnState;
  links: PeerLinks;
  local: LocalRequests;
  random: Random;
}

/**
 * A link is given up for a new one after `failAfter` probes in a row unanswered on it (the peer is
 * down by then: renewing costs its state nothing), and a connect pending this long is abandoned for a
 * new one — never sooner, so that a loaded machine's slow handshakes and answers do not churn links.
 */
export const CONNECT_ABANDON_AFTER_MS = 2000;
const silentProbes = new WeakMap<Flow, number>();

export async function probePeer(peer: string, context: ProbeContext): Promise<ProbeResult> {
  const timeoutMs = context.view().topology.settings.heartbeat.intervalMs;
  let flow: Flow;
  try {
    // A connect that hangs (SYNs dropped) is a miss after one interval, and the next probe connects
    // anew rather than wait for this attempt's backed-off SYN retransmissions.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      flow = await Promise.race([context.links.flowTo(peer), gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  } catch (error) {
    if (!wasRefused(error) && /^no connection within/.test((error as Error).message)) context.links.abandonConnect(peer, Math.max(CONNECT_ABANDON_AFTER_MS, timeoutMs));
    return { ok: false, reason: (error as Error).message, refused: wasRefused(error) };
  }
  const view = context.view();
  const random = context.random;
  if (!view.member(peer)) return { ok: false, reason: 'not in the pool' };
  const response = await context.local.send(
    flow,
    (branch) => ({
      kind: 'request',
      method: 'OPTIONS',
      uri: parseUri(`sip:${peer}`),
      headers: [
        ownVia(view, flow, branch),
        // §11: an OPTIONS with Max-Forwards 0 is answered by the first server; it never travels on.
        { name: 'Max-Forwards', value: '0' },
        { name: 'From', value: `<sip:${view.self.fqdn}>;tag=${randomToken(random, 10)}` },
        { name: 'To', value: `<sip:${peer}>` },
        { name: 'Call-ID', value: `hb-${randomToken(random, 20)}@${view.self.fqdn}` },
        { name: 'CSeq', value: '1 OPTIONS' },
        { name: STATE_HEADER, value: context.ownState() },
        { name: TOPOLOGY_VERSION_HEADER, value: String(view.topologyVersion) },
      ],
      body: Buffer.alloc(0),
    }),
    timeoutMs,
  );
  if (!response) {
    // The link reset or closed by the peer while we waited: as good as a refusal (its process is gone
    // or going), unlike a silence, which may be a loaded machine.
    const closedBy = flow.closeReason?.reason;
    if (closedBy === 'remote-closed' || closedBy === 'socket-error') return { ok: false, reason: `the link closed during the probe (${closedBy})`, refused: true };
    const silent = (silentProbes.get(flow) ?? 0) + 1;
    silentProbes.set(flow, silent);
    if (silent >= Math.max(2, view.topology.settings.heartbeat.failAfter)) context.links.restart(peer, `${silent} probes unanswered on this link`);
    return { ok: false, reason: 'no answer' };
  }
  silentProbes.delete(flow);
  if (response.status !== 200) return { ok: false, reason: `answered ${response.status}` };
  const reported = headerValue(response, STATE_HEADER)?.trim();
  const version = Number(headerValue(response, TOPOLOGY_VERSION_HEADER) ?? 'NaN');
  if (reported !== 'active' && reported !== 'draining' && reported !== 'drained') return { ok: false, reason: `no ${STATE_HEADER} in the answer` };
  return { ok: true, reportedState: reported, topologyVersion: Number.isInteger(version) ? version : 0 };
}

/** Did the connection attempt end in a refusal (nothing listens at the peer's address and port)? */
function wasRefused(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
  }
  return false;
}
