// `dnslb up` as a user runs it: one child per server and one for DNS, the admin API, and the CLI verbs
// that find the running system through --data-dir (pool status, block/unblock, stop/start, the quorum guard).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dig } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { startUp, type UpSystem } from '../helpers/up.ts';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';

const NET = '127.0.11';

describe('dnslb up', () => {
  let system: UpSystem;
  const status = async (): Promise<PoolStatus> => {
    const result = await system.cli('pool', 'status', '--json');
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PoolStatus;
  };
  const pool = async () => (await dig(system.dns, ['pool01.contoso.com', 'A'], `${NET}.200`)).answer.map((record) => record.data).sort();
  const pidOf = async (server: string) => (await status()).servers.find((entry) => entry.server === server)?.process?.pid;

  before(async () => {
    system = await startUp(NET);
  });
  after(async () => system?.stop());

  test('starts DNS and every frontend, director, edge and mediation server, each its own process, and says where they listen', async () => {
    // startUp waited for "dnslb up: running", which comes only once every child listens: the table
    // before it shows each child's addresses (Front End and Director servers: their Web sites too),
    // none a bare "(running)".
    const output = system.process.output();
    const printed = output.slice(output.indexOf('\ndns '), output.indexOf('dnslb up: running'));
    const net = NET.replaceAll('.', '\\.');
    assert.match(printed, new RegExp(`^dns +pid \\d+ +udp://${net}\\.1:\\d+ tcp://${net}\\.1:\\d+ serials`, 'm'));
    const servers = ['fe1', 'fe2', 'fe3', 'dub-fe1', 'dub-fe2', 'dub-fe3', 'dir1', 'dir2', 'med1', 'med2'];
    for (const [index, server] of servers.entries()) {
      const octet = [11, 12, 13, 17, 18, 19, 31, 32, 61, 62][index];
      assert.match(printed, new RegExp(`^${server}\\.contoso\\.com +pid \\d+ +tcp://${net}\\.${octet}:\\d+ tls://${net}\\.${octet}:\\d+ (?:web https://\\S+ https://\\S+ )?admin http://`, 'm'), printed);
    }
    // Edge servers: the internal interface, then the external one (the Access Edge address: client and federation ports).
    for (const [server, internal, external] of [['edge1', 41, 51], ['edge2', 42, 52]] as const) {
      assert.match(printed, new RegExp(`^${server}\\.contoso\\.com +pid \\d+ +tcp://${net}\\.${internal}:5060 tls://${net}\\.${internal}:5061 external tls://${net}\\.${external}:4443 external tls://${net}\\.${external}:5061 admin http://`, 'm'), printed);
    }
    assert.doesNotMatch(printed, /\((running|starting|restarting|stopped)\)/);
    assert.match(output, /admin API http:\/\/127\.0\.0\.1:\d+/);
    const current = await eventually(async () => {
      const current = await status();
      assert.ok(current.servers.every((entry) => entry.status?.state === 'active'), JSON.stringify(current.servers.map((entry) => [entry.server, entry.error])));
      return current;
    });
    assert.deepEqual(current.servers.map((entry) => entry.server), ['fe1', 'fe2', 'fe3', 'dub-fe1', 'dub-fe2', 'dub-fe3', 'dir1', 'dir2', 'edge1', 'edge2', 'med1', 'med2'].map((server) => `${server}.contoso.com`));
    const pids = current.servers.map((entry) => entry.process?.pid);
    assert.equal(new Set(pids).size, pids.length, 'one process per server');
    assert.equal(current.dns?.state, 'running');
    // A server slower to start than its peers may be reported down for a moment (health-aware answers): wait for all three.
    await eventually(async () => assert.deepEqual(await pool(), [`${NET}.11`, `${NET}.12`, `${NET}.13`]));
    const table = await system.cli('pool', 'status');
    assert.match(table.stdout, /^SERVER +POOL +PID +ADMIN +STATE/m);
    assert.match(table.stdout, /^fe2\.contoso\.com +pool01\.contoso\.com +\d+ +active +active +yes/m);
  });

  test('block removes the server from the pool answer and its own name; unblock restores both', async () => {
    const blocked = await system.cli('server', 'block', 'fe1.contoso.com', '--reason', 'test');
    assert.equal(blocked.code, 0, blocked.stderr);
    await eventually(async () => assert.deepEqual(await pool(), [`${NET}.12`, `${NET}.13`]));
    assert.equal((await dig(system.dns, ['fe1.contoso.com', 'A'], `${NET}.200`)).status, 'NXDOMAIN');
    assert.equal((await status()).servers.find((entry) => entry.server === 'fe1.contoso.com')?.adminState?.state, 'blocked');
    assert.equal((await system.cli('server', 'unblock', 'fe1.contoso.com')).code, 0);
    await eventually(async () => assert.deepEqual(await pool(), [`${NET}.11`, `${NET}.12`, `${NET}.13`]));
    assert.equal((await dig(system.dns, ['fe1.contoso.com', 'A'], `${NET}.200`)).status, 'NOERROR');
  });

  test('the quorum guard refuses what would leave the pool below quorum, and --force overrides', async () => {
    assert.equal((await system.cli('server', 'block', 'fe1.contoso.com')).code, 0);
    const refused = await system.cli('server', 'block', 'fe2.contoso.com');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ADMIN_QUORUM: refused: block fe2\.contoso\.com: only 1 of 3 servers would stay available, below the quorum of 2/);
    assert.equal((await status()).servers.find((entry) => entry.server === 'fe2.contoso.com')?.adminState, null, 'nothing changed');
    const forced = await system.cli('server', 'block', 'fe2.contoso.com', '--force');
    assert.equal(forced.code, 0, forced.stderr);
    await eventually(async () => assert.deepEqual(await pool(), [`${NET}.13`]));
    for (const server of ['fe1.contoso.com', 'fe2.contoso.com']) assert.equal((await system.cli('server', 'unblock', server)).code, 0);
    await eventually(async () => assert.deepEqual(await pool(), [`${NET}.11`, `${NET}.12`, `${NET}.13`]));
  });

  test('a killed server is restarted by the supervisor; the others keep running', async () => {
    const before = await status();
    const victim = before.servers.find((entry) => entry.server === 'fe2.contoso.com')!.process!.pid!;
    const others = before.servers.filter((entry) => entry.server !== 'fe2.contoso.com').map((entry) => entry.process?.pid);
    process.kill(victim, 'SIGKILL');
    await eventually(async () => {
      const pid = await pidOf('fe2.contoso.com');
      assert.ok(pid !== undefined && pid !== victim, `fe2 pid ${pid}`);
    });
    const after = await eventually(async () => {
      const current = await status();
      assert.equal(current.servers.find((entry) => entry.server === 'fe2.contoso.com')?.status?.state, 'active');
      return current;
    });
    assert.deepEqual(after.servers.filter((entry) => entry.server !== 'fe2.contoso.com').map((entry) => entry.process?.pid), others);
    assert.equal(after.servers.find((entry) => entry.server === 'fe2.contoso.com')?.process?.restarts, 1);
  });

  test('stop and start by hand', async () => {
    const stopped = await system.cli('server', 'stop', 'med1.contoso.com');
    assert.equal(stopped.code, 0, stopped.stderr);
    const entry = (await status()).servers.find((candidate) => candidate.server === 'med1.contoso.com')!;
    assert.equal(entry.process?.state, 'stopped');
    assert.equal(entry.process?.pid, undefined);
    assert.equal((await system.cli('server', 'start', 'med1.contoso.com')).code, 0);
    await eventually(async () => assert.equal((await status()).servers.find((candidate) => candidate.server === 'med1.contoso.com')?.status?.state, 'active'));
  });

  test('unknown servers and a stopped system are named clearly', async () => {
    const unknown = await system.cli('server', 'drain', 'fe9.contoso.com');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /ADMIN_NOT_FOUND: fe9\.contoso\.com is not a server of the published topology/);
    const nowhere = await system.cli('--data-dir', '/nonexistent', 'pool', 'status');
    assert.equal(nowhere.code, 3);
    assert.match(nowhere.stderr, /ADMIN_NOT_RUNNING/);
  });

  test('publishing a version with a 4th server starts a process for it', async () => {
    const edited = (await readFile(system.topologyFile, 'utf8')).replace(
      `      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n`,
      `      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n      - { fqdn: fe4.contoso.com, ipv4: ${NET}.14 }\n`,
    );
    const file = join(system.dataDir, 'with-fe4.yaml');
    await writeFile(file, edited);
    const published = await system.cli('topology', 'publish', file);
    assert.equal(published.code, 0, published.stderr);
    const fe4 = await eventually(async () => {
      const entry = (await status()).servers.find((candidate) => candidate.server === 'fe4.contoso.com');
      assert.equal(entry?.status?.state, 'active', JSON.stringify(entry));
      return entry!;
    }, { timeoutMs: 30_000 });
    assert.ok(fe4.process?.pid);
    await eventually(async () => assert.deepEqual(await pool(), [`${NET}.11`, `${NET}.12`, `${NET}.13`, `${NET}.14`]));
  });

  test('SIGTERM stops every child and removes the admin endpoint', async () => {
    const pids = (await status()).servers.map((entry) => entry.process!.pid!);
    await system.stop();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `child ${pid} is gone`);
    assert.match(system.process.output(), /dnslb up: stopping/);
    const after = await system.cli('pool', 'status');
    assert.equal(after.code, 3);
    assert.match(after.stderr, /ADMIN_NOT_RUNNING: no running dnslb found/);
  });
});
