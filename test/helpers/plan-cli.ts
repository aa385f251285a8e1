// `dnslb plan` through the real binary for acceptance tests that compare its forecast with what then
// happens: the plan's from → to counts for an exact list of users, and the same counts taken from
// where the users were registered before and after the change.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from './frontend-pool.ts';

const run = promisify(execFile);

/** "from → to" → number of users; null ends are written "(none)". */
export type Flows = Map<string, number>;

function key(from: string | null, to: string | null): string {
  return `${from ?? '(none)'} → ${to ?? '(none)'}`;
}

/**
 * Runs `dnslb plan ACTION SERVER --topology FILE --users-file USERS --json` on exactly `users`
 * (written to `dir`) and returns its flows.
 */
export async function planFlows(action: 'fail' | 'drain' | 'remove' | 'add', server: string, topologyFile: string, users: readonly string[], dir: string): Promise<{ moved: number; flows: Flows }> {
  const usersFile = join(dir, `plan-users-${action}-${server}.txt`);
  await writeFile(usersFile, `${users.join('\n')}\n`);
  const { stdout } = await run(process.execPath, ['bin/dnslb.js', 'plan', action, server, '--topology', topologyFile, '--users-file', usersFile, '--json'], { cwd: REPO });
  const plan = JSON.parse(stdout) as { users: number; moved: number; flows: { from: string | null; to: string | null; count: number }[] };
  if (plan.users !== users.length) throw new Error(`plan counted ${plan.users} users, not ${users.length}`);
  return { moved: plan.moved, flows: new Map(plan.flows.map((flow) => [key(flow.from, flow.to), flow.count])) };
}

/** The flows that happened: each user whose server differs between `before` and `after` (user → server FQDN or null). */
export function actualFlows(before: ReadonlyMap<string, string | null>, after: ReadonlyMap<string, string | null>): Flows {
  const flows: Flows = new Map();
  for (const [user, from] of before) {
    const to = after.get(user) ?? null;
    if (to === from) continue;
    const name = key(from, to);
    flows.set(name, (flows.get(name) ?? 0) + 1);
  }
  return flows;
}

/** Flows as a sorted plain object, for deepEqual with a readable diff. */
export function flowsObject(flows: Flows): Record<string, number> {
  return Object.fromEntries([...flows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
