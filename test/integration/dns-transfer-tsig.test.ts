// Zone transfers signed with TSIG (RFC 8945): `dnslb dns serve --tsig-key-file` as a real child
// process, a real Knot secondary configured with the same key transferring the zone, and dig from an
// allowed address: signed with the key → the zone; unsigned → REFUSED; a wrong secret → NOTAUTH
// (BADSIG), an unknown key → NOTAUTH (BADKEY), both answered unsigned as §5.2 says. Knot's notify ACL
// requires the key too: dnslb's signed NOTIFY is acknowledged, an unsigned one is not.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Notifier } from '../../src/dns/notify.ts';
import { parseTsigKey } from '../../src/dns/tsig.ts';
import type { ZoneVersion } from '../../src/dns/zone.ts';
import { systemClock, systemRandom } from '../../src/shared/clock.ts';
import { startKnot, type DnsPeer } from '../helpers/dns-peers.ts';
import { REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/free-port.ts';

const run = promisify(execFile);
const PRIMARY = '127.0.7.11';
const SECONDARY = '127.0.7.12';
const KEY = { name: 'xfr-key', secret: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==' };

/** dig AXFR of contoso.com from the secondary's address, with `-y` when given; its whole output. */
async function digAxfr(port: number, tsig?: string): Promise<string> {
  const args = ['+tcp', '+time=3', '+tries=1', '-b', SECONDARY, '-p', String(port), `@${PRIMARY}`, 'contoso.com', 'AXFR', ...(tsig ? ['-y', tsig] : [])];
  const { stdout } = await run('dig', args).catch((error: { stdout: string }) => ({ stdout: error.stdout }));
  return stdout;
}

describe('zone transfers signed with TSIG', () => {
  let dir = '';
  let dns: RunningDns | undefined;
  let knot: DnsPeer | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-tsig-'));
    const knotPort = await freePort(SECONDARY);
    const topology = join(dir, 'topology.yaml');
    // 1,000 more host records: the AXFR spans several messages, so the chained MACs of RFC 8945
    // §5.3.1 (each message's MAC covers the previous one) are checked too, not only the first.
    const hosts = Array.from({ length: 1000 }, (_, i) => `        - { name: host${i}.contoso.com, type: A, value: 10.2.${i >> 8}.${i & 0xff} }`).join('\n');
    writeFileSync(topology, readFileSync(`${REPO}/examples/contoso.yaml`, 'utf8')
      .replace('clients: [127.0.0.0/24,', 'clients: [127.0.0.0/24, 127.0.7.0/24,')
      .replace('secondaries: []', `secondaries: ["${SECONDARY}:${knotPort}"]`)
      .replace(/- \{ name: www\.contoso\.com.*\n/, (line) => `${line}${hosts}\n`));
    const keys = join(dir, 'transfer.keys');
    writeFileSync(keys, `# the keys a secondary must sign its transfers with\n${KEY.name}:hmac-sha256:${KEY.secret}\n`, { mode: 0o600 });
    dns = await startDns([topology, '--listen', `${PRIMARY}:0`, '--tsig-key-file', keys]);
    knot = await startKnot({ address: SECONDARY, port: knotPort, zones: [{ name: 'contoso.com', primary: { address: PRIMARY, port: dns.port } }], tsig: KEY });
  });
  after(async () => {
    await knot?.stop();
    await dns?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('Knot, holding the key, transfers the zone and answers the pool as dnslb does', async () => {
    const { stdout: fromDnslb } = await run('dig', ['+short', '-b', SECONDARY, '-p', String(dns!.port), `@${PRIMARY}`, 'contoso.com', 'SOA']);
    // The secondary answers once its first (signed) transfer is in.
    await eventually(async () => {
      const fromKnot = (await run('dig', ['+short', '+time=1', '+tries=1', '-p', String(knot!.port), `@${SECONDARY}`, 'contoso.com', 'SOA']).catch(() => ({ stdout: '' }))).stdout;
      assert.equal(fromKnot.trim(), fromDnslb.trim(), `Knot's SOA; Knot says:\n${knot!.process.output().slice(-2000)}`);
    });
    const pool = await run('dig', ['+short', '-p', String(knot!.port), `@${SECONDARY}`, 'pool01.contoso.com', 'A']);
    assert.deepEqual(pool.stdout.trim().split('\n').sort(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    const last = await run('dig', ['+short', '-p', String(knot!.port), `@${SECONDARY}`, 'host999.contoso.com', 'A']);
    assert.equal(last.stdout.trim(), '10.2.3.231', 'the last message of the transfer arrived');
  });

  test('dig with the key gets the zone; every message verifies (dig checks the MACs)', async () => {
    const output = await digAxfr(dns!.port, `hmac-sha256:${KEY.name}:${KEY.secret}`);
    assert.doesNotMatch(output, /Transfer failed|tsig verify failure|TSIG error/i, output);
    const records = output.split('\n').filter((line) => /^\S+\s+\d+\s+IN\s+/.test(line));
    assert.ok(records.length > 1000, `${records.length} records`);
    const messages = Number(/XFR size: \d+ records \(messages (\d+)/.exec(output)?.[1]);
    assert.ok(messages >= 2, `the transfer took ${messages} messages: the chained MACs are exercised`);
    assert.match(output, /^xfr-key\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\./m, 'the TSIG record dig shows');
  });

  test('unsigned from an allowed address: REFUSED', async () => {
    const output = await digAxfr(dns!.port);
    assert.match(output, /Transfer failed/);
    const { stdout } = await run('dig', ['+tcp', '+noall', '+comments', '-b', SECONDARY, '-p', String(dns!.port), `@${PRIMARY}`, 'contoso.com', 'AXFR']).catch((error: { stdout: string }) => ({ stdout: error.stdout }));
    assert.match(stdout, /status: REFUSED/);
  });

  test('a wrong secret: NOTAUTH with BADSIG; an unknown key: NOTAUTH with BADKEY', async () => {
    const wrong = await digAxfr(dns!.port, `hmac-sha256:${KEY.name}:${Buffer.from('another secret entirely').toString('base64')}`);
    assert.match(wrong, /NOTAUTH|tsig verify failure|BADSIG/i, wrong);
    assert.doesNotMatch(wrong, /\sIN\s+A\s+127\.0\.0\.11/, 'no record leaked');
    const unknown = await digAxfr(dns!.port, `hmac-sha256:someone-else:${KEY.secret}`);
    assert.match(unknown, /NOTAUTH|BADKEY/i, unknown);
    assert.doesNotMatch(unknown, /\sIN\s+A\s+127\.0\.0\.11/, 'no record leaked');
  });

  test('NOTIFY is signed with the transfer key: Knot, whose notify ACL requires the key, acknowledges a signed one and refuses an unsigned one', async () => {
    const soa = (await run('dig', ['+short', '-b', SECONDARY, '-p', String(dns!.port), `@${PRIMARY}`, 'contoso.com', 'SOA'])).stdout.trim().split(/\s+/);
    const version: ZoneVersion = {
      serial: Number(soa[2]),
      content: { origin: 'contoso.com', soa: { mname: soa[0]!.replace(/\.$/, ''), rname: soa[1]!.replace(/\.$/, ''), refresh: 3600, retry: 600, expire: 604_800, minimum: 60 }, views: new Map() },
      fingerprint: '',
    };
    const outcomes: Record<string, { acknowledged: number; failed: number }> = {};
    for (const [name, tsigKey] of [['signed', parseTsigKey(`${KEY.name}:hmac-sha256:${KEY.secret}`)], ['unsigned', undefined]] as const) {
      // From the primary's address, as dnslb's own NOTIFY: Knot's ACL names that address.
      const notifier = new Notifier({ secondaries: () => [{ address: SECONDARY, port: knot!.port }], sourceAddress: PRIMARY, clock: systemClock, random: systemRandom, retryMs: 200, attemptsMax: 3, ...(tsigKey ? { tsigKey } : {}) });
      await notifier.start();
      try {
        notifier.notify([version]);
        await eventually(() => assert.equal(notifier.outstanding, 0));
        outcomes[name] = { acknowledged: notifier.stats.acknowledged, failed: notifier.stats.failed };
      } finally {
        await notifier.close();
      }
    }
    assert.deepEqual(outcomes, { signed: { acknowledged: 1, failed: 0 }, unsigned: { acknowledged: 0, failed: 1 } }, knot!.process.output().slice(-3000));
  });
});
