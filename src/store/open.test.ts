// The --store value: a data directory or etcd://host:port[,host:port…][/prefix]; malformed ones are CLI_USAGE naming the flag.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDnslbError } from '../shared/errors.ts';
import { etcdCredentials, parseStoreSpec } from './open.ts';

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

  test('etcds:// is TLS; ca, cert, key, user and password-file ride in the query, as file paths', () => {
    assert.deepEqual(parseStoreSpec('etcds://10.0.0.1:2379'), { kind: 'etcd', endpoints: ['10.0.0.1:2379'], prefix: '/dnslb/', tls: {} });
    assert.deepEqual(parseStoreSpec('etcds://a:2379,b:2379/prod/?ca=/etc/dnslb/ca.pem&cert=/etc/dnslb/c.pem&key=/etc/dnslb/c.key&user=dnslb&password-file=/etc/dnslb/etcd.pw'), {
      kind: 'etcd',
      endpoints: ['a:2379', 'b:2379'],
      prefix: '/prod/',
      tls: { ca: '/etc/dnslb/ca.pem', cert: '/etc/dnslb/c.pem', key: '/etc/dnslb/c.key' },
      auth: { user: 'dnslb', passwordFile: '/etc/dnslb/etcd.pw' },
    });
    assert.deepEqual(parseStoreSpec('etcd://127.0.0.1:1?user=dnslb'), { kind: 'etcd', endpoints: ['127.0.0.1:1'], prefix: '/dnslb/', auth: { user: 'dnslb' } });
    assert.throws(() => parseStoreSpec('etcd://127.0.0.1:1,etcd2.contoso.com:2379?user=dnslb'), (error: unknown) => isDnslbError(error, 'CLI_USAGE') && /send the password unencrypted to etcd2\.contoso\.com:2379; use etcds:\/\//.test(error.message));
    assert.ok(parseStoreSpec('etcds://etcd2.contoso.com:2379?user=dnslb').kind === 'etcd');
    assert.deepEqual(parseStoreSpec('etcds://h:1?ca=%2Ftmp%2Fa%26b.pem'), { kind: 'etcd', endpoints: ['h:1'], prefix: '/dnslb/', tls: { ca: '/tmp/a&b.pem' } });
  });

  for (const [value, why] of [
    ['etcds://h:1?password=hunter2', 'a password in the store URL would show in `ps`'],
    ['etcds://h:1?token=x', 'unknown option "token"'],
    ['etcds://h:1?ca=a&ca=b', '"ca" given twice'],
    ['etcds://h:1?ca=', '"ca" is empty'],
    ['etcd://h:1?ca=/ca.pem', 'use etcds://'],
    ['etcds://h:1?cert=/c.pem', 'cert and key go together'],
    ['etcds://h:1?password-file=/pw', 'password-file without user'],
  ] as const) {
    test(`"${value}" is refused: ${why}`, () => {
      assert.throws(
        () => parseStoreSpec(value, '--store'),
        (error: unknown) => isDnslbError(error, 'CLI_USAGE') && error.message.startsWith('--store') && error.message.includes(why) && !error.message.includes('hunter2'),
      );
    });
  }

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

test('etcdCredentials reads the files, the password from its file (one line) or DNSLB_ETCD_PASSWORD', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dnslb-open-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    const spec = parseStoreSpec(`etcds://h:1?ca=${dir}/ca.pem&user=dnslb&password-file=${dir}/pw`);
    assert.ok(spec.kind === 'etcd');
    assert.deepEqual(await etcdCredentials(spec, '--store', {}), { tls: { ca: Buffer.from('CA') }, auth: { user: 'dnslb', password: 's3cret' } });
    const fromEnv = parseStoreSpec('etcd://[::1]:1?user=dnslb');
    assert.ok(fromEnv.kind === 'etcd');
    assert.deepEqual(await etcdCredentials(fromEnv, '--store', { DNSLB_ETCD_PASSWORD: 'from-env' }), { auth: { user: 'dnslb', password: 'from-env' } });
    await assert.rejects(etcdCredentials(fromEnv, '--store', {}), (error: unknown) => isDnslbError(error, 'CLI_USAGE') && /user=dnslb needs a password/.test(error.message));
    const missing = parseStoreSpec(`etcds://h:1?ca=${dir}/absent.pem`);
    assert.ok(missing.kind === 'etcd');
    await assert.rejects(etcdCredentials(missing, '--store', {}), (error: unknown) => isDnslbError(error, 'CLI_USAGE') && error.message.includes(`cannot read the CA certificate (ca=) file ${dir}/absent.pem: ENOENT`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
