// Sign-in of many users to one Front End pool with no fault (issue 15, the pool of 12): every user
// ends up registered, and a user is redirected at most once — by the first server DNS gave it, when
// that was not its home. What broke it at 20,000 users was the simulator, not the pool: one process
// holds a connection per user, and with `ulimit -n 20000` the last 19 users (the files the process
// needs for itself) failed with EMFILE for ever, each retry going back through DNS to a random server
// and one more redirect. The simulator now refuses more users than its limit lets it keep; several
// simulators (--first-user) share a larger load. A pool of 4 and a limit of a few hundred files show it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readEndpoint, readToken } from '../../src/admin/credentials.ts';
import { callAdmin } from '../../src/admin/http-api.ts';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';
import { filesForUsers, type SimulationReport } from '../../src/client/simulate.ts';
import { limits } from '../../src/shared/limits.ts';
import { REPO } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { start, type Running } from '../helpers/process.ts';
import { dnsPortIn, frontendPoolTopology, startUp, type UpSystem } from '../helpers/up.ts';

const NET = '127.0.77';
const SERVERS = 4;
/** Users per simulator, and the open-files limit each runs under: exactly enough for them. */
const USERS = 150;
const FILES = filesForUsers(USERS);
const fqdn = (index: number) => `fe${index}.contoso.com`;
const FRONTENDS = Array.from({ length: SERVERS }, (_, index) => fqdn(index + 1));

/** One Front End pool of SERVERS, DNS rotating over them, plain TCP between servers (`--no-tls`). */
const topology = (dnsPort: number): string => frontendPoolTopology(NET, SERVERS, dnsPort, ['  interServer: { transport: tcp }', '  heartbeat: { intervalMs: 1000, failAfter: 3, riseAfter: 2 }'].join('\n'));

/** `dnslb ARGS…` under `ulimit -n files` (bash sets the limit, then execs node). */
const underLimit = (files: number, args: readonly string[]) => ['-c', `ulimit -n ${files} && exec "$0" "$@"`, process.execPath, 'bin/dnslb.js', ...args];

interface ServerCounts {
  bindings: number;
  redirects: number;
}

describe('pool sign-in without faults: every user registered, at most one redirect each', () => {
  let system: UpSystem;
  let admin: { url: string; token: string };
  let work = '';
  const simulators: Running[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dnslb-pool-sign-in-'));
    system = await startUp(NET, { edit: (text) => topology(dnsPortIn(text, NET)), args: ['--no-tls'] });
    admin = { url: (await readEndpoint(system.dataDir)).url, token: await readToken(system.dataDir) };
  });
  after(async () => {
    await Promise.all(simulators.map((simulator) => simulator.stop(30_000)));
    await system?.stop();
  });

  /** Each Front End's own count of bindings and of REGISTERs it answered 3xx. */
  const counts = async (): Promise<Map<string, ServerCounts>> => {
    const status = (await callAdmin(admin.url, admin.token, 'GET', '/status')) as PoolStatus;
    const result = new Map<string, ServerCounts>();
    for (const entry of status.servers) {
      const own = entry.status as { state?: string; bindings?: { bindings: number }; registerAnswersByClass?: Record<string, number> } | undefined;
      if (FRONTENDS.includes(entry.server) && own?.state === 'active') result.set(entry.server, { bindings: own.bindings?.bindings ?? 0, redirects: own.registerAnswersByClass?.['3xx'] ?? 0 });
    }
    return result;
  };
  const sum = (map: Map<string, ServerCounts>, key: keyof ServerCounts) => [...map.values()].reduce((total, value) => total + value[key], 0);

  test('a simulator refuses more users than its open-files limit lets it keep signed in, naming the limit', async () => {
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile('bash', underLimit(FILES, ['client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--users', String(USERS + 1), '--duration', '1s']), { cwd: REPO, timeout: 60_000 }, (error, _stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr }));
    });
    assert.notEqual(run.code, 0, 'the simulator started users it could not keep signed in');
    assert.match(run.stderr, new RegExp(`CLI_USAGE: --users ${USERS + 1}: this process may hold ${FILES} open files \\(ulimit -n\\).*at most ${USERS} users here; run several simulators with --first-user`));
  });

  test(`two simulators at their limit (${USERS} users each, ulimit -n ${FILES}): all registered, redirects only for users whose first server was not home`, async () => {
    await eventually(async () => assert.equal((await counts()).size, SERVERS, 'every Front End active'), { timeoutMs: 120_000, intervalMs: 500 });
    const before = await counts();
    for (const part of [0, 1]) {
      const args = ['client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--users', String(USERS), '--first-user', String(1 + part * USERS), '--rate', '100', '--duration', '600s', '--summary-every', '600s', '--backoff-base-ms', '500', '--backoff-max-ms', '5000', '--report', join(work, `report-${part}.json`)];
      simulators.push(start('bash', underLimit(FILES, args), { cwd: REPO }));
    }
    // Counted at the servers: every user holds one binding (a user registered twice would count twice).
    await eventually(async () => assert.equal(sum(await counts(), 'bindings'), 2 * USERS), { timeoutMs: 240_000, intervalMs: 500 });
    const signedIn = await counts();
    const redirects = sum(signedIn, 'redirects') - sum(before, 'redirects');
    // SIGTERM: each simulator unregisters its users (on their home flows: no redirect) and writes its report.
    await Promise.all(simulators.splice(0).map((simulator) => simulator.stop(60_000)));
    const reports = await Promise.all([0, 1].map(async (part) => JSON.parse(await readFile(join(work, `report-${part}.json`), 'utf8')) as SimulationReport));
    const users = reports.flatMap((report) => report.users);
    assert.equal(new Set(users.map((user) => user.aor)).size, 2 * USERS, 'the two simulators signed in distinct users');
    assert.deepEqual(users.filter((user) => user.registrations < 1).map((user) => `${user.aor}: ${user.lastError}`), [], 'users that never signed in');
    // A user redirected again and again is what the pool of 12 showed (3.1 redirects per user): with no
    // fault, a sign-in that did not fail follows one redirect at most (first server → home); a failed
    // one (a DNS or connect time-out on a loaded machine) may have followed up to clientRedirectsMax + 1.
    const failures = users.reduce((total, user) => total + user.failures, 0);
    assert.deepEqual(users.filter((user) => user.failures === 0 && user.redirects > 1).map((user) => `${user.aor}: ${user.redirects} redirects`), []);
    assert.ok(redirects <= 2 * USERS + (limits.clientRedirectsMax + 1) * failures, `${redirects} REGISTERs answered 3xx for ${2 * USERS} users (${failures} failed sign-ins)`);
    assert.equal(reports.reduce((total, report) => total + report.totals.redirectLoops, 0), 0);
  });
});
