// A restarted primary never serves a serial below what its secondary holds (RFC 1982). Serials are
// clock-based, so changes faster than one a second run ahead of the clock, and a restart soon after
// would start lower: the secondary would ignore the primary until the clock caught up. Here a real
// Knot secondary already holds contoso.com with a serial a day ahead; `dnslb dns serve` (a child
// process) asks it at start, serves above it, NOTIFYs, and Knot transfers the zone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { runDnslb } from '../helpers/cli.ts';
import { startKnot, type DnsPeer } from '../helpers/dns-peers.ts';
import { REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/free-port.ts';

const run = promisify(execFile);
const PRIMARY = '127.0.7.21';
const SECONDARY = '127.0.7.22';

async function soaSerial(address: string, port: number): Promise<number> {
  const { stdout } = await run('dig', ['+short', '+time=1', '+tries=1', '-b', SECONDARY, '-p', String(port), `@${address}`, 'contoso.com', 'SOA']);
  return Number(stdout.trim().split(/\s+/)[2]);
}

describe('a restarted primary serves above the serial its secondary holds', () => {
  let dir = '';
  let dns: RunningDns | undefined;
  let knot: DnsPeer | undefined;
  const ahead = Math.floor(Date.now() / 1000) + 86_400;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-serial-'));
    const knotPort = await freePort(SECONDARY);
    const dnsPort = await freePort(PRIMARY);
    const topology = join(dir, 'topology.yaml');
    writeFileSync(topology, readFileSync(`${REPO}/examples/contoso.yaml`, 'utf8')
      .replace('clients: [127.0.0.0/24,', 'clients: [127.0.0.0/24, 127.0.7.0/24,')
      .replace('secondaries: []', `secondaries: ["${SECONDARY}:${knotPort}"]`));
    // What the secondary kept from before the restart: the zone under a serial a day ahead.
    const exported = await runDnslb(['dns', 'export', topology, '--zone', 'contoso.com', '--view', 'internal']);
    assert.equal(exported.code, 0, exported.stderr);
    const held = exported.stdout.replace(/(\sSOA\s+\S+\s+\S+\s+)(\d+)/, (_, head: string) => `${head}${ahead}`);
    assert.notEqual(held, exported.stdout, 'the SOA serial was replaced');
    knot = await startKnot({ address: SECONDARY, port: knotPort, zones: [{ name: 'contoso.com', primary: { address: PRIMARY, port: dnsPort }, held }] });
    await eventually(async () => assert.equal(await soaSerial(SECONDARY, knotPort), ahead));
    dns = await startDns([topology, '--listen', `${PRIMARY}:${dnsPort}`]);
  });
  after(async () => {
    await dns?.stop();
    await knot?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('dnslb starts above the secondary\'s serial, and the secondary follows (NOTIFY, then a transfer)', async () => {
    const served = await soaSerial(PRIMARY, dns!.port);
    assert.equal(served, ahead + 1, `dnslb serves ${served}, the secondary held ${ahead}`);
    assert.match(dns!.stderr(), /a secondary holds a newer serial than ours/);
    await eventually(async () => assert.equal(await soaSerial(SECONDARY, knot!.port), ahead + 1));
  });
});
