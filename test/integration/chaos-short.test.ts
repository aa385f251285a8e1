// The chaos soak of `npm run chaos` (bench/chaos.ts), short: 60 s of faults injected one at a time from
// a fixed seed (SIGKILL, SIGSTOP, partitions by loopback DROP rules, a DNS restart, an etcd stall) on
// the example under `dnslb up --store etcd://`, 500 simulated users placing calls. Asserts the soak's
// invariants: no healthy server ever missing from a pool answer, no redirect loop (except while a dead
// server is not yet detected: printed, a known defect), every fault recovered from (every user
// registered, every Front End answered and seen up again). Needs root (iptables) and etcd.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatChaos, runChaos } from '../../bench/chaos.ts';

test('60 s of chaos: no healthy server missing from DNS, no redirect loop, every fault recovered', async () => {
  const result = await runChaos({ net: '127.0.87', durationMs: 60_000, seed: 12, users: 500, callsPerMinute: 300 });
  console.log(formatChaos(result).split('\n').map((line) => `# ${line}`).join('\n'));
  assert.ok(result.faults.length >= 2, `${result.faults.length} faults injected`);
  assert.equal(result.healthyMissing, 0, result.healthyMissingExamples.join('\n'));
  // While a killed or stopped server is not yet detected, the others still redirect its users to it and
  // pass them between each other: the client's 2-redirect cap ends those sign-ins (printed in the table,
  // a known defect). With no server dead, there must be none.
  assert.deepEqual(Object.entries(result.redirectLoops).filter(([kind]) => kind !== 'kill' && kind !== 'stop'), [], 'no redirect loop outside a server death');
  assert.equal(result.callRedirectLoops, 0);
  assert.deepEqual(result.faults.filter((fault) => fault.recoveryMs === null), [], 'every fault recovered from');
  assert.ok(result.answers > 100, `${result.answers} pool answers dug`);
});
