// The chaos soak of `npm run chaos` (bench/chaos.ts), short: 60 s of faults injected one at a time from
// a fixed seed (SIGKILL, SIGSTOP, partitions by loopback DROP rules, a DNS restart, an etcd stall) on
// the example under `dnslb up --store etcd://`, 500 simulated users placing calls. Asserts the soak's
// invariants: no healthy server ever missing from a pool answer, no redirect loop and no 482 Loop
// Detected whatever the fault (a stopped or killed server included), every fault recovered from (every user
// registered, every Front End answered and seen up again). Needs root (iptables) and etcd.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatChaos, runChaos } from '../../bench/chaos.ts';

test('60 s of chaos: no healthy server missing from DNS, no redirect loop, no 482, every fault recovered', async () => {
  const result = await runChaos({ net: '127.0.87', durationMs: 60_000, seed: 12, users: 500, callsPerMinute: 300 });
  console.log(formatChaos(result).split('\n').map((line) => `# ${line}`).join('\n'));
  assert.ok(result.faults.length >= 2, `${result.faults.length} faults injected`);
  assert.equal(result.healthyMissing, 0, result.healthyMissingExamples.join('\n'));
  // A server that is killed or stopped is named as a home by its peers until all have found it down;
  // its users' clients say it did not answer and a peer that doubts it too takes them (no ping-pong).
  assert.deepEqual(result.redirectLoops, {}, 'no sign-in ended by the redirect cap, whatever the fault');
  assert.equal(result.callRedirectLoops, 0);
  assert.equal(result.loopDetected, 0, 'no call setup failed 482 Loop Detected');
  assert.deepEqual(result.faults.filter((fault) => fault.recoveryMs === null), [], 'every fault recovered from');
  assert.ok(result.answers > 100, `${result.answers} pool answers dug`);
});
