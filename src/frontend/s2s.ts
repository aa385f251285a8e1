// Server-to-server links: one outgoing TCP or TLS flow per pool peer, opened on first use and kept
// open (requests, heartbeat OPTIONS and their answers share it). Only members of the published pool
// are reachable this way (topology-aware routing); a closed flow is reopened on the next use.
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

export class PeerLinks {
  private view: PoolView;
  private readonly links = new Map<string, Flow>();
  private readonly connecting = new Map<string, Promise<Flow>>();
  private connectFailures = 0;

  constructor(
    view: PoolView,
    private readonly options: PeerLinksOptions,
  ) {
    this.view = view;
  }

  /** A new topology: links to servers no longer in the pool are closed. */
  setView(view: PoolView): void {
    this.view = view;
    for (const [fqdn, flow] of this.links) {
      if (!view.peers.some((peer) => peer.fqdn === fqdn)) {
        this.links.delete(fqdn);
        flow.close('local', 'no longer in the pool');
      }
    }
  }

  /** The open link to `fqdn`, without connecting. */
  openFlow(fqdn: string): Flow | undefined {
    const flow = this.links.get(fqdn);
    return flow && !flow.closed ? flow : undefined;
  }

  /** The link to a pool peer, connecting when there is none. Throws SIP_CONNECT or FRONTEND_PEER_UNKNOWN. */
  async flowTo(fqdn: string): Promise<Flow> {
    const open = this.openFlow(fqdn);
    if (open) return open;
    const pending = this.connecting.get(fqdn);
    if (pending) return pending;
    const peer = this.view.peers.find((candidate) => candidate.fqdn === fqdn);
    if (!peer) throw new DnslbError('FRONTEND_PEER_UNKNOWN', `${fqdn} is not a peer in pool ${this.view.pool.fqdn}`);
    const tls = this.options.linkTransport === 'tls';
    const attempt = this.options.transport
      .connect({
        transport: this.options.linkTransport,
        host: peer.address,
        port: tls ? this.view.tlsPort : this.view.tcpPort,
        // From our own address, so that the peer recognises the connection as ours.
        localAddress: this.view.self.address,
        tls: tls ? { ...this.options.tls, servername: this.options.tls?.servername ?? fqdn } : undefined,
      })
      .then(
        (flow) => {
          this.connecting.delete(fqdn);
          this.links.set(fqdn, flow);
          flow.once('close', () => {
            if (this.links.get(fqdn) === flow) this.links.delete(fqdn);
          });
          return flow;
        },
        (error: unknown) => {
          this.connecting.delete(fqdn);
          this.connectFailures++;
          throw error;
        },
      );
    this.connecting.set(fqdn, attempt);
    return attempt;
  }

  stats(): { open: string[]; connectFailures: number } {
    return { open: [...this.links.keys()].filter((fqdn) => this.openFlow(fqdn)), connectFailures: this.connectFailures };
  }

  close(): void {
    for (const flow of this.links.values()) flow.close('shutdown');
    this.links.clear();
  }
}
