// Real hosts, not one process tree (DESIGN §4): each Front End server in a network namespace of its
// own, etcd and DNS in another, all on one bridge in 10.217.0.0/24 (test/helpers/netns.ts), `dnslb
// node --store etcd://…` on each. Users sign in through DNS; then fe3's link goes down inside its
// namespace — a host that vanishes without RST or ICMP — and the test checks failover (its users
// registered on fe1/fe2, calls still set up), DNS (fe3 leaves the pool answer, fe1 and fe2 never do)
// and recovery when the link returns (fe3 back in the answer and its users handed back). Needs root
// and iproute2 (scripts/ensure-system-packages.sh); every namespace is removed at the end, by name.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Simulator } from '../../src/client/simulate.ts';
import { runDnslb, type CliRun } from '../helpers/cli.ts';
import { dig, REPO } from '../helpers/dns-process.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';
import { eventually } from '../helpers/eventually.ts';
import { topologyYaml } from '../helpers/frontend-pool.ts';
import { createTestNet, TEST_NET, type TestNet } from '../helpers/netns.ts';
import { waitUntil, type Running } from '../helpers/process.ts';

const CORE = `${TEST_NET}.2`;
const DNS = { address: CORE, port: 5300 };
const FRONTENDS = [`${TEST_NET}.11`, `${TEST_NET}.12`, `${TEST_NET}.13`];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const USERS = 150;
const SIP_PORT = 5060;

const dnslb = (...args: string[]): Promise<CliRun> => runDnslb(args, { cwd: REPO, timeoutMs: 120_000 });

interface StatusEntry {
  server: string;
  health?: { alive: string; up: number; down: number };
  liveness: { reporter: string; state: string }[];
}

describe('the pool across hosts: one network namespace per server, etcd and DNS in another', () => {
  let net: TestNet | undefined;
  let etcd: EtcdServer | undefined;
  let simulator: Simulator | undefined;
  const nodes: Running[] = [];
  let dir = '';
  let url = '';
  /** Every pool answer dug, from the first: the time and the addresses. */
  const answers: { atMs: number; addresses: string[] }[] = [];
  let digging = true;
  let digLoop: Promise<void> | undefined;

  const status = async (): Promise<StatusEntry[]> => {
    const result = await dnslb('pool', 'status', '--store', url, '--json');
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as { servers: StatusEntry[] }).servers.filter((entry) => SERVERS.includes(entry.server));
  };
  const registeredOn = (address: string): number => simulator!.summary().registeredPerServer[`${address}:${SIP_PORT}`] ?? 0;
  const since = (atMs: number) => answers.filter((answer) => answer.atMs >= atMs);

  before(async () => {
    net = await createTestNet([
      { name: 'core', address: CORE },
      ...FRONTENDS.map((address, index) => ({ name: `fe${index + 1}`, address })),
    ]);
    etcd = await startEtcd({ address: CORE, netns: 'dnslbt-core' });
    url = `${etcd.url}/dnslb-multihost/`;
    dir = mkdtempSync(join(tmpdir(), 'dnslb-multihost-'));
    const file = join(dir, 'topology.yaml');
    // A short heartbeat so that detection takes seconds: 500 ms × failAfter 3.
    writeFileSync(file, topologyYaml(FRONTENDS, SIP_PORT, 500).replace('listen: ["127.0.6.253:5300"]', `listen: ["${CORE}:${DNS.port}"]`));
    const published = await dnslb('topology', 'publish', file, '--store', url, '--comment', 'three hosts');
    assert.equal(published.code, 0, published.stderr);
    for (const [index, fqdn] of SERVERS.entries()) {
      // As README "Distributed mode" says: each node gets its certificate from `dnslb certs issue` where
      // the pool CA is (here the test's data dir), and links to the others over mutual TLS.
      const issued = await dnslb('--data-dir', join(dir, 'ca'), 'certs', 'issue', '--server', fqdn, '--store', url, '--json');
      assert.equal(issued.code, 0, issued.stderr);
      const files = JSON.parse(issued.stdout) as { certFile: string; keyFile: string; caFile: string };
      const tls = ['--tls-cert', files.certFile, '--tls-key', files.keyFile, '--tls-ca', files.caFile];
      const node = net.spawn(`fe${index + 1}`, process.execPath, ['bin/dnslb.js', 'node', '--store', url, '--server', fqdn, ...tls, '--log-level', 'warn'], { cwd: REPO });
      nodes.push(node);
      await waitUntil(`${fqdn} listening`, () => /listening/.test(node.output()), { process: node, timeoutMs: 30_000 });
    }
    const dns = net.spawn('core', process.execPath, ['bin/dnslb.js', 'dns', 'serve', '--store', url, '--listen', `${DNS.address}:${DNS.port}`], { cwd: REPO });
    await waitUntil('dns listening', () => /listening/.test(dns.output()), { process: dns, timeoutMs: 30_000 });
    digLoop = (async () => {
      while (digging) {
        const startedMs = Date.now();
        try {
          const result = await dig(DNS, ['pool01.contoso.com', 'A'], net!.rootAddress);
          if (result.status === 'NOERROR') answers.push({ atMs: Date.now(), addresses: result.answer.map((record) => record.data).sort() });
        } catch {
          // a lost datagram: no answer is not an answer without a server
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 250 - (Date.now() - startedMs))));
      }
    })();
  });
  after(async () => {
    digging = false;
    await digLoop;
    await simulator?.stop();
    await net?.restore('fe3').catch(() => {});
    await net?.dispose();
    await etcd?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`${USERS} users sign in through DNS across the three hosts`, async () => {
    await eventually(async () => {
      for (const entry of await status()) assert.ok(entry.health?.alive === 'up' && entry.health.up === 3, `${entry.server}: ${JSON.stringify(entry.health)}`);
    }, { timeoutMs: 30_000 });
    simulator = new Simulator({
      domain: 'contoso.com',
      dnsServers: [`${DNS.address}:${DNS.port}`],
      users: USERS,
      callsPerMinute: 120,
      callHoldMs: 2000,
      // A dead flow is noticed within seconds: a keep-alive every 2–3 s, 2 s for its pong.
      userAgent: { keepAliveIntervalMs: 3000, pongTimeoutMs: 2000, backoffBaseMs: 500 },
    });
    simulator.start();
    await eventually(() => assert.equal(simulator!.summary().registered, USERS, JSON.stringify(simulator!.summary())), { timeoutMs: 60_000 });
    for (const address of FRONTENDS) assert.ok(registeredOn(address) > 0, `users on ${address}: ${JSON.stringify(simulator.summary().registeredPerServer)}`);
    await eventually(() => assert.ok(simulator!.summary().calls.up >= 5, JSON.stringify(simulator!.summary().calls)), { timeoutMs: 30_000 });
    assert.deepEqual(answers.at(-1)?.addresses, FRONTENDS);
  });

  test('fe3 vanishes (its link down, no RST): its users fail over to fe1/fe2, DNS drops it and only it, calls still come up', async () => {
    const onFe3 = registeredOn(FRONTENDS[2]!);
    const cutMs = Date.now();
    await net!.cut('fe3');
    await eventually(() => {
      const summary = simulator!.summary();
      assert.equal(registeredOn(FRONTENDS[2]!), 0, JSON.stringify(summary.registeredPerServer));
      assert.equal(summary.registered, USERS, JSON.stringify(summary));
    }, { timeoutMs: 90_000 });
    const failedOverMs = Date.now();
    let outMs = 0;
    await eventually(() => {
      const out = since(cutMs).find((answer) => !answer.addresses.includes(FRONTENDS[2]!));
      assert.ok(out, 'fe3 still in the pool answer');
      outMs = out.atMs;
    }, { timeoutMs: 30_000 });
    await eventually(async () => {
      const fe3 = (await status()).find((entry) => entry.server === 'fe3.contoso.com')!;
      assert.equal(fe3.health?.alive, 'down', JSON.stringify(fe3));
    }, { timeoutMs: 30_000 });
    // Calls placed once everyone is signed in again come up between users on fe1 and fe2.
    const upBefore = simulator!.summary().calls.up;
    await eventually(() => assert.ok(simulator!.summary().calls.up >= upBefore + 5, JSON.stringify(simulator!.summary().calls)), { timeoutMs: 30_000 });
    console.log(`# fe3 cut: its ${onFe3} users registered on fe1/fe2 ${failedOverMs - cutMs} ms after the cut; out of the pool answer after ${outMs - cutMs} ms; calls ${JSON.stringify(simulator!.summary().calls)}`);
    const missingHealthy = since(cutMs).filter((answer) => !answer.addresses.includes(FRONTENDS[0]!) || !answer.addresses.includes(FRONTENDS[1]!));
    assert.deepEqual(missingHealthy, [], 'fe1 and fe2 are in every answer');
    const backIn = since(outMs).filter((answer) => answer.addresses.includes(FRONTENDS[2]!));
    assert.deepEqual(backIn, [], 'fe3 does not flap back while cut off');
  });

  test('the link returns: fe3 is seen up by all, back in the pool answer, and its users are handed back', async () => {
    const restoredMs = Date.now();
    await net!.restore('fe3');
    await eventually(async () => {
      for (const entry of await status()) assert.ok(entry.health?.alive === 'up' && entry.health.down === 0, `${entry.server}: ${JSON.stringify(entry.health)}`);
    }, { timeoutMs: 120_000 });
    await eventually(() => assert.ok(since(restoredMs).some((answer) => answer.addresses.join(' ') === FRONTENDS.join(' ')), 'fe3 back in the answer'), { timeoutMs: 30_000 });
    const inMs = since(restoredMs).find((answer) => answer.addresses.join(' ') === FRONTENDS.join(' '))!.atMs;
    await eventually(() => assert.ok(registeredOn(FRONTENDS[2]!) > 0, JSON.stringify(simulator!.summary().registeredPerServer)), { timeoutMs: 60_000 });
    await eventually(() => assert.equal(simulator!.summary().registered, USERS), { timeoutMs: 30_000 });
    console.log(`# fe3 link back: in the pool answer after ${inMs - restoredMs} ms; ${registeredOn(FRONTENDS[2]!)} users back on it after ${Date.now() - restoredMs} ms`);
    const missing = since(restoredMs).filter((answer) => !answer.addresses.includes(FRONTENDS[0]!) || !answer.addresses.includes(FRONTENDS[1]!));
    assert.deepEqual(missing, [], 'fe1 and fe2 are in every answer');
  });
});
