// Who is at the other end of a connection: a server of this pool (a peer: heartbeat, hand-over,
// proxying inside the pool, our Record-Route followed back), a server of another pool of the published
// topology (a Director, an Edge's internal side, another pool's Front End), or a client. DESIGN §7
// "Trust": with mutual TLS between servers (settings.interServer.transport `tls`, the default) a server
// is recognised ONLY by a certificate that verified against the pool CA and whose subjectAltName is its
// FQDN in the topology — never by its source address, so a client, or any process on a server's own
// address, without that server's certificate and key is a client. With `tcp` (written in the topology,
// warned at start) the source address is all there is.
import { canonicalServer } from '../registrar/sequence.ts';
import type { TopologyServer } from './pool-view.ts';

export type InterServerTransport = 'tls' | 'tcp';

/** What is known of a connection's other end (a Flow, or a connection a draining transport is asked about). */
export interface ConnectionCredentials {
  readonly remoteAddress: string;
  readonly transport: 'tcp' | 'tls';
  /** DNS names of a certificate that verified against our CA; null when none did. */
  readonly certificateNames: readonly string[] | null;
}

export type Origin = { kind: 'peer'; server: TopologyServer } | { kind: 'server'; server: TopologyServer } | { kind: 'client' };

/** What the decision looks servers up in (PoolView): by FQDN and by address, every pool (Edge too). */
export interface ServerDirectory {
  readonly self: { readonly fqdn: string };
  readonly pool: { readonly fqdn: string };
  anyServer(fqdn: string): TopologyServer | undefined;
  serverWithAddress(address: string): TopologyServer | undefined;
}

/**
 * The one server of the topology a certificate's DNS names name: exact match of a name with a server
 * FQDN (case and a trailing dot aside). A wildcard name (`*.contoso.com`) never names a server, and a
 * certificate naming two servers or more names none (each server has its own: sharing one would let
 * one server speak as another). Other names (the pool FQDN, Web services) are ignored.
 */
export function serverNamedBy(names: readonly string[], directory: Pick<ServerDirectory, 'anyServer'>): TopologyServer | undefined {
  let found: TopologyServer | undefined;
  for (const name of names) {
    if (name.includes('*')) continue;
    const server = directory.anyServer(canonicalServer(name));
    if (server === undefined || server === found) continue;
    if (found !== undefined) return undefined;
    found = server;
  }
  return found;
}

/** The decision: which server of the topology, if any, the connection is from. Never this server itself. */
export function originOf(connection: ConnectionCredentials, directory: ServerDirectory, transport: InterServerTransport): Origin {
  let server: TopologyServer | undefined;
  if (transport === 'tls') {
    // Only a verified certificate: not a TCP connection, not a TLS client without one, not the source address.
    if (connection.transport === 'tls' && connection.certificateNames !== null) server = serverNamedBy(connection.certificateNames, directory);
  } else {
    server = directory.serverWithAddress(connection.remoteAddress);
  }
  if (server === undefined || server.fqdn === directory.self.fqdn) return { kind: 'client' };
  return server.pool.fqdn === directory.pool.fqdn ? { kind: 'peer', server } : { kind: 'server', server };
}
