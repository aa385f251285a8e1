// A host that is down without answering: packets to a loopback address are dropped (iptables DROP),
// so connects time out instead of being refused (DESIGN §4). Only ever on 127.0.0.0/8.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { assert } from '../../src/shared/assert.ts';

const run = promisify(execFile);

/** Drops every packet to `address` until the returned function is called. */
export async function blackhole(address: string): Promise<() => Promise<void>> {
  assert(address.startsWith('127.'), `blackhole only on loopback, not ${address}`);
  const rule = ['INPUT', '-d', `${address}/32`, '-j', 'DROP'];
  await run('iptables', ['-I', ...rule]);
  let removed = false;
  return async () => {
    if (removed) return;
    removed = true;
    await run('iptables', ['-D', ...rule]);
  };
}
