// The --store value: a data directory or etcd://host:port[,host:port…][/prefix]; malformed ones are CLI_USAGE naming the flag.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDnslbError } from '../shared/errors.ts';
import { parseStoreSpec } from './open.ts';

describe('parseStoreSpec', () => {
  test('a directory is the file store', () => {
    assert.deepEqual(parseStoreSpec('.dnslb'), { kind: 'file', dataDir: '.dnslb' });
    assert.deepEqual(parseStoreSpec('/var/lib/dnslb'), { kind: 'file', dataDir: '/var/lib/dnslb' });
  });

  test('etcd URLs: one or more endpoints, an optional key prefix (default /dnslb/)', () => {
    assert.deepEqual(parseStoreSpec('etcd://127.0.0.1:2379'), { kind: 'etcd', endpoints: ['127.0.0.1:2379'], prefix: '/dnslb/' });
    assert.deepEqual(parseStoreSpec('etcd://127.0.0.1:2379/'), { kind: 'etcd', endpoints: ['127.0.0.1:2379'], prefix: '/dnslb/' });
    assert.deepEqual(parseStoreSpec('etcd://a.example.com:2379,b.example.com:2379,[::1]:2379/prod/dnslb'), {
      kind: 'etcd',
      endpoints: ['a.example.com:2379', 'b.example.com:2379', '[::1]:2379'],
      prefix: '/prod/dnslb/',
    });
    assert.deepEqual(parseStoreSpec('etcd://h:1/x/'), { kind: 'etcd', endpoints: ['h:1'], prefix: '/x/' });
  });

  for (const [value, why] of [
    ['', 'empty'],
    ['http://127.0.0.1:2379', 'unknown scheme'],
    ['etcd://', 'is not host:port'],
    ['etcd://127.0.0.1', 'is not host:port'],
    ['etcd://127.0.0.1:0', 'is not host:port'],
    ['etcd://127.0.0.1:70000', 'is not host:port'],
    ['etcd://127.0.0.1:2379,', 'is not host:port'],
    ['etcd://user@127.0.0.1:2379', 'is not host:port'],
    ['etcd://127.0.0.1:2379/a//b', 'key prefix'],
    ['etcd://127.0.0.1:2379/a b', 'key prefix'],
  ] as const) {
    test(`"${value}" is refused: ${why}`, () => {
      assert.throws(
        () => parseStoreSpec(value, '--store'),
        (error: unknown) => isDnslbError(error, 'CLI_USAGE') && error.message.startsWith('--store') && error.message.includes(why),
      );
    });
  }
});

test('the default etcd prefix here is the backend\'s own', async () => {
  const { ETCD_STORE_DEFAULTS } = await import('./etcd-store.ts');
  const spec = parseStoreSpec('etcd://127.0.0.1:2379');
  assert.ok(spec.kind === 'etcd');
  assert.equal(spec.prefix, ETCD_STORE_DEFAULTS.prefix);
});
