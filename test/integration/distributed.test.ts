// DESIGN §4 distributed mode, end to end with the CLI alone and a real etcd: `dnslb topology publish
// --store etcd://…`, three `dnslb node --store etcd://… --server FQDN` processes and a `dnslb dns
// serve --store etcd://…` (no supervisor, no data directory shared between them), `dnslb pool status
// --store` showing what the nodes report through etcd, and the admin verbs acting on the store:
// drain --wait until the node reports drained (DNS drops it), resume, block, and the quorum guard.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runDnslb, type CliRun } from '../helpers/cli.ts';
import { dig, REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePortPair, topologyYaml } from '../helpers/frontend-pool.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';

const ADDRESSES = ['127.0.30.11', '127.0.30.12', '127.0.30.13'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];

const dnslb = (...args: string[]): Promise<CliRun> => runDnslb(args, { cwd: REPO, timeoutMs: 120_000 });

interface StatusEntry {
  server: string;
  adminState: { state: string } | null;
  available: boolean;
  liveness: { reporter: string; state: string }[];
}

describe('distributed mode: the CLI, three nodes and DNS meet only in etcd', () => {
  let etcd: EtcdServer | undefined;
  let dns: RunningDns | undefined;
  const nodes: Running[] = [];
  let dir = '';
  let url = '';

  const status = async (): Promise<StatusEntry[]> => {
    const run = await dnslb('pool', 'status', '--store', url, '--json');
    assert.equal(run.code, 0, run.stderr);
    return (JSON.parse(run.stdout) as { servers: StatusEntry[] }).servers.filter((entry) => SERVERS.includes(entry.server));
  };
  const pool = async (): Promise<string[]> => (await dig(dns!, ['pool01.contoso.com', 'A'])).answer.map((record) => record.data).sort();

  before(async () => {
    etcd = await startEtcd();
    url = `${etcd.url}/dnslb-distributed/`;
    dir = mkdtempSync(join(tmpdir(), 'dnslb-distributed-'));
    const file = join(dir, 'topology.yaml');
    writeFileSync(file, topologyYaml(ADDRESSES, await freePortPair(ADDRESSES), 200));
    const published = await dnslb('topology', 'publish', file, '--store', url, '--comment', 'three nodes');
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stdout, /as version 1 \(base 0\) in etcd:\/\//);
    for (const fqdn of SERVERS) {
      // Where the pool CA is (here, `dir`), the operator makes each node's certificate from the
      // published topology; the node is started with the three files (mutual TLS between servers).
      const issued = await dnslb('certs', 'issue', '--server', fqdn, '--store', url, '--data-dir', dir, '--json');
      assert.equal(issued.code, 0, issued.stderr);
      const files = JSON.parse(issued.stdout) as { certFile: string; keyFile: string; caFile: string };
      const tls = ['--tls-cert', files.certFile, '--tls-key', files.keyFile, '--tls-ca', files.caFile];
      const node = start(process.execPath, ['bin/dnslb.js', 'node', '--store', url, '--server', fqdn, '--log-level', 'warn', ...tls], { cwd: REPO });
      nodes.push(node);
      await waitUntil(`${fqdn} listening`, () => /listening/.test(node.output()), { process: node, timeoutMs: 30_000 });
    }
    dns = await startDns(['--store', url, '--listen', '127.0.30.20:0']);
  });
  after(async () => {
    await dns?.stop();
    await Promise.all(nodes.map((node) => node.stop()));
    await etcd?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('topology versions and pool status read etcd: every node reports itself and its peers active', async () => {
    const versions = await dnslb('topology', 'versions', '--store', url);
    assert.equal(versions.code, 0, versions.stderr);
    assert.match(versions.stdout, /^\s+1 .* three nodes$/m);
    await eventually(async () => {
      for (const entry of await status()) {
        assert.equal(entry.available, true, entry.server);
        const reporters = entry.liveness.filter((report) => report.state === 'active').map((report) => report.reporter).sort();
        assert.deepEqual(reporters, SERVERS, `${entry.server} reported active by all three`);
      }
    });
    assert.deepEqual(await pool(), ADDRESSES);
  });

  test('drain --wait ends when the node reports drained; DNS drops it; resume brings it back', async () => {
    const drain = await dnslb('server', 'drain', 'fe1.contoso.com', '--store', url, '--wait', '--reason', 'patch Tuesday');
    assert.equal(drain.code, 0, drain.stderr);
    assert.match(drain.stdout, /drain fe1\.contoso\.com: done; 2 of 3 servers stay available/);
    assert.match(drain.stdout, /^fe1\.contoso\.com drained$/m);
    const fe1 = (await status()).find((entry) => entry.server === 'fe1.contoso.com')!;
    assert.equal(fe1.adminState?.state, 'draining');
    await eventually(async () => assert.deepEqual(await pool(), ADDRESSES.slice(1)));
    const resume = await dnslb('server', 'resume', 'fe1.contoso.com', '--store', url);
    assert.equal(resume.code, 0, resume.stderr);
    await eventually(async () => assert.deepEqual(await pool(), ADDRESSES));
  });

  test('block leaves DNS at once; a drain that would break the quorum is refused (exit 1); stop is not a store action (exit 2)', async () => {
    const block = await dnslb('server', 'block', 'fe3.contoso.com', '--store', url);
    assert.equal(block.code, 0, block.stderr);
    await eventually(async () => assert.deepEqual(await pool(), ADDRESSES.slice(0, 2)));
    const refused = await dnslb('server', 'drain', 'fe2.contoso.com', '--store', url);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ADMIN_QUORUM: refused: drain fe2\.contoso\.com: only 1 of 3 servers would stay available/);
    assert.equal((await status()).find((entry) => entry.server === 'fe2.contoso.com')!.adminState?.state ?? 'active', 'active', 'nothing was changed');
    const stop = await dnslb('server', 'stop', 'fe2.contoso.com', '--store', url, '--force');
    assert.equal(stop.code, 2, 'a usage error: stop acts on the processes of dnslb up');
    assert.match(stop.stderr, /CLI_USAGE: stop --store: .* in distributed mode stop the node's own process/);
    const unblock = await dnslb('server', 'unblock', 'fe3.contoso.com', '--store', url);
    assert.equal(unblock.code, 0, unblock.stderr);
    await eventually(async () => assert.deepEqual(await pool(), ADDRESSES));
  });
});
