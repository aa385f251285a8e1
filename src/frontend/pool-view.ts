// What one Front End server knows of its published topology: itself, its pool's servers (the only
// hosts it routes to server-to-server), the SIP domains and users it serves, and the sequencer.
import { DnslbError } from '../shared/errors.ts';
import { canonicalServer, canonicalUser, Sequencer } from '../registrar/sequence.ts';
import type { Pool, Server, Topology } from '../topology/schema.ts';
import { isSipUri, type Uri } from '../sip/uri.ts';

export interface PoolMember {
  fqdn: string;
  /** The address it listens on (IPv4 preferred: the embedded mode binds each server to its own loopback address). */
  address: string;
}

export class PoolView {
  readonly topology: Topology;
  readonly topologyVersion: number;
  readonly self: PoolMember;
  readonly pool: Pool;
  readonly members: readonly PoolMember[];
  readonly peers: readonly PoolMember[];
  readonly sequencer: Sequencer;
  readonly tcpPort: number;
  readonly tlsPort: number;
  private readonly byAddress = new Map<string, PoolMember>();
  private readonly byFqdn = new Map<string, PoolMember>();
  private readonly domains: ReadonlySet<string>;
  /** null: any user part of a SIP domain is a user (the topology lists no users). */
  private readonly users: ReadonlySet<string> | null;

  constructor(topology: Topology, selfFqdn: string, topologyVersion: number) {
    const wanted = canonicalServer(selfFqdn);
    const pool = topology.pools.find((candidate) => candidate.servers.some((server) => server.fqdn === wanted));
    if (!pool) throw new DnslbError('FRONTEND_UNKNOWN_SERVER', `${selfFqdn} is not a server of any pool in the topology`);
    // Mediation servers run the same SIP server (a pool member that answers OPTIONS and takes part in
    // the heartbeat); edge servers exist in dnslb only as DNS records.
    if (pool.kind === 'edge') {
      throw new DnslbError('FRONTEND_UNKNOWN_SERVER', `${selfFqdn} is in edge pool ${pool.fqdn}; dnslb runs the SIP servers of frontend, director and mediation pools`);
    }
    this.topology = topology;
    this.topologyVersion = topologyVersion;
    this.pool = pool;
    this.members = pool.servers.map(memberOf);
    for (const member of this.members) {
      this.byAddress.set(member.address, member);
      this.byFqdn.set(member.fqdn, member);
    }
    this.self = this.byFqdn.get(wanted)!;
    this.peers = this.members.filter((member) => member !== this.self);
    this.sequencer = new Sequencer(this.members.map((member) => member.fqdn));
    this.tcpPort = pool.sip.tcpPort;
    this.tlsPort = pool.sip.tlsPort;
    this.domains = new Set(topology.sipDomains);
    this.users = topology.users ? new Set(topology.users.map((user) => canonicalUser(user))) : null;
  }

  member(fqdn: string): PoolMember | undefined {
    return this.byFqdn.get(canonicalServer(fqdn));
  }

  /** The pool member a host (address or FQDN, as in a Route or Via) names, if any. */
  memberAt(host: string): PoolMember | undefined {
    const bare = host.startsWith('[') ? host.slice(1, -1) : host;
    return this.byAddress.get(bare.toLowerCase()) ?? this.byFqdn.get(canonicalServer(bare));
  }

  /**
   * Is a connection's remote address a pool peer's (the heartbeat, a request a peer proxied, our
   * Record-Route followed by a peer)? IPv4-mapped IPv6 addresses count as their IPv4 address.
   */
  isPeerAddress(address: string): boolean {
    const member = this.byAddress.get(address) ?? (address.startsWith('::ffff:') ? this.byAddress.get(address.slice(7)) : undefined);
    return member !== undefined && member !== this.self;
  }

  /** Does a URI host name this server (its address, its FQDN) — a Route to pop, an OPTIONS to answer? */
  isSelf(host: string): boolean {
    return this.memberAt(host) === this.self;
  }

  /** Does a URI host name this server or its pool (a request addressed to the service, not a user)? */
  isServiceHost(host: string): boolean {
    return this.isSelf(host) || canonicalServer(host) === this.pool.fqdn;
  }

  isSipDomain(host: string): boolean {
    return this.domains.has(canonicalServer(host));
  }

  /** Is the URI a user of our SIP domains (and of the topology's user list, when it has one)? */
  userOf(uri: Uri): { user: string } | { unknown: string } | null {
    if (!isSipUri(uri) || uri.user === null || !this.isSipDomain(uri.host)) return null;
    let user: string;
    try {
      user = canonicalUser(`sip:${uri.user}@${uri.host}`);
    } catch {
      return { unknown: 'malformed user' };
    }
    if (this.users && !this.users.has(user)) return { unknown: user };
    return { user };
  }
}

function memberOf(server: Server): PoolMember {
  const address = server.ipv4 ?? server.ipv6;
  if (address === undefined) throw new DnslbError('FRONTEND_UNKNOWN_SERVER', `${server.fqdn} has no address`);
  return { fqdn: server.fqdn, address: address.toLowerCase() };
}
