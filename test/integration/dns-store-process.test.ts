// DNS following the file store across processes: `dnslb dns serve --store DIR` is a child process;
// the topology is published by the real CLI (another process) and admin state is changed from this
// process. dig sees each change with a greater SOA serial.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { openFileStore, type FileStore } from '../../src/store/file-store.ts';
import { dig, REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';

const run = promisify(execFile);
const ADDRESS = '127.0.4.61';

describe('dns serve --store: a child process follows changes made by other processes', () => {
  let dataDir = '';
  let dns: RunningDns;
  let store: FileStore;
  let endpoint: { address: string; port: number };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'dnslb-dns-store-'));
    await run(process.execPath, ['bin/dnslb.js', '--data-dir', dataDir, 'topology', 'publish', 'examples/contoso.yaml'], { cwd: REPO });
    dns = await startDns(['--store', dataDir, '--listen', `${ADDRESS}:0`]);
    endpoint = { address: dns.address, port: dns.port };
    store = await openFileStore({ dataDir });
  });
  after(async () => {
    await dns?.stop();
    await store?.close();
  });

  const serial = async () => Number((await dig(endpoint, ['contoso.com', 'SOA'])).answer[0]?.data.split(' ')[2]);
  const pool = async () => (await dig(endpoint, ['pool01.contoso.com', 'A'])).answer.map((record) => record.data).sort();

  test('serves the published topology', async () => {
    assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
  });

  test('block from another process: the server leaves the pool and its name, in a new serial; unblock restores both', async () => {
    const before = await serial();
    await store.setAdminState('fe3.contoso.com', 'blocked', { by: 'test', reason: 'patching' });
    await eventually(async () => assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12']));
    assert.equal((await dig(endpoint, ['fe3.contoso.com', 'A'])).status, 'NXDOMAIN');
    const blocked = await serial();
    assert.ok(blocked > before, `${blocked} > ${before}`);
    await store.setAdminState('fe3.contoso.com', 'active', { by: 'test', reason: 'done' });
    await eventually(async () => assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']));
    assert.equal((await dig(endpoint, ['fe3.contoso.com', 'A'])).status, 'NOERROR');
  });

  test('a new topology version published by the CLI: the added server answers', async () => {
    const current = await store.read();
    const topology = structuredClone(current.topology) as typeof current.topology;
    const pool01 = topology.pools.find((candidate) => candidate.fqdn === 'pool01.contoso.com')!;
    pool01.servers.push({ fqdn: 'fe4.contoso.com', ipv4: '127.0.0.14' });
    await store.publish(topology, current.version, { by: 'test', comment: 'commission fe4' });
    await eventually(async () => assert.deepEqual(await pool(), ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']));
    assert.deepEqual((await dig(endpoint, ['fe4.contoso.com', 'A'])).answer.map((record) => record.data), ['127.0.0.14']);
  });
});
