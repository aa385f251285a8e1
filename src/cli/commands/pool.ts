// dnslb pool status: every server of the running system with its process, admin state, health,
// bindings (primary / backup) and dialogs, from the pool admin API found through --data-dir.
import type { Command } from 'commander';
import { PoolAdmin } from '../../admin/pool-api.ts';
import { systemClock } from '../../shared/clock.ts';
import { adminCall, type PoolStatus, type ServerEntry } from './admin-client.ts';
import { openStoreOf, storeSpecOf, withStoreOption } from './store-options.ts';

/**
 * The state an operator cares about: the server's own word when it answers, else the pool's consensus
 * about it (src/pool/health.ts: down only when a majority of the reporters that are up say so).
 */
export function stateOf(entry: ServerEntry): string {
  if (entry.adminState?.state === 'blocked') return 'blocked';
  if (entry.status) return entry.status.state;
  if (entry.process && entry.process.state !== 'running') return entry.process.state;
  const health = entry.health;
  if (!health || health.alive === 'unknown') return 'unknown';
  if (health.alive === 'down') return 'down';
  return health.own ?? 'active';
}

/**
 * The HLB's word for a server (HAProxy's status: UP, DRAIN, MAINT, DOWN, UP(1/2) going down …), one
 * per Web site when they differ ("UP/DOWN": internal/external); "?" when HAProxy does not answer.
 */
export function hlbOf(entry: ServerEntry): string {
  if (!entry.hlb) return '-';
  if (entry.hlb.error !== undefined) return '?';
  const words = [entry.hlb.sides.internal?.status, entry.hlb.sides.external?.status].filter((word): word is string => word !== undefined).map((word) => word.replace(/ (\d+\/\d+)$/, '($1)').replaceAll(' ', '-'));
  return words.length === 0 ? '?' : [...new Set(words)].length === 1 ? words[0]! : words.join('/');
}

export function formatPoolStatus(status: PoolStatus): string {
  // The HLB column only when some pool has one (webServices.hlb: haproxy).
  const withHlb = status.servers.some((entry) => entry.hlb);
  // The REMOTE column (users signed in through an Edge) only when the topology has edge servers.
  const withEdge = status.servers.some((entry) => entry.kind === 'edge');
  const header = ['SERVER', 'POOL', 'PID', 'ADMIN', 'STATE', 'AVAILABLE', ...(withHlb ? ['HLB'] : []), 'PRIMARY', 'BACKUP', ...(withEdge ? ['REMOTE'] : []), 'DIALOGS', 'VERSION'];
  const rows = status.servers.map((entry) => [
    entry.server,
    entry.pool,
    String(entry.process?.pid ?? '-'),
    entry.adminState?.state ?? 'active',
    stateOf(entry),
    entry.available ? 'yes' : 'no',
    ...(withHlb ? [hlbOf(entry)] : []),
    // An Edge holds no binding: its remote users are in REMOTE.
    entry.kind === 'edge' ? '-' : String(entry.status?.bindings.bindingsPrimary ?? '-'),
    entry.kind === 'edge' ? '-' : String(entry.status?.bindings.bindingsBackup ?? '-'),
    ...(withEdge ? [entry.kind === 'edge' ? String(entry.status?.edge?.remoteUsers ?? '-') : '-'] : []),
    String(entry.status?.dialogs.active ?? '-'),
    String(entry.status?.topologyVersion ?? '-'),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  const dns = status.dns ? `dns: ${status.dns.state}, pid ${status.dns.pid ?? '-'}` : 'dns: not a child of this node';
  return [`topology version ${status.topologyVersion} (store revision ${status.revision}); ${dns}`, line(header), ...rows.map(line)].join('\n');
}

export function registerPool(program: Command): void {
  const pool = program.command('pool').description('the running pool (through the admin API in --data-dir, or the store with --store)');
  withStoreOption(pool
    .command('status')
    .description('every server: process id, admin state, health, bindings in primary and backup mode, active dialogs (with --store: admin state and liveness from the store alone)')
    .option('--json', 'print the admin API answer as JSON'))
    .action(async (options: { json?: boolean }, command: Command) => {
      const status = (storeSpecOf(command) === undefined ? await adminCall(command, 'GET', '/status') : await statusFromStore(command)) as PoolStatus;
      console.log(options.json ? JSON.stringify(status, null, 2) : formatPoolStatus(status));
    });
}

/** Distributed mode: what the store says of every server (admin state, liveness), no admin API. */
async function statusFromStore(command: Command): Promise<unknown> {
  const store = await openStoreOf(command, { mustExist: true });
  try {
    return await new PoolAdmin({ store, clock: systemClock }).status();
  } finally {
    await store.close();
  }
}
