// `dnslb client simulate` and `dnslb client register` as real commands: Knot serves the pool's SRV and
// A records, two sipp registrars answer REGISTER 200 (primary and backup), a third pool address is
// dead (refused); the JSON report must account for every user, legacy failures included.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SimulationReport } from '../../src/client/simulate.ts';
import { runDnslb, type CliRun } from '../helpers/cli.ts';
import { startKnot, type DnsPeer } from '../helpers/dns-peers.ts';
import { freePortOn, startSipp, type Sipp } from '../helpers/sipp.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DNS = '127.0.8.1';
const FE1 = '127.0.8.11';
const FE2 = '127.0.8.12';
const DEAD = '127.0.8.10'; // in DNS (Knot answers in address order: first), nothing listens: refused

const dnslb = (args: string[]): Promise<CliRun> => runDnslb(args, { cwd: ROOT });

describe('dnslb client', () => {
  let knot: DnsPeer | undefined;
  const sipps: Sipp[] = [];
  let directory = '';
  let port = 0;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'dnslb-simulate-'));
    port = await freePortOn([FE1, FE2, DEAD]);
    // The dead server comes first (Knot orders the RRset): modern clients walk on, legacy ones fail (DESIGN §1).
    const zone = [
      '$ORIGIN sim.test.',
      '$TTL 300',
      '@ IN SOA ns.sim.test. hostmaster.sim.test. 1 3600 600 604800 60',
      '@ IN NS ns.sim.test.',
      `ns IN A ${DNS}`,
      `_sipinternal._tcp 300 IN SRV 0 0 ${port} pool01.sim.test.`,
      `pool01 300 IN A ${DEAD}`,
      `pool01 300 IN A ${FE1}`,
      `pool01 300 IN A ${FE2}`,
      '',
    ].join('\n');
    await writeFile(join(directory, 'sim.test.zone'), zone);
    knot = await startKnot({ address: DNS, port: 5398, zones: [{ name: 'sim.test', file: join(directory, 'sim.test.zone') }] });
    sipps.push(await startSipp({ scenario: 'registrar.xml', address: FE1, port, set: { mode: 'primary', expires: '600' } }));
    sipps.push(await startSipp({ scenario: 'registrar.xml', address: FE2, port, set: { mode: 'backup', expires: '600' } }));
  });
  after(async () => {
    await Promise.all(sipps.map((sipp) => sipp.stop()));
    await knot?.stop();
  });

  test('simulate: 50 users, 20 % legacy, calls; the JSON report accounts for every user', async () => {
    const json = join(directory, 'report.json');
    const run = await dnslb(['client', 'simulate', '--domain', 'sim.test', '--dns', `${DNS}:5398`, '--users', '50', '--legacy-share', '20%', '--calls-per-minute', '600', '--duration', '3s', '--call-hold', '200ms', '--summary-every', '1s', '--report', json]);
    assert.equal(run.code, 0, run.stderr);
    // Not a TTY: summary lines, then the final one.
    assert.match(run.stdout, /registered \d+\/50/);
    assert.match(run.stdout, /^final: /m);
    const report = JSON.parse(await readFile(json, 'utf8')) as SimulationReport;
    assert.equal(report.users.length, 50);
    const legacy = report.users.filter((user) => user.legacy);
    assert.equal(legacy.length, 10);
    // DNS always answers the dead address first, and legacy clients try nothing else.
    assert.ok(legacy.every((user) => user.state === 'failed' && user.server === null && /CLIENT_CONNECT/.test(user.lastError ?? '')));
    assert.ok(report.totals.signInFailures.legacy >= 10);
    assert.ok((report.totals.signInFailureReasons.legacy['CLIENT_CONNECT (refused)'] ?? 0) >= 10);
    // Modern clients walk past the refused address to the first live one.
    const modern = report.users.filter((user) => !user.legacy);
    assert.ok(modern.every((user) => user.state === 'registered' && user.server === `${FE1}:${port}` && user.mode === 'primary'), JSON.stringify(modern.filter((u) => u.state !== 'registered').slice(0, 3)));
    assert.deepEqual(report.totals.registeredPerServer, { [`${FE1}:${port}`]: 40 });
    assert.equal(report.totals.primary, 40);
    assert.equal(report.totals.signInFailures.modern, 0);
    // sipp answers each INVITE itself (100/180/200), so every call placed comes up.
    assert.ok(report.totals.calls.attempted > 0);
    // (A call attempted before two users had registered counts as failed.)
    const calls = report.totals.calls;
    assert.ok(calls.up > 0 && calls.up + calls.failed <= calls.attempted, JSON.stringify(calls));
    assert.equal(Object.values(calls.failedBy).reduce((sum, count) => sum + count, 0), calls.failed, 'every failed setup has its status and reason');
    // Held for 200 ms, then BYE: most have ended by the report.
    assert.ok(calls.inProgress < calls.up, JSON.stringify(calls));
  });

  test('simulate --sign-in-within: the duration counts from a signed-in pool; users that never sign in are named, and the run still reports', async () => {
    const json = join(directory, 'report-within.json');
    // Modern users only: every one registers, then the 1 s duration runs.
    const signedIn = await dnslb(['client', 'simulate', '--domain', 'sim.test', '--dns', `${DNS}:5398`, '--users', '20', '--sign-in-within', '60s', '--duration', '1s', '--report', json]);
    assert.equal(signedIn.code, 0, signedIn.stderr);
    assert.doesNotMatch(signedIn.stdout, /not every user registered/);
    assert.equal((JSON.parse(await readFile(json, 'utf8')) as SimulationReport).totals.registered, 20);
    // Legacy users try the dead first address only and never register: the wait ends at its bound.
    const partly = await dnslb(['client', 'simulate', '--domain', 'sim.test', '--dns', `${DNS}:5398`, '--users', '10', '--legacy-share', '50%', '--sign-in-within', '1500ms', '--duration', '500ms', '--report', json]);
    assert.equal(partly.code, 0, partly.stderr);
    assert.match(partly.stdout, /^not every user registered within 1500ms: .*registered 5\/10/m);
    const report = JSON.parse(await readFile(json, 'utf8')) as SimulationReport;
    assert.equal(report.totals.registered, 5);
    assert.ok(report.totals.elapsedMs >= 2000, `the duration ran after the wait: ${report.totals.elapsedMs} ms`);
    // A bad value is a usage error naming it.
    const bad = await dnslb(['client', 'simulate', '--domain', 'sim.test', '--dns', `${DNS}:5398`, '--sign-in-within', 'soon']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /not a duration: soon/);
  });

  test('register: prints the discovery steps, every attempt, the answer and the mode', async () => {
    const run = await dnslb(['client', 'register', '--uri', 'sip:alice@sim.test', '--dns', `${DNS}:5398`, '--transport', 'tcp']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /dns _sipinternal\._tcp\.sim\.test SRV → pool01\.sim\.test:\d+/);
    assert.match(run.stdout, new RegExp(`connect tcp:${DEAD.replace(/\./g, '\\.')}:${port} refused`));
    assert.match(run.stdout, new RegExp(`REGISTER → ${FE1.replace(/\./g, '\\.')}:${port}: 200 OK \\(X-Registrar-Mode: primary\\)`));
    assert.match(run.stdout, /registered at .* in primary mode \(0 redirects, 600 s\)/);
  });

  test('register --legacy: the first address only, and a failure exits non-zero naming it', async () => {
    const run = await dnslb(['client', 'register', '--uri', 'sip:bob@sim.test', '--dns', `${DNS}:5398`, '--transport', 'tcp', '--legacy']);
    assert.equal(run.code, 3);
    assert.match(run.stderr, /CLIENT_CONNECT: could not connect \(legacy\)/);
    assert.doesNotMatch(run.stdout, new RegExp(FE1.replace(/\./g, '\\.')));
  });
});
