// fast-check arbitraries for valid topologies: a few pools of every kind inside one zone, built to
// satisfy DESIGN §3 by construction (unique FQDNs and IPs, Web services overrides, edge services).
import fc from 'fast-check';
import { fromObject } from '../../src/topology/parse.ts';
import type { Topology, TopologyInput } from '../../src/topology/schema.ts';

const kinds = ['frontend', 'director', 'edge', 'mediation'] as const;

const poolShape = fc.record({
  kind: fc.constantFrom(...kinds),
  loadBalancing: fc.constantFrom('dns' as const, 'dns' as const, 'hardware' as const),
  servers: fc.integer({ min: 1, max: 4 }),
  ipv6: fc.boolean(),
  order: fc.constantFrom('rotate' as const, 'random' as const, 'fixed' as const),
  maxRecords: fc.integer({ min: 0, max: 64 }),
  ttl: fc.integer({ min: 0, max: 86_400 }),
  healthAware: fc.boolean(),
  tcpPort: fc.integer({ min: 1, max: 65_535 }),
  withExternalWeb: fc.boolean(),
});

export const topologyShape = fc.record({
  zoneLabel: fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/),
  tld: fc.constantFrom('com', 'net', 'org', 'test'),
  prefix: fc.stringMatching(/^[a-z]{1,6}$/),
  ipBase: fc.integer({ min: 1, max: 200 }),
  pools: fc.array(poolShape, { minLength: 1, maxLength: 4 }),
  dnsPort: fc.integer({ min: 1, max: 65_535 }),
  secondaries: fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 65_535 })), { maxLength: 2 }),
  heartbeatIntervalMs: fc.integer({ min: 50, max: 60_000 }),
  failAfter: fc.integer({ min: 1, max: 100 }),
  legacyClientsPercent: fc.integer({ min: 0, max: 100 }),
  exchangeUm: fc.constantFrom('none', '2010-sp1', '2013'),
  comment: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
  /** Home pool rules (with a frontend pool), PSTN routes (with a mediation pool) and gateways on every mediation pool. */
  withRoles: fc.boolean(),
});

export type TopologyShape = typeof topologyShape extends fc.Arbitrary<infer T> ? T : never;

/** Builds the YAML-equivalent document of a shape; every name and address is unique by construction. */
export function topologyDocument(shape: TopologyShape): TopologyInput {
  const zone = `${shape.zoneLabel}.${shape.tld}`;
  let nextAddress = 0;
  // 10.<ipBase>.x.y: distinct within the document, and away from the DNS listen address.
  const ipv4 = (): string => {
    nextAddress += 1;
    return `10.${shape.ipBase}.${Math.floor(nextAddress / 250)}.${(nextAddress % 250) + 1}`;
  };
  const ipv6 = (): string => `fd00:${shape.ipBase.toString(16)}::${(nextAddress += 1).toString(16)}`;
  const name = (label: string): string => `${shape.prefix}${label}.${zone}`;
  const pools = shape.pools.map((pool, index) => {
    const servers = Array.from({ length: pool.servers }, (_, serverIndex) => ({
      fqdn: name(`p${index}s${serverIndex}`),
      ipv4: ipv4(),
      ...(pool.ipv6 ? { ipv6: ipv6() } : {}),
      ...(pool.kind === 'edge' ? { external: { accessEdge: { ipv4: ipv4() }, webConferencing: { ipv4: ipv4() }, av: { ipv4: ipv4() } } } : {}),
    }));
    const hardware = pool.loadBalancing === 'hardware';
    return {
      fqdn: name(`pool${index}`),
      kind: pool.kind,
      site: 'site1',
      loadBalancing: pool.loadBalancing,
      ...(hardware ? { vip: { ipv4: ipv4() } } : {}),
      servers,
      ...(pool.kind === 'frontend' || pool.kind === 'director'
        ? {
            webServices: {
              internal: { fqdn: name(`webint${index}`), vip: { ipv4: ipv4() } },
              ...(pool.withExternalWeb ? { external: { fqdn: name(`webext${index}`), vip: { ipv4: ipv4() } } } : {}),
            },
          }
        : {}),
      ...(pool.kind === 'edge'
        ? {
            edge: {
              externalLoadBalancing: pool.loadBalancing,
              accessEdge: { fqdn: name(`sip${index}`), port: 443, ...(hardware ? { vip: { ipv4: ipv4() } } : {}) },
              webConferencing: { fqdn: name(`webconf${index}`), port: 443, ...(hardware ? { vip: { ipv4: ipv4() } } : {}) },
              av: { fqdn: name(`av${index}`), port: 443, ...(hardware ? { vip: { ipv4: ipv4() } } : {}) },
            },
          }
        : {}),
      ...(shape.withRoles && pool.kind === 'mediation' ? { gateways: [{ endpoint: `${ipv4()}:5060`, transport: 'tcp' as const }] } : {}),
      dns: { order: pool.order, maxRecords: pool.maxRecords, ttl: pool.ttl, healthAware: pool.healthAware },
      sip: { tcpPort: pool.tcpPort, tlsPort: pool.tcpPort === 65_535 ? 1 : pool.tcpPort + 1 },
    };
  });
  const frontend = pools.find((pool) => pool.kind === 'frontend');
  const mediation = pools.find((pool) => pool.kind === 'mediation');
  return {
    schemaVersion: 1,
    sipDomains: [zone],
    sites: [{ name: 'site1', ...(shape.comment !== undefined ? { description: shape.comment } : {}) }],
    pools,
    ...(shape.withRoles && frontend ? { homePools: { default: frontend.fqdn, rules: [{ users: `sip:${shape.prefix}-*@${zone}`, pool: frontend.fqdn }, { domain: zone, pool: frontend.fqdn }] } } : {}),
    ...(shape.withRoles && mediation ? { pstn: { routes: [{ name: 'local', prefix: '+1-425', digitsMin: 11, digitsMax: 11, pool: mediation.fqdn }, { prefix: '+', pool: mediation.fqdn }] } } : {}),
    dns: {
      servers: [{ fqdn: name('dns1'), listen: [`127.0.0.1:${shape.dnsPort}`] }],
      zones: [{ name: zone, soa: { rname: `hostmaster.${zone}` } }],
      views: [{ name: 'internal', clients: ['127.0.0.0/24', '::1/128'] }, { name: 'external', clients: ['0.0.0.0/0', '::/0'] }],
      secondaries: shape.secondaries.map(([v6, port]) => (v6 ? `[::1]:${port}` : `127.0.0.2:${port}`)),
    },
    settings: { heartbeat: { intervalMs: shape.heartbeatIntervalMs, failAfter: shape.failAfter } },
    facts: { legacyClientsPercent: shape.legacyClientsPercent, exchangeUm: shape.exchangeUm as 'none' },
  };
}

/** Valid, frozen topologies (through the same fromObject the store uses on read). */
export const validTopology: fc.Arbitrary<Topology> = topologyShape.map((shape) => fromObject(topologyDocument(shape), '<arbitrary>'));
