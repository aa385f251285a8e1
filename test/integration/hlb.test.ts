// Web services behind a real HAProxy (webServices.hlb: haproxy) under `dnslb up`, on the example
// topology moved to 127.0.44.x: autodiscover through the VIP spreads over the servers; drain, block
// and resume in dnslb reach HAProxy's admin state; a killed server is taken out by the health checks
// while requests keep succeeding; a published version that adds (then removes) a server reloads
// HAProxy (SIGUSR2 to its master) without dropping a request, on new connections or on one kept
// open across the reload. Counts are read at the servers (their /web-services counters).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { callAdmin } from '../../src/admin/http-api.ts';
import { readToken } from '../../src/admin/credentials.ts';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';
import { HaproxyRuntime, type HlbAdminState } from '../../src/hlb/runtime-api.ts';
import type { AutodiscoverDocument } from '../../src/webservices/autodiscover.ts';
import type { WebServicesStatus } from '../../src/webservices/web-services.ts';
import { eventually } from '../helpers/eventually.ts';
import { startUp, type UpSystem } from '../helpers/up.ts';

const NET = '127.0.44';
const VIP = `${NET}.21`;
// The example's internal Web services port (8443 on the VIP and the servers, so that it runs as any user).
const PORT = 8443;
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const PATH = '/autodiscover/autodiscoverservice.svc/root?originalDomain=contoso.com';

describe('Web services behind HAProxy (webServices.hlb: haproxy)', () => {
  let system: UpSystem;
  let ca: string;
  let token: string;
  let runtime: HaproxyRuntime;

  /**
   * One autodiscover GET through the VIP, on a new connection (so that HAProxy picks a server for
   * each) or through `agent` (a kept-alive connection); `reused` says whether it went on one opened before.
   */
  const autodiscover = (agent: Agent | false = false): Promise<{ statusCode: number; server: string; reused: boolean }> =>
    new Promise((resolve, reject) => {
      const outgoing = request({ host: VIP, port: PORT, path: PATH, ca, servername: 'lyncdiscoverinternal.contoso.com', headers: { host: 'lyncdiscoverinternal.contoso.com' }, agent }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, server: response.statusCode === 200 ? (JSON.parse(body) as AutodiscoverDocument).Server : '', reused: outgoing.reusedSocket }));
      });
      outgoing.on('error', reject);
      outgoing.end();
    });

  /** `count` requests, 8 at a time; every answer's status and naming server. */
  const many = async (count: number): Promise<{ statusCode: number; server: string; reused: boolean }[]> => {
    const answers: { statusCode: number; server: string; reused: boolean }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) {
          next++;
          answers.push(await autodiscover());
        }
      }),
    );
    return answers;
  };

  /** Autodiscover requests each server has answered on its internal Web site, as it counts them. */
  const countsAtServers = async (servers = SERVERS): Promise<Map<string, number>> => {
    const counts = new Map<string, number>();
    for (const server of servers) {
      const { url } = JSON.parse(await readFile(join(system.dataDir, 'servers', `${server}.json`), 'utf8')) as { url: string };
      const status = (await callAdmin(url, token, 'GET', '/web-services')) as WebServicesStatus;
      counts.set(server, status.requests.internal.autodiscover);
    }
    return counts;
  };

  const adminStateInHaproxy = async (server: string): Promise<HlbAdminState[]> => (await runtime.serversState()).filter((row) => row.server === server).map((row) => row.admin);

  before(async () => {
    // No restart of a killed server during the test: HAProxy's checks must see it stay down.
    system = await startUp(NET, { edit: (text) => text.replace('restartDelayMs: 2000', 'restartDelayMs: 600000') });
    ca = await readFile(join(system.dataDir, 'tls', 'ca.pem'), 'utf8');
    token = await readToken(system.dataDir);
    runtime = new HaproxyRuntime(join(system.dataDir, 'hlb', 'pool01.contoso.com.sock'));
    // Every server up in both backends (their health checks passed).
    await eventually(async () => {
      const stats = (await runtime.stat()).filter((row) => SERVERS.includes(row.server));
      assert.deepEqual(stats.map((row) => row.status), ['UP', 'UP', 'UP', 'UP', 'UP', 'UP'], JSON.stringify(stats));
    });
  });
  after(async () => system?.stop());

  test('dnslb up says HAProxy listens on the VIPs, and the exported configuration is the one running and passes haproxy -c', async () => {
    assert.match(system.process.output(), new RegExp(`hlb:pool01\\.contoso\\.com +pid \\d+ +https://${VIP.replaceAll('.', '\\.')}:${PORT} \\(internal\\) https://${NET.replaceAll('.', '\\.')}\\.22:4443 \\(external\\)`));
    const exported = await system.cli('hlb', 'export', '--pool', 'pool01.contoso.com', '--check');
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(exported.stdout, await readFile(join(system.dataDir, 'hlb', 'pool01.contoso.com.cfg'), 'utf8'));
  });

  test('1,000 autodiscover requests through the VIP spread over the three servers (25–40 % each)', async () => {
    const before = await countsAtServers();
    const answers = await many(1000);
    assert.deepEqual([...new Set(answers.map((answer) => answer.statusCode))], [200]);
    const after = await countsAtServers();
    const shares = SERVERS.map((server) => (after.get(server)! - before.get(server)!) / 1000);
    assert.equal(Math.round(shares.reduce((sum, share) => sum + share, 0) * 1000), 1000, `every request counted once at a server: ${shares.join(', ')}`);
    for (const [index, share] of shares.entries()) assert.ok(share >= 0.25 && share <= 0.4, `${SERVERS[index]} answered ${(share * 100).toFixed(1)} %`);
    // The documents name the server that counted them.
    for (const server of SERVERS) assert.equal(answers.filter((answer) => answer.server === server).length, after.get(server)! - before.get(server)!);
  });

  test('dnslb client register finds the pool through lyncdiscoverinternal and the VIP, and falls back to SRV when autodiscover fails', async () => {
    const dns = `${system.dns.address}:${system.dns.port}`;
    const caFile = join(system.dataDir, 'tls', 'ca.pem');
    const through = await system.cli('client', 'register', '--uri', 'sip:alice@contoso.com', '--dns', dns, '--ca', caFile, '--autodiscover-port', String(PORT));
    assert.equal(through.code, 0, through.stderr);
    assert.match(through.stdout, /^dns lyncdiscoverinternal\.contoso\.com A → 1 address$/m);
    assert.match(through.stdout, new RegExp(`^https GET https://lyncdiscoverinternal\\.contoso\\.com:${PORT}/ at ${VIP.replaceAll('.', '\\.')} → Internal access pool01\\.contoso\\.com:5061 tls, pool01\\.contoso\\.com:5060 tcp \\(answered by fe\\d\\.contoso\\.com\\)$`, 'm'));
    assert.match(through.stdout, new RegExp(`^pool found through lyncdiscoverinternal\\.contoso\\.com autodiscover \\(https://${VIP.replaceAll('.', '\\.')}:${PORT}\\)$`, 'm'));
    assert.doesNotMatch(through.stdout, /_sipinternaltls/, 'SRV was not needed');
    assert.match(through.stdout, /^registered at .* in primary mode/m);
    // Without the pool CA the document cannot be trusted: the client says why and takes the SRV path (SIP over TCP needs no CA).
    const fallback = await system.cli('client', 'register', '--uri', 'sip:bob@contoso.com', '--dns', dns, '--transport', 'tcp', '--autodiscover-port', String(PORT));
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(fallback.stdout, /^https GET https:\/\/lyncdiscoverinternal\.contoso\.com:8443\/ at .* → .*(certificate|self-signed|issuer)/im);
    assert.match(fallback.stdout, /^pool found through _sipinternal\._tcp\.contoso\.com SRV$/m);
    assert.match(fallback.stdout, /^registered at /m);
    const skipped = await system.cli('client', 'register', '--uri', 'sip:carol@contoso.com', '--dns', dns, '--ca', caFile, '--no-autodiscover');
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.doesNotMatch(skipped.stdout, /lyncdiscover/);
    assert.match(skipped.stdout, /^pool found through _sipinternaltls\._tcp\.contoso\.com SRV$/m);
  });

  test('drain in dnslb → drain in HAProxy: no new request reaches the server; resume → it gets requests again', async (t) => {
    assert.equal((await system.cli('server', 'drain', 'fe2.contoso.com')).code, 0);
    // Back to active whatever happens, so that the tests after this one start from a whole pool.
    t.after(async () => void (await system.cli('server', 'resume', 'fe2.contoso.com')));
    await eventually(async () => assert.deepEqual(await adminStateInHaproxy('fe2.contoso.com'), ['drain', 'drain']));
    const status = JSON.parse((await system.cli('pool', 'status', '--json')).stdout) as PoolStatus;
    const fe2 = status.servers.find((entry) => entry.server === 'fe2.contoso.com')!;
    assert.equal(fe2.hlb?.desired, 'drain');
    // DRAIN while its health check passes; DOWN once it is drained (no users here), when /health says 503.
    assert.match(fe2.hlb?.sides.internal?.status ?? '', /^(DRAIN|DOWN)/);
    assert.match((await system.cli('pool', 'status')).stdout, /^fe2\.contoso\.com +pool01\.contoso\.com +\d+ +draining +\S+ +no +(DRAIN|DOWN)\S* /m);
    const before = await countsAtServers();
    const answers = await many(300);
    assert.deepEqual([...new Set(answers.map((answer) => answer.statusCode))], [200]);
    const after = await countsAtServers();
    assert.equal(after.get('fe2.contoso.com')! - before.get('fe2.contoso.com')!, 0, 'the drained server got no new request');
    assert.equal(after.get('fe1.contoso.com')! - before.get('fe1.contoso.com')! + after.get('fe3.contoso.com')! - before.get('fe3.contoso.com')!, 300);

    assert.equal((await system.cli('server', 'resume', 'fe2.contoso.com')).code, 0);
    await eventually(async () => assert.deepEqual(await adminStateInHaproxy('fe2.contoso.com'), ['ready', 'ready']));
    // Back in rotation once its health check passes (a drained server's /health said 503 meanwhile).
    await eventually(async () => assert.ok((await runtime.stat()).filter((row) => row.server === 'fe2.contoso.com').every((row) => row.status === 'UP')));
    const resumedBefore = await countsAtServers();
    await many(90);
    const resumedAfter = await countsAtServers();
    assert.ok(resumedAfter.get('fe2.contoso.com')! > resumedBefore.get('fe2.contoso.com')!, 'fe2 answers again');
  });

  test('block → maint in HAProxy; unblock → ready', async (t) => {
    assert.equal((await system.cli('server', 'block', 'fe1.contoso.com')).code, 0);
    t.after(async () => void (await system.cli('server', 'unblock', 'fe1.contoso.com')));
    await eventually(async () => assert.deepEqual(await adminStateInHaproxy('fe1.contoso.com'), ['maint', 'maint']));
    const before = await countsAtServers();
    await many(60);
    assert.equal((await countsAtServers()).get('fe1.contoso.com'), before.get('fe1.contoso.com'), 'nothing reaches a server in maintenance');
    assert.equal((await system.cli('server', 'unblock', 'fe1.contoso.com')).code, 0);
    await eventually(async () => assert.deepEqual(await adminStateInHaproxy('fe1.contoso.com'), ['ready', 'ready']));
  });

  test('a published version that adds fe4, then removes it: HAProxy reloads (SIGUSR2) onto the new backends without dropping a request', async () => {
    const workerPid = async () => /^Pid: (\d+)$/m.exec(await runtime.command('show info'))?.[1];
    const backends = async (server: string) => (await runtime.stat()).filter((row) => row.server === server).map((row) => row.backend);
    /** A kept-alive connection through the VIP to a server other than `avoid` (one that is about to drain closes its connections, by design). */
    const keptConnection = async (avoid: string): Promise<Agent> => {
      for (;;) {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        if ((await autodiscover(agent)).server !== avoid) return agent;
        agent.destroy();
      }
    };
    /** Until `stop`: requests on new connections, 4 at a time, and on `agent`'s connection one every 50 ms. */
    const traffic = (agent: Agent) => {
      let stopped = false;
      const fresh: { statusCode: number; server: string }[] = [];
      const kept: { statusCode: number; server: string; reused: boolean }[] = [];
      const failures: string[] = [];
      const loops = [
        ...Array.from({ length: 4 }, async () => {
          while (!stopped) fresh.push(await autodiscover().catch((error: Error) => (failures.push(`new connection: ${error.message}`), { statusCode: 0, server: '', reused: false })));
        }),
        (async () => {
          while (!stopped) {
            kept.push(await autodiscover(agent).catch((error: Error) => (failures.push(`kept connection: ${error.message}`), { statusCode: 0, server: '', reused: false })));
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        })(),
      ];
      return {
        keptSoFar: () => kept.length,
        async stop() {
          stopped = true;
          await Promise.all(loops);
          agent.destroy();
          return { fresh, kept, failures };
        },
      };
    };
    const publish = async (text: string, name: string) => {
      const file = join(system.dataDir, name);
      await writeFile(file, text);
      const published = await system.cli('topology', 'publish', file);
      assert.equal(published.code, 0, published.stderr);
    };
    const original = await readFile(system.topologyFile, 'utf8');
    const fe3Line = `      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n`;
    assert.ok(original.includes(fe3Line));

    // Commission: fe4 joins both backends through a reload, while requests keep flowing.
    const before = await workerPid();
    assert.ok(before, 'show info names the worker');
    let running = traffic(await keptConnection('fe4.contoso.com'));
    await publish(original.replace(fe3Line, `${fe3Line}      - { fqdn: fe4.contoso.com, ipv4: ${NET}.14 }\n`), 'with-fe4.yaml');
    await eventually(async () => {
      assert.deepEqual(await backends('fe4.contoso.com'), ['web-internal', 'web-external']);
      assert.ok((await runtime.stat()).filter((row) => row.server === 'fe4.contoso.com').every((row) => row.status === 'UP'), 'fe4 passed its health checks');
    });
    const afterCommission = await workerPid();
    assert.notEqual(afterCommission, before, 'a new worker took the new configuration');
    const keptBeforeReload = running.keptSoFar();
    assert.match(await readFile(join(system.dataDir, 'hlb', 'pool01.contoso.com.cfg'), 'utf8'), /server fe4\.contoso\.com /);
    // A few more requests on the connection kept open, now served by the old worker.
    await new Promise((resolve) => setTimeout(resolve, 300));
    let seen = await running.stop();
    assert.ok(seen.kept.length > keptBeforeReload, 'the kept connection carried requests after the reload too');
    assert.deepEqual(seen.failures, []);
    assert.deepEqual([...new Set([...seen.fresh, ...seen.kept].map((answer) => answer.statusCode))], [200]);
    assert.ok(seen.kept.length >= 2 && seen.kept.every((answer) => answer.reused), `one connection, opened before, throughout: ${seen.kept.map((answer) => answer.reused).join(' ')}`);
    assert.equal(new Set(seen.kept.map((answer) => answer.server)).size, 1, 'the kept connection stayed on its server');
    // The new worker balances onto fe4.
    const fe4Before = (await countsAtServers(['fe4.contoso.com'])).get('fe4.contoso.com')!;
    await many(120);
    assert.ok((await countsAtServers(['fe4.contoso.com'])).get('fe4.contoso.com')! > fe4Before, 'fe4 answers through the VIP');

    // Decommission: fe4 leaves both backends through another reload, again without a failed request.
    running = traffic(await keptConnection('fe4.contoso.com'));
    await publish(original, 'without-fe4.yaml');
    await eventually(async () => assert.deepEqual(await backends('fe4.contoso.com'), []));
    assert.notEqual(await workerPid(), afterCommission);
    await new Promise((resolve) => setTimeout(resolve, 300));
    seen = await running.stop();
    assert.deepEqual(seen.failures, []);
    assert.deepEqual([...new Set([...seen.fresh, ...seen.kept].map((answer) => answer.statusCode))], [200]);
    assert.ok(seen.kept.length >= 2 && seen.kept.every((answer) => answer.reused), 'one connection, opened before, throughout');
    await eventually(async () => assert.ok((await runtime.stat()).filter((row) => SERVERS.includes(row.server)).every((row) => row.status === 'UP')));
  });

  test('a killed server: requests keep succeeding, and HAProxy\'s health check takes it out', async () => {
    await eventually(async () => assert.ok((await runtime.stat()).filter((row) => SERVERS.includes(row.server)).every((row) => row.status === 'UP')));
    const status = JSON.parse((await system.cli('pool', 'status', '--json')).stdout) as PoolStatus;
    const victim = status.servers.find((entry) => entry.server === 'fe3.contoso.com')!.process!.pid!;
    const before = await countsAtServers(['fe1.contoso.com', 'fe2.contoso.com']);
    process.kill(victim, 'SIGKILL');
    // Once it is gone (its supervisor saw it end), before and after the checks notice: a refused
    // connection is retried on another server. (A request already on its way to it when it died is lost.)
    await eventually(async () => {
      const now = JSON.parse((await system.cli('pool', 'status', '--json')).stdout) as PoolStatus;
      assert.notEqual(now.servers.find((entry) => entry.server === 'fe3.contoso.com')?.process?.state, 'running');
    });
    const during = await many(200);
    await eventually(async () => assert.ok((await runtime.stat()).filter((row) => row.server === 'fe3.contoso.com').every((row) => row.status === 'DOWN')));
    const afterDown = await many(200);
    assert.deepEqual([...new Set([...during, ...afterDown].map((answer) => answer.statusCode))], [200]);
    assert.ok([...during, ...afterDown].every((answer) => answer.server !== 'fe3.contoso.com'));
    const after = await countsAtServers(['fe1.contoso.com', 'fe2.contoso.com']);
    assert.equal(after.get('fe1.contoso.com')! - before.get('fe1.contoso.com')! + after.get('fe2.contoso.com')! - before.get('fe2.contoso.com')!, 400, 'fe1 and fe2 answered every request');
    const table = (await system.cli('pool', 'status')).stdout;
    assert.match(table, /^fe3\.contoso\.com +pool01\.contoso\.com .* DOWN /m);
  });
});
