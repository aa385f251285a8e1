// Server-to-server links: one outgoing TCP or TLS flow per peer, opened on first use and kept open
// (requests, heartbeat OPTIONS and their answers share it). Peers are this pool's members and the SIP
// servers of the other pools of the published topology (topology-aware routing between pools, DESIGN
// §7): a server that is not in the published topology is never linked to, so the number of links is
// bounded by the topology's server count. A closed flow is reopened on the next use.
import type { Flow } from '../sip/flow.ts';
import type { SipTransport, TlsClientOptions } from '../sip/transport.ts';
import { DnslbError } from '../shared/errors.ts';
import type { PoolView } from './pool-view.ts';

export interface PeerLinksOptions {
  transport: SipTransport;
  /** `tcp` to the pool's TCP port, or `tls` to its TLS port (mutual TLS when a client cert is given). */
  linkTransport: 'tcp' | 'tls';
  tls?: TlsClientOptions;
}

/** A link given up for a new one (restart) is closed this much later: RFC 3261 Timer F (64 × T1), after which nothing in flight on it is waited for. */
export const RETIRED_LINK_CLOSE_MS = 32_000;

export class PeerLinks {
  private view: PoolView;
  private readonly links = new Map<string, Flow>();
  private readonly connecting = new Map<string, Promise<Flow>>();
  /** When each pending connect began (Date.now()). */
  private readonly connectingSince = new Map<string, number>();
  private connectFailures = 0;
  private readonly lostListeners = new Set<(fqdn: string) => void>();
  /** Links given up for new ones (restart), kept open a while for what is in flight on them. */
  private readonly retired = new Set<Flow>();

  constructor(
    view: PoolView,
    private readonly options: PeerLinksOptions,
  ) {
    this.view = view;
  }

  /** A new topology: links to servers no longer in it are closed. */
  setView(view: PoolView): void {
    this.view = view;
    for (const [fqdn, flow] of this.links) {
      if (this.peerOf(fqdn) === undefined) {
        this.links.delete(fqdn);
        flow.close('local', 'no longer in the topology');
      }
    }
  }

  /** The open link to `fqdn`, without connecting. */
  openFlow(fqdn: string): Flow | undefined {
    const flow = this.links.get(fqdn);
    return flow && !flow.closed ? flow : undefined;
  }

  /** A pool peer, or a SIP server of another pool of the published topology; never this server. */
  private peerOf(fqdn: string): { address: string; tcpPort: number; tlsPort: number } | undefined {
    const server = this.view.server(fqdn);
    return server === undefined || server.fqdn === this.view.self.fqdn ? undefined : server;
  }

  /** The link to a peer (any pool), connecting when there is none. Throws SIP_CONNECT or FRONTEND_PEER_UNKNOWN. */
  async flowTo(fqdn: string): Promise<Flow> {
    const open = this.openFlow(fqdn);
    if (open) return open;
    const pending = this.connecting.get(fqdn);
    if (pending) return pending;
    const peer = this.peerOf(fqdn);
    if (!peer) throw new DnslbError('FRONTEND_PEER_UNKNOWN', `${fqdn} is not a SIP server of the published topology (this server is in pool ${this.view.pool.fqdn})`);
    const tls = this.options.linkTransport === 'tls';
    const attempt = this.options.transport
      .connect({
        transport: this.options.linkTransport,
        host: peer.address,
        port: tls ? peer.tlsPort : peer.tcpPort,
        // From our own address, so that the peer recognises the connection as ours.
        localAddress: this.view.self.address,
        tls: tls ? { ...this.options.tls, servername: this.options.tls?.servername ?? fqdn } : undefined,
      })
      .then(
        (flow) => {
          if (this.connecting.get(fqdn) === attempt) this.connecting.delete(fqdn);
          const open = this.openFlow(fqdn);
          if (open) {
            // A newer attempt (this one was given up on) got there first: one link per peer.
            flow.close('local', 'a link to this peer is open');
            return open;
          }
          this.links.set(fqdn, flow);
          flow.once('close', ({ reason }) => {
            if (this.links.get(fqdn) !== flow) return; // a retired link: the peer's current link is another
            this.links.delete(fqdn);
            if (reason === 'remote-closed' || reason === 'socket-error') for (const listener of this.lostListeners) listener(fqdn);
          });
          return flow;
        },
        (error: unknown) => {
          if (this.connecting.get(fqdn) === attempt) this.connecting.delete(fqdn);
          this.connectFailures++;
          throw error;
        },
      );
    this.connecting.set(fqdn, attempt);
    this.connectingSince.set(fqdn, Date.now());
    return attempt;
  }

  /**
   * The next use of the link to `fqdn` starts afresh on a new connection; a connect still pending is no
   * longer waited for (it ends by itself; if it succeeds after all it is the link unless a newer one is
   * open). The old link is not closed at once: what is in flight on it (an INVITE queued in TCP behind
   * a partition) still arrives when the path is back, and its answers come back on it; it is closed
   * `RETIRED_LINK_CLOSE_MS` later. The heartbeat calls this for a peer that stopped answering on its
   * link: through a partition, TCP's retransmissions on the old connection (and a SYN's) back off
   * exponentially — after a 7.8 s partition the old link stayed silent about 5 s more, and the peer
   * with it (the chaos soak's slow recoveries after `pair`) — while a new connection per probe gets
   * through as soon as the path is back.
   */
  restart(fqdn: string, why: string): void {
    this.connecting.delete(fqdn);
    this.connectingSince.delete(fqdn);
    const open = this.openFlow(fqdn);
    if (!open) return;
    this.links.delete(fqdn);
    this.retired.add(open);
    const timer = setTimeout(() => {
      this.retired.delete(open);
      open.close('local', why);
    }, RETIRED_LINK_CLOSE_MS);
    timer.unref();
    open.once('close', () => {
      clearTimeout(timer);
      this.retired.delete(open);
    });
  }

  /** A connect to `fqdn` pending for `ageMs` or more is no longer waited for: the next use connects anew (see restart). */
  abandonConnect(fqdn: string, ageMs: number): void {
    const since = this.connectingSince.get(fqdn);
    if (since === undefined || Date.now() - since < ageMs) return;
    this.connecting.delete(fqdn);
    this.connectingSince.delete(fqdn);
  }

  /** Called with the peer's FQDN when its link closes from the peer's side (reset, FIN, socket error). */
  onLost(listener: (fqdn: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  stats(): { open: string[]; connectFailures: number } {
    return { open: [...this.links.keys()].filter((fqdn) => this.openFlow(fqdn)), connectFailures: this.connectFailures };
  }

  close(): void {
    for (const flow of this.links.values()) flow.close('shutdown');
    for (const flow of this.retired) flow.close('shutdown');
    this.links.clear();
    this.retired.clear();
  }
}
