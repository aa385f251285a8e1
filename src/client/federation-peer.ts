// A federation partner's Access Edge, as seen from ours (issue 14 §5): it finds our Access Edge through
// `_sipfederationtls._tcp.<our domain>` SRV → the Access Edge FQDN → one address per edge server, and
// sends its users' requests (MESSAGE: an IM) there over TLS. What it does when the address it picked
// fails is its profile:
//   federation          a Lync 2010+ partner: the addresses in DNS order, the next on connect failure,
//                       no final answer within tryTimeoutMs, or 503 — at most triesMax of them;
//   legacy-federation   a partner on OCS 2007 / 2007 R2: only the first address it ever resolved, never another;
//   xmpp-gateway        an XMPP gateway (public IM, XMPP federation): the same as legacy-federation.
// The seeds' caveat — "any requests for these scenarios that are sent to it will fail, instead of
// routing to another Edge Server" — is the last two profiles; `dnslb topology advise` names them.
import type { Clock, Random } from '../shared/clock.ts';
import { systemClock, systemRandom } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { Flow } from '../sip/flow.ts';
import { callId } from '../sip/headers.ts';
import type { SipRequest } from '../sip/message.ts';
import { connectWithFailover, type ConnectOptions, type Endpoint } from './connect.ts';
import type { Discovery } from './discover.ts';
import { ClientFlow, randomToken } from './session.ts';

export const PEER_PROFILES = ['federation', 'legacy-federation', 'xmpp-gateway'] as const;
export type PeerProfile = (typeof PEER_PROFILES)[number];

/** Does a peer of this profile walk the Access Edge addresses (true), or stay on the first one it resolved (false)? */
export function walksAddresses(profile: PeerProfile): boolean {
  return profile === 'federation';
}

export interface FederationPeerOptions {
  profile: PeerProfile;
  /** Who sends: a user of the partner organisation, `sip:bob@fabrikam.com`. */
  from: string;
  /** Finds our Access Edge: a PoolDiscoverer with service `federation` (its cache follows the TTL). */
  locator: { discover(uriOrDomain: string): Promise<Discovery>; forget(uriOrDomain: string): void };
  /**
   * TLS: the CAs to trust, the partner edge's certificate and key (our Access Edge believes a partner
   * only by a certificate naming its Access Edge: src/edge/partner-identity.ts); `localAddress`: the
   * partner's Access Edge address the connections leave from.
   */
  connect?: Pick<ConnectOptions, 'ca' | 'cert' | 'key' | 'connectTimeoutMs' | 'localAddress'>;
  /** A walking peer goes to the next address when one has given no final answer after this. Default 4000 ms (as our pools between themselves). */
  tryTimeoutMs?: number;
  /** A walking peer tries at most this many addresses per request. Default 4. */
  triesMax?: number;
  /** A request with no final answer after this has failed (RFC 3261 Timer F). Default 32 000 ms. */
  transactionTimeoutMs?: number;
  clock?: Clock;
  random?: Random;
}

/** How one request ended. `first` is the address it went to first: the edge server it "went to". */
export interface PeerRequestResult {
  ok: boolean;
  /** The final status, or null when none came (connect failure, no answer). */
  status: number | null;
  /** "200 OK", "403 <reason>", "connect refused", "no answer", "no Access Edge (…)". */
  outcome: string;
  first: string | null;
  /** Every "address:port" tried, in order, with what happened there. */
  tries: { endpoint: string; outcome: string }[];
}

const endpointKey = (endpoint: Endpoint): string => `${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`;

/** Whether a try's failure sends a walking peer to the next address: connect failure, no answer, 503 (as our pools, src/frontend/proxy.ts). */
const walkOn = (status: number | null): boolean => status === null || status === 503;

export class FederationPeer {
  readonly profile: PeerProfile;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly flows = new Map<string, Promise<ClientFlow>>();
  /** A non-walking peer's one address: the first of its first resolution, kept for good. */
  private pinned: Endpoint | null = null;
  private closed = false;

  constructor(private readonly options: FederationPeerOptions) {
    this.profile = options.profile;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
  }

  /** Sends one MESSAGE from `from` to `to` (a user of our organisation) and says how it ended. Never throws. */
  async message(to: string, text = 'hello from a federation partner'): Promise<PeerRequestResult> {
    let endpoints: Endpoint[];
    try {
      endpoints = await this.endpointsFor(to);
    } catch (error) {
      return { ok: false, status: null, outcome: `no Access Edge (${(error as Error).message})`, first: null, tries: [] };
    }
    const tries: PeerRequestResult['tries'] = [];
    const limit = walksAddresses(this.profile) ? Math.min(endpoints.length, this.options.triesMax ?? 4) : 1;
    let last: { status: number | null; outcome: string } = { status: null, outcome: 'no address' };
    for (const endpoint of endpoints.slice(0, limit)) {
      last = await this.tryOne(endpoint, to, text, walksAddresses(this.profile));
      tries.push({ endpoint: endpointKey(endpoint), outcome: last.outcome });
      if (!walkOn(last.status)) break;
    }
    // A walking peer that found no address working asks DNS again next time (the answer may have changed).
    if (walkOn(last.status) && walksAddresses(this.profile)) this.options.locator.forget(to);
    const ok = last.status !== null && last.status >= 200 && last.status < 300;
    return { ok, status: last.status, outcome: last.outcome, first: tries[0]?.endpoint ?? null, tries };
  }

  /** Closes every connection. */
  close(): void {
    this.closed = true;
    for (const pending of this.flows.values()) pending.then((flow) => flow.close(), () => {});
    this.flows.clear();
  }

  private async endpointsFor(to: string): Promise<Endpoint[]> {
    if (this.pinned) return [this.pinned];
    const discovery = await this.options.locator.discover(to);
    const endpoints: Endpoint[] = discovery.endpoints.map((endpoint) => ({ address: endpoint.address, port: endpoint.port, transport: endpoint.transport, host: endpoint.host }));
    if (endpoints.length === 0) throw new DnslbError('CLIENT_DISCOVERY', `no Access Edge address for ${to}`);
    if (!walksAddresses(this.profile)) this.pinned = endpoints[0]!;
    return walksAddresses(this.profile) ? endpoints : [endpoints[0]!];
  }

  /** One address: its open flow (or a new connection), the MESSAGE, its final answer. */
  private async tryOne(endpoint: Endpoint, to: string, text: string, bounded: boolean): Promise<{ status: number | null; outcome: string }> {
    let flow: ClientFlow;
    try {
      flow = await this.flowTo(endpoint);
    } catch (error) {
      const attempts = (error as { attempts?: { outcome: string }[] }).attempts;
      return { status: null, outcome: `connect ${attempts?.[0]?.outcome ?? (error as Error).message}` };
    }
    const sent = flow.request({
      method: 'MESSAGE',
      uri: to,
      headers: [
        { name: 'From', value: `<${this.options.from}>;tag=${randomToken(this.random)}` },
        { name: 'To', value: `<${to}>` },
        { name: 'Call-ID', value: randomToken(this.random) },
        { name: 'CSeq', value: '1 MESSAGE' },
        { name: 'Content-Type', value: 'text/plain' },
      ],
      body: Buffer.from(text),
    });
    const tryTimeoutMs = this.options.tryTimeoutMs ?? 4000;
    let timer: { cancel(): void } | undefined;
    const noAnswer = bounded ? new Promise<null>((resolve) => (timer = this.clock.setTimer(tryTimeoutMs, () => resolve(null)))) : new Promise<null>(() => {});
    try {
      const response = await Promise.race([sent.response, noAnswer]);
      if (response === null) return { status: null, outcome: `no answer in ${tryTimeoutMs} ms` };
      return { status: response.status, outcome: `${response.status} ${response.reason}` };
    } catch (error) {
      return { status: null, outcome: (error as { code?: string }).code === 'CLIENT_TIMEOUT' ? 'no answer' : `flow lost (${(error as Error).message})` };
    } finally {
      timer?.cancel();
    }
  }

  private flowTo(endpoint: Endpoint): Promise<ClientFlow> {
    const key = endpointKey(endpoint);
    const existing = this.flows.get(key);
    if (existing) {
      return existing.then(
        (flow) => (flow.closed ? this.openFlow(endpoint, key) : flow),
        () => this.openFlow(endpoint, key),
      );
    }
    return this.openFlow(endpoint, key);
  }

  private openFlow(endpoint: Endpoint, key: string): Promise<ClientFlow> {
    if (this.closed) return Promise.reject(new DnslbError('CLIENT_FLOW', 'the peer is closed'));
    const opening = connectWithFailover([endpoint], { ...this.options.connect, mode: 'modern', clock: this.clock }).then((connected) => {
      const flow = new Flow(connected.socket, {
        id: `peer-${randomToken(this.random)}`,
        transport: connected.endpoint.transport,
        direction: 'outbound',
        clock: this.clock,
        random: this.random,
        idleTimeoutMs: limits.sipIdleTimeoutMsMax,
        sendBufferBytesMax: limits.sipFlowSendBufferBytesMax,
      });
      const client = new ClientFlow(flow, { clock: this.clock, random: this.random, transactionTimeoutMs: this.options.transactionTimeoutMs ?? 32_000 });
      client.on('request', (request) => answerPartnerRequest(client, request, this.random));
      return client;
    });
    this.flows.set(key, opening);
    opening.catch(() => {
      if (this.flows.get(key) === opening) this.flows.delete(key);
    });
    return opening;
  }
}

/** What a partner edge answers to requests our edge sends it on the peer's connection: OPTIONS 200, others 405 (it has no users here). */
function answerPartnerRequest(flow: ClientFlow, request: SipRequest, random: Random): void {
  if (request.method === 'ACK') return;
  try {
    callId(request);
  } catch {
    return;
  }
  flow.respond(request, request.method === 'OPTIONS' ? 200 : 405, { toTag: randomToken(random), headers: [{ name: 'Allow', value: 'OPTIONS, MESSAGE' }] });
}
