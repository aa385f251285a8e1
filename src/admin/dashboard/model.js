// What the dashboard shows, as pure functions of GET /status answers (no DOM here), so that node
// tests can check them: a server's row, which actions apply, a refusal's text, the bindings history.
// Plain JavaScript served as it is (an ES module): the page has no build step.

/**
 * The state an operator cares about: blocked when an operator blocked it, else the server's own word
 * when it answers, else its process state when not running, else the pool's consensus about it
 * (`health`, src/pool/health.ts).
 * The same rule as `stateOf` in src/cli/commands/pool.ts (`dnslb pool status`); model.test.ts checks
 * that the two agree.
 */
export function stateOf(entry) {
  if (entry.adminState?.state === 'blocked') return 'blocked';
  if (entry.status) return entry.status.state;
  if (entry.process && entry.process.state !== 'running') return entry.process.state;
  const health = entry.health;
  if (!health || health.alive === 'unknown') return 'unknown';
  if (health.alive === 'down') return 'down';
  return health.own ?? 'active';
}

/**
 * The Web services HLB's word for a server (HAProxy's status, one per Web site when they differ),
 * '-' behind none, '?' when HAProxy does not answer. The same rule as `hlbOf` in src/cli/commands/pool.ts.
 */
export function hlbOf(entry) {
  if (!entry.hlb) return '-';
  if (entry.hlb.error !== undefined) return '?';
  const words = [entry.hlb.sides.internal?.status, entry.hlb.sides.external?.status].filter((word) => word !== undefined).map((word) => word.replace(/ (\d+\/\d+)$/, '($1)').replaceAll(' ', '-'));
  return words.length === 0 ? '?' : new Set(words).size === 1 ? words[0] : words.join('/');
}

const dash = (value) => (value === undefined || value === null ? '-' : String(value));

/** One table row: the columns of `dnslb pool status`, as text. */
export function rowOf(entry) {
  const admin = entry.adminState?.state ?? 'active';
  return {
    server: entry.server,
    pool: entry.pool,
    pid: dash(entry.process?.pid),
    admin,
    // Who set the admin state and why: shown as the cell's tooltip.
    adminNote: entry.adminState ? `${entry.adminState.state} by ${entry.adminState.by}: ${entry.adminState.reason}` : '',
    state: stateOf(entry),
    available: entry.available ? 'yes' : 'no',
    hlb: hlbOf(entry),
    primary: dash(entry.status?.bindings.bindingsPrimary),
    backup: dash(entry.status?.bindings.bindingsBackup),
    dialogs: dash(entry.status?.dialogs.active),
    version: dash(entry.status?.topologyVersion),
    error: entry.error ?? '',
  };
}

export const ACTIONS = ['drain', 'resume', 'block', 'unblock'];

/** Which of the four actions make sense from an admin state (the API would accept the others, to no effect). */
export function actionsFor(admin) {
  return {
    drain: admin === 'active',
    resume: admin === 'draining',
    block: admin !== 'blocked',
    unblock: admin === 'blocked',
  };
}

/**
 * The text of an admin API error answer (`{ error: { code, message } }`), and whether resending with
 * `force: true` may help: only a quorum refusal is a judgement an operator may override.
 */
export function refusalOf(httpStatus, body) {
  const error = body && typeof body === 'object' ? body.error : undefined;
  if (error && typeof error.code === 'string') return { text: `${error.code}: ${error.message ?? ''}`, forceable: error.code === 'ADMIN_QUORUM' };
  return { text: `HTTP ${httpStatus}`, forceable: false };
}

/**
 * Bindings per server over a sliding window, in uPlot's column layout: one x array (seconds) and one
 * array per server, all the same length. A server first seen later gets nulls before; a poll that
 * failed adds nulls for every server, so the chart shows a gap instead of a made-up line.
 */
export class BindingHistory {
  constructor(windowMs) {
    this.windowMs = windowMs;
    this.times = [];
    this.names = [];
    this.values = new Map();
  }

  /** `servers`: the `servers` of a GET /status answer, or null when the API did not answer. */
  add(atMs, servers) {
    this.times.push(atMs / 1000);
    const seen = new Map();
    for (const entry of servers ?? []) seen.set(entry.server, entry.status ? entry.status.bindings.bindings : null);
    for (const name of seen.keys()) {
      if (this.values.has(name)) continue;
      this.names.push(name);
      this.values.set(name, new Array(this.times.length - 1).fill(null));
    }
    for (const name of this.names) this.values.get(name).push(seen.get(name) ?? null);
    const oldest = (atMs - this.windowMs) / 1000;
    let drop = 0;
    while (drop < this.times.length && this.times[drop] < oldest) drop += 1;
    if (drop > 0) {
      this.times.splice(0, drop);
      for (const series of this.values.values()) series.splice(0, drop);
    }
    // A server gone from the topology (decommissioned) leaves once the window holds nothing of it.
    for (const name of [...this.names]) {
      if (this.values.get(name).some((value) => value !== null) || seen.has(name)) continue;
      this.names.splice(this.names.indexOf(name), 1);
      this.values.delete(name);
    }
  }

  /** [times, ...one series per name], in `names` order. */
  data() {
    return [this.times, ...this.names.map((name) => this.values.get(name))];
  }
}

/**
 * The servers grouped by pool, each with how many of its servers are available: the multi-pool
 * example reads pool by pool, as Topology Builder shows it. `pools` (GET /status's list, when the API
 * gives it) sets the order and adds what the servers alone cannot say: the pool's kind, and the pools
 * dnslb runs no server of (an Edge pool: `runs` false, no rows). Without it, pools come in the order
 * the API lists their first server.
 */
export function poolsOf(servers, pools = []) {
  const groups = new Map();
  for (const pool of pools) groups.set(pool.pool, { pool: pool.pool, kind: pool.kind, runs: pool.runs, size: pool.servers.length, hlb: pool.hlb, servers: [], available: 0 });
  for (const entry of servers) {
    let group = groups.get(entry.pool);
    if (!group) {
      group = { pool: entry.pool, kind: entry.kind, runs: true, size: 0, hlb: null, servers: [], available: 0 };
      groups.set(entry.pool, group);
    }
    group.servers.push(entry);
    group.size = Math.max(group.size, group.servers.length);
    if (entry.available) group.available += 1;
  }
  return [...groups.values()];
}

/** A pool's heading: "pool01.contoso.com (frontend, HAProxy on its Web services VIPs): 3 servers, 2 available". */
export function poolHeading(group) {
  const servers = `${group.size} server${group.size === 1 ? '' : 's'}`;
  const what = [group.kind, group.hlb === 'haproxy' ? 'HAProxy on its Web services VIPs' : undefined].filter(Boolean).join(', ');
  const name = what ? `${group.pool} (${what})` : group.pool;
  if (!group.runs) return `${name}: ${servers}, DNS records only (dnslb runs no process for it)`;
  return `${name}: ${servers}, ${group.available} available`;
}

/**
 * How far each drain has come. When the server answers with its own drain record
 * (`status.resilience.drain`: users handed over by this drain, bindings and dialogs still there), the
 * bar is handed over / (handed over + bindings left + dialogs left), whatever the dashboard saw
 * before. Otherwise (an older server, or none), what a draining server still holds against what it
 * held when the dashboard first saw it draining. 1 once it reports drained. A server that is not
 * draining has no progress, and a later drain starts from its own count.
 */
export class DrainProgress {
  constructor() {
    this.startLeft = new Map();
  }

  /** `entry`: one server of a GET /status answer; null when it is not draining. */
  observe(entry) {
    const state = stateOf(entry);
    if (entry.adminState?.state !== 'draining' && state !== 'draining' && state !== 'drained') {
      this.startLeft.delete(entry.server);
      return null;
    }
    const own = entry.status?.resilience?.drain;
    if (own && typeof own.handedOver === 'number') {
      const left = own.bindingsLeft + own.dialogsLeft;
      const total = own.handedOver + left;
      const fraction = state === 'drained' ? 1 : total === 0 ? 0 : own.handedOver / total;
      return { fraction, left, handedOver: own.handedOver, state };
    }
    const left = entry.status ? entry.status.bindings.bindings + entry.status.dialogs.active : undefined;
    if (state === 'drained') return { fraction: 1, left: left ?? 0, state };
    if (left === undefined) return { fraction: 0, left: undefined, state };
    const start = Math.max(this.startLeft.get(entry.server) ?? left, left, 1);
    this.startLeft.set(entry.server, start);
    return { fraction: (start - left) / start, left, state };
  }
}
