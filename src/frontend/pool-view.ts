// What one Front End server knows of its published topology: itself, its pool's servers (the only
// hosts it routes to server-to-server), the SIP domains and users it serves, and the sequencer.
import { DnslbError } from '../shared/errors.ts';
import { canonicalServer, canonicalUser, Sequencer } from '../registrar/sequence.ts';
import type { Pool, Server, Topology } from '../topology/schema.ts';
import { isSipUri, type Uri } from '../sip/uri.ts';
import { originOf, type ConnectionCredentials, type InterServerTransport, type Origin } from './peer-identity.ts';

export interface PoolMember {
  fqdn: string;
  /** The address it listens on (IPv4 preferred: the embedded mode binds each server to its own loopback address). */
  address: string;
}

/** A SIP server of any pool of the topology (frontend, director, mediation, edge): a server-to-server peer. */
export interface TopologyServer extends PoolMember {
  pool: Pool;
  tcpPort: number;
  tlsPort: number;
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
  /** Every SIP server of the topology (this pool's too), by FQDN and by address. */
  private readonly servers = new Map<string, TopologyServer>();
  /** Every server of the topology by FQDN, Edge servers too (a certificate may name an Edge's internal side). */
  private readonly allServers = new Map<string, TopologyServer>();
  private readonly serverAddresses = new Map<string, TopologyServer>();
  private readonly domains: ReadonlySet<string>;
  /** An edge server's external names for itself: its Access Edge address(es) and the Access Edge FQDN. */
  private readonly externalSelf = new Set<string>();
  /** null: any user part of a SIP domain is a user (the topology lists no users). */
  private readonly users: ReadonlySet<string> | null;

  /**
   * How servers link and are recognised (peer-identity.ts). The topology's settings.interServer unless
   * the server says otherwise: a running server keeps the transport it started with.
   */
  readonly interServer: InterServerTransport;

  constructor(topology: Topology, selfFqdn: string, topologyVersion: number, interServer?: InterServerTransport) {
    const wanted = canonicalServer(selfFqdn);
    const pool = topology.pools.find((candidate) => candidate.servers.some((server) => server.fqdn === wanted));
    if (!pool) throw new DnslbError('FRONTEND_UNKNOWN_SERVER', `${selfFqdn} is not a server of any pool in the topology`);
    // Every pool kind runs the same SIP server (a pool member that answers OPTIONS and takes part in
    // the heartbeat); an edge server also listens on its Access Edge address (src/edge/).
    this.topology = topology;
    this.topologyVersion = topologyVersion;
    this.interServer = interServer ?? topology.settings.interServer.transport;
    this.pool = pool;
    this.members = pool.servers.map(memberOf);
    for (const member of this.members) {
      this.byAddress.set(member.address, member);
      this.byFqdn.set(member.fqdn, member);
    }
    this.self = this.byFqdn.get(wanted)!;
    this.peers = this.members.filter((member) => member !== this.self);
    const selfServer = pool.servers.find((server) => server.fqdn === wanted);
    for (const pair of [selfServer?.external?.accessEdge, selfServer?.external?.webConferencing, selfServer?.external?.av]) {
      for (const address of [pair?.ipv4, pair?.ipv6]) if (address !== undefined) this.externalSelf.add(address.toLowerCase());
    }
    if (pool.edge) this.externalSelf.add(canonicalServer(pool.edge.accessEdge.fqdn));
    this.sequencer = new Sequencer(this.members.map((member) => member.fqdn));
    this.tcpPort = pool.sip.tcpPort;
    this.tlsPort = pool.sip.tlsPort;
    this.domains = new Set(topology.sipDomains);
    this.users = topology.users ? new Set(topology.users.map((user) => canonicalUser(user))) : null;
    for (const other of topology.pools) {
      for (const server of other.servers) {
        const address = server.ipv4 ?? server.ipv6;
        if (address === undefined) continue;
        const entry: TopologyServer = { fqdn: server.fqdn, address: address.toLowerCase(), pool: other, tcpPort: other.sip.tcpPort, tlsPort: other.sip.tlsPort };
        // An Edge is linked to at its internal address (the pool FQDN's address; src/edge/).
        this.servers.set(entry.fqdn, entry);
        this.allServers.set(entry.fqdn, entry);
        this.serverAddresses.set(entry.address, entry);
      }
    }
  }

  /** A SIP server of the published topology, any pool (the hosts server-to-server links may reach). */
  server(fqdn: string): TopologyServer | undefined {
    return this.servers.get(canonicalServer(fqdn));
  }

  /** The SIP server of the topology (any pool; an Edge at its internal address) a host — address or FQDN, as in a Route — names. */
  serverAt(host: string): TopologyServer | undefined {
    const bare = (host.startsWith('[') ? host.slice(1, -1) : host).toLowerCase();
    return this.serverAddresses.get(bare) ?? this.servers.get(canonicalServer(bare));
  }

  /** Any server of the topology by FQDN, Edge servers included (peer-identity.ts). */
  anyServer(fqdn: string): TopologyServer | undefined {
    return this.allServers.get(canonicalServer(fqdn));
  }

  /** The server of the topology (Edge included) with this address; IPv4-mapped IPv6 counts as IPv4. */
  serverWithAddress(address: string): TopologyServer | undefined {
    return this.serverAddresses.get(address) ?? (address.startsWith('::ffff:') ? this.serverAddresses.get(address.slice(7)) : undefined);
  }

  /**
   * Who a connection is from (peer-identity.ts): a pool peer, a server of another pool, or a client.
   * With TLS between servers only a verified certificate naming a topology server counts.
   */
  originOf(connection: ConnectionCredentials): Origin {
    return originOf(connection, this, this.interServer);
  }

  /** How many SIP servers the topology has: the bound on server-to-server links. */
  get serverCount(): number {
    return this.servers.size;
  }

  member(fqdn: string): PoolMember | undefined {
    return this.byFqdn.get(canonicalServer(fqdn));
  }

  /** The pool member a host (address or FQDN, as in a Route or Via) names, if any. */
  memberAt(host: string): PoolMember | undefined {
    const bare = host.startsWith('[') ? host.slice(1, -1) : host;
    return this.byAddress.get(bare.toLowerCase()) ?? this.byFqdn.get(canonicalServer(bare));
  }

  /** Does a URI host name this server (its address, its FQDN) — a Route to pop, an OPTIONS to answer? */
  isSelf(host: string): boolean {
    if (this.memberAt(host) === this.self) return true;
    if (this.externalSelf.size === 0) return false;
    const bare = (host.startsWith('[') ? host.slice(1, -1) : host).toLowerCase();
    return this.externalSelf.has(bare) || this.externalSelf.has(canonicalServer(bare));
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
