// `npm start` as README's walkthrough has it (127.0.46.x): `dnslb up` on the example topology from
// a directory of its own, with the default data dir (./.dnslb, a relative path — HAProxy once
// refused the relative socket path there, which tests with absolute data dirs never saw). HAProxy
// comes up on the Web services VIPs (8443 and 4443; src/topology/example.test.ts checks that the
// example binds no port below 1024, so that this runs as any user), autodiscover answers through
// the VIP, and `dnslb server drain` drains the server in dnslb and in HAProxy at once.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';
import { HaproxyRuntime } from '../../src/hlb/runtime-api.ts';
import type { AutodiscoverDocument } from '../../src/webservices/autodiscover.ts';
import { REPO } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/free-port.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';
import { exampleTopology } from '../helpers/up.ts';

const NET = '127.0.46';
const BIN = join(REPO, 'bin', 'dnslb.js');

describe('npm start as README says: the example, with ./.dnslb', () => {
  let dir: string;
  let up: Running;
  let env: NodeJS.ProcessEnv;

  /** `dnslb ARGS…` from the same directory (so with the same ./.dnslb). */
  const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: dir, env, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: typeof error?.code === 'number' ? error.code : error ? -1 : 0, stdout, stderr }));
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dnslb-npm-start-'));
    env = { ...process.env, HOME: dir };
    await writeFile(join(dir, 'topology.yaml'), await exampleTopology(NET, await freePort(`${NET}.1`)));
    const adminPort = await freePort('127.0.0.1');
    up = start(process.execPath, [BIN, 'up', 'topology.yaml', '--admin-listen', `127.0.0.1:${adminPort}`], { cwd: dir, env });
    await waitUntil('dnslb up running', () => up.output().includes('dnslb up: running'), { process: up, timeoutMs: 120_000 });
  });
  after(async () => {
    await up?.stop(10_000);
    await rm(dir, { recursive: true, force: true });
  });

  test('HAProxy listens on the VIPs; autodiscover through the internal VIP on 8443; drain reaches dnslb and HAProxy at once', async () => {
    const output = up.output();
    assert.match(output, new RegExp(`^hlb:pool01\\.contoso\\.com +pid \\d+ +https://${NET}\\.21:8443 \\(internal\\) https://${NET}\\.22:4443 \\(external\\)$`.replaceAll(NET, NET.replaceAll('.', '\\.')), 'm'));
    assert.match(output, new RegExp(`^hlb:dirpool\\.contoso\\.com +pid \\d+ +https://${NET.replaceAll('.', '\\.')}\\.23:8443 \\(internal\\)`, 'm'));
    assert.doesNotMatch(output, /WEBSERVICES_LISTEN|EACCES|ended \(exit/);

    const ca = await readFile(join(dir, '.dnslb', 'tls', 'ca.pem'), 'utf8');
    // HAProxy listens once dnslb up says running; its first health checks may still be on their way.
    const runtime = new HaproxyRuntime(join(dir, '.dnslb', 'hlb', 'pool01.contoso.com.sock'));
    await eventually(async () => assert.ok((await runtime.stat()).filter((row) => /^fe\d/.test(row.server)).every((row) => row.status === 'UP')));
    const answer = await new Promise<{ statusCode: number; body: string }>((resolve, reject) => {
      const outgoing = request({ host: `${NET}.21`, port: 8443, path: '/autodiscover/autodiscoverservice.svc/root', ca, servername: 'lyncdiscoverinternal.contoso.com', headers: { host: 'lyncdiscoverinternal.contoso.com:8443' }, agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, body }));
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
    assert.equal(answer.statusCode, 200, answer.body);
    assert.match((JSON.parse(answer.body) as AutodiscoverDocument).Server, /^fe[123]\.contoso\.com$/);

    const drained = await cli('server', 'drain', 'fe2.contoso.com');
    assert.equal(drained.code, 0, drained.stderr);
    await eventually(async () => assert.deepEqual((await runtime.serversState()).filter((row) => row.server === 'fe2.contoso.com').map((row) => row.admin), ['drain', 'drain']));
    const status = await cli('pool', 'status', '--json');
    assert.equal(status.code, 0, status.stderr);
    const fe2 = (JSON.parse(status.stdout) as PoolStatus).servers.find((entry) => entry.server === 'fe2.contoso.com')!;
    assert.equal(fe2.adminState?.state, 'draining');
    assert.equal(fe2.hlb?.desired, 'drain');
  });
});
