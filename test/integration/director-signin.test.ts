// Sign-in through the Director pool (issue 10 §3, DESIGN §7): 1,000 real UserAgents — half homed on
// pool01 (the default), half on pool02 (the `dub-*` rule) — discover only the two Directors (in a
// rotated order, as DNS would give them) and follow the Directors' 301 to their home pool. Every user
// ends at its home server in its home pool in primary mode; the Directors hold no binding; one
// Director is killed (SIGKILL) while users are signing in and no user is lost: clients walk to the
// next address. Real `dnslb server` processes (8) following one file store, on 127.0.50.x.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UserAgent } from '../../src/client/user-agent.ts';
import { sequencerOf } from '../../src/pool/routing.ts';
import { startMultiPool, type MultiPool } from '../helpers/multi-pool.ts';
import { waitUntil } from '../helpers/process.ts';

const USERS = 1000;
let system: MultiPool;
const agents: UserAgent[] = [];

before(async () => {
  system = await startMultiPool({ prefix: '127.0.50' });
});

after(async () => {
  await Promise.all(agents.map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
  await system?.stop();
});

function userOf(n: number): string {
  return n % 2 === 0 ? `sip:user${n}@contoso.com` : `sip:dub-user${n}@contoso.com`;
}

/** The user's home server: the first of its sequence in its home pool (every server is up). */
function homeOf(user: string): { pool: string; server: string } {
  const pool = system.topology.pools.find((candidate) => candidate.fqdn === (user.includes('dub-') ? 'pool02.contoso.com' : 'pool01.contoso.com'))!;
  return { pool: pool.fqdn, server: sequencerOf(pool).sequenceOfCanonical(user)[0]! };
}

test('1,000 users sign in through the Directors, each ends at its home server in its home pool; a Director killed during sign-in loses nobody', { timeout: 300_000 }, async () => {
  const directors = system.poolAddresses('dirpool.contoso.com');
  for (let n = 0; n < USERS; n++) {
    agents.push(new UserAgent({ aor: userOf(n), locator: system.locator(directors, Math.floor(n / 2)), transport: 'tcp', keepAliveIntervalMs: 600_000, backoffBaseMs: 300, backoffMaxMs: 2000, connect: { connectTimeoutMs: 1000 } }));
  }
  const registered = (): number => agents.filter((agent) => agent.state === 'registered').length;
  const startedAtMs = Date.now();
  // Sign in 50 at a time in the background; dir1 is killed once 300 are in, with sign-ins in flight.
  const signingIn = (async () => {
    for (let first = 0; first < agents.length; first += 50) await Promise.all(agents.slice(first, first + 50).map((agent) => agent.start()));
  })();
  await waitUntil('300 users registered', () => registered() >= 300, { timeoutMs: 120_000 });
  const dir1Before = await system.status('dir1.contoso.com');
  await system.kill('dir1.contoso.com');
  const killedAt = registered();
  await signingIn;
  await waitUntil('every user registered', () => registered() === USERS, { timeoutMs: 120_000 });
  const tookMs = Date.now() - startedAtMs;

  // Every user at its home server, in its home pool, primary.
  const wrong: string[] = [];
  for (const agent of agents) {
    const home = homeOf(agent.aor);
    const expected = `${system.addressOf(home.server)}:${system.port}`;
    if (agent.server !== expected || agent.registrarMode !== 'primary') wrong.push(`${agent.aor}: at ${agent.server} (${agent.registrarMode}), home ${home.server} ${expected}`);
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} users not at their home server`);

  // Each Front End holds exactly the users whose home it is; the Directors hold nobody.
  const frontEnds = ['fe1', 'fe2', 'fe3', 'fe4', 'fe5', 'fe6'].map((name) => `${name}.contoso.com`);
  let held = 0;
  for (const fqdn of frontEnds) {
    const users = (await system.users(fqdn)).map((entry) => entry.user).sort();
    const expected = agents.map((agent) => agent.aor).filter((aor) => homeOf(aor).server === fqdn).sort();
    assert.deepEqual(users, expected, `${fqdn} holds exactly its users`);
    held += users.length;
  }
  assert.equal(held, USERS);
  const dir2 = await system.status('dir2.contoso.com');
  assert.equal(dir1Before.bindings.users, 0, 'dir1 held no binding before it was killed');
  assert.equal(dir2.bindings.users, 0, 'dir2 holds no binding');
  assert.equal(dir2.registrar.registersAccepted, 0);
  assert.equal(dir2.roles.role, 'director');
  assert.ok(dir1Before.roles.redirectHome.redirected > 0 && dir2.roles.redirectHome.redirected > 0, 'both Directors redirected');
  const walked = agents.filter((_agent, n) => Math.floor(n / 2) % 2 === 0 && n >= killedAt).length; // users discovering dir1 first after the kill
  console.log(`director sign-in: ${USERS} users in ${(tookMs / 1000).toFixed(1)} s; dir1 killed at ${killedAt} registered; redirects dir1 ${dir1Before.roles.redirectHome.redirected} (before the kill), dir2 ${dir2.roles.redirectHome.redirected}; ~${walked} later users had dir1 first and walked to dir2`);
});
