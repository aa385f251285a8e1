// `dnslb dns serve --workers 2`: node:cluster workers answer on one UDP port and TCP port, with the
// serial the primary numbered, and all stop with the primary. With the batch UDP engine each worker
// has its own SO_REUSEPORT socket (seen with ss); with dgram they share the primary's one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { dig, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { waitUntil } from '../helpers/process.ts';

const run = promisify(execFile);

/** The PIDs of a process's children that run dnslb (the cluster workers). */
async function workerPids(pid: number): Promise<number[]> {
  const { stdout } = await run('ps', ['--ppid', String(pid), '-o', 'pid=,args=']).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((line) => line.includes('bin/dnslb.js')).map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** The UDP sockets bound to address:port (ss -uanp): for each, the PIDs that hold it. */
async function udpSockets(address: string, port: number): Promise<number[][]> {
  const { stdout } = await run('ss', ['-uanpH', `src ${address}:${port}`]);
  return stdout.trim().split('\n').filter(Boolean).map((line) => [...line.matchAll(/pid=(\d+)/g)].map((match) => Number(match[1])));
}

for (const [engine, address] of [['batch', '127.0.7.10'], ['dgram', '127.0.7.11']] as const) describe(`dns serve --workers 2 --udp-engine ${engine}`, () => {
  let dns: RunningDns;
  let serial = 0;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', `${address}:0`, '--workers', '2', '--udp-engine', engine]);
  });
  after(async () => {
    await dns?.stop();
  });

  test('two workers answer UDP and TCP with the primary\'s serial', async () => {
    const workers = await workerPids(dns.child.pid!);
    assert.equal(workers.length, 2);
    const sockets = await udpSockets(dns.address, dns.port);
    if (engine === 'batch') assert.deepEqual(sockets.map((pids) => pids.join()).sort(), workers.map(String).sort(), 'one SO_REUSEPORT socket per worker');
    else assert.equal(sockets.length, 1, 'one socket, shared through node:cluster');
    const soa = await dig(dns, ['contoso.com', 'SOA']);
    serial = Number(soa.answer[0]?.data.split(' ')[2]);
    assert.ok(serial > 0);
    for (let i = 0; i < 12; i++) {
      const result = await dig(dns, ['pool01.contoso.com', 'A']);
      assert.equal(result.status, 'NOERROR');
      assert.deepEqual(result.answer.map((record) => record.data).sort(), ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
      assert.equal(Number((await dig(dns, ['+tcp', 'contoso.com', 'SOA'])).answer[0]?.data.split(' ')[2]), serial);
    }
  });

  test('SIGTERM to the primary stops the workers too', async () => {
    const pids = await workerPids(dns.child.pid!);
    assert.equal(await dns.stop(), 0);
    await waitUntil('workers gone', async () => {
      const alive = pids.filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      });
      return alive.length === 0;
    });
  });
});
