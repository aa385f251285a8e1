// An edge server's two sides (DESIGN §1, §7 "Edge"): the external interface — its Access Edge address,
// TLS, facing the Internet (remote users on the Access Edge port, federation on the federation port) —
// and the internal interface — its own address, TLS 5061 / TCP 5060 for the servers of the pools
// (the pool's `sip` ports). Which side a connection is on is decided by the local address it arrived on.
import { DnslbError } from '../shared/errors.ts';
import type { Pool } from '../topology/schema.ts';

/** Lync's Access Edge port for clients when the topology names none. */
export const ACCESS_EDGE_PORT_DEFAULT = 443;

export interface EdgeInterfaces {
  /** The Access Edge address of this edge server (IPv4 preferred). */
  externalAddress: string;
  /** Where remote users connect (TLS). */
  clientPort: number;
  /** Where federated partners connect (TLS); may equal clientPort. */
  federationPort: number;
  /** The Access Edge FQDN (sip.<domain>): its certificate's name, and a Route host that names any edge server of the pool. */
  accessEdgeFqdn: string;
}

export function edgeInterfacesOf(pool: Pool, serverFqdn: string): EdgeInterfaces {
  const server = pool.servers.find((candidate) => candidate.fqdn === serverFqdn);
  const access = server?.external?.accessEdge;
  const address = access?.ipv4 ?? access?.ipv6;
  if (pool.kind !== 'edge' || pool.edge === undefined || address === undefined) {
    throw new DnslbError('EDGE_NO_ACCESS_EDGE', `${serverFqdn} has no Access Edge address in edge pool ${pool.fqdn} (servers[].external.accessEdge)`);
  }
  return { externalAddress: address.toLowerCase(), clientPort: pool.edge.accessEdge.port ?? ACCESS_EDGE_PORT_DEFAULT, federationPort: pool.edge.accessEdge.federationPort, accessEdgeFqdn: pool.edge.accessEdge.fqdn };
}

/** Is a flow's local address the external interface? (IPv4-mapped IPv6 counts as its IPv4 address.) */
export function isExternal(interfaces: EdgeInterfaces, localAddress: string): boolean {
  const bare = localAddress.startsWith('::ffff:') ? localAddress.slice(7) : localAddress;
  return bare.toLowerCase() === interfaces.externalAddress;
}
