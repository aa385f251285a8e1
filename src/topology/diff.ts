// What changed between two topologies, as an operator reads it: pools and servers added, removed or
// changed (addresses included), then every other setting, each with its path and before → after.
import type { Pool, Server, Topology } from './schema.ts';
import { toDocument } from './document.ts';

export type DiffOp = 'added' | 'removed' | 'changed';

export interface DiffEntry {
  op: DiffOp;
  /** Where, with list items named by their key: `pools[pool01.contoso.com].servers[fe2.contoso.com].ipv4`. */
  path: string;
  before?: unknown;
  after?: unknown;
}

export interface TopologyDiff {
  /** In document order: pools first, then the rest of the document. */
  entries: DiffEntry[];
  summary: {
    poolsAdded: string[];
    poolsRemoved: string[];
    poolsChanged: string[];
    serversAdded: string[];
    serversRemoved: string[];
    serversChanged: string[];
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The key that names a list item, so that reordering a list is not a change of every item. */
function itemKey(item: Json): string | undefined {
  if (!isObject(item)) return typeof item === 'string' || typeof item === 'number' ? String(item) : undefined;
  for (const field of ['fqdn', 'name']) {
    const value = item[field];
    if (typeof value === 'string') return item.type !== undefined && field === 'name' ? `${value} ${String(item.type)} ${String(item.value)}` : value;
  }
  return undefined;
}

function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function diffJson(before: Json | undefined, after: Json | undefined, path: string, out: DiffEntry[]): void {
  if (sameJson(before, after)) return;
  if (before === undefined) {
    out.push({ op: 'added', path, after });
    return;
  }
  if (after === undefined) {
    out.push({ op: 'removed', path, before });
    return;
  }
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    for (const key of keys) diffJson(before[key], after[key], path === '' ? key : `${path}.${key}`, out);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const keysBefore = before.map(itemKey);
    const keysAfter = after.map(itemKey);
    const keyed = [...keysBefore, ...keysAfter].every((key) => key !== undefined) && new Set(keysBefore).size === before.length && new Set(keysAfter).size === after.length;
    if (keyed) {
      const byKeyBefore = new Map(before.map((item, index) => [keysBefore[index] as string, item]));
      const byKeyAfter = new Map(after.map((item, index) => [keysAfter[index] as string, item]));
      for (const key of [...new Set([...byKeyBefore.keys(), ...byKeyAfter.keys()])]) diffJson(byKeyBefore.get(key), byKeyAfter.get(key), `${path}[${key}]`, out);
      // Order can matter (a `fixed` answer order lists servers as written): report a reordering of the items kept.
      const keptBefore = keysBefore.filter((key) => byKeyAfter.has(key as string));
      const keptAfter = keysAfter.filter((key) => byKeyBefore.has(key as string));
      if (!sameJson(keptBefore as Json[], keptAfter as Json[])) out.push({ op: 'changed', path: `${path} (order)`, before: keptBefore, after: keptAfter });
      return;
    }
  }
  out.push({ op: 'changed', path, before, after });
}

function serverAddresses(server: Server): string {
  return [server.ipv4, server.ipv6].filter((value) => value !== undefined).join(' ');
}

/** Pure: what changed from `before` to `after`. */
export function diffTopologies(before: Topology, after: Topology): TopologyDiff {
  const entries: DiffEntry[] = [];
  const summary: TopologyDiff['summary'] = { poolsAdded: [], poolsRemoved: [], poolsChanged: [], serversAdded: [], serversRemoved: [], serversChanged: [] };
  const documentBefore = toDocument(before) as unknown as { [key: string]: Json };
  const documentAfter = toDocument(after) as unknown as { [key: string]: Json };

  const poolsBefore = new Map(before.pools.map((pool) => [pool.fqdn, pool]));
  const poolsAfter = new Map(after.pools.map((pool) => [pool.fqdn, pool]));
  for (const fqdn of [...new Set([...poolsBefore.keys(), ...poolsAfter.keys()])]) {
    const poolBefore = poolsBefore.get(fqdn);
    const poolAfter = poolsAfter.get(fqdn);
    const path = `pools[${fqdn}]`;
    if (!poolBefore || !poolAfter) {
      const pool = (poolBefore ?? poolAfter) as Pool;
      entries.push(poolBefore ? { op: 'removed', path, before: poolBefore } : { op: 'added', path, after: poolAfter });
      (poolBefore ? summary.poolsRemoved : summary.poolsAdded).push(fqdn);
      (poolBefore ? summary.serversRemoved : summary.serversAdded).push(...pool.servers.map((server) => server.fqdn));
      continue;
    }
    const poolEntries: DiffEntry[] = [];
    diffJson(poolBefore as unknown as Json, poolAfter as unknown as Json, path, poolEntries);
    if (poolEntries.length === 0) continue;
    summary.poolsChanged.push(fqdn);
    for (const entry of poolEntries) {
      const server = /^pools\[[^\]]+\]\.servers\[([^\]]+)\](.*)$/.exec(entry.path);
      if (!server) continue;
      const list = server[2] !== '' ? summary.serversChanged : entry.op === 'added' ? summary.serversAdded : summary.serversRemoved;
      if (!list.includes(server[1] as string)) list.push(server[1] as string);
    }
    entries.push(...poolEntries);
  }
  for (const key of [...new Set([...Object.keys(documentBefore), ...Object.keys(documentAfter)])]) {
    if (key !== 'pools') diffJson(documentBefore[key], documentAfter[key], key, entries);
  }
  return { entries, summary };
}

function describe(value: unknown): string {
  if (value !== null && typeof value === 'object' && 'servers' in value && 'kind' in value) {
    const pool = value as Pool;
    return `${pool.kind} pool, ${pool.loadBalancing} load balancing, servers ${pool.servers.map((server) => `${server.fqdn} (${serverAddresses(server)})`).join(', ')}`;
  }
  if (value !== null && typeof value === 'object' && 'fqdn' in value && ('ipv4' in value || 'ipv6' in value)) {
    return serverAddresses(value as Server);
  }
  return JSON.stringify(value);
}

/** One line per change: `+ path: value`, `- path: value`, `~ path: before → after`. */
export function formatDiff(diff: TopologyDiff): string {
  if (diff.entries.length === 0) return 'no changes';
  const lines = diff.entries.map((entry) => {
    if (entry.op === 'added') return `+ ${entry.path}: ${describe(entry.after)}`;
    if (entry.op === 'removed') return `- ${entry.path}: ${describe(entry.before)}`;
    return `~ ${entry.path}: ${describe(entry.before)} → ${describe(entry.after)}`;
  });
  const s = diff.summary;
  const count = (label: string, list: string[]): string | undefined => (list.length > 0 ? `${list.length} ${label}` : undefined);
  const totals = [
    count('pool(s) added', s.poolsAdded),
    count('pool(s) removed', s.poolsRemoved),
    count('pool(s) changed', s.poolsChanged),
    count('server(s) added', s.serversAdded),
    count('server(s) removed', s.serversRemoved),
    count('server(s) changed', s.serversChanged),
  ].filter((text) => text !== undefined);
  return [...lines, `${diff.entries.length} change(s)${totals.length > 0 ? `: ${totals.join(', ')}` : ''}`].join('\n');
}
