// The shipped example topology stays valid: README, npm start and later tests depend on it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFile } from './parse.ts';

test('examples/contoso.yaml validates and is frozen', async () => {
  const topology = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);
  assert.equal(topology.pools.length, 5);
  assert.deepEqual(
    topology.pools.find((pool) => pool.kind === 'frontend')?.servers.map((server) => server.ipv4),
    ['127.0.0.11', '127.0.0.12', '127.0.0.13'],
  );
  assert.ok(Object.isFrozen(topology.pools[0]?.servers[0]));
});

test('the example is a multi-pool deployment (issue 10 §6): two Front End pools in two sites, Directors, Edge, Mediation with a gateway, home rules, PSTN routes', async () => {
  const topology = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);
  const kinds = topology.pools.map((pool) => [pool.fqdn, pool.kind, pool.site, pool.servers.length]);
  assert.deepEqual(kinds, [
    ['pool01.contoso.com', 'frontend', 'redmond', 3],
    ['pool02.contoso.com', 'frontend', 'dublin', 3],
    ['dirpool.contoso.com', 'director', 'redmond', 2],
    ['edgepool.contoso.com', 'edge', 'redmond', 2],
    ['medpool.contoso.com', 'mediation', 'redmond', 2],
  ]);
  assert.equal(topology.pools.find((pool) => pool.kind === 'mediation')?.gateways?.length, 1);
  assert.equal(topology.homePools?.default, 'pool01.contoso.com');
  assert.ok(topology.homePools?.rules.some((rule) => rule.pool === 'pool02.contoso.com'), 'a rule homes users on pool02');
  assert.ok((topology.pstn?.routes.length ?? 0) > 0);
  // Every server inside the internal view (127.0.0.0/24), so that clients on the machine see them.
  for (const pool of topology.pools) for (const server of pool.servers) assert.match(server.ipv4 ?? '', /^127\.0\.0\.\d+$/, server.fqdn);
});

test('npm start runs as any user: no port the example has dnslb up bind is below 1024', async () => {
  const topology = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);
  const bound: string[] = [];
  for (const server of topology.dns.servers) for (const listen of server.listen) bound.push(`dns ${server.fqdn} ${listen.port}`);
  for (const pool of topology.pools) {
    // Edge servers also listen on their Access Edge address: the client and federation ports.
    if (pool.edge) bound.push(`${pool.fqdn} Access Edge ${pool.edge.accessEdge.port ?? 443}`, `${pool.fqdn} federation ${pool.edge.accessEdge.federationPort}`);
    bound.push(`${pool.fqdn} SIP ${pool.sip.tcpPort}`, `${pool.fqdn} SIP TLS ${pool.sip.tlsPort}`);
    for (const side of ['internal', 'external'] as const) {
      const web = pool.webServices?.[side];
      if (!web) continue;
      if (pool.kind === 'frontend' || pool.kind === 'director') bound.push(`${pool.fqdn} ${side} Web site ${web.serverPort}`);
      if (pool.webServices?.hlb === 'haproxy') bound.push(`${pool.fqdn} ${side} VIP ${web.port}`);
    }
  }
  // dnslb binds no gateway, but the README starts sipp on its address as the same user.
  for (const pool of topology.pools) for (const gateway of pool.gateways ?? []) bound.push(`${pool.fqdn} gateway ${gateway.endpoint.port}`);
  assert.ok(bound.some((entry) => entry.endsWith(' VIP 8443')), bound.join(', '));
  assert.deepEqual(bound.filter((entry) => Number(entry.split(' ').at(-1)) < 1024), [], 'ports only root may bind');
});

test('examples/fabrikam.yaml is a second organisation that runs beside contoso: its own addresses and DNS, each the other\'s federation partner', async () => {
  const contoso = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);
  const fabrikam = await parseFile(new URL('../../examples/fabrikam.yaml', import.meta.url).pathname);
  const addressesOf = (topology: typeof contoso): string[] => [
    ...topology.pools.flatMap((pool) => [
      ...pool.servers.flatMap((server) => [server.ipv4, server.external?.accessEdge.ipv4, server.external?.webConferencing.ipv4, server.external?.av.ipv4]),
      pool.webServices?.internal?.vip.ipv4,
      pool.webServices?.external?.vip.ipv4,
    ]),
    ...topology.dns.servers.flatMap((server) => server.listen.map((listen) => listen.address)),
  ].filter((address): address is string => address !== undefined);
  const shared = addressesOf(fabrikam).filter((address) => addressesOf(contoso).includes(address));
  assert.deepEqual(shared, [], 'the two organisations share no address');
  assert.deepEqual(fabrikam.sipDomains, ['fabrikam.com']);
  const dnsOf = (topology: typeof contoso) => topology.dns.servers[0]!.listen[0]!;
  assert.notEqual(dnsOf(fabrikam).port, dnsOf(contoso).port);
  const federationOf = (topology: typeof contoso) => topology.pools.find((pool) => pool.kind === 'edge')?.edge?.federation;
  assert.deepEqual(federationOf(contoso)?.partners, ['fabrikam.com']);
  assert.deepEqual(federationOf(fabrikam)?.partners, ['contoso.com']);
  // Each trusts the other's own CA (made by the other's `dnslb up` in its data dir) for the other's Access Edge.
  assert.deepEqual(federationOf(contoso)?.trustedCas, { 'fabrikam.com': '.dnslb-fabrikam/tls/ca.pem' });
  assert.deepEqual(federationOf(fabrikam)?.trustedCas, { 'contoso.com': '.dnslb/tls/ca.pem' });
  // Each edge asks the other organisation's DNS server, from an address that server sees as outside.
  assert.deepEqual(federationOf(contoso)?.resolver, dnsOf(fabrikam));
  assert.deepEqual(federationOf(fabrikam)?.resolver, dnsOf(contoso));
  const ports = [...fabrikam.dns.servers.flatMap((server) => server.listen.map((listen) => listen.port)), ...fabrikam.pools.flatMap((pool) => [pool.sip.tcpPort, pool.sip.tlsPort, pool.edge?.accessEdge.port ?? 1024, pool.edge?.accessEdge.federationPort ?? 1024])];
  assert.deepEqual(ports.filter((port) => port < 1024), [], 'fabrikam runs as any user');
});
