// Topology → the plain document fromObject() accepts again: what the store writes, so that a stored
// version is validated on read by the same schema and rules as a YAML file.
import { isIP } from 'node:net';
import type { Endpoint, Topology, TopologyInput } from './schema.ts';

/** "address:port", or "[v6]:port" (RFC 3986 §3.2.2 brackets an IPv6 literal before a port). */
export function formatEndpoint(endpoint: Endpoint): string {
  return isIP(endpoint.address) === 6 ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}

/**
 * The inverse of parse for a validated topology: fromObject(toDocument(t)) deep-equals t.
 * Every schema transform is idempotent on its own output except endpoints (a string in the
 * document, an object in the model: DNS listen addresses, secondaries, gateways), which are turned
 * back into strings here.
 */
export function toDocument(topology: Topology): TopologyInput {
  const copy = JSON.parse(JSON.stringify(topology)) as Topology;
  return {
    ...copy,
    pools: copy.pools.map((pool) =>
      pool.gateways ? { ...pool, gateways: pool.gateways.map((gateway) => ({ ...gateway, endpoint: formatEndpoint(gateway.endpoint) })) } : pool,
    ),
    dns: {
      ...copy.dns,
      servers: copy.dns.servers.map((server) => ({ ...server, listen: server.listen.map(formatEndpoint) })),
      secondaries: copy.dns.secondaries.map(formatEndpoint),
    },
  };
}
