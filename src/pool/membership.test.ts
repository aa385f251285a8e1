// The membership table as tables: a real Heartbeat on a FakeClock makes the view (peers answering,
// silent, draining), the admin states and the topology are laid on top, and each row says who is
// available, reachable and movable from fe1's side.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { Heartbeat } from './heartbeat.ts';
import type { ProbeResult, ReportedState } from './member-state.ts';
import {
  adminViewOf,
  availableMembers,
  createMembership,
  isAvailable,
  isDoubted,
  isMovable,
  isReachable,
  isRoutable,
  livenessRecords,
  withAdminState,
  withAdminUnavailable,
  withConsensus,
  withMembers,
  withOwnState,
  withPeerAvailable,
  withRemovedFromTopology,
  type Membership,
} from './membership.ts';
import type { AdminState, LivenessRecord, MemberState } from '../store/store.ts';
import { consensus } from './health.ts';

const SELF = 'fe1.contoso.com';
const POOL = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const SETTINGS = { intervalMs: 1000, failAfter: 3, riseAfter: 2 };

/** What each peer does when probed: answer with a state, or stay silent (a miss). */
type Behaviour = ReportedState | 'silent';

/** A Heartbeat from fe1 to `peers` after `probes` probes of each (one per interval) on a FakeClock. */
async function heartbeatAfter(peers: readonly string[], behaviour: Record<string, Behaviour>, probes: number): Promise<Heartbeat> {
  const clock = new FakeClock();
  const probe = async (peer: string): Promise<ProbeResult> => {
    const does = behaviour[peer] ?? 'silent';
    return does === 'silent' ? { ok: false, reason: 'no answer' } : { ok: true, reportedState: does, topologyVersion: 1 };
  };
  const heartbeat = new Heartbeat(SELF, peers.filter((peer) => peer !== SELF), probe, SETTINGS, clock);
  if (probes === 0) return heartbeat;
  heartbeat.start(); // the first probe of each peer goes out at once
  for (let probe = 1; probe < probes; probe++) {
    await new Promise((resolve) => setImmediate(resolve)); // let the probes settle
    clock.advance(SETTINGS.intervalMs);
  }
  await new Promise((resolve) => setImmediate(resolve));
  heartbeat.stop();
  return heartbeat;
}

interface Row {
  name: string;
  behaviour: Record<string, Behaviour>;
  probes: number;
  /** The heartbeat's peers when not the pool (a commissioned server is probed from the version that adds it). */
  peers?: string[];
  change?: (table: Membership) => Membership;
  available: string[];
  reachable: string[];
  movable: string[];
}

const admin = (states: Record<string, AdminState>) => (table: Membership): Membership => {
  const view = adminViewOf(table.self, new Map(Object.entries(states)));
  return withAdminUnavailable(withAdminState(table, view.own), view.unavailable).table;
};

const ROWS: Row[] = [
  {
    name: 'at start nothing is known: every member is a home, nobody is reachable or movable but self',
    behaviour: {}, probes: 0,
    available: POOL, reachable: [], movable: [SELF],
  },
  {
    name: 'both peers answer: all three everywhere',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1,
    available: POOL, reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: POOL,
  },
  {
    name: 'fe3 silent for fewer than failAfter probes: suspect, still everything',
    behaviour: { 'fe2.contoso.com': 'active' }, probes: 2,
    available: POOL, reachable: ['fe2.contoso.com'], movable: ['fe1.contoso.com', 'fe2.contoso.com'],
  },
  {
    name: 'fe3 silent for failAfter probes: down, out of every list',
    behaviour: { 'fe2.contoso.com': 'active' }, probes: 3,
    available: ['fe1.contoso.com', 'fe2.contoso.com'], reachable: ['fe2.contoso.com'], movable: ['fe1.contoso.com', 'fe2.contoso.com'],
  },
  {
    name: 'fe2 says it is draining: no home, no target, but its users\' bindings are still reached through it',
    behaviour: { 'fe2.contoso.com': 'draining', 'fe3.contoso.com': 'active' }, probes: 1,
    available: ['fe1.contoso.com', 'fe3.contoso.com'], reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: ['fe1.contoso.com', 'fe3.contoso.com'],
  },
  {
    name: 'the store says fe2 is draining before its heartbeat does: no home, no target, still reached for its bindings',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1,
    change: admin({ 'fe2.contoso.com': 'draining' }),
    available: ['fe1.contoso.com', 'fe3.contoso.com'], reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: ['fe1.contoso.com', 'fe3.contoso.com'],
  },
  {
    name: 'fe2 blocked: no home, no target, but still reachable (it keeps its users until they leave)',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1,
    change: admin({ 'fe2.contoso.com': 'blocked' }),
    available: ['fe1.contoso.com', 'fe3.contoso.com'], reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: ['fe1.contoso.com', 'fe3.contoso.com'],
  },
  {
    name: 'this server blocked: no home for new users, but it keeps (and is a target for) its own',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1,
    change: admin({ 'fe1.contoso.com': 'blocked' }),
    available: ['fe2.contoso.com', 'fe3.contoso.com'], reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: POOL,
  },
  {
    name: 'this server draining (own state): nobody\'s home or target, itself included',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1,
    change: (table) => withOwnState(table, 'draining'),
    available: ['fe2.contoso.com', 'fe3.contoso.com'], reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: ['fe2.contoso.com', 'fe3.contoso.com'],
  },
  {
    name: 'this server left out of the topology: it takes nobody',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1,
    change: withRemovedFromTopology,
    available: ['fe2.contoso.com', 'fe3.contoso.com'], reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: ['fe2.contoso.com', 'fe3.contoso.com'],
  },
  {
    name: 'fe4 commissioned and not heard from: nobody\'s home yet',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1, peers: [...POOL, 'fe4.contoso.com'],
    change: (table) => withMembers(table, [...POOL, 'fe4.contoso.com']).table,
    available: POOL, reachable: ['fe2.contoso.com', 'fe3.contoso.com'], movable: POOL,
  },
  {
    name: 'fe3 removed from the topology: gone from every list',
    behaviour: { 'fe2.contoso.com': 'active', 'fe3.contoso.com': 'active' }, probes: 1,
    change: (table) => withMembers(table, ['fe1.contoso.com', 'fe2.contoso.com']).table,
    available: ['fe1.contoso.com', 'fe2.contoso.com'], reachable: ['fe2.contoso.com'], movable: ['fe1.contoso.com', 'fe2.contoso.com'],
  },
];

test('membership table: available, reachable and movable per row', async () => {
  for (const row of ROWS) {
    const heartbeat = await heartbeatAfter(row.peers ?? POOL, row.behaviour, row.probes);
    let table = createMembership({ self: SELF, members: POOL, heartbeat: heartbeat.view() });
    if (row.change) table = row.change(table);
    const everyone = [...POOL, 'fe4.contoso.com', 'other.fabrikam.com'];
    assert.deepEqual(everyone.filter((fqdn) => isAvailable(table, fqdn)), row.available, `${row.name}: available`);
    assert.deepEqual(everyone.filter((fqdn) => isReachable(table, fqdn)), row.reachable, `${row.name}: reachable`);
    assert.deepEqual(everyone.filter((fqdn) => isMovable(table, fqdn)), row.movable, `${row.name}: movable`);
    assert.deepEqual(availableMembers(table), row.available.filter((fqdn) => table.memberSet.has(fqdn)), `${row.name}: availableMembers`);
  }
});

test('a commissioned peer becomes a home with its first answer, and only then', async () => {
  const heartbeat = await heartbeatAfter([...POOL, 'fe4.contoso.com'], { 'fe4.contoso.com': 'active' }, 0);
  const added = withMembers(createMembership({ self: SELF, members: POOL, heartbeat: heartbeat.view() }), [...POOL, 'fe4.contoso.com']);
  assert.deepEqual(added.added, ['fe4.contoso.com']);
  assert.deepEqual(added.removed, []);
  assert.equal(isAvailable(added.table, 'fe4.contoso.com'), false, 'never heard from');
  const answered = await heartbeatAfter([...POOL, 'fe4.contoso.com'], { 'fe4.contoso.com': 'active' }, 1);
  const table = { ...added.table, heartbeat: answered.view() };
  assert.equal(isAvailable(table, 'fe4.contoso.com'), true, 'answered: available even while still listed as commissioning');
  const after = withPeerAvailable(table, 'fe4.contoso.com');
  assert.equal(after.commissioned, true);
  assert.deepEqual([...after.table.commissioning], []);
  assert.equal(withPeerAvailable(after.table, 'fe4.contoso.com').commissioned, false, 'only the first answer counts as the commission');
});

test('a server coming back from an admin state is reported as returned', () => {
  const table = createMembership({ self: SELF, members: POOL, heartbeat: new Map() });
  const blocked = withAdminUnavailable(table, ['FE2.contoso.com']);
  assert.equal(blocked.returned, false);
  assert.deepEqual([...blocked.table.adminUnavailable], ['fe2.contoso.com'], 'names are compared in lower case');
  assert.equal(withAdminUnavailable(blocked.table, ['fe2.contoso.com', 'fe3.contoso.com']).returned, false);
  assert.equal(withAdminUnavailable(blocked.table, []).returned, true);
});

test('admin states read for this server', () => {
  const rows: [Record<string, AdminState>, { own: AdminState; unavailable: string[] }][] = [
    [{}, { own: 'active', unavailable: [] }],
    [{ 'fe1.contoso.com': 'draining' }, { own: 'draining', unavailable: [] }],
    [{ 'fe1.contoso.com': 'blocked' }, { own: 'blocked', unavailable: ['fe1.contoso.com'] }],
    [{ 'FE2.contoso.com': 'draining', 'fe3.contoso.com': 'blocked' }, { own: 'active', unavailable: ['fe2.contoso.com', 'fe3.contoso.com'] }],
    [{ 'fe2.contoso.com': 'active' }, { own: 'active', unavailable: [] }],
  ];
  for (const [states, expected] of rows) {
    const view = adminViewOf(SELF, new Map(Object.entries(states)));
    assert.deepEqual({ own: view.own, unavailable: view.unavailable }, expected, JSON.stringify(states));
  }
});

test('a version listing this server again clears removedFromTopology and says so', () => {
  const removed = withRemovedFromTopology(createMembership({ self: SELF, members: POOL, heartbeat: new Map() }));
  const back = withMembers(removed, POOL);
  assert.equal(back.wasRemoved, true);
  assert.equal(back.table.removedFromTopology, false);
  assert.equal(isAvailable(back.table, SELF), true);
});

test('liveness records: own state (blocked when blocked and active), then each peer heard from or given up on', async () => {
  // fe2 answers, fe3 misses 1 probe (unknown, not reported) — then 3 (down, reported).
  const early = await heartbeatAfter(POOL, { 'fe2.contoso.com': 'active' }, 1);
  const at = { atMs: 5000, ttlMs: 3000, topologyVersion: 4 };
  const rows: [string, Membership, [string, string][]][] = [
    ['active, fe3 not known yet', createMembership({ self: SELF, members: POOL, heartbeat: early.view() }), [[SELF, 'active'], ['fe2.contoso.com', 'active']]],
    ['blocked', admin({ 'fe1.contoso.com': 'blocked' })(createMembership({ self: SELF, members: POOL, heartbeat: early.view() })), [[SELF, 'blocked'], ['fe2.contoso.com', 'active']]],
    ['draining wins over blocked', withOwnState(admin({ 'fe1.contoso.com': 'blocked' })(createMembership({ self: SELF, members: POOL, heartbeat: early.view() })), 'draining'), [[SELF, 'draining'], ['fe2.contoso.com', 'active']]],
    ['removed from the topology: only itself', withOwnState(withRemovedFromTopology(createMembership({ self: SELF, members: POOL, heartbeat: early.view() })), 'drained'), [[SELF, 'drained']]],
  ];
  for (const [name, table, expected] of rows) {
    const records = livenessRecords(table, at);
    assert.deepEqual(records.map((record) => [record.server, record.state]), expected, name);
    for (const record of records) assert.deepEqual([record.reporter, record.atMs, record.ttlMs, record.topologyVersion], [SELF, 5000, 3000, 4], name);
  }
  // fe3 never answered: after failAfter misses it is down here (not available), but not reported —
  // it may not have been running yet (start-up).
  const late = await heartbeatAfter(POOL, { 'fe2.contoso.com': 'active' }, 3);
  const lateTable = createMembership({ self: SELF, members: POOL, heartbeat: late.view() });
  assert.equal(isAvailable(lateTable, 'fe3.contoso.com'), false);
  assert.deepEqual(livenessRecords(lateTable, at).map((record) => [record.server, record.state]), [[SELF, 'active'], ['fe2.contoso.com', 'active']]);
});

/** A heartbeat from fe1 in which fe2 answers and fe3 answered once, then missed failAfter probes (down here). */
async function fe3LostAfterAnswering(): Promise<Heartbeat> {
  const clock = new FakeClock();
  let fe3Answers = true;
  const probe = async (peer: string): Promise<ProbeResult> => (peer === 'fe3.contoso.com' && !fe3Answers ? { ok: false, reason: 'no answer' } : { ok: true, reportedState: 'active', topologyVersion: 1 });
  const heartbeat = new Heartbeat(SELF, POOL.filter((peer) => peer !== SELF), probe, SETTINGS, clock);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  heartbeat.start();
  await settle();
  fe3Answers = false;
  for (let probes = 0; probes < SETTINGS.failAfter; probes++) {
    clock.advance(SETTINGS.intervalMs);
    await settle();
  }
  heartbeat.stop();
  return heartbeat;
}

test('liveness records: a peer that answered once and then missed failAfter probes is reported down', async () => {
  const heartbeat = await fe3LostAfterAnswering();
  const records = livenessRecords(createMembership({ self: SELF, members: POOL, heartbeat: heartbeat.view() }), { atMs: 5000, ttlMs: 3000, topologyVersion: 4 });
  assert.deepEqual(records.map((record) => [record.server, record.state]), [[SELF, 'active'], ['fe2.contoso.com', 'active'], ['fe3.contoso.com', 'down']]);
});

test('consensus: a peer down here but seen up by another member stays a home (a partition of this pair only); never reachable or movable', async () => {
  const heartbeat = await fe3LostAfterAnswering();
  const base = createMembership({ self: SELF, members: POOL, heartbeat: heartbeat.view() });
  const FE3 = 'fe3.contoso.com';
  const at = (reporter: string, server: string, state: LivenessRecord['state']): LivenessRecord => ({ reporter, server, state, atMs: 1000, ttlMs: 3000, topologyVersion: 1 });
  const withViews = (records: LivenessRecord[]) => withConsensus(base, consensus(POOL, records, 1500));
  const rows: [string, Membership, boolean][] = [
    ['no consensus yet: its own heartbeat decides', base, false],
    ['fe2 and fe3 see fe3 up, fe1 down: up by 2 of 3', withViews([at(SELF, SELF, 'active'), at(SELF, FE3, 'down'), at('fe2.contoso.com', 'fe2.contoso.com', 'active'), at('fe2.contoso.com', FE3, 'active'), at(FE3, FE3, 'active')]), true],
    ['only fe3 itself says up (a tie): nobody else vouches for it', withViews([at(SELF, SELF, 'active'), at(SELF, FE3, 'down'), at(FE3, FE3, 'active')]), false],
    ['fe2 sees it down too: down', withViews([at(SELF, SELF, 'active'), at(SELF, FE3, 'down'), at('fe2.contoso.com', 'fe2.contoso.com', 'active'), at('fe2.contoso.com', FE3, 'down'), at(FE3, FE3, 'active')]), false],
    ['it says itself it is draining', withViews([at(SELF, SELF, 'active'), at('fe2.contoso.com', 'fe2.contoso.com', 'active'), at('fe2.contoso.com', FE3, 'draining'), at(FE3, FE3, 'draining')]), false],
  ];
  for (const [name, table, available] of rows) {
    assert.equal(isAvailable(table, FE3), available, name);
    assert.equal(isReachable(table, FE3), false, `${name}: not reachable from here`);
    assert.equal(isMovable(table, FE3), false, `${name}: no hand-over to it from here`);
  }
  // A peer never heard from here gets no benefit of the doubt (it may not run).
  const never = createMembership({ self: SELF, members: POOL, heartbeat: (await heartbeatAfter(POOL, { 'fe2.contoso.com': 'active' }, 3)).view() });
  const vouched = withConsensus(never, consensus(POOL, [at('fe2.contoso.com', 'fe2.contoso.com', 'active'), at('fe2.contoso.com', FE3, 'active'), at(FE3, FE3, 'active')], 1500));
  assert.equal(isAvailable(vouched, FE3), false);
});

test('a server that left the topology hands its users to peers the consensus sees up, though its own probes go unanswered', async () => {
  // Its former peers no longer recognise it (mutual TLS: not a server of the published topology): its
  // heartbeat holds fe3 down as it would a lost peer; fe2 and fe3 report each other up.
  const heartbeat = await fe3LostAfterAnswering();
  const FE3 = 'fe3.contoso.com';
  const at = (reporter: string, server: string, state: LivenessRecord['state']): LivenessRecord => ({ reporter, server, state, atMs: 1000, ttlMs: 3000, topologyVersion: 2 });
  const upByPool = consensus(POOL, [at('fe2.contoso.com', 'fe2.contoso.com', 'active'), at('fe2.contoso.com', FE3, 'active'), at(FE3, FE3, 'active'), at(FE3, 'fe2.contoso.com', 'active')], 1500);
  const member = withConsensus(createMembership({ self: SELF, members: POOL, heartbeat: heartbeat.view() }), upByPool);
  assert.equal(isMovable(member, FE3), false, 'a member: its own heartbeat decides (a partition of this pair)');
  const removed = withConsensus(withRemovedFromTopology(createMembership({ self: SELF, members: POOL, heartbeat: heartbeat.view() })), upByPool);
  assert.equal(isMovable(removed, FE3), true, 'left the topology: the consensus decides');
  const downByPool = consensus(POOL, [at('fe2.contoso.com', 'fe2.contoso.com', 'active'), at('fe2.contoso.com', FE3, 'down'), at(FE3, FE3, 'active')], 1500);
  assert.equal(isMovable(withConsensus(removed, downByPool), FE3), false, 'and not when the pool sees it down');
});

test('isRoutable: this pool by the heartbeat, other pools by their own pool\'s consensus; admin states for all', async () => {
  const heartbeat = await heartbeatAfter(POOL, { 'fe2.contoso.com': 'active' }, 3);
  const records: LivenessRecord[] = [];
  /** `reporter` says `server` is `state` (a whole view is one record per server it names). */
  const report = (reporter: string, server: string, state: MemberState): void => void records.push({ server, reporter, state, atMs: 1000, ttlMs: 3000, topologyVersion: 1 });
  // pool02: fe4, fe5, fe6. fe4 and fe6 see fe5 down; fe5 cannot say otherwise (it is down).
  for (const reporter of ['fe4.contoso.com', 'fe6.contoso.com']) {
    report(reporter, reporter, 'active');
    report(reporter, 'fe5.contoso.com', 'down');
  }
  report('fe4.contoso.com', 'fe6.contoso.com', 'active');
  report('fe6.contoso.com', 'fe4.contoso.com', 'active');
  // Directors: dir1 drained (its own word), dir2 alone and up.
  report('dir1.contoso.com', 'dir1.contoso.com', 'drained');
  report('dir2.contoso.com', 'dir2.contoso.com', 'active');
  report('dir2.contoso.com', 'dir1.contoso.com', 'drained');
  // A mediation server one peer calls suspect (a miss or two): up.
  report('med1.contoso.com', 'med1.contoso.com', 'active');
  report('med2.contoso.com', 'med2.contoso.com', 'active');
  report('med2.contoso.com', 'med1.contoso.com', 'suspect');
  const everyone = [...new Set(records.flatMap((record) => [record.server, record.reporter]))];
  const base = withAdminUnavailable(createMembership({ self: SELF, members: POOL, heartbeat: heartbeat.view() }), ['fe7.contoso.com']).table;
  const table = withConsensus(base, consensus([...POOL, ...everyone], records, 1500));
  const rows: [string, boolean, string][] = [
    [SELF, false, 'never itself'],
    ['fe2.contoso.com', true, 'a member the heartbeat hears'],
    ['fe3.contoso.com', false, 'a member the heartbeat gave up on'],
    ['fe4.contoso.com', true, 'another pool, up by its pool'],
    ['fe5.contoso.com', false, 'down by the majority of its pool'],
    ['dir1.contoso.com', false, 'drained by its own word'],
    ['dir2.contoso.com', true, 'up'],
    ['med1.contoso.com', true, 'suspect is not down'],
    ['fe7.contoso.com', false, 'blocked (admin) whatever the reports'],
    ['FE4.contoso.com.', true, 'names are canonical'],
    ['fe9.contoso.com', true, 'never reported: unknown is not down'],
  ];
  for (const [server, expected, why] of rows) assert.equal(isRoutable(table, server), expected, `${server}: ${why}`);
});

test('isDoubted: only a peer whose latest probe was answered is not doubted (a client naming the others as silent is believed)', async () => {
  const answered = createMembership({ self: SELF, members: POOL, heartbeat: (await heartbeatAfter(POOL, { 'fe2.contoso.com': 'active' }, 3)).view() });
  assert.deepEqual(
    [SELF, 'fe2.contoso.com', 'fe3.contoso.com', 'fe9.contoso.com'].map((fqdn) => isDoubted(answered, fqdn)),
    [false, false, true, true],
    'self never; fe2 answered; fe3 silent three times (down); fe9 not a member',
  );
  const silentOnce = createMembership({ self: SELF, members: POOL, heartbeat: (await heartbeatAfter(POOL, {}, 1)).view() });
  assert.deepEqual([isDoubted(silentOnce, 'fe2.contoso.com'), isAvailable(silentOnce, 'fe2.contoso.com')], [true, true], 'one miss: suspect — still available, already doubted');
  const neverProbed = createMembership({ self: SELF, members: POOL, heartbeat: (await heartbeatAfter(POOL, {}, 0)).view() });
  assert.equal(isDoubted(neverProbed, 'fe2.contoso.com'), true, 'nothing heard yet');
});
