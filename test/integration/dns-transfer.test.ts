// A real Knot DNS as a secondary of dnslb on loopback: it transfers the zone (AXFR), is sent NOTIFY
// on each change, follows with IXFR, and answers the same records as dnslb after a publish and after
// a block. dnslb runs in this process following a real file store in a temporary data dir; Knot is a child.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { LiveZones } from '../../src/dns/live.ts';
import { Notifier } from '../../src/dns/notify.ts';
import { DnsServer } from '../../src/dns/server.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { parse } from '../../src/topology/parse.ts';
import { startKnot, type DnsPeer } from '../helpers/dns-peers.ts';
import { REPO } from '../helpers/dns-process.ts';
import { freePort } from '../helpers/free-port.ts';
import { tempFileStore } from '../helpers/temp-store.ts';
import { waitUntil } from '../helpers/process.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const run = promisify(execFile);
const PRIMARY = '127.0.7.1';
const SECONDARY = '127.0.7.2';
const OBSERVER = '127.0.7.3';

/** The example with 127.0.7.0/24 inside (the internal view) and Knot as the secondary. */
function topologyText(knotPort: number, extra = ''): string {
  return readFileSync(`${REPO}/examples/contoso.yaml`, 'utf8')
    .replace('clients: [127.0.0.0/24,', 'clients: [127.0.0.0/24, 127.0.7.0/24,')
    .replace('secondaries: []', `secondaries: ["${SECONDARY}:${knotPort}"]`)
    .replace('      - { fqdn: fe3.contoso.com, ipv4: 127.0.0.13 }\n', `      - { fqdn: fe3.contoso.com, ipv4: 127.0.0.13 }\n${extra}`);
}

/** The zone as an AXFR shows it: sorted record lines, the closing SOA dropped, TTLs kept. */
async function axfr(server: string, port: number, source: string): Promise<string[]> {
  const { stdout } = await run('dig', ['+tcp', '+nocmd', '+nostats', '+noall', '+answer', '+time=3', '+tries=1', '-b', source, '-p', String(port), `@${server}`, 'contoso.com', 'AXFR']);
  const lines = stdout.split('\n').map((line) => line.trim().split(/\s+/).join(' ')).filter((line) => line !== '' && !line.startsWith(';'));
  assert.ok(lines.length > 2, `AXFR from ${server}:${port}: ${stdout}`);
  assert.equal(lines[0], lines.at(-1), 'SOA first and last');
  return lines.slice(0, -1).sort();
}

async function soaSerial(server: string, port: number): Promise<number> {
  const { stdout } = await run('dig', ['+short', '+time=2', '+tries=1', '-b', OBSERVER, '-p', String(port), `@${server}`, 'contoso.com', 'SOA']);
  return Number(stdout.trim().split(/\s+/)[2]);
}

const store = await tempFileStore(systemClock);
describe('Knot as a secondary of dnslb (AXFR, NOTIFY, IXFR)', () => {
  const zones = new LiveZones({ store, clock: systemClock, random: seededRandom(9) });
  const notifier = new Notifier({ secondaries: () => zones.secondaries, sourceAddress: PRIMARY, clock: systemClock, random: seededRandom(10), retryMs: 500 });
  let server: DnsServer;
  let knot: DnsPeer;
  let port = 0;
  let knotPort = 0;

  before(async () => {
    knotPort = await freePort(SECONDARY);
    await store.publish(parse(topologyText(knotPort)), 0, { by: 'test' });
    await zones.start();
    server = new DnsServer({ listen: [{ address: PRIMARY, port: 0 }], answers: zones, transfers: zones, clock: systemClock });
    port = (await server.start()).udp[0]!.port;
    await notifier.start();
    zones.onChange((changed) => notifier.notify(changed));
    knot = await startKnot({ address: SECONDARY, port: knotPort, zones: [{ name: 'contoso.com', primary: { address: PRIMARY, port } }] });
  });
  after(async () => {
    if (process.env['DNSLB_TEST_VERBOSE']) console.error(knot?.process.output());
    await knot?.stop();
    await notifier.close();
    await server?.close();
    await zones.close();
    await store.close();
  });

  /** Waits until Knot serves dnslb's current serial (NOTIFY then a transfer), then compares AXFRs. */
  async function assertInStep(what: string, serialBefore?: number): Promise<string[]> {
    // The store's watch delivers the change asynchronously: first dnslb moves to a new serial.
    await waitUntil(`dnslb past serial ${serialBefore} (${what})`, () => zones.current.serials.get('contoso.com') !== serialBefore);
    const serial = zones.current.serials.get('contoso.com')!;
    await waitUntil(`Knot at serial ${serial} (${what})`, async () => (await soaSerial(SECONDARY, knotPort)) === serial, { process: knot.process, timeoutMs: 20_000 });
    const ours = await axfr(PRIMARY, port, SECONDARY);
    const theirs = await axfr(SECONDARY, knotPort, OBSERVER);
    assert.deepEqual(theirs, ours, `${what}: Knot's copy equals dnslb's zone`);
    return ours;
  }

  test('first transfer: Knot holds the internal view (the view of its source address)', async () => {
    const records = await assertInStep('initial AXFR');
    assert.ok(records.some((line) => /^pool01\.contoso\.com\. 60 IN A 127\.0\.0\.12$/.test(line)));
    assert.equal(records.some((line) => line.startsWith('www.contoso.com.')), false, 'www is external-only');
  });

  test('after a publish (a fourth Front End): NOTIFY, IXFR, the same records', async () => {
    const current = await store.currentVersion();
    const serial = zones.current.serials.get('contoso.com');
    await store.publish(parse(topologyText(knotPort, '      - { fqdn: fe4.contoso.com, ipv4: 127.0.0.14 }\n')), current, { by: 'test' });
    const records = await assertInStep('publish', serial);
    assert.ok(records.includes('fe4.contoso.com. 60 IN A 127.0.0.14'));
    assert.equal(records.filter((line) => line.startsWith('pool01.contoso.com. 60 IN A ')).length, 4);
    // Knot asked for the difference, not the whole zone.
    assert.match(knot.process.output(), /IXFR, incoming.*finished/);
    assert.doesNotMatch(knot.process.output(), /fallback to AXFR/);
  });

  test('after a block: the blocked server leaves the pool and its name, on Knot too; a dig agrees', async () => {
    const serial = zones.current.serials.get('contoso.com');
    await store.setAdminState('fe2.contoso.com', 'blocked', { by: 'test', reason: 'patching' });
    const records = await assertInStep('block', serial);
    assert.equal(records.some((line) => line.includes('127.0.0.12')), false);
    const { stdout } = await run('kdig', ['+short', '-b', OBSERVER, '-p', String(knotPort), `@${SECONDARY}`, 'pool01.contoso.com', 'A']);
    assert.deepEqual(stdout.trim().split('\n').sort(), ['127.0.0.11', '127.0.0.13', '127.0.0.14']);
    const fe2 = await run('kdig', ['-b', OBSERVER, '-p', String(knotPort), `@${SECONDARY}`, 'fe2.contoso.com', 'A']);
    assert.match(fe2.stdout, /status: NXDOMAIN/);
    assert.ok(notifier.stats.acknowledged >= 2, 'Knot answered the NOTIFYs');
  });
});
