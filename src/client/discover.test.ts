// Discovery through a real DNS server (Knot on loopback): the SRV path, the A-record fallbacks, TTLs, and RFC 2782 ordering.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { startKnot, type DnsPeer } from '../../test/helpers/dns-peers.ts';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { domainOf, orderSrv, PoolDiscoverer } from './discover.ts';

const ZONES = {
  // The full Lync set: TLS SRV → the pool, whose name answers three servers.
  'srv.test': [
    '_sipinternaltls._tcp 300 IN SRV 0 0 5061 pool01.srv.test.',
    '_sipinternal._tcp 300 IN SRV 0 0 5060 pool01.srv.test.',
    'pool01 30 IN A 127.0.0.11',
    'pool01 30 IN A 127.0.0.12',
    'pool01 30 IN A 127.0.0.13',
  ],
  // Only the TCP SRV record.
  'tcp.test': ['_sipinternal._tcp 300 IN SRV 0 0 5060 pool.tcp.test.', 'pool 300 IN A 127.0.0.21'],
  // No SRV: the sipinternal host name.
  'host.test': ['sipinternal 120 IN A 127.0.0.31'],
  // No SRV, no sipinternal: sip.<domain>.
  'sip.test': ['sip 120 IN A 127.0.0.41', 'sip 120 IN AAAA ::1'],
  // Nothing at all.
  'none.test': ['www 300 IN A 127.0.0.51'],
  // What the outside view of a Lync deployment holds: the Access Edge, one address per edge server.
  'edge.test': ['_sip._tls 300 IN SRV 0 0 4443 sip.edge.test.', 'sip 60 IN A 127.0.0.51', 'sip 60 IN A 127.0.0.52'],
};

describe('PoolDiscoverer', () => {
  let knot: DnsPeer;
  let dnsServer = '';

  before(async () => {
    const directory = await mkdtemp(join(tmpdir(), 'dnslb-discover-'));
    const zones = [];
    for (const [name, records] of Object.entries(ZONES)) {
      const file = join(directory, `${name}.zone`);
      await writeFile(file, [`$ORIGIN ${name}.`, '$TTL 300', `@ IN SOA ns.${name}. hostmaster.${name}. 1 3600 600 604800 60`, `@ IN NS ns.${name}.`, 'ns IN A 127.0.0.1', ...records, ''].join('\n'));
      zones.push({ name, file });
    }
    knot = await startKnot({ address: '127.0.9.31', port: 5399, zones });
    dnsServer = `${knot.address}:${knot.port}`;
  });
  after(async () => knot?.stop());

  test('SRV _sipinternaltls._tcp first, then every address of the target with port 5061 over TLS', async () => {
    const discovery = await new PoolDiscoverer({ dnsServers: [dnsServer] }).discover('sip:alice@srv.test');
    assert.equal(discovery.via, '_sipinternaltls._tcp.srv.test SRV');
    assert.deepEqual(discovery.endpoints.map((endpoint) => endpoint.address).sort(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    assert.ok(discovery.endpoints.every((endpoint) => endpoint.port === 5061 && endpoint.transport === 'tls' && endpoint.host === 'pool01.srv.test'));
    assert.equal(discovery.steps[0]?.query, '_sipinternaltls._tcp.srv.test SRV');
  });

  test('falls back to _sipinternal._tcp, then sipinternal.<domain>, then sip.<domain>, saying what each step found', async () => {
    const discoverer = new PoolDiscoverer({ dnsServers: [dnsServer] });
    const tcp = await discoverer.discover('tcp.test');
    assert.equal(tcp.via, '_sipinternal._tcp.tcp.test SRV');
    assert.deepEqual(tcp.endpoints, [{ address: '127.0.0.21', port: 5060, transport: 'tcp', host: 'pool.tcp.test' }]);
    assert.match(tcp.steps[0]!.found, /NXDOMAIN|NODATA/);

    const host = await discoverer.discover('sip:bob@host.test');
    assert.equal(host.via, 'sipinternal.host.test A/AAAA');
    assert.deepEqual(host.endpoints.map((endpoint) => `${endpoint.address}:${endpoint.port}`), ['127.0.0.31:5061']);

    const sip = await discoverer.discover('sip.test');
    assert.equal(sip.via, 'sip.sip.test A/AAAA');
    assert.deepEqual(sip.endpoints.map((endpoint) => endpoint.address), ['127.0.0.41', '::1']);
    assert.deepEqual(
      sip.steps.map((step) => step.query),
      ['_sipinternaltls._tcp.sip.test SRV', '_sipinternal._tcp.sip.test SRV', '_sip._tls.sip.test SRV', 'sipinternal.sip.test A', 'sipinternal.sip.test AAAA', 'sip.sip.test A', 'sip.sip.test AAAA'],
    );
  });

  test('outside (no internal SRV records): _sip._tls → the Access Edge FQDN → one address per edge server, TLS on its port', async () => {
    const discovery = await new PoolDiscoverer({ dnsServers: [dnsServer], transport: 'tcp' }).discover('sip:alice@edge.test');
    assert.equal(discovery.via, '_sip._tls.edge.test SRV');
    assert.deepEqual(discovery.endpoints.map((endpoint) => `${endpoint.transport}:${endpoint.address}:${endpoint.port}:${endpoint.host}`).sort(), ['tls:127.0.0.51:4443:sip.edge.test', 'tls:127.0.0.52:4443:sip.edge.test']);
  });

  test('no pool at all is a CLIENT_DISCOVERY error listing every step', async () => {
    await assert.rejects(new PoolDiscoverer({ dnsServers: [dnsServer] }).discover('none.test'), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'CLIENT_DISCOVERY');
      assert.match(error.message, /_sipinternaltls\._tcp\.none\.test SRV → /);
      assert.match(error.message, /sip\.none\.test AAAA → /);
      return true;
    });
  });

  test('answers are reused until the shortest TTL runs out, then asked again', async () => {
    const clock = new FakeClock();
    const discoverer = new PoolDiscoverer({ dnsServers: [dnsServer], clock });
    const first = await discoverer.discover('srv.test');
    assert.equal(first.expiresAtMs - clock.nowMs(), 30_000, 'the pool A records have TTL 30 s, below the SRV assumption');
    clock.advance(29_000);
    assert.equal(await discoverer.discover('srv.test'), first);
    clock.advance(2000);
    const second = await discoverer.discover('srv.test');
    assert.notEqual(second, first);
  });
});

describe('orderSrv (RFC 2782)', () => {
  test('lower priority always first; within a priority, heavier weights win more often', () => {
    const records = [
      { priority: 10, weight: 0, name: 'backup' },
      { priority: 0, weight: 90, name: 'heavy' },
      { priority: 0, weight: 10, name: 'light' },
    ];
    let heavyFirst = 0;
    let draw = 0;
    // A deterministic sequence of draws spread over [0, 1).
    const random = () => ((draw++ * 0.6180339887) % 1);
    for (let i = 0; i < 1000; i++) {
      const ordered = orderSrv(records, random).map((record) => record.name);
      assert.equal(ordered[2], 'backup');
      if (ordered[0] === 'heavy') heavyFirst++;
    }
    assert.ok(heavyFirst > 800 && heavyFirst < 980, `heavy first ${heavyFirst} of 1000`);
  });

  test('is a permutation of its input for any records and draws', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ priority: fc.nat(3), weight: fc.nat(100) }), { maxLength: 8 }), fc.double({ min: 0, max: 0.999, noNaN: true }), (records, seed) => {
        const ordered = orderSrv(records, () => seed);
        assert.equal(ordered.length, records.length);
        assert.deepEqual(new Set(ordered), new Set(records));
        for (let i = 1; i < ordered.length; i++) assert.ok(ordered[i - 1]!.priority <= ordered[i]!.priority);
      }),
    );
  });

  test('domainOf takes the host of a SIP URI', () => {
    assert.equal(domainOf('sip:Alice@Contoso.COM;transport=tls'), 'contoso.com');
    assert.equal(domainOf('contoso.com'), 'contoso.com');
    assert.equal(domainOf('sips:contoso.com:5061'), 'contoso.com');
  });
});
