// Stateless nonces (any server with the pool secret accepts them; stale after the lifetime; nothing
// else accepted) and the per-nonce count window (each count once; bounded memory).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../shared/limits.ts';
import { checkNonce, issueNonce, NonceCounts, type NonceOptions } from './nonce.ts';

let counter = 0;
const options = (secretByte = 7): NonceOptions => ({ secret: Buffer.alloc(32, secretByte), lifetimeMs: 300_000, randomBytes: (count) => Buffer.alloc(count, ++counter) });
const T = 1_700_000_000_000;

test('a nonce is checked by any holder of the pool secret (another server after a redirect): valid, then stale after the lifetime', () => {
  const fe1 = options();
  const fe2 = options(); // another server: the same secret from the store, its own randomness
  const nonce = issueNonce(fe1, 'contoso.com', T);
  assert.match(nonce, /^[A-Za-z0-9_-]{44}$/, 'base64url: nothing to escape in a quoted-string');
  assert.deepEqual(checkNonce(fe2, 'contoso.com', nonce, T + 1000), { kind: 'valid', issuedAtMs: T });
  assert.deepEqual(checkNonce(fe2, 'contoso.com', nonce, T + 300_000), { kind: 'valid', issuedAtMs: T });
  assert.deepEqual(checkNonce(fe2, 'contoso.com', nonce, T + 300_001), { kind: 'stale', issuedAtMs: T });
  assert.notEqual(issueNonce(fe1, 'contoso.com', T), nonce, 'two nonces of the same instant differ (salt)');
});

test('invalid: another realm, another pool secret, any flipped character, a truncated or foreign string, a nonce from the future', () => {
  const fe1 = options();
  const nonce = issueNonce(fe1, 'contoso.com', T);
  assert.equal(checkNonce(fe1, 'fabrikam.com', nonce, T).kind, 'invalid');
  assert.equal(checkNonce(options(8), 'contoso.com', nonce, T).kind, 'invalid');
  for (let index = 0; index < nonce.length; index++) {
    const flipped = nonce.slice(0, index) + (nonce[index] === 'A' ? 'B' : 'A') + nonce.slice(index + 1);
    assert.equal(checkNonce(fe1, 'contoso.com', flipped, T).kind, 'invalid', `character ${index}`);
  }
  for (const foreign of ['', 'abc', nonce.slice(1), `${nonce}A`, '"quoted"', 'ÿ'.repeat(44)]) assert.equal(checkNonce(fe1, 'contoso.com', foreign, T).kind, 'invalid');
  const future = issueNonce(fe1, 'contoso.com', T + limits.authNonceFutureMsMax + 1);
  assert.equal(checkNonce(fe1, 'contoso.com', future, T).kind, 'invalid');
  const skewed = issueNonce(fe1, 'contoso.com', T + limits.authNonceFutureMsMax);
  assert.equal(checkNonce(fe1, 'contoso.com', skewed, T).kind, 'valid', 'clock skew between servers within the bound is fine');
});

test('counts: each once; out of order within the window; older than the window refused', () => {
  const counts = new NonceCounts({ lifetimeMs: 300_000 });
  const steps: Array<[number, string]> = [
    [1, 'fresh'],
    [1, 'replayed'],
    [3, 'fresh'],
    [2, 'fresh'], // out of order: a parallel transaction
    [2, 'replayed'],
    [3, 'replayed'],
    [3 + limits.authNcWindow, 'fresh'],
    [3, 'replayed'], // 64 below the highest: outside the window, so refused
    [4, 'fresh'], // 63 below: inside the window and never seen
    [4, 'replayed'],
    [3 + limits.authNcWindow, 'replayed'],
  ];
  for (const [nc, expected] of steps) assert.equal(counts.check('n', T, nc, T), expected, `nc ${nc}`);
  assert.equal(counts.check('other', T, 1, T), 'fresh', 'another nonce has its own window');
});

test('bounded memory: beyond the capacity the least recently used nonce is forgotten, and then refused, never accepted again', () => {
  const counts = new NonceCounts({ lifetimeMs: 300_000, capacity: 3 });
  assert.equal(counts.check('a', T, 1, T), 'fresh');
  assert.equal(counts.check('b', T + 1, 1, T + 1), 'fresh');
  assert.equal(counts.check('c', T + 2, 1, T + 2), 'fresh');
  assert.equal(counts.check('a', T, 2, T + 3), 'fresh'); // a is used again: b is now the least recent
  assert.equal(counts.check('d', T + 4, 1, T + 4), 'fresh');
  assert.equal(counts.size, 3);
  assert.equal(counts.check('b', T + 1, 2, T + 5), 'forgotten', 'b was dropped: its earlier counts are unknown');
  assert.equal(counts.check('e', T + 6, 1, T + 6), 'fresh', 'a nonce issued after the dropped one is tracked as usual');
});

test('expired nonces leave the table first when it is full', () => {
  const counts = new NonceCounts({ lifetimeMs: 1000, capacity: 2 });
  counts.check('old', T, 1, T);
  counts.check('new', T + 1500, 1, T + 1500);
  counts.check('newer', T + 1600, 1, T + 1600); // full: 'old' is past its lifetime
  assert.equal(counts.size, 2);
  assert.equal(counts.check('new', T + 1500, 2, T + 1700), 'fresh', 'the live one was kept');
});
