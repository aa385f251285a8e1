// PoolView: self and peers from the topology, hosts that name us, users of our SIP domains and the optional user list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '../topology/parse.ts';
import { parseUri } from '../sip/uri.ts';
import { isDnslbError } from '../shared/errors.ts';
import { topologyYaml } from '../../test/helpers/frontend-pool.ts';
import { PoolView } from './pool-view.ts';

const ADDRESSES = ['127.0.6.41', '127.0.6.42'];

test('self, peers, and which hosts name this server or its pool', () => {
  const view = new PoolView(parse(topologyYaml(ADDRESSES, 40000, 1000), 't.yaml'), 'FE1.contoso.com.', 3);
  assert.equal(view.self.fqdn, 'fe1.contoso.com');
  assert.deepEqual(view.peers.map((peer) => peer.fqdn), ['fe2.contoso.com']);
  assert.equal(view.tcpPort, 40000);
  assert.equal(view.tlsPort, 40001);
  assert.ok(view.isSelf('127.0.6.41') && view.isSelf('fe1.contoso.com') && view.isSelf('FE1.CONTOSO.COM'));
  assert.ok(!view.isSelf('127.0.6.42') && view.memberAt('fe2.contoso.com')?.address === '127.0.6.42');
  assert.ok(view.isServiceHost('pool01.contoso.com') && !view.isServiceHost('contoso.com'));
  assert.equal(view.serverWithAddress('::ffff:127.0.6.42')?.fqdn, 'fe2.contoso.com', 'IPv4-mapped counts as IPv4');
  assert.equal(view.interServer, 'tls', 'TLS between servers unless the topology says tcp');
});

test('users: any user part of a SIP domain, unless the topology lists users', () => {
  const open = new PoolView(parse(topologyYaml(ADDRESSES, 40000, 1000), 't.yaml'), 'fe1.contoso.com', 0);
  assert.deepEqual(open.userOf(parseUri('sips:anyone@Contoso.com;transport=tls')), { user: 'sip:anyone@contoso.com' });
  assert.equal(open.userOf(parseUri('sip:anyone@fabrikam.com')), null);
  assert.equal(open.userOf(parseUri('sip:contoso.com')), null);
  const listed = new PoolView(parse(topologyYaml(ADDRESSES, 40000, 1000, 'users: ["sip:alice@contoso.com"]'), 't.yaml'), 'fe1.contoso.com', 0);
  assert.deepEqual(listed.userOf(parseUri('sip:alice@contoso.com')), { user: 'sip:alice@contoso.com' });
  assert.deepEqual(listed.userOf(parseUri('sip:mallory@contoso.com')), { unknown: 'sip:mallory@contoso.com' });
});

test('a server that is not in a frontend or director pool is refused with FRONTEND_UNKNOWN_SERVER', () => {
  assert.throws(() => new PoolView(parse(topologyYaml(ADDRESSES, 40000, 1000), 't.yaml'), 'fe9.contoso.com', 0), (error) => isDnslbError(error, 'FRONTEND_UNKNOWN_SERVER'));
});
