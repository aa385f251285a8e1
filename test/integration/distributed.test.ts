// DESIGN §4 distributed mode, end to end with the CLI alone and a real etcd: `dnslb topology publish
// --store etcd://…`, three `dnslb node --store etcd://… --server FQDN` processes and a `dnslb dns
// serve --store etcd://…` (no supervisor, no data directory shared between them), `dnslb pool status
// --store` showing what the nodes report through etcd, and the admin verbs acting on the store:
// drain --wait until the node reports drained (DNS drops it), resume, block, and the quorum guard.
// etcd is secured as in production (issue 13 item 7): TLS with client certificates (--client-cert-auth,
// --trusted-ca-file) and RBAC (a root user; a `dnslb` user whose role may read and write only under
// the system's prefix), set up with etcdctl; every dnslb process reaches it through `etcds://…?ca=…&
// cert=…&key=…&user=dnslb&password-file=…`. A certificate from another CA, none at all, a wrong password,
// and a prefix outside the role's are each STORE_UNAVAILABLE with the reason, no stack trace.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ensureCertificate, ensureCertificateAuthority } from '../../src/sip/certificates.ts';
import { runDnslb, type CliRun } from '../helpers/cli.ts';
import { dig, REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { ETCD_TEST_ADDRESS, startEtcd, type EtcdServer } from '../helpers/etcd.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePortPair, topologyYaml } from '../helpers/frontend-pool.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';

const ADDRESSES = ['127.0.30.11', '127.0.30.12', '127.0.30.13'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];

const PREFIX = '/dnslb-distributed/';
const run = promisify(execFile);
const dnslb = (...args: string[]): Promise<CliRun> => runDnslb(args, { cwd: REPO, timeoutMs: 120_000 });

/** A refusal as operators see it: exit 3, the code and the reason on one line, no stack trace. */
function assertRefused(result: CliRun, reason: RegExp): void {
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /^dnslb: STORE_UNAVAILABLE: etcds /m);
  assert.match(result.stderr, reason);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
}

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
  /** The store URL with the TLS and user options of the query replaced. */
  let roguePaths = { cert: '', key: '' };
  let urlWith: (path: string, options: Record<string, string>) => string = () => '';

  const status = async (): Promise<StatusEntry[]> => {
    const run = await dnslb('pool', 'status', '--store', url, '--json');
    assert.equal(run.code, 0, run.stderr);
    return (JSON.parse(run.stdout) as { servers: StatusEntry[] }).servers.filter((entry) => SERVERS.includes(entry.server));
  };
  const pool = async (): Promise<string[]> => (await dig(dns!, ['pool01.contoso.com', 'A'])).answer.map((record) => record.data).sort();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-distributed-'));
    // The CA etcd trusts, etcd's own certificate, dnslb's client certificate; and a rogue CA's client certificate.
    const pki = join(dir, 'pki');
    const { caFile } = await ensureCertificateAuthority(pki, { name: 'etcd CA', days: 1 });
    const server = await ensureCertificate(pki, 'etcd', { names: ['etcd.test'], ips: [ETCD_TEST_ADDRESS], days: 1 });
    const client = await ensureCertificate(pki, 'dnslb', { names: ['dnslb-client'], ips: [], days: 1 });
    const rogue = await ensureCertificate(join(dir, 'rogue'), 'dnslb', { names: ['dnslb-client'], ips: [], days: 1 });
    etcd = await startEtcd({ tls: { caFile, certFile: server.certFile, keyFile: server.keyFile, clientCertAuth: true } });
    const etcdctl = (...args: string[]) => run('etcdctl', ['--endpoints', `https://${etcd!.endpoint}`, '--cacert', caFile, '--cert', client.certFile, '--key', client.keyFile, ...args]);
    await etcdctl('user', 'add', 'root', '--new-user-password', 'root-secret', '--interactive=false');
    await etcdctl('user', 'grant-role', 'root', 'root');
    await etcdctl('role', 'add', 'dnslb');
    await etcdctl('role', 'grant-permission', 'dnslb', '--prefix=true', 'readwrite', PREFIX);
    await etcdctl('user', 'add', 'dnslb', '--new-user-password', 'dnslb-secret', '--interactive=false');
    await etcdctl('user', 'grant-role', 'dnslb', 'dnslb');
    await etcdctl('auth', 'enable');
    writeFileSync(join(dir, 'etcd-password'), 'dnslb-secret\n', { mode: 0o600 });
    writeFileSync(join(dir, 'wrong-password'), 'not-the-secret\n', { mode: 0o600 });
    const good = { ca: caFile, cert: client.certFile, key: client.keyFile, user: 'dnslb', 'password-file': join(dir, 'etcd-password') };
    urlWith = (path, options) => `${etcd!.url}${path}?${new URLSearchParams({ ...good, ...options }).toString().replaceAll('%2F', '/')}`;
    url = urlWith(PREFIX, {});
    roguePaths = { cert: rogue.certFile, key: rogue.keyFile };
    const file = join(dir, 'topology.yaml');
    writeFileSync(file, topologyYaml(ADDRESSES, await freePortPair(ADDRESSES), 200));
    const published = await dnslb('topology', 'publish', file, '--store', url, '--comment', 'three nodes');
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stdout, /as version 1 \(base 0\) in etcds:\/\//);
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

  test('the password may come from DNSLB_ETCD_PASSWORD instead of a file; never from the URL', async () => {
    const withoutFile = `${etcd!.url}${PREFIX}?${new URLSearchParams(url.split('?')[1]).toString().replace(/&password-file=[^&]*/, '')}`;
    const fromEnv = await runDnslb(['topology', 'versions', '--store', withoutFile], { cwd: REPO, timeoutMs: 120_000, env: { ...process.env, DNSLB_ETCD_PASSWORD: 'dnslb-secret' } });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /three nodes/);
    const missing = await runDnslb(['topology', 'versions', '--store', withoutFile], { cwd: REPO, timeoutMs: 120_000, env: { ...process.env, DNSLB_ETCD_PASSWORD: '' } });
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /CLI_USAGE: --store: user=dnslb needs a password: password-file=FILE in the URL or the DNSLB_ETCD_PASSWORD environment variable/);
    const inUrl = await dnslb('topology', 'versions', '--store', `${withoutFile}&password=dnslb-secret`);
    assert.equal(inUrl.code, 2, inUrl.stderr);
    assert.match(inUrl.stderr, /CLI_USAGE: --store: a password in the store URL would show in `ps`/);
    assert.doesNotMatch(inUrl.stderr, /dnslb-secret/, 'the password is not echoed');
  });

  test('a client certificate from another CA, or none: STORE_UNAVAILABLE saying etcd refused it', async () => {
    assertRefused(await dnslb('topology', 'versions', '--store', urlWith(PREFIX, roguePaths)), /etcd refused our client certificate \(alert: [a-z ]+\): cert= must be signed by a CA in etcd's --trusted-ca-file/);
    const noCert = `${etcd!.url}${PREFIX}?${new URLSearchParams(url.split('?')[1]).toString().replace(/&cert=[^&]*&key=[^&]*/, '')}`;
    assertRefused(await dnslb('topology', 'versions', '--store', noCert), /etcd asks for a client certificate .*give cert= and key=/);
  });

  test('etcd\'s certificate not signed by ca=: STORE_UNAVAILABLE saying it does not verify', async () => {
    assertRefused(await dnslb('topology', 'versions', '--store', urlWith(PREFIX, { ca: join(dir, 'rogue', 'ca.pem') })), /etcd's certificate does not verify against ca=/);
  });

  test('a wrong password: STORE_UNAVAILABLE, authentication failed', async () => {
    assertRefused(await dnslb('topology', 'versions', '--store', urlWith(PREFIX, { 'password-file': join(dir, 'wrong-password') })), /as user dnslb: .*authentication failed, invalid user ID or password/);
  });

  test('a prefix outside the role\'s: STORE_UNAVAILABLE, permission denied, for reads and for writes', async () => {
    assertRefused(await dnslb('topology', 'versions', '--store', urlWith('/elsewhere/', {})), /as user dnslb: read \/elsewhere\/versions\/: etcdserver: permission denied \(the etcd user's role must allow readwrite/);
    const file = join(dir, 'topology.yaml');
    const publish = await dnslb('topology', 'publish', file, '--store', urlWith('/elsewhere/', {}));
    assertRefused(publish, /permission denied/);
  });
});
