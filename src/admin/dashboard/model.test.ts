// The dashboard's pure view logic (model.js, the file the browser runs): the state column agrees with
// `dnslb pool status`, rows, actions, refusal texts, and the sliding bindings history.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatPoolStatus, hlbOf as cliHlbOf, stateOf as cliStateOf } from '../../cli/commands/pool.ts';
import type { PoolEntry, ServerEntry } from '../../cli/commands/admin-client.ts';

interface Row {
  server: string;
  pool: string;
  pid: string;
  admin: string;
  adminNote: string;
  state: string;
  available: string;
  hlb: string;
  primary: string;
  backup: string;
  dialogs: string;
  version: string;
  error: string;
}
interface Group {
  pool: string;
  kind: string;
  runs: boolean;
  size: number;
  hlb: string | null;
  servers: ServerEntry[];
  available: number;
}
interface History {
  names: string[];
  add(atMs: number, servers: ServerEntry[] | null): void;
  data(): (number | null)[][];
}
interface Model {
  stateOf(entry: ServerEntry): string;
  hlbOf(entry: ServerEntry): string;
  rowOf(entry: ServerEntry): Row;
  actionsFor(admin: string): Record<'drain' | 'resume' | 'block' | 'unblock', boolean>;
  refusalOf(status: number, body: unknown): { text: string; forceable: boolean };
  BindingHistory: new (windowMs: number) => History;
  poolsOf(servers: ServerEntry[], pools?: PoolEntry[]): Group[];
  poolHeading(group: Group): string;
  DrainProgress: new () => { observe(entry: ServerEntry): { fraction: number; left: number | undefined; handedOver?: number; state: string } | null };
}

// A plain browser module without type declarations: loaded by URL and given its shape here.
const model = (await import(new URL('./model.js', import.meta.url).href)) as Model;

const states = ['active', 'suspect', 'down', 'draining', 'drained', 'blocked', 'starting', 'stopped', 'restarting'];
const serverEntry: fc.Arbitrary<ServerEntry> = fc.record({
  server: fc.constantFrom('fe1.contoso.com', 'fe2.contoso.com'),
  pool: fc.constant('pool01.contoso.com'),
  kind: fc.constant('frontend'),
  address: fc.constant('127.0.0.11'),
  adminState: fc.option(fc.record({ state: fc.constantFrom('active', 'draining', 'blocked'), by: fc.string(), reason: fc.string(), atMs: fc.nat() }), { nil: null }),
  available: fc.boolean(),
  process: fc.option(fc.record({ state: fc.constantFrom('running', 'stopped', 'restarting', 'starting'), pid: fc.option(fc.nat(), { nil: undefined }), restarts: fc.nat(), lastExit: fc.constant(undefined) }), { nil: null }),
  liveness: fc.array(fc.record({ reporter: fc.constantFrom('fe1.contoso.com', 'fe3.contoso.com'), state: fc.constantFrom(...states), atMs: fc.nat({ max: 1000 }) }), { maxLength: 3 }),
  health: fc.option(fc.record({ alive: fc.constantFrom('up' as const, 'down' as const, 'unknown' as const), own: fc.option(fc.constantFrom('active', 'draining', 'drained', 'blocked'), { nil: null }), up: fc.nat({ max: 12 }), down: fc.nat({ max: 12 }), reason: fc.string() }), { nil: undefined }),
  status: fc.option(
    fc.record({
      state: fc.constantFrom('active', 'draining', 'drained'),
      topologyVersion: fc.nat(),
      bindings: fc.record({ users: fc.nat(), bindings: fc.nat(), bindingsPrimary: fc.nat(), bindingsBackup: fc.nat() }),
      dialogs: fc.record({ active: fc.nat() }),
    }),
    { nil: undefined },
  ),
  hlb: fc.option(
    fc.record({
      hlb: fc.constant('haproxy' as const),
      pool: fc.constant('pool01.contoso.com'),
      desired: fc.constantFrom('ready' as const, 'drain' as const, 'maint' as const),
      sides: fc.record(
        {
          internal: fc.record({ status: fc.constantFrom('UP', 'DOWN', 'DRAIN', 'MAINT', 'UP 1/2', 'no check'), sessionsCurrent: fc.nat(), sessionsTotal: fc.nat(), checkStatus: fc.constantFrom('L7OK', 'L4CON') }),
          external: fc.record({ status: fc.constantFrom('UP', 'DOWN', 'DRAIN'), sessionsCurrent: fc.nat(), sessionsTotal: fc.nat(), checkStatus: fc.constant('L7OK') }),
        },
        { requiredKeys: [] },
      ),
    }),
    { nil: null },
  ),
});

const entry = (server: string, bindings: number | undefined): ServerEntry => ({
  server,
  pool: 'pool01.contoso.com',
  kind: 'frontend',
  address: '127.0.0.11',
  adminState: null,
  available: true,
  process: null,
  liveness: [],
  ...(bindings === undefined ? {} : { status: { state: 'active', topologyVersion: 1, bindings: { users: bindings, bindings, bindingsPrimary: bindings, bindingsBackup: 0 }, dialogs: { active: 0 } } }),
});

describe('dashboard model', () => {
  test('the state column is the CLI\'s: same answer for any server entry, and the same row as `dnslb pool status` prints', () => {
    fc.assert(
      fc.property(serverEntry, (server) => {
        assert.equal(model.stateOf(server), cliStateOf(server));
        assert.equal(model.hlbOf(server), cliHlbOf(server));
        const row = model.rowOf(server);
        // The CLI's table line for this entry, cell by cell (columns split on two or more spaces).
        const line = formatPoolStatus({ topologyVersion: 1, revision: 1, dns: null, servers: [server] }).split('\n')[2]!;
        // The CLI shows the HLB column only when some server has an HLB.
        const cells = [row.server, row.pool, row.pid, row.admin, row.state, row.available, ...(server.hlb ? [row.hlb] : []), row.primary, row.backup, row.dialogs, row.version];
        assert.deepEqual(line.split(/ {2,}/), cells);
      }),
    );
  });

  test('a blocked server whose process still answers is shown blocked; a stopped one shows its process state', () => {
    const blocked = { ...entry('fe3.contoso.com', 4), adminState: { state: 'blocked', by: 'dashboard', reason: 'patching', atMs: 1 } };
    assert.equal(model.rowOf(blocked).state, 'blocked');
    assert.equal(model.rowOf(blocked).adminNote, 'blocked by dashboard: patching');
    const stopped = { ...entry('fe2.contoso.com', undefined), process: { state: 'stopped', pid: undefined, restarts: 0, lastExit: undefined }, error: 'not running (stopped)' };
    assert.deepEqual([model.rowOf(stopped).state, model.rowOf(stopped).pid, model.rowOf(stopped).primary, model.rowOf(stopped).error], ['stopped', '-', '-', 'not running (stopped)']);
  });

  test('actions offered per admin state', () => {
    assert.deepEqual(model.actionsFor('active'), { drain: true, resume: false, block: true, unblock: false });
    assert.deepEqual(model.actionsFor('draining'), { drain: false, resume: true, block: true, unblock: false });
    assert.deepEqual(model.actionsFor('blocked'), { drain: false, resume: false, block: false, unblock: true });
  });

  test('refusals: the code and message of the API; only a quorum refusal may be forced', () => {
    const quorum = { error: { code: 'ADMIN_QUORUM', message: 'refused: drain fe2.contoso.com: only 1 of 3 servers would stay available, below the quorum of 2' } };
    assert.deepEqual(model.refusalOf(409, quorum), { text: `ADMIN_QUORUM: ${quorum.error.message}`, forceable: true });
    assert.deepEqual(model.refusalOf(404, { error: { code: 'ADMIN_NOT_FOUND', message: 'fe9 is not a server' } }), { text: 'ADMIN_NOT_FOUND: fe9 is not a server', forceable: false });
    assert.deepEqual(model.refusalOf(502, null), { text: 'HTTP 502', forceable: false });
    assert.deepEqual(model.refusalOf(500, '<html>'), { text: 'HTTP 500', forceable: false });
  });

  test('history: columns stay aligned, a new server gets nulls before, a failed poll is a gap, older than the window is dropped', () => {
    const history = new model.BindingHistory(10_000);
    history.add(1_000, [entry('fe1.contoso.com', 1), entry('fe2.contoso.com', undefined)]);
    history.add(2_000, null);
    history.add(3_000, [entry('fe1.contoso.com', 3), entry('fe2.contoso.com', 2), entry('fe4.contoso.com', 7)]);
    assert.deepEqual(history.names, ['fe1.contoso.com', 'fe2.contoso.com', 'fe4.contoso.com']);
    assert.deepEqual(history.data(), [
      [1, 2, 3],
      [1, null, 3],
      [null, null, 2],
      [null, null, 7],
    ]);
    history.add(12_500, [entry('fe1.contoso.com', 5)]);
    assert.deepEqual(history.data(), [
      [3, 12.5],
      [3, 5],
      [2, null],
      [7, null],
    ]);
    // Once the window holds nothing of a server that left the topology, it leaves the chart.
    history.add(23_000, [entry('fe1.contoso.com', 6)]);
    assert.deepEqual(history.names, ['fe1.contoso.com']);
    assert.deepEqual(history.data(), [[23], [6]]);
  });

  test('history never holds more than the window, whatever the polls (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5_000 }), fc.option(fc.subarray(['a', 'b', 'c']), { nil: null })), { maxLength: 60 }), (polls) => {
        const history = new model.BindingHistory(10_000);
        let atMs = 0;
        for (const [stepMs, names] of polls) {
          atMs += stepMs;
          history.add(atMs, names === null ? null : names.map((name) => entry(name, 1)));
          const [times, ...series] = history.data();
          assert.ok(times!.every((time) => time! * 1000 >= atMs - 10_000));
          for (const values of series) assert.equal(values.length, times!.length);
          assert.equal(series.length, history.names.length);
        }
      }),
    );
  });

  test('servers are grouped by pool, pools in the order of their first server, with their available count', () => {
    const at = (server: string, pool: string, available: boolean): ServerEntry => ({ ...entry(server, 1), pool, available });
    const groups = model.poolsOf([at('fe1.contoso.com', 'pool01.contoso.com', true), at('dir1.contoso.com', 'dirpool.contoso.com', true), at('fe2.contoso.com', 'pool01.contoso.com', false), at('dir2.contoso.com', 'dirpool.contoso.com', true)]);
    assert.deepEqual(groups.map((group) => [group.pool, group.servers.map((server) => server.server), group.available]), [
      ['pool01.contoso.com', ['fe1.contoso.com', 'fe2.contoso.com'], 1],
      ['dirpool.contoso.com', ['dir1.contoso.com', 'dir2.contoso.com'], 2],
    ]);
    assert.deepEqual(model.poolsOf([]), []);
  });

  test('with the API\'s pool list: its order, every pool (an Edge pool without rows), kinds and HAProxy in the headings', () => {
    const at = (server: string, pool: string, available: boolean): ServerEntry => ({ ...entry(server, 1), pool, available });
    const pools: PoolEntry[] = [
      { pool: 'pool01.contoso.com', kind: 'frontend', site: 'redmond', servers: ['fe1.contoso.com', 'fe2.contoso.com'], runs: true, hlb: 'haproxy' },
      { pool: 'edgepool.contoso.com', kind: 'edge', site: 'redmond', servers: ['edge1.contoso.com'], runs: false, hlb: null },
      { pool: 'medpool.contoso.com', kind: 'mediation', site: 'redmond', servers: ['med1.contoso.com', 'med2.contoso.com'], runs: true, hlb: null },
    ];
    const groups = model.poolsOf([at('med1.contoso.com', 'medpool.contoso.com', true), at('fe1.contoso.com', 'pool01.contoso.com', true), at('fe2.contoso.com', 'pool01.contoso.com', false), at('med2.contoso.com', 'medpool.contoso.com', true)], pools);
    assert.deepEqual(groups.map((group) => [group.pool, group.servers.map((server) => server.server)]), [
      ['pool01.contoso.com', ['fe1.contoso.com', 'fe2.contoso.com']],
      ['edgepool.contoso.com', []],
      ['medpool.contoso.com', ['med1.contoso.com', 'med2.contoso.com']],
    ]);
    assert.deepEqual(groups.map((group) => model.poolHeading(group)), [
      'pool01.contoso.com (frontend, HAProxy on its Web services VIPs): 2 servers, 1 available',
      'edgepool.contoso.com (edge): 1 server, DNS records only (dnslb runs no process for it)',
      'medpool.contoso.com (mediation): 2 servers, 2 available',
    ]);
  });

  test('drain progress: what is left against what the drain started with; full when drained; reset for the next drain', () => {
    const progress = new model.DrainProgress();
    const draining = (bindings: number, dialogs: number, state = 'draining'): ServerEntry => {
      const base = entry('fe2.contoso.com', bindings);
      return { ...base, adminState: { state: 'draining', by: 'test', reason: 'test', atMs: 0 }, status: { ...base.status!, state, dialogs: { active: dialogs } } };
    };
    assert.equal(progress.observe(entry('fe2.contoso.com', 90)), null, 'not draining: no bar');
    assert.deepEqual(progress.observe(draining(90, 10)), { fraction: 0, left: 100, state: 'draining' });
    assert.deepEqual(progress.observe(draining(40, 10)), { fraction: 0.5, left: 50, state: 'draining' });
    // More arrived than it started with (a late re-registration): the bar never goes backwards past 0.
    assert.deepEqual(progress.observe(draining(110, 10)), { fraction: 0, left: 120, state: 'draining' });
    assert.deepEqual(progress.observe(draining(0, 0, 'drained')), { fraction: 1, left: 0, state: 'drained' });
    assert.equal(progress.observe(entry('fe2.contoso.com', 0)), null, 'resumed: no bar');
    assert.deepEqual(progress.observe(draining(10, 0)), { fraction: 0, left: 10, state: 'draining' }, 'a new drain starts from its own count');
    const silent = { ...draining(5, 0), status: undefined };
    assert.deepEqual(progress.observe(silent), { fraction: 0, left: undefined, state: 'unknown' }, 'no answer from the server: no count');
  });

  test('drain progress from the server\'s own drain record: handed over against handed over + what is left', () => {
    const progress = new model.DrainProgress();
    const draining = (handedOver: number, bindingsLeft: number, dialogsLeft: number, state = 'draining'): ServerEntry => {
      const base = entry('fe2.contoso.com', bindingsLeft);
      return { ...base, adminState: { state: 'draining', by: 'test', reason: 'test', atMs: 0 }, status: { ...base.status!, state, resilience: { drain: { phase: state, handedOver, bindingsLeft, dialogsLeft } } } };
    };
    assert.deepEqual(progress.observe(draining(0, 40, 0)), { fraction: 0, left: 40, handedOver: 0, state: 'draining' });
    // The first look may come halfway through: the record knows how far it is.
    assert.deepEqual(progress.observe(draining(30, 9, 1)), { fraction: 0.75, left: 10, handedOver: 30, state: 'draining' });
    assert.deepEqual(progress.observe(draining(40, 0, 0, 'drained')), { fraction: 1, left: 0, handedOver: 40, state: 'drained' });
    assert.deepEqual(progress.observe(draining(0, 0, 0, 'drained')), { fraction: 1, left: 0, handedOver: 0, state: 'drained' }, 'nothing to hand over: full at once');
  });
});
