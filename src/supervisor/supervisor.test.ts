// The supervisor with real child processes: a killed child restarts after the delay, the others keep running, stop/start by hand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Supervisor, type ChildStatus } from './supervisor.ts';

const sleeper = (name: string) => ({ name, command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0))'] });

async function waitFor(supervisor: Supervisor, predicate: (statuses: ChildStatus[]) => boolean): Promise<ChildStatus[]> {
  for (let i = 0; i < 200; i++) {
    const statuses = supervisor.status();
    if (predicate(statuses)) return statuses;
    await sleep(25);
  }
  throw new Error(`condition never held: ${JSON.stringify(supervisor.status())}`);
}

test('SIGKILL of one child: the others keep running and it restarts after restartDelayMs', async () => {
  const supervisor = new Supervisor([sleeper('fe1'), sleeper('fe2'), sleeper('dns')], { restartDelayMs: 100, output: () => {} });
  try {
    supervisor.startAll();
    const before = await waitFor(supervisor, (statuses) => statuses.every((status) => status.state === 'running'));
    const fe1 = before.find((status) => status.name === 'fe1')!;
    const others = before.filter((status) => status.name !== 'fe1').map((status) => status.pid);
    process.kill(fe1.pid!, 'SIGKILL');
    const after = await waitFor(supervisor, (statuses) => statuses.find((status) => status.name === 'fe1')!.restarts === 1 && statuses.every((status) => status.state === 'running'));
    const restarted = after.find((status) => status.name === 'fe1')!;
    assert.notEqual(restarted.pid, fe1.pid);
    assert.equal(restarted.lastExit, 'signal SIGKILL');
    assert.deepEqual(after.filter((status) => status.name !== 'fe1').map((status) => status.pid), others, 'the other children were not touched');
  } finally {
    await supervisor.shutdown();
  }
  assert.ok(supervisor.status().every((status) => status.state === 'stopped' && status.pid === undefined));
});

test('stop by hand holds the child down until start', async () => {
  const supervisor = new Supervisor([sleeper('fe1')], { restartDelayMs: 10, output: () => {} });
  try {
    supervisor.startAll();
    const [running] = await waitFor(supervisor, (statuses) => statuses[0]!.state === 'running');
    const stopped = await supervisor.stop('fe1');
    assert.equal(stopped.state, 'stopped');
    assert.throws(() => process.kill(running!.pid!, 0), /ESRCH/);
    await sleep(100);
    assert.equal(supervisor.status()[0]!.state, 'stopped', 'no restart after a stop by hand');
    supervisor.start('fe1');
    const [again] = await waitFor(supervisor, (statuses) => statuses[0]!.state === 'running');
    assert.notEqual(again!.pid, running!.pid);
    assert.throws(() => supervisor.start('nope'), { code: 'SUPERVISOR_CHILD' });
  } finally {
    await supervisor.shutdown();
  }
});

test('child output reaches the output callback line by line', async () => {
  const lines: string[] = [];
  const supervisor = new Supervisor([{ name: 'talker', command: process.execPath, args: ['-e', 'console.log("one\\ntwo"); setTimeout(() => {}, 5000)'] }], { restartDelayMs: 1000, output: (name, line) => lines.push(`${name}: ${line}`) });
  try {
    supervisor.startAll();
    const child = supervisor.status()[0]!;
    assert.ok(child.pid);
    for (let i = 0; i < 100 && lines.length < 2; i++) await sleep(20);
    assert.deepEqual(lines, ['talker: one', 'talker: two']);
  } finally {
    await supervisor.shutdown();
  }
});

test('add starts a new child; remove stops it and forgets it', async () => {
  const supervisor = new Supervisor([sleeper('fe1')], { restartDelayMs: 10, output: () => {} });
  try {
    supervisor.startAll();
    supervisor.add(sleeper('fe4'));
    const statuses = await waitFor(supervisor, (all) => all.length === 2 && all.every((status) => status.state === 'running'));
    const fe4 = statuses.find((status) => status.name === 'fe4')!;
    assert.throws(() => supervisor.add(sleeper('fe4')), { code: 'SUPERVISOR_CHILD' });
    await supervisor.remove('fe4');
    assert.deepEqual(supervisor.names(), ['fe1']);
    assert.throws(() => process.kill(fe4.pid!, 0), /ESRCH/);
  } finally {
    await supervisor.shutdown();
  }
});
