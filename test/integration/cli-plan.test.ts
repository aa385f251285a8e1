// dnslb plan through the real binary: counts that match the sequence, JSON output, usage errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
