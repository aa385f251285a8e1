// The peer decision (DESIGN §7 "Trust"): with TLS between servers a connection is a server's only by a
// verified certificate naming exactly one topology server; the source address never counts. With `tcp`
// (explicit in the topology) the address is all there is. And the SAN parsing it rests on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '../topology/parse.ts';
import { dnsNamesOf } from '../sip/peer-certificate.ts';
import { topologyYaml } from '../../test/helpers/frontend-pool.ts';
import { originOf, serverNamedBy, type ConnectionCredentials } from './peer-identity.ts';
import { PoolView } from './pool-view.ts';

const ADDRESSES = ['127.0.6.61', '127.0.6.62', '127.0.6.63'];
const OTHER_POOL = `  - fqdn: dirpool.contoso.com
    kind: director
    site: redmond
    loadBalancing: hardware
    vip: { ipv4: 127.0.6.70 }
    servers:
      - { fqdn: dir1.contoso.com, ipv4: 127.0.6.71 }
    sip: { tcpPort: 40000, tlsPort: 40001 }
`;

function view(settings = ''): PoolView {
  const text = topologyYaml(ADDRESSES, 40000, 1000, '', settings).replace('\ndns:\n', `\n${OTHER_POOL}dns:\n`);
  return new PoolView(parse(text, 't.yaml'), 'fe1.contoso.com', 1);
}

const tls = (names: readonly string[] | null, remoteAddress = '127.0.9.9'): ConnectionCredentials => ({ transport: 'tls', remoteAddress, certificateNames: names });
const tcp = (remoteAddress: string): ConnectionCredentials => ({ transport: 'tcp', remoteAddress, certificateNames: null });

test('subjectAltName: DNS names only, lower case, trailing dot gone; quoted values as Node writes them', () => {
  assert.deepEqual(dnsNamesOf('DNS:FE2.contoso.com., DNS:pool01.contoso.com, IP Address:127.0.6.62'), ['fe2.contoso.com', 'pool01.contoso.com']);
  assert.deepEqual(dnsNamesOf('IP Address:127.0.6.62, URI:sip:fe2.contoso.com'), []);
  assert.deepEqual(dnsNamesOf('DNS:"a, DNS:fe2.contoso.com", DNS:b.contoso.com'), ['a, dns:fe2.contoso.com', 'b.contoso.com'], 'a comma inside a quoted value is not a separator');
  assert.deepEqual(dnsNamesOf('DNS:"x\\"y", DNS:z'), ['x"y', 'z']);
  assert.deepEqual(dnsNamesOf(undefined), []);
  assert.deepEqual(dnsNamesOf(''), []);
  assert.deepEqual(dnsNamesOf('garbage without a colon'), []);
});

test('SAN matching: exactly one topology server, exact names; wildcards and certificates naming two servers name none', () => {
  const pool = view();
  assert.equal(serverNamedBy(['fe2.contoso.com', 'pool01.contoso.com', 'webint.contoso.com'], pool)?.fqdn, 'fe2.contoso.com', 'pool and Web services names aside');
  assert.equal(serverNamedBy(['FE2.Contoso.com.'], pool)?.fqdn, 'fe2.contoso.com');
  assert.equal(serverNamedBy(['dir1.contoso.com'], pool)?.fqdn, 'dir1.contoso.com', 'another pool');
  assert.equal(serverNamedBy(['*.contoso.com'], pool), undefined, 'a wildcard names no server');
  assert.equal(serverNamedBy(['fe2.contoso.com', 'fe3.contoso.com'], pool), undefined, 'two servers: none');
  assert.equal(serverNamedBy(['fe2.contoso.com', 'fe2.contoso.com.'], pool)?.fqdn, 'fe2.contoso.com', 'the same server twice is one');
  assert.equal(serverNamedBy(['fe2.contoso.com.evil.example', 'xfe2.contoso.com', 'contoso.com'], pool), undefined, 'no suffix or prefix matching');
  assert.equal(serverNamedBy([], pool), undefined);
});

test('TLS between servers (the default): only a verified certificate makes a peer, never the source address', () => {
  const pool = view();
  assert.equal(pool.interServer, 'tls');
  assert.equal(originOf(tls(['fe2.contoso.com']), pool, 'tls').kind, 'peer', 'from any address');
  const fromOther = pool.originOf(tls(['dir1.contoso.com'], '127.0.6.62'));
  assert.equal(fromOther.kind === 'server' && fromOther.server.fqdn, 'dir1.contoso.com', "the certificate decides, not fe2's address");
  assert.equal(pool.originOf(tcp('127.0.6.62')).kind, 'client', "plain TCP from a peer's own address");
  assert.equal(pool.originOf(tls(null, '127.0.6.62')).kind, 'client', "TLS without a (verified) certificate from a peer's address");
  assert.equal(pool.originOf({ transport: 'tcp', remoteAddress: '127.0.6.62', certificateNames: ['fe2.contoso.com'] }).kind, 'client', 'names on a TCP flow are not believed');
  assert.equal(pool.originOf(tls(['alice.contoso.com'])).kind, 'client', 'a certificate naming no server');
  assert.equal(pool.originOf(tls(['fe1.contoso.com'])).kind, 'client', 'our own name is no peer');
  assert.equal(pool.originOf(tls(['fe2.contoso.com', 'fe3.contoso.com'])).kind, 'client', 'a shared certificate');
});

test('tcp between servers (written in the topology): the source address, as before', () => {
  const pool = view('  interServer: { transport: tcp }');
  assert.equal(pool.interServer, 'tcp');
  assert.equal(pool.originOf(tcp('127.0.6.62')).kind, 'peer');
  assert.equal(pool.originOf(tcp('::ffff:127.0.6.63')).kind, 'peer');
  assert.equal(pool.originOf(tcp('127.0.6.71')).kind, 'server');
  assert.equal(pool.originOf(tcp('127.0.6.61')).kind, 'client', 'ourselves');
  assert.equal(pool.originOf(tls(['fe2.contoso.com'], '127.0.9.9')).kind, 'client', 'in tcp mode a certificate from a stranger address proves nothing');
  // A running server keeps the transport it started with, whatever a later version says.
  const started = new PoolView(pool.topology, 'fe1.contoso.com', 2, 'tls');
  assert.equal(started.originOf(tcp('127.0.6.62')).kind, 'client');
});

test('settings.interServer.transport: tls or tcp, nothing else', () => {
  assert.throws(() => view('  interServer: { transport: udp }'), /interServer/);
  assert.throws(() => view('  interServer: { transport: tcp, extra: 1 }'), /interServer|extra/);
});
