// DNS following the etcd store across processes (DESIGN §4 distributed mode): a real etcd, `dnslb
// dns serve --store etcd://…` as a child process, the topology published into etcd
// through the store API from this process, a server blocked through the store: dig sees the pool change.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { parse } from '../../src/topology/parse.ts';
import { dig, REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';
import { eventually } from '../helpers/eventually.ts';

const ADDRESS = '127.0.30.2';

describe('dns serve --store etcd://…: a child process follows changes made in etcd', () => {
  let etcd: EtcdServer | undefined;
  let dns: RunningDns | undefined;
  let store: Store | undefined;
  let endpoint: { address: string; port: number };
  const prefix = '/dnslb-it/';

  before(async () => {
    etcd = await startEtcd();
    const url = `${etcd.url}${prefix}`;
    store = await openStore(url);
    const file = join(REPO, 'examples', 'contoso.yaml');
    await store.publish(parse(await readFile(file, 'utf8'), file), 0, { by: 'test', comment: 'contoso' });
    dns = await startDns(['--store', url, '--listen', `${ADDRESS}:0`]);
    endpoint = { address: dns.address, port: dns.port };
  });
  after(async () => {
    await dns?.stop();
    await store?.close();
    await etcd?.dispose();
  });

  const serial = async () => Number((await dig(endpoint, ['contoso.com', 'SOA'])).answer[0]?.data.split(' ')[2]);
  const pool = async () => (await dig(endpoint, ['pool01.contoso.com', 'A'])).answer.map((record) => record.data).sort();

  test('serves the topology published into etcd', async () => {
    assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
  });

  test('a server blocked through the store leaves the pool in a new serial; unblocked, it comes back', async () => {
    assert.ok(store);
    const before = await serial();
    await store.setAdminState('fe3.contoso.com', 'blocked', { by: 'test', reason: 'patching' });
    await eventually(async () => assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12']));
    assert.equal((await dig(endpoint, ['fe3.contoso.com', 'A'])).status, 'NXDOMAIN');
    const blocked = await serial();
    assert.ok(blocked > before, `${blocked} > ${before}`);
    await store.setAdminState('fe3.contoso.com', 'active', { by: 'test', reason: 'done' });
    await eventually(async () => assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']));
  });

  test('a new version published into etcd: the added server answers', async () => {
    assert.ok(store);
    const current = await store.read();
    const topology = structuredClone(current.topology) as typeof current.topology;
    const pool01 = topology.pools.find((candidate) => candidate.fqdn === 'pool01.contoso.com');
    assert.ok(pool01);
    pool01.servers.push({ fqdn: 'fe4.contoso.com', ipv4: '127.0.0.14' });
    await store.publish(topology, current.version, { by: 'test', comment: 'commission fe4' });
    await eventually(async () => assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']));
  });

  // Found in review: after a failed watch the server tried one new snapshot and, when etcd was still
  // down, stopped following for good. It now retries until etcd is back.
  test('etcd down long enough for several failed snapshots, then back: the server follows again', async () => {
    assert.ok(store && etcd && dns);
    const failures = () => (dns!.stderr().match(/store snapshot failed; retrying/g) ?? []).length;
    await etcd.stop();
    await eventually(() => assert.ok(failures() >= 2, `${failures()} failed snapshots so far`));
    await etcd.start();
    await store.setAdminState('fe2.contoso.com', 'blocked', { by: 'test', reason: 'after the outage' });
    await eventually(async () => assert.ok(!(await pool()).includes('127.0.0.12')));
  });
});

describe('--store etcd://… on the command line', () => {
  const dnslb = (args: string[]) => spawnSync(process.execPath, ['bin/dnslb.js', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });

  test('a malformed URL is a usage error naming the flag (exit 2)', () => {
    const result = dnslb(['dns', 'serve', '--store', 'etcd://127.0.30.2', '--listen', `${ADDRESS}:0`]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /CLI_USAGE: --store etcd:\/\/127\.0\.30\.2: .* is not host:port/);
  });

  test('an etcd that does not answer: STORE_UNAVAILABLE naming the endpoint (exit 3), for dns serve and server', () => {
    const dns = dnslb(['dns', 'serve', '--store', 'etcd://127.0.30.250:9', '--listen', `${ADDRESS}:0`]);
    assert.equal(dns.status, 3, dns.stderr);
    assert.match(dns.stderr, /STORE_UNAVAILABLE: etcd 127\.0\.30\.250:9/);
    const server = dnslb(['server', '--server', 'fe1.contoso.com', '--store', 'etcd://127.0.30.250:9']);
    assert.equal(server.status, 3, server.stderr);
    assert.match(server.stderr, /STORE_UNAVAILABLE: etcd 127\.0\.30\.250:9/);
  });
});
