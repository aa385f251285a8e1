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
    const report = await simulate('--users', '60', '--duration', '6s', '--password-seed-file', seedFile());
    assert.equal(report.totals.registered, 60, JSON.stringify(report.totals));
    assert.equal(report.totals.primary, 60);
    assert.equal(report.totals.signInFailures.modern, 0);
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
