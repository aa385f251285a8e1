// The clients sign in with digest against `dnslb up` running the example with authentication on (as
// `npm start` does; 127.0.40.x): `dnslb user import --synthetic` loads users whose passwords follow
// the seeded rule, `dnslb client simulate --password-seed-file` signs every one of them in through
// DNS and the 301 to its home; without passwords nobody gets in; `dnslb client register` with the
// example's users file signs alice in, and a wrong password fails with a clear message.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SimulationReport } from '../../src/client/simulate.ts';
import { REPO } from '../helpers/dns-process.ts';
import { startUp, tcpBetweenServers, type UpSystem } from '../helpers/up.ts';

const NET = '127.0.40';

describe('clients sign in with digest (dnslb up, settings.auth on)', () => {
  let system: UpSystem;
  let work = '';
  const seedFile = (): string => join(work, 'seed.txt');

  async function simulate(...args: string[]): Promise<SimulationReport> {
    const file = join(work, `report-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
    const result = await system.cli('client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--report', file, '--summary-every', '60s', ...args);
    assert.equal(result.code, 0, `simulate failed: ${result.stderr}\n${result.stdout}`);
    return JSON.parse(await readFile(file, 'utf8')) as SimulationReport;
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dnslb-client-auth-'));
    await writeFile(seedFile(), 'a seed for this test\n');
    system = await startUp(NET, { edit: (text) => tcpBetweenServers(text.replace('auth: { enabled: false,', 'auth: { enabled: true,')), args: ['--no-tls'] });
  });
  after(async () => {
    await system?.stop();
  });

  test('user import --synthetic 60, then simulate --password-seed-file: all 60 signed in, each at its home', async () => {
    const imported = await system.cli('user', 'import', '--synthetic', '60', '--domain', 'contoso.com', '--password-seed-file', seedFile());
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /imported 60 users from 60 synthetic users: 60 added, 0 updated/);
    const report = await simulate('--users', '60', '--sign-in-within', '60s', '--duration', '2s', '--password-seed-file', seedFile());
    assert.equal(report.totals.registered, 60, JSON.stringify(report.totals));
    assert.equal(report.totals.primary, 60);
    assert.equal(report.totals.signInFailures.modern, 0);
  });

  test('users of both pools sign in through the Directors and call each other: a call between pools is not challenged again (it was at the caller\'s home)', async () => {
    // user1@contoso.com, user2@dublin.contoso.com, … user60@dublin.contoso.com: 30 on pool01 (the
    // default), 30 on pool02 (the home rule); the even users of dublin.contoso.com up to 60 must exist.
    const imported = await system.cli('user', 'import', '--synthetic', '60', '--domain', 'dublin.contoso.com', '--password-seed-file', seedFile());
    assert.equal(imported.code, 0, imported.stderr);
    // A fifth of the calls to numbers: no gateway runs here, so each ends 480 naming it (not 407).
    const report = await simulate('--domain', 'contoso.com,dublin.contoso.com', '--users', '60', '--sign-in-within', '60s', '--duration', '10s', '--calls-per-minute', '600', '--call-hold', '300ms', '--pstn-share', '20%', '--password-seed-file', seedFile());
    assert.equal(report.totals.registered, 60, JSON.stringify(report.totals));
    const pool02 = new Set([17, 18, 19].map((last) => `${NET}.${last}:5060`));
    for (const user of report.users) assert.equal(pool02.has(user.server ?? ''), user.aor.endsWith('@dublin.contoso.com'), `${user.aor} at ${user.server}`);
    const { calls } = report.totals;
    assert.ok(calls.up >= 10 && calls.toNumbers >= 1, JSON.stringify(calls));
    // Every failed setup is a call to a number (before the fix, every call between pools got 407).
    for (const why of Object.keys(calls.failedBy)) assert.match(why, /^rejected 480 .*PSTN gateway unreachable/, JSON.stringify(calls));
    assert.ok(calls.failed <= calls.toNumbers, JSON.stringify(calls));
  });

  test('simulate without passwords: nobody signs in, and the reason says a password is needed', async () => {
    const report = await simulate('--users', '3', '--duration', '2s', '--backoff-base-ms', '60000');
    assert.equal(report.totals.registered, 0);
    assert.ok(report.totals.signInFailures.modern >= 3, JSON.stringify(report.totals));
    for (const user of report.users) assert.match(user.lastError ?? '', /answered 401 Unauthorized: the registrar authenticates, and no password was given/, user.aor);
  });

  test("client register with the example's users file signs alice in; a wrong password fails with a clear message", async () => {
    const imported = await system.cli('user', 'import', join(REPO, 'examples/contoso-users.csv'));
    assert.equal(imported.code, 0, imported.stderr);
    const dns = `${system.dns.address}:${system.dns.port}`;
    const ok = await system.cli('client', 'register', '--uri', 'sip:alice@contoso.com', '--dns', dns, '--transport', 'tcp', '--no-autodiscover', '--passwords', join(REPO, 'examples/contoso-users.csv'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /REGISTER → \S+: 401 Unauthorized/);
    assert.match(ok.stdout, /registered at \S+ in primary mode/);
    await writeFile(join(work, 'wrong.pw'), 'not-alices-password\n');
    const wrong = await system.cli('client', 'register', '--uri', 'sip:alice@contoso.com', '--dns', dns, '--transport', 'tcp', '--no-autodiscover', '--password-file', join(work, 'wrong.pw'));
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /refused the credentials of sip:alice@contoso.com \(401 again\): wrong password or unknown user/);
  });
});
