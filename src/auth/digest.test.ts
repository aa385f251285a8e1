// Digest arithmetic against the worked example of RFC 7616 §3.9.1 (MD5 and SHA-256).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectedResponse, ha1, responseMatches } from './digest.ts';

// RFC 7616 §3.9.1: user "Mufasa", password "Circle of Life", GET /dir/index.html, qop=auth.
const EXAMPLE = {
  username: 'Mufasa',
  password: 'Circle of Life',
  realm: 'http-auth@example.org',
  method: 'GET',
  digestUri: '/dir/index.html',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
};

for (const [algorithm, cnonce, response] of [
  ['MD5', 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ', '8ca523f5e9506fed4657c9700eebdbec'],
  ['SHA-256', 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ', '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1'],
] as const) {
  test(`RFC 7616 §3.9.1 ${algorithm}: the response of the worked example`, () => {
    const stored = ha1(algorithm, EXAMPLE.username, EXAMPLE.realm, EXAMPLE.password);
    assert.equal(expectedResponse({ algorithm, ha1: stored, nonce: EXAMPLE.nonce, nc: EXAMPLE.nc, cnonce, method: EXAMPLE.method, digestUri: EXAMPLE.digestUri }), response);
  });
}

test('responseMatches: case-insensitive hex, any other byte or length is no match', () => {
  const expected = '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1';
  assert.equal(responseMatches(expected, expected.toUpperCase()), true);
  assert.equal(responseMatches(expected, expected.slice(0, -1)), false);
  assert.equal(responseMatches(expected, `${expected.slice(0, -1)}0`), false);
  assert.equal(responseMatches(expected, ''), false);
});

test('HA1 depends on every part: user, realm, password (UTF-8)', () => {
  const base = ha1('SHA-256', 'alice', 'contoso.com', 'pässword');
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.notEqual(ha1('SHA-256', 'alicf', 'contoso.com', 'pässword'), base);
  assert.notEqual(ha1('SHA-256', 'alice', 'contoso.net', 'pässword'), base);
  assert.notEqual(ha1('SHA-256', 'alice', 'contoso.com', 'password'), base);
  assert.match(ha1('MD5', 'alice', 'contoso.com', 'x'), /^[0-9a-f]{32}$/);
});
