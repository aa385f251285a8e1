// dnslb plan fail|drain|remove SERVER, plan add FQDN: how many users would move from where to where,
// computed from the registrar sequence alone, changing nothing; plan move: users moved between pools.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Store } from '../../store/store.ts';
import { parseMoveList, planPoolMoves, type MovePlan, type MoveRequest } from '../../registrar/move-plan.ts';
import { planMoves, type Plan, type PoolState } from '../../registrar/sequence.ts';
import { DnslbError } from '../../shared/errors.ts';
import { parseFile } from '../../topology/parse.ts';
import type { Pool, Topology } from '../../topology/schema.ts';
import { openStoreOf, readPublished, storeLabelOf, withStoreOption } from './store-options.ts';

interface PlanOptions {
  topology?: string;
  users?: string;
  usersFile?: string;
  pool?: string;
  json?: boolean;
}

export type PlanAction = 'fail' | 'drain' | 'remove' | 'add';

const SYNTHETIC_USERS_DEFAULT = 10_000;

/** The users a plan counts: a file (one SIP URI a line), the topology's list, or N synthetic users. */
export async function planUsers(topology: Topology, options: { users?: string; usersFile?: string }): Promise<string[]> {
  if (options.usersFile) {
    const text = await readFile(options.usersFile, 'utf8').catch((cause: unknown) => {
      throw new DnslbError('CLI_USAGE', `cannot read --users-file ${options.usersFile}: ${(cause as Error).message}`, { cause });
    });
    return text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  }
  if (options.users === undefined && topology.users) return [...topology.users];
  const count = Number(options.users ?? SYNTHETIC_USERS_DEFAULT);
  if (!Number.isInteger(count) || count < 1 || count > 10_000_000) throw new DnslbError('CLI_USAGE', `--users must be a whole number from 1 to 10,000,000, not ${options.users}`);
  const domain = topology.sipDomains[0]!;
  const width = String(count).length;
  return Array.from({ length: count }, (_, index) => `sip:user${String(index + 1).padStart(width, '0')}@${domain}`);
}

function poolOfServer(topology: Topology, server: string): Pool {
  const pool = topology.pools.find((candidate) => candidate.servers.some((entry) => entry.fqdn === server.toLowerCase()));
  if (!pool) throw new DnslbError('CLI_USAGE', `${server} is not a server of any pool in the topology`);
  return pool;
}

/** The pool states before and after an action, for planMoves. */
export function planStates(topology: Topology, action: PlanAction, server: string, poolName?: string): { pool: Pool; before: PoolState; after: PoolState } {
  const fqdn = server.toLowerCase();
  if (action === 'add') {
    const pool = poolName
      ? topology.pools.find((candidate) => candidate.fqdn === poolName.toLowerCase())
      : topology.pools.find((candidate) => candidate.kind === 'frontend');
    if (!pool) throw new DnslbError('CLI_USAGE', poolName ? `no pool ${poolName} in the topology` : 'no frontend pool in the topology; name one with --pool');
    const servers = pool.servers.map((entry) => entry.fqdn);
    if (servers.includes(fqdn)) throw new DnslbError('CLI_USAGE', `${fqdn} is already a server of ${pool.fqdn}`);
    return { pool, before: { servers }, after: { servers: [...servers, fqdn] } };
  }
  const pool = poolOfServer(topology, fqdn);
  const servers = pool.servers.map((entry) => entry.fqdn);
  if (action === 'remove') return { pool, before: { servers }, after: { servers: servers.filter((entry) => entry !== fqdn) } };
  // fail and drain: the sequences stay, the server is not available (a drained server's users move on exactly like a failed one's).
  return { pool, before: { servers }, after: { servers, available: (candidate) => candidate !== fqdn } };
}

export function formatPlan(action: PlanAction, server: string, pool: Pool, plan: Plan): string {
  const share = plan.users === 0 ? 0 : (100 * plan.moved) / plan.users;
  const lines = [
    `plan: ${action} ${server} in ${pool.fqdn} (${pool.servers.length} servers now, ${plan.users} users)`,
    `${plan.moved} of ${plan.users} users would move (${share.toFixed(1)} %)`,
  ];
  const width = Math.max(0, ...plan.flows.map((flow) => `${flow.from ?? '(none)'} → ${flow.to ?? '(none)'}`.length));
  for (const flow of plan.flows) {
    const label = `${flow.from ?? '(none)'} → ${flow.to ?? '(none)'}`;
    lines.push(`  ${label.padEnd(width)}  ${String(flow.count).padStart(8)}  ${((100 * flow.count) / Math.max(1, plan.moved)).toFixed(1).padStart(5)} %`);
  }
  return lines.join('\n');
}

/** `pool/server` as the move table prints a home; `(none)` for no home. */
function place(pool: string | null, server: string | null): string {
  if (pool === null) return '(no home)';
  return `${server ?? '(no server)'} in ${pool}`;
}

export function formatMovePlan(label: string, plan: MovePlan, listEach: boolean): string {
  const lines = [
    `plan: move ${plan.users} user${plan.users === 1 ? '' : 's'} (topology ${label})`,
    `${plan.moved} would move, ${plan.unchanged} ${plan.unchanged === 1 ? 'is' : 'are'} already there`,
  ];
  const labels = plan.flows.map((flow) => `${place(flow.fromPool, flow.from)} → ${place(flow.toPool, flow.to)}`);
  const width = Math.max(0, ...labels.map((text) => text.length));
  plan.flows.forEach((flow, index) => {
    lines.push(`  ${(labels[index] ?? '').padEnd(width)}  ${String(flow.count).padStart(8)}`);
  });
  if (listEach) {
    for (const move of plan.moves) {
      const from = move.from === null ? `(no home: ${move.fromReason ?? 'unknown'})` : place(move.from.pool, move.from.server);
      lines.push(`  ${move.user}: ${from} → ${place(move.to.pool, move.to.server)}`);
    }
  }
  return lines.join('\n');
}

interface MoveOptions {
  topology?: string;
  pool?: string;
  file?: string;
  list?: boolean;
  json?: boolean;
}

/** The moves of `plan move` and `user move`: users given as arguments with --pool, and/or a --file of "user,pool" lines. */
export async function moveRequests(users: readonly string[], options: { pool?: string; file?: string }): Promise<MoveRequest[]> {
  if (users.length > 0 && options.pool === undefined) throw new DnslbError('CLI_USAGE', 'users given as arguments need --pool <fqdn>: the pool they move to');
  if (users.length === 0 && options.pool !== undefined) throw new DnslbError('CLI_USAGE', '--pool needs the users to move as arguments (or use --file)');
  if (users.length === 0 && options.file === undefined) throw new DnslbError('CLI_USAGE', 'give the users to move: SIP URIs with --pool, or --file moves.csv');
  const requests: MoveRequest[] = users.map((user, index) => ({ user, pool: options.pool ?? null, source: `argument ${index + 1}` }));
  if (options.file !== undefined) {
    const file = options.file;
    const text = await readFile(file, 'utf8').catch((cause: unknown) => {
      throw new DnslbError('CLI_USAGE', `cannot read --file ${file}: ${(cause as Error).message}`, { cause });
    });
    requests.push(...parseMoveList(text, file));
  }
  return requests;
}

/** The user directory's explicit home pools (canonical URI → pool). */
export async function assignmentsOf(store: Store): Promise<Map<string, string>> {
  const assignments = new Map<string, string>();
  for (const user of await store.users()) if (user.homePool !== undefined) assignments.set(user.uri, user.homePool);
  return assignments;
}

/** The topology of `plan move`: --topology FILE (no assignments read), else the current version in the store and its user directory's assignments. */
async function moveTopology(command: Command, file: string | undefined): Promise<{ topology: Topology; label: string; assignments: ReadonlyMap<string, string> }> {
  if (file !== undefined) return { topology: await parseFile(file), label: file, assignments: new Map() };
  const store = await openStoreOf(command, { mustExist: true });
  try {
    const version = await store.currentVersion();
    if (version === 0) throw new DnslbError('STORE_NOT_FOUND', `nothing is published in ${storeLabelOf(command)}; publish a topology or give --topology FILE`);
    return { topology: (await store.read(version)).topology, label: `version ${version} in ${storeLabelOf(command)}`, assignments: await assignmentsOf(store) };
  } finally {
    await store.close();
  }
}

function registerPlanMove(plan: Command): void {
  withStoreOption(
    plan
      .command('move')
      .description('users move to other frontend pools: each one\'s home server now and after (changes nothing)')
      .argument('[users...]', 'SIP URIs to move to --pool')
      .option('--pool <fqdn>', 'the frontend pool the users given as arguments move to')
      .option('--file <moves.csv>', 'moves, one "user,pool" a line (an empty pool: back to the home rules and the default)')
      .option('--topology <file>', 'plan against this topology (default: the current version in the store)')
      .option('--list', 'print each user, not just the counts')
      .option('--json', 'print the plan as JSON'),
  ).action(async (users: string[], options: MoveOptions, command: Command) => {
    const requests = await moveRequests(users, options);
    const { topology, label, assignments } = await moveTopology(command, options.topology);
    // "From" is each user's home now: the store's explicit assignment, else the rules and the default.
    const result = planPoolMoves(topology, requests, { assignmentOf: (user) => assignments.get(user) });
    if (options.json) {
      const { moves, ...summary } = result;
      console.log(JSON.stringify({ action: 'move', topology: label, ...summary, ...(options.list ? { moves } : {}) }, null, 2));
    } else {
      console.log(formatMovePlan(label, result, options.list === true));
    }
  });
}

export function registerPlan(program: Command): void {
  const plan = program.command('plan').description('what-if: how many users would move from where to where (changes nothing)');
  const actions: [PlanAction, string, string][] = [
    ['fail', '<server>', 'the server dies: its users go to the next server of their own sequences (backup mode)'],
    ['drain', '<server>', 'the server drains: its users are handed to their next servers'],
    ['remove', '<server>', 'a topology without the server is published (decommission)'],
    ['add', '<fqdn>', 'a topology with one more server is published (commission)'],
  ];
  for (const [action, argument, description] of actions) {
    const command = plan
      .command(action)
      .description(description)
      .argument(argument)
      .option('--topology <file>', 'the topology the pool comes from (default: the published version of the store)')
      .option('--users <n>', `count N synthetic users sip:userNNN@<first SIP domain> (default: the topology's users, else ${SYNTHETIC_USERS_DEFAULT})`)
      .option('--users-file <file>', 'count these users (one SIP URI a line)')
      .option('--json', 'print the plan as JSON');
    if (action === 'add') command.option('--pool <fqdn>', 'the pool to add the server to (default: the first frontend pool)');
    withStoreOption(command);
    command.action(async (server: string, options: PlanOptions, self: Command) => {
      const topology = options.topology !== undefined ? await parseFile(options.topology) : (await readPublished(self)).topology;
      const { pool, before, after } = planStates(topology, action, server, options.pool);
      const users = await planUsers(topology, options);
      const result = planMoves(users, before, after);
      if (options.json) console.log(JSON.stringify({ action, server: server.toLowerCase(), pool: pool.fqdn, ...result }, null, 2));
      else console.log(formatPlan(action, server.toLowerCase(), pool, result));
    });
  }
  registerPlanMove(plan);
}
