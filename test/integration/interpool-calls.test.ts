// Calls between pools by the published topology (issue 10 §4, DESIGN §7): real UserAgents homed on
// pool01 call users homed on pool02 through real `dnslb server` processes (six Front Ends following
// one file store, 127.0.50.111–116). pool01's servers send each call to the callee's home server in
// pool02 by the callee's sequence there — no DNS — and to the next server when one fails:
// 1. 200 calls complete;
// 2. the callee's home server is killed: the next calls reach those callees at their backup server;
// 3. a blocked server gets no request from another pool (its counter), calls still complete;
// 4. a server removed from the topology gets none either.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UserAgent } from '../../src/client/user-agent.ts';
import { sequencerOf } from '../../src/pool/routing.ts';
import { startMultiPool, type MultiPool } from '../helpers/multi-pool.ts';
import { waitUntil } from '../helpers/process.ts';

const PAIRS = 50;
const POOL01 = ['fe1', 'fe2', 'fe3'].map((name) => `${name}.contoso.com`);
const POOL02 = ['fe4', 'fe5', 'fe6'].map((name) => `${name}.contoso.com`);
let system: MultiPool;
const callers: UserAgent[] = [];
const callees: UserAgent[] = [];

before(async () => {
  system = await startMultiPool({ prefix: '127.0.50', offset: 100, servers: [...POOL01, ...POOL02] });
  const pool01 = system.poolAddresses('pool01.contoso.com');
  const pool02 = system.poolAddresses('pool02.contoso.com');
  for (let n = 0; n < PAIRS; n++) {
    const options = { transport: 'tcp' as const, keepAliveIntervalMs: 600_000, backoffBaseMs: 300, backoffMaxMs: 2000, connect: { connectTimeoutMs: 1000 } };
    callers.push(new UserAgent({ aor: `sip:user${n}@contoso.com`, locator: system.locator(pool01, n), ...options }));
    callees.push(new UserAgent({ aor: `sip:dub-user${n}@contoso.com`, locator: system.locator(pool02, n), answerDelayMs: 0, ...options }));
  }
  await Promise.all([...callers, ...callees].map((agent) => agent.start()));
  await waitUntil('every user registered', () => [...callers, ...callees].every((agent) => agent.state === 'registered'), { timeoutMs: 60_000 });
});

after(async () => {
  await Promise.all([...callers, ...callees].map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
  await system?.stop();
});

/** One call: up, then hung up with a 200 to the BYE → 'ok'; else how it failed. */
async function call(caller: UserAgent, callee: UserAgent): Promise<string> {
  const placed = caller.call(callee.aor);
  const outcome = await new Promise<string>((resolve) => {
    placed.once('up', () => resolve('up'));
    placed.once('ended', (info) => resolve(`${caller.aor} → ${callee.aor}: ${info.how} ${info.status ?? ''} ${info.detail ?? ''}`));
  });
  if (outcome !== 'up') return outcome;
  const bye = new Promise<number | null>((resolve) => placed.once('byeAnswered', resolve));
  placed.hangUp();
  const status = await bye;
  return status === 200 ? 'ok' : `${caller.aor} → ${callee.aor}: BYE answered ${status}`;
}

/** Calls caller i → callee i for every pair in `indexes`, all at once; the failures. */
async function callPairs(indexes: readonly number[]): Promise<string[]> {
  const outcomes = await Promise.all(indexes.map((n) => call(callers[n]!, callees[n]!)));
  return outcomes.filter((outcome) => outcome !== 'ok');
}

const all = (): number[] => callees.map((_, n) => n);
const sequenceOf = (agent: UserAgent): string[] => sequencerOf(system.topology.pools.find((pool) => pool.fqdn === 'pool02.contoso.com')!).sequenceOfCanonical(agent.aor);
const at = (fqdn: string): string => `${system.addressOf(fqdn)}:${system.port}`;

async function sum(servers: readonly string[], read: (status: Awaited<ReturnType<MultiPool['status']>>) => number): Promise<number> {
  let total = 0;
  for (const fqdn of servers) if (system.running(fqdn)) total += read(await system.status(fqdn));
  return total;
}

test('200 calls from pool01 users to pool02 users complete, each sent by the topology to the callee home server', { timeout: 120_000 }, async () => {
  for (const agent of callees) assert.equal(agent.server, at(sequenceOf(agent)[0]!), `${agent.aor} at its home server`);
  const failed: string[] = [];
  for (let round = 0; round < 4; round++) failed.push(...(await callPairs(all())));
  assert.deepEqual(failed, []);
  const forwarded = await sum(POOL01, (status) => status.proxy.interPoolForwarded);
  const received = await sum(POOL02, (status) => status.roles.fromOtherPools);
  // INVITE, ACK and BYE of each call go from pool01 to pool02 (ACK and BYE along the Record-Route).
  assert.equal(await sum(POOL01, (status) => status.proxy.interPoolFailovers), 0, 'nothing failed over');
  assert.ok(forwarded >= 200, `${forwarded} INVITEs sent to pool02 by the topology`);
  assert.ok(received >= 3 * 200, `${received} requests received from pool01`);
  console.log(`interpool: 200 calls; pool01 sent ${forwarded} out-of-dialog requests by the topology; pool02 received ${received} requests from pool01`);
});

test('the callee home server is killed: the next calls reach its users at their backup server in pool02', { timeout: 120_000 }, async () => {
  const victims = callees.map((agent, n) => ({ agent, n })).filter(({ agent }) => sequenceOf(agent)[0] === 'fe4.contoso.com');
  assert.ok(victims.length > 5);
  await system.kill('fe4.contoso.com');
  await waitUntil('fe4 users registered elsewhere', () => victims.every(({ agent }) => agent.state === 'registered' && agent.server !== at('fe4.contoso.com')), { timeoutMs: 60_000 });
  for (const { agent } of victims) {
    const backup = sequenceOf(agent).find((fqdn) => fqdn !== 'fe4.contoso.com')!;
    assert.deepEqual([agent.server, agent.registrarMode], [at(backup), 'backup'], `${agent.aor} at its backup server`);
  }
  const failed = await callPairs(victims.map(({ n }) => n));
  assert.deepEqual(failed, []);
  const everyone = await callPairs(all());
  assert.deepEqual(everyone, []);
  console.log(`interpool: fe4 killed; ${victims.length} of its users called at their backup servers; failovers at pool01 ${await sum(POOL01, (status) => status.proxy.interPoolFailovers)}`);
});

test('a blocked server, then a server removed from the topology, receives no request from another pool', { timeout: 180_000 }, async () => {
  await system.store.setAdminState('fe5.contoso.com', 'blocked', { by: 'test', reason: 'interpool test' });
  await waitUntil('pool01 sees fe5 blocked', async () => {
    for (const fqdn of POOL01) if (!(await system.status(fqdn)).resilience.adminUnavailable.includes('fe5.contoso.com')) return false;
    return true;
  }, { timeoutMs: 20_000 });
  const fe5Before = (await system.status('fe5.contoso.com')).roles.fromOtherPools;
  assert.deepEqual(await callPairs(all()), [], 'calls to users on the blocked fe5 still complete (through fe6, over the pool link)');
  assert.equal((await system.status('fe5.contoso.com')).roles.fromOtherPools, fe5Before, 'blocked fe5 received nothing from pool01');
  await system.store.setAdminState('fe5.contoso.com', 'active', { by: 'test', reason: 'interpool test' });

  // fe6 leaves the topology: it drains, its users move to fe5 (fe4 is still down).
  const version = await system.publish(system.yaml.replace(/^.*fe6\.contoso\.com.*\n/m, ''));
  await waitUntil('every server runs the version without fe6', async () => {
    for (const fqdn of [...POOL01, 'fe5.contoso.com']) if ((await system.status(fqdn)).topologyVersion !== version) return false;
    return true;
  }, { timeoutMs: 20_000 });
  await waitUntil('every callee registered, none on fe6', () => callees.every((agent) => agent.state === 'registered' && agent.server !== at('fe6.contoso.com')), { timeoutMs: 90_000 });
  const fe6Before = (await system.status('fe6.contoso.com')).roles.fromOtherPools;
  assert.deepEqual(await callPairs(all()), []);
  assert.equal((await system.status('fe6.contoso.com')).roles.fromOtherPools, fe6Before, 'fe6, out of the topology, received nothing from pool01');
  for (const fqdn of POOL01) assert.ok(!(await system.status(fqdn)).links.open.includes('fe6.contoso.com'), `${fqdn} keeps no link to fe6`);
});
