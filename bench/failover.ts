// Failover benchmark (resilience issue): N users (10,000 by default) signed in to a pool of 3 under
// `dnslb up`, with the client simulator as the load; then, one after the other:
//   fail        SIGKILL one server (kept down): time until all its users are registered again,
//               the spread of its orphans over the survivors, the peak re-registrations/s on each;
//   recovery    start it again: time until its users are back, peak arrivals/s vs the batch rate;
//               fail + recovery are repeated (--rounds, 3 by default) and reported as medians;
//   drain       drain another server: time until drained, where its users went, peak arrivals/s;
//   commission  publish a 4th server: users moved vs the 1/(n+1) minimum, time, peak arrivals/s.
// Moves are counted at the servers: each sender's hand-over counters (users it deactivated, per
// reason) and each receiver's bindings. A scenario ends when the servers say it is over (queues
// empty, states settled, every user registered), never when a count reaches what the plan predicts.
// Run: npm run bench:failover [-- --users N --rounds R]. Not a test: the figures depend on the machine.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEndpoint, readToken } from '../src/admin/credentials.ts';
import { callAdmin } from '../src/admin/http-api.ts';
import { planMoves } from '../src/registrar/sequence.ts';
import { REPO } from '../test/helpers/dns-process.ts';
import { start, type Running } from '../test/helpers/process.ts';
import { startUp, type UpSystem } from '../test/helpers/up.ts';
import { failOne, handedOver, on, PoolSampler, POLL_MS, queuesEmpty, runBenchmark, total, type FailRound, type Sample } from './pool-sample.ts';
import { machineLine, median, writeSection } from './results.ts';

const NET = '127.0.20';
const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
};
const USERS = argument('users', 10_000);
/** Rounds of fail + recovery; the figures are their medians. */
const ROUNDS = argument('rounds', 3);
const FRONTENDS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];

let sampler: PoolSampler;
const sample = () => sampler.sample();
const until = (what: string, done: (sampled: Sample) => boolean) => sampler.until(what, done);
const peaks = (servers: readonly string[], sinceMs: number) => sampler.peaks(servers, sinceMs);

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dnslb-bench-failover-'));
  // The killed server must stay down for the failover figure: no supervisor restart.
  const system: UpSystem = await startUp(NET, { edit: (text) => text.replace('supervisor: { restartDelayMs: 2000 }', 'supervisor: { restartDelayMs: 600000 }') });
  const [url, token] = [(await readEndpoint(system.dataDir)).url, await readToken(system.dataDir)];
  sampler = new PoolSampler({ url, token, dataDir: system.dataDir }, 'pool01.contoso.com');
  const settings = { batchSize: 100, intervalMs: 1000 };
  let simulator: Running | undefined;
  const rows: string[] = [];
  try {
    simulator = start(process.execPath, ['bin/dnslb.js', 'client', 'simulate', '--domain', 'contoso.com', '--dns', `${system.dns.address}:${system.dns.port}`, '--users', String(USERS), '--rate', '2000', '--duration', '3600s', '--summary-every', '3600s', '--backoff-base-ms', '500', '--backoff-max-ms', '5000', '--report', join(work, 'report.json')], { cwd: REPO });
    const signIn = await until('sign-in', (sampled) => total(sampled, FRONTENDS) >= USERS);
    console.log(`${USERS} users signed in after ${signIn.at(-1)!.atMs - signIn[0]!.atMs} ms`);

    // fail, then recovery: ROUNDS times (the same server each time), each figure the median of the
    // rounds with the lowest–highest beside it.
    const victim = 'fe1.contoso.com';
    const survivors = FRONTENDS.filter((server) => server !== victim);
    const fails: FailRound[] = [];
    const recoveries: { ms: number; back: number; handed: number; peaks: string }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      fails.push(await failOne(sampler, victim, survivors, USERS));
      console.log(`round ${round}: failover ${fails.at(-1)!.ms} ms (first backup binding after ${fails.at(-1)!.detectedMs} ms), ${fails.at(-1)!.peaks}`);

      const beforeRecovery = await sample();
      const recoveredAtMs = Date.now();
      await callAdmin(url, token, 'POST', `/servers/${victim}/start`, {});
      const recovery = await until('recovery', (sampled) => sampled.bindings.get(victim)?.state === 'active' && survivors.every((server) => (sampled.bindings.get(server)?.backup ?? 1) === 0) && queuesEmpty(sampled, survivors) && total(sampled, FRONTENDS) >= USERS);
      recoveries.push({ ms: recovery.at(-1)!.atMs - recoveredAtMs, back: on(recovery.at(-1)!, victim), handed: handedOver(beforeRecovery, recovery.at(-1)!, survivors, 'recovery'), peaks: await peaks([victim], recoveredAtMs) });
      console.log(`round ${round}: recovery ${recoveries.at(-1)!.ms} ms, ${recoveries.at(-1)!.peaks}`);
    }
    const spread = (values: number[]) => `${(median(values) / 1000).toFixed(1)} s (${(Math.min(...values) / 1000).toFixed(1)}–${(Math.max(...values) / 1000).toFixed(1)})`;
    const failRound = fails.find((entry) => entry.ms === median(fails.map((entry) => entry.ms))) ?? fails[0]!;
    const share = (index: number) => ((100 * failRound.gained[index]!) / Math.max(1, failRound.orphans)).toFixed(1);
    const detected = fails.map((entry) => entry.detectedMs).filter((ms): ms is number => ms !== null);
    rows.push(`| fail (SIGKILL ${victim}; ${ROUNDS} rounds) | ${failRound.orphans} | ${spread(fails.map((entry) => entry.ms))}; first user at a backup after ${detected.length > 0 ? spread(detected) : 'n/a'} | ${survivors.map((server, index) => `${server.split('.')[0]} ${share(index)} %`).join(', ')} | ${failRound.peaks} |`);
    console.log(rows.at(-1));
    const recoveryRound = recoveries.find((entry) => entry.ms === median(recoveries.map((entry) => entry.ms))) ?? recoveries[0]!;
    rows.push(`| recovery (start ${victim}; ${ROUNDS} rounds) | ${recoveryRound.back} (handed over: ${recoveryRound.handed}) | ${spread(recoveries.map((entry) => entry.ms))} | all to ${victim.split('.')[0]} | ${recoveryRound.peaks} (pool-wide batch ${settings.batchSize} per ${settings.intervalMs} ms, each survivor sending its share) |`);
    console.log(rows.at(-1));

    // drain
    const drained = 'fe2.contoso.com';
    const others = FRONTENDS.filter((server) => server !== drained);
    const beforeDrain = await sample();
    const moving = on(beforeDrain, drained);
    const drainAtMs = Date.now();
    await callAdmin(url, token, 'POST', `/servers/${drained}/drain`, { force: true });
    const drain = await until('drain', (sampled) => sampled.bindings.get(drained)?.state === 'drained' && total(sampled, others) >= USERS);
    const drainGained = others.map((server) => on(drain.at(-1)!, server) - on(beforeDrain, server));
    rows.push(`| drain ${drained} | ${moving} (handed over: ${handedOver(beforeDrain, drain.at(-1)!, [drained], 'drain')}) | ${((drain.at(-1)!.atMs - drainAtMs) / 1000).toFixed(1)} s | ${others.map((server, index) => `${server.split('.')[0]} ${((100 * drainGained[index]!) / Math.max(1, moving)).toFixed(1)} %`).join(', ')} | ${await peaks(others, drainAtMs)} |`);
    console.log(rows.at(-1));
    await callAdmin(url, token, 'POST', `/servers/${drained}/resume`, {});
    await until('resume', (sampled) => sampled.bindings.get(drained)?.state === 'active' && others.every((server) => (sampled.bindings.get(server)?.backup ?? 1) === 0) && total(sampled, FRONTENDS) >= USERS);

    // commission
    const report = JSON.parse(await readFile(join(work, 'report.json'), 'utf8').catch(() => '{"users":[]}')) as { users: { aor: string }[] };
    const users = report.users.length > 0 ? report.users.map((user) => user.aor) : Array.from({ length: USERS }, (_, index) => `sip:user${index + 1}@contoso.com`);
    const plan = planMoves(users, { servers: FRONTENDS }, { servers: [...FRONTENDS, 'fe4.contoso.com'] });
    const text = (await readFile(system.topologyFile, 'utf8')).replace(`      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n`, `      - { fqdn: fe3.contoso.com, ipv4: ${NET}.13 }\n      - { fqdn: fe4.contoso.com, ipv4: ${NET}.14 }\n`);
    const file = join(work, 'with-fe4.yaml');
    await writeFile(file, text);
    const beforeCommission = await sample();
    const commissionAtMs = Date.now();
    const published = await system.cli('topology', 'publish', file);
    if (published.code !== 0) throw new Error(`publish: ${published.stderr}`);
    const version = Number(/ as version (\d+)/.exec(published.stdout)?.[1] ?? NaN);
    const all = [...FRONTENDS, 'fe4.contoso.com'];
    // Over when the servers say so: every one on the new version with fe4 heard from, each sender's
    // queue empty after it handed some users over (each holds some of fe4's share), and every user
    // registered somewhere.
    const settled = (sampled: Sample) =>
      all.every((server) => sampled.bindings.get(server)?.state === 'active' && (Number.isNaN(version) || sampled.bindings.get(server)!.topologyVersion >= version) && sampled.bindings.get(server)!.commissioning === 0) &&
      FRONTENDS.every((server) => handedOver(beforeCommission, sampled, [server], 'commission') > 0) &&
      queuesEmpty(sampled, FRONTENDS) &&
      total(sampled, all) >= USERS;
    const commission = await until('commission', settled);
    const moved = on(commission.at(-1)!, 'fe4.contoso.com');
    const sent = handedOver(beforeCommission, commission.at(-1)!, FRONTENDS, 'commission');
    rows.push(`| commission fe4 | ${moved} on fe4, ${sent} handed over by fe1–fe3 (${((100 * moved) / USERS).toFixed(1)} %; minimum 1/(n+1) = ${((100 * 1) / 4).toFixed(1)} %, planned ${plan.moved}) | ${((commission.at(-1)!.atMs - commissionAtMs) / 1000).toFixed(1)} s | all to fe4 | ${await peaks(['fe4.contoso.com'], commissionAtMs)} |`);
    console.log(rows.at(-1));
  } finally {
    await simulator?.stop();
    await system.stop();
  }
  const body = [
    `${machineLine()}.`,
    `\`npm run bench:failover\`: ${USERS} simulated users (one process, \`dnslb client simulate\`) on a pool of 3 under \`dnslb up\` (DNS, servers and simulator share the 2 cores), default heartbeat (1 s interval, down after 3 misses), re-home batches of 100 per second pool-wide (each sending server releases its share). Times are from the action until the servers say it is over (hand-over queues empty, states settled, every user registered), sampled every ${POLL_MS} ms through the admin API; fail and recovery are repeated ${ROUNDS} times on the same server, each figure the median of the rounds (lowest–highest), the other columns from the median round; "first user at a backup" is the first sample in which a survivor holds a backup binding (detection, consensus and the first client's re-registration); users moved are counted at the servers (the receiver's bindings; "handed over": the senders' own counters of users they deactivated for that reason). Peak arrivals are counted by each receiving server itself (GET /arrivals: users that came to hold a binding there, in 100 ms buckets; the busiest 1 s window since the action) — the senders keep to the rate by their release times (asserted from their batch records in test/integration/pool-resilience.test.ts), and the receiver's count adds the clients' own delays between the NOTIFY and their REGISTER.`,
    '',
    '| scenario | users moved | time until all registered | where they went | peak arrivals per second |',
    '|---|---:|---:|---|---|',
    ...rows,
  ].join('\n');
  console.log(body);
  await writeSection('Failover', body);
}

await runBenchmark(main);
