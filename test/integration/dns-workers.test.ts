// `dnslb dns serve --workers 2`: node:cluster workers share the UDP socket and TCP port, answer
// with the serial the primary numbered, and all stop with the primary.
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

describe('dns serve --workers 2', () => {
  let dns: RunningDns;
  let serial = 0;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', '127.0.7.10:0', '--workers', '2']);
  });
  after(async () => {
    await dns?.stop();
  });

  test('two workers answer UDP and TCP with the primary\'s serial', async () => {
    assert.equal((await workerPids(dns.child.pid!)).length, 2);
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
