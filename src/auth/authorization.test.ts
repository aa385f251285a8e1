// Authorization / Proxy-Authorization parsing: a table of well-formed and torture values, and a
// property: any parameters quoted by challenge.ts's quote() parse back to the same values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AuthHeaderError, parseCredentials, parseDigestParams, withoutProxyCredentials } from './authorization.ts';
import { quote } from './challenge.ts';

const SHA = 'a'.repeat(64);
const GOOD = `Digest username="alice", realm="contoso.com", nonce="n1", uri="sip:contoso.com", response="${SHA}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c1"`;

test('a well-formed SHA-256 response: every field, in any order and case, with LWS and folded spacing', () => {
  const parsed = parseCredentials(GOOD, { md5Allowed: false });
  assert.deepEqual(parsed, { username: 'alice', realm: 'contoso.com', nonce: 'n1', uri: 'sip:contoso.com', response: SHA, algorithm: 'SHA-256', cnonce: 'c1', nc: '00000001', ncValue: 1, opaque: undefined });
  const shuffled = parseCredentials(`digest   CNONCE="c1" ,QOP="auth",  Realm = "contoso.com",nc=0000000A,\r\n  uri="sip:contoso.com",response="${SHA.toUpperCase()}", Username="alice",nonce="n1",algorithm=sha-256, opaque="o"`, { md5Allowed: false });
  assert.equal(shuffled.ncValue, 10);
  assert.equal(shuffled.opaque, 'o');
  assert.equal(shuffled.algorithm, 'SHA-256');
});

test('quoted strings: escaped quotes and backslashes, commas and equals signs inside', () => {
  const parsed = parseCredentials(GOOD.replace('username="alice"', 'username="al\\"i,c=e\\\\"'), { md5Allowed: false });
  assert.equal(parsed.username, 'al"i,c=e\\');
});

const CASES: Array<[string, string, 400 | 401, RegExp]> = [
  ['missing response', GOOD.replace(`, response="${SHA}"`, ''), 400, /response is missing/],
  ['missing nonce', GOOD.replace(', nonce="n1"', ''), 400, /nonce is missing/],
  ['duplicate realm', `${GOOD}, realm="fabrikam.com"`, 400, /realm appears twice/],
  ['duplicate in another case', `${GOOD}, USERNAME="bob"`, 400, /username appears twice/],
  ['unterminated quote', GOOD.replace('cnonce="c1"', 'cnonce="c1'), 400, /unterminated/],
  ['escape at the end', `${GOOD.slice(0, -1)}\\`, 400, /bad escape|unterminated/],
  ['no equals sign', `${GOOD}, stale`, 400, /stale has no "="/],
  ['no comma between parameters', GOOD.replace('", realm', '" realm'), 400, /expected ","/],
  ['empty token value', GOOD.replace('algorithm=SHA-256', 'algorithm='), 400, /algorithm has no value/],
  ['nc not eight hex digits', GOOD.replace('nc=00000001', 'nc=1'), 400, /nc "1" is not eight hex digits/],
  ['nc zero', GOOD.replace('nc=00000001', 'nc=00000000'), 400, /counts start at 1/],
  ['response of the wrong length', GOOD.replace(SHA, 'abc'), 400, /not 64 hex digits/],
  ['Basic scheme', 'Basic YWxpY2U6cGFzcw==', 401, /only Digest/],
  ['unknown algorithm', GOOD.replace('SHA-256', 'SHA-512-256'), 401, /SHA-512-256" is not supported/],
  ['MD5 when not enabled', GOOD.replace('algorithm=SHA-256', 'algorithm=MD5').replace(SHA, 'b'.repeat(32)), 401, /MD5 is not enabled/],
  ['no algorithm means MD5 (RFC 7616 §3.4)', GOOD.replace(', algorithm=SHA-256', '').replace(SHA, 'b'.repeat(32)), 401, /MD5 is not enabled/],
  ['no qop (RFC 2069)', GOOD.replace(', qop=auth', ''), 401, /qop is missing/],
  ['qop auth-int', GOOD.replace('qop=auth', 'qop=auth-int'), 401, /only auth/],
  ['empty header', '', 400, /no authentication scheme/],
  ['too many parameters', `${GOOD}${Array.from({ length: 40 }, (_, index) => `, x${index}=1`).join('')}`, 400, /more than 32 parameters/],
  ['a huge value', GOOD.replace('cnonce="c1"', `cnonce="${'c'.repeat(2000)}"`), 400, /longer than 1024/],
];

for (const [name, value, status, message] of CASES) {
  test(`torture: ${name} → ${status}`, () => {
    assert.throws(
      () => parseCredentials(value, { md5Allowed: false }),
      (error: unknown) => error instanceof AuthHeaderError && error.code === 'AUTH_HEADER' && error.status === status && message.test(error.message),
    );
  });
}

test('MD5 is accepted where enabled', () => {
  const parsed = parseCredentials(GOOD.replace('algorithm=SHA-256', 'algorithm=MD5').replace(SHA, 'b'.repeat(32)), { md5Allowed: true });
  assert.equal(parsed.algorithm, 'MD5');
});

test('property: any parameter values, quoted with quote(), parse back to themselves; no input throws anything but AuthHeaderError', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(name, fc.string({ maxLength: 40 }).filter((text) => !/[\r\n]/.test(text))), { selector: ([key]) => key, maxLength: 20 }), (params) => {
      const parsed = parseDigestParams(`Digest ${params.map(([key, value]) => `${key}=${quote(value)}`).join(', ')}`);
      assert.deepEqual([...parsed].map(([key, { value }]) => [key, value]), params);
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      try {
        parseCredentials(`Digest ${text}`, { md5Allowed: true });
      } catch (error) {
        assert.ok(error instanceof AuthHeaderError, String(error));
      }
    }),
  );
});

test('withoutProxyCredentials drops only the Proxy-Authorization of our realm', () => {
  const request = {
    headers: [
      { name: 'Via', value: 'SIP/2.0/TCP a' },
      { name: 'Proxy-Authorization', value: 'Digest username="alice", realm="contoso.com", nonce="n", uri="sip:bob@contoso.com", response="r"' },
      { name: 'proxy-authorization', value: 'Digest username="alice", realm="other.example", nonce="n", uri="sip:bob@contoso.com", response="r"' },
    ],
  };
  assert.deepEqual(withoutProxyCredentials(request, 'contoso.com').headers.map((header) => header.value.slice(0, 20)), ['SIP/2.0/TCP a', 'Digest username="ali']);
  assert.equal(withoutProxyCredentials(request, 'fabrikam.com'), request, 'nothing of ours: the same request');
});
