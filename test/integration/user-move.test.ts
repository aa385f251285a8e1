// `dnslb user move` (issue 10 §2): 300 of 360 users registered on pool01 are moved to pool02 with the
// real CLI; exactly those end in pool02 (at their home servers there), the others stay; each home in
// pool02 receives at most settings.rehome.batchSize of them in any window of rehome.intervalMs —
// measured at the receiving servers (their user counts, sampled all along), not from the senders'
// records. Bad input (a pool that does not exist or is not a frontend pool, a user not in the
// directory) is a clear error that changes nothing. Six `dnslb server` processes on 127.0.50.191–196.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { credentialFor } from '../../src/auth/user-credential.ts';
import { UserAgent } from '../../src/client/user-agent.ts';
import { sequencerOf } from '../../src/pool/routing.ts';
import { runDnslb } from '../helpers/cli.ts';
import { startMultiPool, type MultiPool } from '../helpers/multi-pool.ts';
import { waitUntil } from '../helpers/process.ts';

const MOVERS = 300;
const STAYERS = 60;
const BATCH_SIZE = 30;
const INTERVAL_MS = 1500;
const POOL01 = ['fe1', 'fe2', 'fe3'].map((name) => `${name}.contoso.com`);
const POOL02 = ['fe4', 'fe5', 'fe6'].map((name) => `${name}.contoso.com`);
let system: MultiPool;
const agents: UserAgent[] = [];
const isMover = (n: number): boolean => n < MOVERS;

before(async () => {
  system = await startMultiPool({ prefix: '127.0.50', offset: 180, servers: [...POOL01, ...POOL02], settingsYaml: `  rehome: { batchSize: ${BATCH_SIZE}, intervalMs: ${INTERVAL_MS} }` });
  const pool01 = system.poolAddresses('pool01.contoso.com');
  for (let n = 0; n < MOVERS + STAYERS; n++) {
    const uri = `sip:${isMover(n) ? 'mover' : 'stayer'}${n}@contoso.com`;
    await system.store.addUser({ uri, disabled: false, credential: credentialFor(uri, 'secret', { md5: false }) }, { by: 'test' });
    agents.push(new UserAgent({ aor: uri, locator: system.locator(pool01, n), transport: 'tcp', keepAliveIntervalMs: 600_000, backoffBaseMs: 300, backoffMaxMs: 2000, connect: { connectTimeoutMs: 1000 } }));
  }
  for (let first = 0; first < agents.length; first += 60) await Promise.all(agents.slice(first, first + 60).map((agent) => agent.start()));
  await waitUntil('every user registered', () => agents.every((agent) => agent.state === 'registered'), { timeoutMs: 60_000 });
});

after(async () => {
  await Promise.all(agents.map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
  await system?.stop();
});

const dnslb = (...args: string[]): ReturnType<typeof runDnslb> => runDnslb(['--data-dir', system.dir, ...args]);

test('bad moves are refused with a clear error and change nothing', async () => {
  const director = await dnslb('user', 'move', 'sip:mover0@contoso.com', '--pool', 'dirpool.contoso.com');
  assert.equal(director.code, 1);
  assert.match(director.stderr, /dirpool\.contoso\.com is a director pool; users move to frontend pools \(pool01\.contoso\.com, pool02\.contoso\.com\)/);
  const missing = await dnslb('user', 'move', 'sip:mover0@contoso.com', '--pool', 'pool09.contoso.com');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /pool09\.contoso\.com is not a pool of the topology/);
  const unknown = await dnslb('user', 'move', 'sip:mover0@contoso.com', 'sip:nobody@contoso.com', '--pool', 'pool02.contoso.com');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /STORE_UNKNOWN_USER: 1 user is not in the directory \(add them first\); nothing was moved: sip:nobody@contoso\.com/);
  assert.equal((await system.store.user('sip:mover0@contoso.com'))?.homePool, undefined, 'nothing was written');
});

test('300 users moved to pool02: exactly those end there, each home receives at most batchSize per interval', { timeout: 240_000 }, async () => {
  const moves = join(system.dir, 'moves.csv');
  await writeFile(moves, ['user,pool', ...agents.filter((_, n) => isMover(n)).map((agent) => `${agent.aor},pool02.contoso.com`)].join('\n'));
  const plan = await dnslb('plan', 'move', '--file', moves, '--json');
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal((JSON.parse(plan.stdout) as { moved: number }).moved, MOVERS);
  // Sample each pool02 server's user count all along: [asked at, answered at, users].
  const samples = new Map<string, [number, number, number][]>(POOL02.map((fqdn) => [fqdn, []]));
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await Promise.all(POOL02.map(async (fqdn) => {
        const askedAtMs = Date.now();
        const users = (await system.status(fqdn)).bindings.users;
        samples.get(fqdn)!.push([askedAtMs, Date.now(), users]);
      }));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const startedAtMs = Date.now();
  const moved = await dnslb('user', 'move', '--file', moves);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, /^moved 300 users/);

  const pool02 = new Set(system.poolAddresses('pool02.contoso.com').map((address) => `${address}:${system.port}`));
  await waitUntil('every mover registered in pool02', () => agents.every((agent, n) => agent.state === 'registered' && pool02.has(agent.server ?? '') === isMover(n)), { timeoutMs: 180_000 });
  const tookMs = Date.now() - startedAtMs;
  sampling = false;
  await sampler;

  // Exactly the movers in pool02, each at its home server there; the others untouched in pool01.
  const pool = system.topology.pools.find((candidate) => candidate.fqdn === 'pool02.contoso.com')!;
  for (const fqdn of POOL02) {
    const held = (await system.users(fqdn)).map((entry) => entry.user).sort();
    const expected = agents.filter((agent, n) => isMover(n) && sequencerOf(pool).sequenceOfCanonical(agent.aor)[0] === fqdn).map((agent) => agent.aor).sort();
    assert.deepEqual(held, expected, `${fqdn} holds exactly the movers homed on it`);
  }
  let stayersHeld = 0;
  for (const fqdn of POOL01) stayersHeld += (await system.users(fqdn)).filter((entry) => entry.user.startsWith('sip:stayer')).length;
  assert.equal(stayersHeld, STAYERS);
  assert.ok(agents.every((agent, n) => isMover(n) || agent.stats.deactivations === 0), 'no stayer was deactivated');

  // The rate, at the receiving servers: between two readings of a server's user count that span less
  // than one interval (from the first one's question to the second one's answer), at most batchSize arrived.
  const perServer: string[] = [];
  for (const fqdn of POOL02) {
    const series = samples.get(fqdn)!;
    let most = 0;
    for (let first = 0; first < series.length; first++) {
      for (let last = first + 1; last < series.length && series[last]![1] - series[first]![0] < INTERVAL_MS; last++) most = Math.max(most, series[last]![2] - series[first]![2]);
    }
    perServer.push(`${fqdn} ${series.at(-1)?.[2] ?? 0} users (${series.length} readings), at most ${most} within ${INTERVAL_MS} ms`);
    assert.ok(series.length > 20, `${fqdn} was read ${series.length} times`);
    assert.ok(most <= BATCH_SIZE, `${fqdn} received ${most} moved users within ${INTERVAL_MS} ms (batchSize ${BATCH_SIZE})`);
  }
  let sent = 0;
  for (const fqdn of POOL01) sent += (await system.status(fqdn)).resilience.handover.handedOverTotal['move'] ?? 0;
  assert.equal(sent, MOVERS, 'pool01 handed over exactly the movers');
  console.log(`user move: ${MOVERS} users pool01 → pool02 in ${(tookMs / 1000).toFixed(1)} s (includes up to 5 s until the servers read the directory); ${perServer.join('; ')}`);
});
