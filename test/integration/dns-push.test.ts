// `dnslb dns push` against a real BIND 9 on loopback that accepts RFC 2136 updates and AXFR signed
// with one TSIG key (hmac-sha256): the first push brings the zone in line (stale records removed,
// the topology's added), a second push changes nothing, and a wrong key is refused by name.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startBind, type DnsPeer } from '../helpers/dns-peers.ts';
import { REPO } from '../helpers/dns-process.ts';
import { freePort } from '../helpers/free-port.ts';

const run = promisify(execFile);
const ADDRESS = '127.0.0.1'; // BIND listens only on configured interface addresses
const KEY = { name: 'dnslb-push', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };

/** The administrator's existing zone: its own SOA and NS, a stale pool record and a stale name. */
const EXISTING = `$ORIGIN contoso.com.
$TTL 300
@        300 IN SOA dns1.contoso.com. hostmaster.contoso.com. 100 3600 600 604800 60
@        300 IN NS  dns1.contoso.com.
dns1    3600 IN A   127.0.0.1
pool01    60 IN A   127.0.0.99
stale    300 IN A   10.9.9.9
`;

async function pushRun(port: number, tsig: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/dnslb.js', 'dns', 'push', 'examples/contoso.yaml', '--target', `${ADDRESS}:${port}`, '--zone', 'contoso.com', '--view', 'internal', '--tsig', tsig], { cwd: REPO });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Sorted record lines, whitespace normalised, the apex SOA and NS left out (the server owns them). */
function normalise(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).join(' '))
    .filter((line) => line !== '' && !line.startsWith(';') && !/^contoso\.com\. \d+ IN (SOA|NS) /.test(line))
    .sort();
}

describe('dnslb dns push to BIND 9 (RFC 2136 + TSIG)', () => {
  let bind: DnsPeer;
  let port: number;
  let directory: string;
  const tsig = `${KEY.name}:${KEY.algorithm}:${KEY.secret}`;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'dnslb-push-'));
    port = await freePort(ADDRESS);
    const file = join(directory, 'contoso.com.zone');
    await writeFile(file, EXISTING);
    bind = await startBind({ address: ADDRESS, port, zones: [{ name: 'contoso.com', file }], updateKey: KEY });
  });
  after(async () => {
    await bind?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  const bindAxfr = async (): Promise<string[]> => {
    const { stdout } = await run('dig', ['+tcp', '+noall', '+answer', '-y', `${KEY.algorithm}:${KEY.name}:${KEY.secret}`, '-p', String(port), `@${ADDRESS}`, 'contoso.com', 'AXFR']);
    return normalise(stdout).filter((line) => !/ IN TSIG /.test(line));
  };
  const bindSerial = async (): Promise<number> => Number((await run('dig', ['+short', '-p', String(port), `@${ADDRESS}`, 'contoso.com', 'SOA'])).stdout.trim().split(/\s+/)[2]);

  test('the first push brings the zone in line: BIND then holds exactly what dnslb serves (internal view)', async () => {
    const result = await pushRun(port, tsig);
    assert.equal(result.code, 0, result.stderr);
    const changes = Number(/(\d+) changes to contoso\.com/.exec(result.stdout)?.[1]);
    assert.ok(changes > 10, result.stdout);
    const { stdout: exported } = await run(process.execPath, ['bin/dnslb.js', 'dns', 'export', 'examples/contoso.yaml', '--zone', 'contoso.com', '--view', 'internal'], { cwd: REPO });
    const exportFile = join(directory, 'export.zone');
    await writeFile(exportFile, exported);
    const { stdout: ours } = await run('named-checkzone', ['-D', '-o', '-', 'contoso.com', exportFile]);
    assert.deepEqual(await bindAxfr(), normalise(ours));
    const pool = await run('dig', ['+short', '-p', String(port), `@${ADDRESS}`, 'pool01.contoso.com', 'A']);
    assert.deepEqual(pool.stdout.trim().split('\n').sort(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    assert.match((await run('dig', ['-p', String(port), `@${ADDRESS}`, 'stale.contoso.com', 'A'])).stdout, /status: NXDOMAIN/);
  });

  test('a second push changes nothing (0 changes, the serial stays)', async () => {
    const serial = await bindSerial();
    const result = await pushRun(port, tsig);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /0 changes: contoso\.com at 127\.0\.0\.1:\d+ is in line/);
    assert.equal(await bindSerial(), serial);
  });

  test('a wrong secret is refused as NOTAUTH/BADSIG, an unknown key as NOTAUTH/BADKEY; nothing changes', async () => {
    const serial = await bindSerial();
    const wrongSecret = await pushRun(port, `${KEY.name}:hmac-sha256:${randomBytes(32).toString('base64')}`);
    assert.notEqual(wrongSecret.code, 0);
    assert.match(wrongSecret.stderr, /DNS_TSIG: .*NOTAUTH\/BADSIG/);
    const wrongName = await pushRun(port, `someone-else:hmac-sha256:${KEY.secret}`);
    assert.notEqual(wrongName.code, 0);
    assert.match(wrongName.stderr, /DNS_TSIG: .*NOTAUTH\/BADKEY/);
    assert.equal(await bindSerial(), serial);
  });
});
