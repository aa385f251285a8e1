// dnslb plan through the real binary: counts that match the sequence, JSON output, usage errors; plan move between pools.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Sequencer } from '../../src/registrar/sequence.ts';
import { runDnslb, type CliRun } from '../helpers/cli.ts';

const EXAMPLE = new URL('../../examples/contoso.yaml', import.meta.url).pathname;

const dnslb = (...args: string[]): Promise<CliRun> => runDnslb(args);

interface PlanJson {
  users: number;
  moved: number;
  flows: { from: string | null; to: string | null; count: number }[];
}

test('plan fail: only the failed server\'s users move, spread over the survivors', async () => {
  const result = await dnslb('plan', 'fail', 'fe1.contoso.com', '--topology', EXAMPLE, '--users', '3000', '--json');
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as PlanJson;
  assert.equal(plan.users, 3000);
  assert.ok(plan.flows.every((flow) => flow.from === 'fe1.contoso.com' && flow.to !== 'fe1.contoso.com'));
  assert.deepEqual(plan.flows.map((flow) => flow.to).sort(), ['fe2.contoso.com', 'fe3.contoso.com']);
  assert.equal(plan.flows.reduce((sum, flow) => sum + flow.count, 0), plan.moved);
  for (const flow of plan.flows) assert.ok(flow.count > 0.4 * plan.moved && flow.count < 0.6 * plan.moved, `${flow.to} takes ${flow.count} of ${plan.moved}`);
});

test('plan add: about a quarter of the users move, all to the new server', async () => {
  const result = await dnslb('plan', 'add', 'fe4.contoso.com', '--topology', EXAMPLE, '--users', '20000', '--json');
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as PlanJson;
  assert.ok(plan.flows.every((flow) => flow.to === 'fe4.contoso.com'));
  assert.ok(plan.moved > 0.22 * plan.users && plan.moved < 0.28 * plan.users, `${plan.moved} of ${plan.users}`);
});

test('plan prints a readable table, and names what is wrong', async () => {
  const text = await dnslb('plan', 'drain', 'fe2.contoso.com', '--topology', EXAMPLE, '--users', '100');
  assert.equal(text.code, 0);
  assert.match(text.stdout, /^plan: drain fe2\.contoso\.com in pool01\.contoso\.com \(3 servers now, 100 users\)$/m);
  assert.match(text.stdout, /fe2\.contoso\.com → fe[13]\.contoso\.com/);
  const unknown = await dnslb('plan', 'remove', 'fe9.contoso.com', '--topology', EXAMPLE);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /fe9\.contoso\.com is not a server of any pool/);
  const badCount = await dnslb('plan', 'fail', 'fe1.contoso.com', '--topology', EXAMPLE, '--users', 'lots');
  assert.equal(badCount.code, 2);
  // Without --topology the plan is of the published version: none here, and the store is named.
  const missing = await dnslb('plan', 'fail', 'fe1.contoso.com', '--data-dir', '/nonexistent/dnslb');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /STORE_NOT_FOUND: no store in \/nonexistent\/dnslb/);
});

const MULTI_POOL = new URL('../fixtures/topology/multi-pool.yaml', import.meta.url).pathname;

const temporary: string[] = [];
after(() => Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

interface MovePlanJson {
  users: number;
  moved: number;
  unchanged: number;
  flows: { fromPool: string | null; from: string | null; toPool: string; to: string | null; count: number }[];
  moves?: { user: string; from: { pool: string; server: string | null } | null; to: { pool: string; server: string | null } }[];
}

test('plan move: 300 pool01 users to pool02 land on pool02 servers, each at its home in pool02', async () => {
  const dir = await tempDir('dnslb-plan-move-');
  const users = Array.from({ length: 300 }, (_, index) => `sip:user${index}@contoso.com`);
  // Every fifth line is already homed on pool02 by the rule sip:dub-*@contoso.com: it stays where it is.
  const lines = users.map((user, index) => (index % 5 === 0 ? `${user.replace('sip:', 'sip:dub-')},pool02.contoso.com` : `${user},pool02.contoso.com`));
  const file = join(dir, 'moves.csv');
  await writeFile(file, `user,pool\n${lines.join('\n')}\n`);
  const result = await dnslb('plan', 'move', '--file', file, '--topology', MULTI_POOL, '--json', '--list');
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as MovePlanJson;
  assert.equal(plan.users, 300);
  assert.equal(plan.unchanged, 60);
  assert.equal(plan.moved, 240);
  assert.equal(plan.flows.reduce((sum, flow) => sum + flow.count, 0), 240);
  assert.ok(plan.flows.every((flow) => flow.fromPool === 'pool01.contoso.com' && flow.toPool === 'pool02.contoso.com'));
  assert.deepEqual(new Set(plan.flows.map((flow) => flow.to)), new Set(['fe4.contoso.com', 'fe5.contoso.com', 'fe6.contoso.com']));
  // Each user's "to" is its home in pool02: the first server of its registrar sequence there.
  const pool02 = new Sequencer(['fe4.contoso.com', 'fe5.contoso.com', 'fe6.contoso.com']);
  const pool01 = new Sequencer(['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com']);
  for (const move of plan.moves ?? []) {
    assert.equal(move.to.server, pool02.sequenceOf(move.user)[0]);
    if (move.from?.pool === 'pool01.contoso.com') assert.equal(move.from.server, pool01.sequenceOf(move.user)[0]);
  }
});

test('plan move: users as arguments, a readable table, and the store\'s current topology when no --topology', async () => {
  const dataDir = await tempDir('dnslb-plan-move-store-');
  const published = await dnslb('--data-dir', dataDir, 'topology', 'publish', MULTI_POOL);
  assert.equal(published.code, 0, published.stderr);
  const text = await dnslb('--data-dir', dataDir, 'plan', 'move', 'sip:alice@contoso.com', 'sip:carol@dublin.contoso.com', '--pool', 'pool02.contoso.com', '--list');
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^plan: move 2 users \(topology version 1 in .*dnslb-plan-move-store-/m);
  assert.match(text.stdout, /^1 would move, 1 is already there$/m);
  assert.match(text.stdout, /^ {2}fe[123]\.contoso\.com in pool01\.contoso\.com → fe[456]\.contoso\.com in pool02\.contoso\.com +1$/m);
  assert.match(text.stdout, /^ {2}sip:carol@dublin\.contoso\.com: (fe[456]\.contoso\.com) in pool02\.contoso\.com → \1 in pool02\.contoso\.com$/m);
  const empty = await tempDir('dnslb-plan-move-empty-');
  const nothing = await dnslb('--data-dir', empty, 'plan', 'move', 'sip:alice@contoso.com', '--pool', 'pool02.contoso.com');
  assert.notEqual(nothing.code, 0);
  assert.match(nothing.stderr, /STORE_NOT_FOUND|nothing is published/);
});

test('plan move names every bad line and plans nothing', async () => {
  const dir = await tempDir('dnslb-plan-move-bad-');
  const file = join(dir, 'moves.csv');
  await writeFile(file, [
    'sip:alice@contoso.com,pool02.contoso.com',
    'sip:bob@contoso.com,dirpool.contoso.com',
    'sip:carol@contoso.com,pool09.contoso.com',
    'sip:dave@northwind.com,pool02.contoso.com',
    'mailto:eve@contoso.com,pool02.contoso.com',
    'sip:alice@contoso.com,pool01.contoso.com',
  ].join('\n'));
  const bad = await dnslb('plan', 'move', '--file', file, '--topology', MULTI_POOL);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /CLI_BAD_INPUT: 5 bad moves; nothing was planned/);
  assert.match(bad.stderr, /moves\.csv:2: dirpool\.contoso\.com is a director pool; users move to frontend pools \(pool01\.contoso\.com, pool02\.contoso\.com\)/);
  assert.match(bad.stderr, /moves\.csv:3: pool09\.contoso\.com is not a pool of the topology/);
  assert.match(bad.stderr, /moves\.csv:4: northwind\.com is not a SIP domain of this deployment/);
  assert.match(bad.stderr, /moves\.csv:5: not a sip or sips URI/);
  assert.match(bad.stderr, /moves\.csv:6: sip:alice@contoso\.com is already moved at .*moves\.csv:1/);

  await writeFile(file, 'sip:alice@contoso.com pool02.contoso.com\n');
  const malformed = await dnslb('plan', 'move', '--file', file, '--topology', MULTI_POOL);
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr, /moves\.csv:1: expected "user,pool"/);

  const noPool = await dnslb('plan', 'move', 'sip:alice@contoso.com', '--topology', MULTI_POOL);
  assert.equal(noPool.code, 2);
  assert.match(noPool.stderr, /need --pool/);
  const nothing = await dnslb('plan', 'move', '--topology', MULTI_POOL);
  assert.equal(nothing.code, 2);
});
