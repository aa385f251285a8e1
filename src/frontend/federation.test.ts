// The Edge's partner lookup against dnslb's own DNS server serving Fabrikam's topology (examples/fabrikam.yaml)
// with its views: asked from Contoso's Access Edge address (outside for Fabrikam) it finds
// _sipfederationtls._tcp.fabrikam.com → sip.fabrikam.com:5061 → both Fabrikam Access Edges, in DNS order;
// the allow list, the triesMax cap, the health of Fabrikam's edges and DNS failures decide the rest.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DnsServer } from '../dns/server.ts';
import { LiveZones } from '../dns/live.ts';
import { systemClock } from '../shared/clock.ts';
import { fromObject, parseFile } from '../topology/parse.ts';
import { toDocument } from '../topology/document.ts';
import type { Topology } from '../topology/schema.ts';
import { caughtUp } from '../../test/helpers/eventually.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { tempFileStore } from '../../test/helpers/temp-store.ts';
import { PartnerEdges } from './federation.ts';

const FABRIKAM = new URL('../../examples/fabrikam.yaml', import.meta.url).pathname;
const CONTOSO = new URL('../../examples/contoso.yaml', import.meta.url).pathname;
/** Fabrikam's DNS for this test (the example's 127.0.17.1:5310 is left to `dnslb up`). */
const DNS_ADDRESS = '127.0.19.1';
/** Contoso's Access Edge address in the example: outside for Fabrikam's DNS. */
const CONTOSO_ACCESS_EDGE = '127.0.0.51';
/** An address inside Fabrikam (its internal view has no federation records). */
const FABRIKAM_INSIDE = '127.0.17.99';

/** Contoso's topology with its federation resolver pointed at this test's DNS server, and other edits. */
function contosoWith(base: Topology, resolver: string | undefined, edit: (federation: Record<string, unknown>) => void = () => {}): Topology {
  const document = toDocument(base) as { pools: { edge?: { federation?: Record<string, unknown> } }[] };
  const edge = document.pools.find((pool) => pool.edge)!.edge!;
  const federation: Record<string, unknown> = { ...edge.federation };
  if (resolver === undefined) delete federation.resolver;
  else federation.resolver = resolver;
  edit(federation);
  edge.federation = federation;
  return fromObject(document);
}

describe('PartnerEdges: a partner Access Edge through _sipfederationtls._tcp SRV', () => {
  let server: DnsServer;
  let zones: LiveZones;
  let resolver = '';
  let contoso: Topology;

  before(async () => {
    zones = new LiveZones({ topology: await parseFile(FABRIKAM), clock: systemClock, random: seededRandom(3) });
    await zones.start();
    server = new DnsServer({ listen: [{ address: DNS_ADDRESS, port: 0 }], answers: zones, clock: systemClock });
    const bound = await server.start();
    resolver = `${DNS_ADDRESS}:${bound.udp[0]!.port}`;
    contoso = await parseFile(CONTOSO);
  });
  after(async () => {
    await server?.close();
    await zones?.close();
  });

  test('a listed partner: the SRV target and both Access Edge addresses, port 5061, TLS, named for the certificate', async () => {
    const topology = contosoWith(contoso, resolver);
    const route = await new PartnerEdges({ topology: () => topology, localAddress: CONTOSO_ACCESS_EDGE }).route('sip:bob@fabrikam.com');
    assert.equal(route.kind, 'partner', JSON.stringify(route));
    if (route.kind !== 'partner') return;
    assert.equal(route.via, '_sipfederationtls._tcp.fabrikam.com SRV');
    assert.deepEqual(route.endpoints.map((endpoint) => endpoint.address).sort(), ['127.0.18.51', '127.0.18.52']);
    assert.ok(route.endpoints.every((endpoint) => endpoint.port === 5061 && endpoint.transport === 'tls' && endpoint.host === 'sip.fabrikam.com'));
    assert.deepEqual(route.steps.map((step) => step.query), ['_sipfederationtls._tcp.fabrikam.com SRV', 'sip.fabrikam.com A', 'sip.fabrikam.com AAAA']);
  });

  test('DNS rotation changes the first address between lookups (the order is the load balancing); triesMax caps the list', async () => {
    const topology = contosoWith(contoso, resolver);
    const firsts = new Set<string>();
    for (let i = 0; i < 6; i++) {
      // A new PartnerEdges each time: a fresh cache, so every lookup asks DNS.
      const route = await new PartnerEdges({ topology: () => topology, localAddress: CONTOSO_ACCESS_EDGE }).route('fabrikam.com');
      assert.equal(route.kind, 'partner');
      if (route.kind === 'partner') firsts.add(route.endpoints[0]!.address);
    }
    assert.deepEqual([...firsts].sort(), ['127.0.18.51', '127.0.18.52']);
    const capped = contosoWith(contoso, resolver, (federation) => (federation.triesMax = 1));
    const route = await new PartnerEdges({ topology: () => capped, localAddress: CONTOSO_ACCESS_EDGE }).route('fabrikam.com');
    assert.equal(route.kind === 'partner' && route.endpoints.length, 1);
  });

  test('asked from inside Fabrikam the internal view has no federation SRV: 404 with what DNS said', async () => {
    const topology = contosoWith(contoso, resolver);
    const route = await new PartnerEdges({ topology: () => topology, localAddress: FABRIKAM_INSIDE }).route('sip:bob@fabrikam.com');
    assert.equal(route.kind, 'answer');
    assert.ok(route.kind === 'answer' && route.status === 404 && /No Access Edge for partner fabrikam\.com/.test(route.reason) && /NXDOMAIN|NODATA/.test(route.reason), JSON.stringify(route));
  });

  test('a domain that is not a partner is 403 before any DNS question; our own domain is not federation', async () => {
    const topology = contosoWith(contoso, resolver);
    const edges = new PartnerEdges({ topology: () => topology, localAddress: CONTOSO_ACCESS_EDGE });
    const queries = server.stats.queries;
    const refused = await edges.route('sip:eve@litware.com');
    assert.ok(refused.kind === 'answer' && refused.status === 403 && /litware\.com is not a federation partner of contoso\.com/.test(refused.reason), JSON.stringify(refused));
    assert.equal(server.stats.queries, queries, 'no DNS question for a refused domain');
    const ours = await edges.route('sip:alice@contoso.com');
    assert.equal(ours.kind === 'answer' && ours.status, 500);
  });

  test('a DNS server that does not answer: 503 naming the lookup, within the resolver timeout', async () => {
    // Nothing listens on this port: the resolver times out (or is refused) and the request gets 503.
    const topology = contosoWith(contoso, `${DNS_ADDRESS}:9`);
    const route = await new PartnerEdges({ topology: () => topology, localAddress: CONTOSO_ACCESS_EDGE, dnsTimeoutMs: 200 }).route('sip:bob@fabrikam.com');
    assert.ok(route.kind === 'answer' && route.status === 503 && /Partner fabrikam\.com lookup failed/.test(route.reason), JSON.stringify(route));
  });

  test('the answer follows Fabrikam\'s live state: a blocked edge server leaves the list', async () => {
    // A second DNS server following a store where Fabrikam's operator blocked edge1.
    const store = await tempFileStore(systemClock);
    await store.publish(await parseFile(FABRIKAM), 0, { by: 'test' });
    await store.setAdminState('edge1.fabrikam.com', 'blocked', { by: 'test', reason: 'patching' });
    const blocked = new LiveZones({ store, clock: systemClock, random: seededRandom(4) });
    await blocked.start();
    await caughtUp(blocked, store);
    const other = new DnsServer({ listen: [{ address: DNS_ADDRESS, port: 0 }], answers: blocked, clock: systemClock });
    const port = (await other.start()).udp[0]!.port;
    try {
      const topology = contosoWith(contoso, `${DNS_ADDRESS}:${port}`);
      const route = await new PartnerEdges({ topology: () => topology, localAddress: CONTOSO_ACCESS_EDGE }).route('fabrikam.com');
      assert.deepEqual(route.kind === 'partner' && route.endpoints.map((endpoint) => endpoint.address), ['127.0.18.52']);
    } finally {
      await other.close();
      await blocked.close();
      await store.close();
    }
  });
});
