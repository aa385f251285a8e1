// The supervisor with real child processes: a killed child restarts after the delay, the others keep running, stop/start by hand.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
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

const readyLine = (line: string) => /^listening (.*)$/.exec(line)?.[1];
/** A child that says where it listens after `delayMs`, then stays up. */
const listener = (name: string, delayMs: number) => ({
  name,
  command: process.execPath,
  args: ['-e', `setTimeout(() => console.log("listening tcp://${name}:5060"), ${delayMs}); setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0))`],
  ready: readyLine,
});

test('whenReady resolves only once every child has said where it listens, and keeps what it said', async () => {
  const supervisor = new Supervisor([listener('fast', 0), listener('slow', 300), sleeper('plain')], { restartDelayMs: 1000, output: () => {} });
  try {
    supervisor.startAll();
    const early = supervisor.status();
    assert.deepEqual(early.map((status) => status.ready), [false, false, true], 'a child without a ready line is ready once spawned');
    await supervisor.whenReady(60_000);
    const statuses = supervisor.status();
    assert.ok(statuses.every((status) => status.ready));
    assert.deepEqual(statuses.map((status) => status.listening), ['tcp://fast:5060', 'tcp://slow:5060', undefined]);
  } finally {
    await supervisor.shutdown();
  }
});

test('whenReady names a child that exited before it was ready, with how it ended and its last lines', async () => {
  const broken = { name: 'fe1', command: process.execPath, args: ['-e', 'console.error("dnslb: SIP_LISTEN: cannot listen on 127.0.0.11:5060: address in use"); process.exit(3)'], ready: readyLine };
  const supervisor = new Supervisor([listener('dns', 0), broken], { restartDelayMs: 60_000, output: () => {} });
  try {
    supervisor.startAll();
    await assert.rejects(supervisor.whenReady(60_000), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'SUPERVISOR_START');
      assert.match(error.message, /^fe1 exited before it was ready: fe1 \(restarting, last run ended with exit 3; its last output: dnslb: SIP_LISTEN: cannot listen on 127\.0\.0\.11:5060: address in use\)$/);
      return true;
    });
  } finally {
    await supervisor.shutdown();
  }
});

test('whenReady times out on the injected clock, naming each child that is not ready and what it last said', async () => {
  const clock = new FakeClock();
  const silent = { name: 'fe2', command: process.execPath, args: ['-e', 'console.log("loading"); setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0))'], ready: readyLine };
  const lines: string[] = [];
  const supervisor = new Supervisor([listener('fe1', 0), silent], { restartDelayMs: 1000, clock, output: (name, line) => lines.push(`${name}: ${line}`) });
  try {
    supervisor.startAll();
    const ready = supervisor.whenReady(30_000);
    for (let i = 0; i < 400 && !(supervisor.status()[0]!.ready && lines.includes('fe2: loading')); i++) await sleep(25);
    clock.advance(29_999);
    const outcome = await Promise.race([ready.then(() => 'resolved', () => 'rejected'), sleep(50).then(() => 'pending')]);
    assert.equal(outcome, 'pending', 'not before the timeout');
    clock.advance(1);
    await assert.rejects(ready, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'SUPERVISOR_START');
      assert.match(error.message, /^not ready after 30000 ms: fe2 \(running; its last output: loading\)$/);
      assert.doesNotMatch(error.message, /fe1/);
      return true;
    });
  } finally {
    await supervisor.shutdown();
  }
});

test('a restarted child is not ready again until it says so', async () => {
  const supervisor = new Supervisor([listener('fe1', 0)], { restartDelayMs: 10, output: () => {} });
  try {
    supervisor.startAll();
    await supervisor.whenReady(60_000);
    const first = supervisor.status()[0]!;
    const changes: ChildStatus[] = [];
    supervisor.onChange((status) => changes.push(status));
    process.kill(first.pid!, 'SIGKILL');
    await waitFor(supervisor, (statuses) => statuses[0]!.restarts === 1 && statuses[0]!.ready);
    assert.ok(changes.some((status) => status.state === 'restarting' && !status.ready && status.listening === undefined));
    assert.ok(changes.some((status) => status.state === 'running' && !status.ready && status.pid !== first.pid), 'running but not yet ready after the restart');
  } finally {
    await supervisor.shutdown();
  }
});

/** True while a process with this PID exists (signal 0 checks without sending). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('children end when the supervisor is killed: none is left holding the pool\'s addresses', async () => {
  // A supervisor in a process of its own, with two children; it prints their PIDs, then is SIGKILLed.
  const script = [
    `import { Supervisor } from ${JSON.stringify(new URL('./supervisor.ts', import.meta.url).href)};`,
    `const child = (name) => ({ name, command: ${JSON.stringify(process.execPath)}, args: ['-e', 'setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0))'] });`,
    "const supervisor = new Supervisor([child('fe1'), child('dns')], { restartDelayMs: 100, output: () => {} });",
    'supervisor.startAll();',
    'setTimeout(() => console.log(JSON.stringify(supervisor.status().map((status) => status.pid))), 300);',
    'setInterval(() => {}, 1000);',
  ].join('\n');
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const pids = JSON.parse(line.toString()) as number[];
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive), 'both children run');
    parent.kill('SIGKILL');
    for (let i = 0; i < 200 && pids.some(alive); i++) await sleep(25);
    assert.deepEqual(pids.filter(alive), [], 'no child outlived its supervisor');
  } finally {
    parent.kill('SIGKILL');
  }
});

test('a command that is not installed is named in how its start ended', async () => {
  const supervisor = new Supervisor([{ name: 'hlb', command: 'dnslb-no-such-command', args: [] }], { restartDelayMs: 60_000, output: () => {} });
  try {
    supervisor.startAll();
    const [status] = await waitFor(supervisor, (statuses) => statuses[0]!.lastExit !== undefined);
    assert.match(status!.lastExit!, /could not start: .*ENOENT/);
  } finally {
    await supervisor.shutdown();
  }
});
