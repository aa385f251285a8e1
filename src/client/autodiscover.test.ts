// What a client takes from an autodiscover document: the pool's access points (internal), the Access
// Edge (external), and a clear CLIENT_DISCOVERY for documents that name neither.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accessOf } from './autodiscover.ts';

test('internal: every SipAccess entry, in the document\'s order, and who answered', () => {
  const answer = accessOf({
    AccessLocation: 'Internal',
    SipAccess: [
      { fqdn: 'pool01.contoso.com', port: 5061, transport: 'tls' },
      { fqdn: 'pool01.contoso.com', port: 5060, transport: 'tcp' },
      { fqdn: 'bad', port: 'x', transport: 'tls' },
      { fqdn: 'pool01.contoso.com', port: 5062, transport: 'udp' },
    ],
    Server: 'fe2.contoso.com',
  });
  assert.deepEqual(answer, {
    accessLocation: 'Internal',
    access: [
      { fqdn: 'pool01.contoso.com', port: 5061, transport: 'tls' },
      { fqdn: 'pool01.contoso.com', port: 5060, transport: 'tcp' },
    ],
    server: 'fe2.contoso.com',
  });
});

test('internal without SipAccess (Lync\'s own shape): SipClientInternalAccess over TLS', () => {
  assert.deepEqual(accessOf({ SipClientInternalAccess: { fqdn: 'pool01.contoso.com', port: 5061 } }).access, [{ fqdn: 'pool01.contoso.com', port: 5061, transport: 'tls' }]);
});

test('external: the Access Edge for clients, over TLS', () => {
  const answer = accessOf({ AccessLocation: 'External', SipAccess: [{ fqdn: 'pool01.contoso.com', port: 5061, transport: 'tls' }], SipClientExternalAccess: { fqdn: 'sip.contoso.com', port: 443 } });
  assert.deepEqual(answer.access, [{ fqdn: 'sip.contoso.com', port: 443, transport: 'tls' }]);
});

test('documents that name no access are CLIENT_DISCOVERY', () => {
  for (const document of [null, 'text', {}, { AccessLocation: 'External', SipAccess: [{ fqdn: 'pool01.contoso.com', port: 5061, transport: 'tls' }] }]) {
    assert.throws(() => accessOf(document), { code: 'CLIENT_DISCOVERY' });
  }
});
