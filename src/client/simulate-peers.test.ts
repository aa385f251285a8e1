// The simulator's federation peers, end to end but for the Edge process: dnslb's own DNS server answers
// _sipfederationtls._tcp.contoso.com → sip.contoso.com:<port> → two Access Edge addresses (rotating),
// one where a TLS SIP listener answers every MESSAGE 200 and one where nothing listens (the edge server
// that is down). The report must count, per profile, exactly the IMs that went to the dead address as
// failed for the profiles that cannot fail over, and none for modern partners.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DnsServer } from '../dns/server.ts';
import { LiveZones } from '../dns/live.ts';
import { systemClock } from '../shared/clock.ts';
import { createResponse, type SipRequest } from '../sip/message.ts';
import { SipTransport } from '../sip/transport.ts';
import { parse } from '../topology/parse.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { createTestCertificates, type TestCertificates } from '../../test/helpers/tls-certs.ts';
import type { Discovery } from './discover.ts';
import { parsePeerGroups, Simulator } from './simulate.ts';

const DNS = '127.0.19.31';
const LIVE_EDGE = '127.0.19.51';
const DEAD_EDGE = '127.0.19.52';
const PEER_ADDRESSES = ['127.0.19.70', '127.0.19.71'];

const topologyText = (federationPort: number): string => `sipDomains: [contoso.com]
sites: [{ name: redmond }]
pools:
  - fqdn: pool01.contoso.com
    kind: frontend
    site: redmond
    loadBalancing: dns
    servers: [{ fqdn: fe1.contoso.com, ipv4: 127.0.19.11 }]
    webServices: { internal: { fqdn: webint.contoso.com, vip: { ipv4: 127.0.19.21 } } }
  - fqdn: edgepool.contoso.com
    kind: edge
    site: redmond
    loadBalancing: dns
    servers:
      - { fqdn: edge1.contoso.com, ipv4: 127.0.19.41, external: { accessEdge: { ipv4: ${LIVE_EDGE} }, webConferencing: { ipv4: 127.0.19.53 }, av: { ipv4: 127.0.19.55 } } }
      - { fqdn: edge2.contoso.com, ipv4: 127.0.19.42, external: { accessEdge: { ipv4: ${DEAD_EDGE} }, webConferencing: { ipv4: 127.0.19.54 }, av: { ipv4: 127.0.19.56 } } }
    edge:
      externalLoadBalancing: dns
      accessEdge: { fqdn: sip.contoso.com, federationPort: ${federationPort} }
      webConferencing: { fqdn: webconf.contoso.com }
      av: { fqdn: av.contoso.com }
    dns: { order: rotate, ttl: 60 }
dns:
  servers: [{ fqdn: dns1.contoso.com, listen: ["${DNS}:5399"] }]
  zones: [{ name: contoso.com }]
`;

/** Users that never sign in (the peers then write to user1): this test is about the peers. */
const nowhere = { discover: (): Promise<Discovery> => Promise.reject(new Error('no sign-in in this test')), forget: () => {}, resolveHost: async () => [] };

describe('Simulator peers: counts per profile with one Access Edge down', () => {
  let certificates: TestCertificates;
  let edge: SipTransport;
  let zones: LiveZones;
  let dns: DnsServer;
  let dnsServer = '';
  const messages: string[] = [];

  before(async () => {
    certificates = await createTestCertificates({ names: ['sip.contoso.com'], ips: [LIVE_EDGE] });
    edge = new SipTransport({ clock: systemClock, random: seededRandom(1) });
    const { port } = await edge.listen({ transport: 'tls', host: LIVE_EDGE, port: 0, tls: { cert: certificates.cert, key: certificates.key } });
    edge.on('message', (flow, message) => {
      if (message.kind !== 'request') return;
      messages.push(message.method);
      flow.send(createResponse(message as SipRequest, 200, { toTag: 'edge1' }));
    });
    zones = new LiveZones({ topology: parse(topologyText(port), 'test.yaml'), clock: systemClock, random: seededRandom(2) });
    await zones.start();
    dns = new DnsServer({ listen: [{ address: DNS, port: 0 }], answers: zones, clock: systemClock });
    dnsServer = `${DNS}:${(await dns.start()).udp[0]!.port}`;
  });
  after(async () => {
    await dns?.close();
    await zones?.close();
    await edge?.close();
    await certificates?.cleanup();
  });

  test('legacy-federation and xmpp-gateway lose exactly the IMs whose first address was the dead edge; modern partners lose none', async () => {
    const simulator = new Simulator({
      domain: 'contoso.com',
      dnsServers: [dnsServer],
      users: 1,
      locatorFor: () => nowhere,
      ca: certificates.ca,
      peers: { groups: parsePeerGroups('legacy-federation:6,xmpp-gateway:6,federation:6'), domain: 'fabrikam.com', localAddresses: PEER_ADDRESSES },
      clock: systemClock,
      random: seededRandom(3),
    });
    simulator.start();
    try {
      await simulator.sendPeerMessages(3);
      const report = simulator.report().peers;
      const dead = `${DEAD_EDGE}:${topologyPort(report)}`;
      const live = `${LIVE_EDGE}:${topologyPort(report)}`;
      for (const profile of ['legacy-federation', 'xmpp-gateway'] as const) {
        const counts = report[profile]!;
        assert.equal(counts.requests, 18, profile);
        assert.equal(counts.failed, counts.byFirstAddress[dead]?.requests ?? 0, `${profile}: failed = the IMs that went to the dead edge (${JSON.stringify(counts)})`);
        assert.equal(counts.byFirstAddress[live]?.failed ?? 0, 0, `${profile}: none that went to the live edge failed`);
        assert.equal(counts.ok + counts.failed, counts.requests);
        // Pinned: each peer's three IMs went to one address, so the counts are multiples of 3.
        assert.equal((counts.byFirstAddress[dead]?.requests ?? 0) % 3, 0);
        assert.ok(Object.keys(counts.failedBy).every((outcome) => outcome.startsWith('connect ')), JSON.stringify(counts.failedBy));
      }
      // DNS rotation put the dead edge first for some pinned peers (otherwise the test would prove nothing).
      assert.ok((report['legacy-federation']!.byFirstAddress[dead]?.requests ?? 0) + (report['xmpp-gateway']!.byFirstAddress[dead]?.requests ?? 0) > 0, JSON.stringify(report));
      const modern = report.federation!;
      assert.deepEqual([modern.requests, modern.ok, modern.failed], [18, 18, 0], JSON.stringify(modern));
      assert.ok((modern.byFirstAddress[dead]?.requests ?? 0) > 0, 'some modern IMs went to the dead edge first and walked on');
      assert.equal(messages.length, report['legacy-federation']!.ok + report['xmpp-gateway']!.ok + modern.ok);
    } finally {
      await simulator.stop();
    }
  });
});

/** The federation port the report's addresses carry (the listener's, chosen at random). */
function topologyPort(report: ReturnType<Simulator['report']>['peers']): string {
  const key = Object.keys(report.federation?.byFirstAddress ?? {}).find((address) => address.startsWith(`${LIVE_EDGE}:`) || address.startsWith(`${DEAD_EDGE}:`));
  return key?.split(':')[1] ?? '0';
}
