// npm run bench:sip — REGISTER/s and calls/s with sipp over TCP against one `dnslb server` and against
// Kamailio (registrar + usrloc in memory, TCP) on the same machine, each pinned to core 0 with sipp on
// core 1, 15 s each, three rounds in alternating order (median and spread); then memory per binding at 100,000 bindings once settled, beside Kamailio's shared memory. Writes bench/RESULTS.md.
import { machineLine, median, writeSection } from './results.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';

import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePortPair, REPO, startPool, type RunningPool } from '../test/helpers/frontend-pool.ts';
import { start, waitUntil, type Running } from '../test/helpers/process.ts';
import { REGISTER_CONTACT, REGISTER_ONCE, runSipp, startSipp, UAC_CALL, UAS_ANSWER } from '../test/helpers/sipp-scenarios.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 15);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
/**
 * BENCH_SIP_ONLY=register: only dnslb's REGISTER/s, printed and not written to RESULTS.md (for
 * before/after comparisons); BENCH_SIP_REPO=DIR runs the `dnslb server` of another checkout (e.g. main).
 */
const ONLY = process.env['BENCH_SIP_ONLY'];
const SERVER_REPO = process.env['BENCH_SIP_REPO'];
const SERVER_CORE = '0';
const LOAD_CORE = '1';
const DNSLB_ADDRESS = '127.0.6.200';
const KAMAILIO_ADDRESS = '127.0.6.201';
const UAS_ADDRESS = '127.0.6.202';
const SIPP_ADDRESS = '127.0.6.203';
const OUT = join(REPO, 'bench', 'out', 'sip');
/** Kamailio's control socket (ctl module), for `kamcmd core.shmmem`. */
const CONTROL_SOCKET = join(OUT, 'kamailio.ctl');
const MEMORY_USERS = 100_000;


function successful(stdout: string): number {
  const match = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(stdout);
  return match ? Number(match[1]) : 0;
}

/** Connections of the many-connections shape (sipp -t tn: each REGISTER on one of this many sockets, round robin). */
const MANY_CONNECTIONS = 5000;

/** REGISTER/s over one connection (400 in flight), or over MANY_CONNECTIONS connections. */
async function registerRate(target: string, shape: 'one' | 'many' = 'one'): Promise<number> {
  const transport = shape === 'one' ? ['-t', 't1', '-max_socket', '1000'] : ['-t', 'tn', '-max_socket', String(MANY_CONNECTIONS)];
  const result = await runSipp(OUT, ['-sf', 'register.xml', '-inf', 'users.csv', ...transport, '-i', SIPP_ADDRESS, '-p', '0', '-r', '200000', '-l', '400', '-timeout', `${SECONDS}s`, target], { taskset: LOAD_CORE, timeoutMs: (SECONDS + 30) * 1000 });
  return successful(result.stdout) / SECONDS;
}

async function callRate(target: string, registrarTarget: string): Promise<number> {
  const uasPort = await freePortPair([UAS_ADDRESS]);
  writeFileSync(join(OUT, 'callee.csv'), `SEQUENTIAL\ncallee;${UAS_ADDRESS}:${uasPort}\n`);
  const registered = await runSipp(OUT, ['-sf', 'register-contact.xml', '-inf', 'callee.csv', '-t', 't1', '-i', SIPP_ADDRESS, '-p', '0', '-m', '1', '-timeout', '10s', registrarTarget]);
  if (registered.code !== 0) throw new Error(`callee REGISTER failed: ${registered.stderr}`);
  const uas = startSipp(OUT, ['-sf', 'uas.xml', '-t', 't1', '-i', UAS_ADDRESS, '-p', String(uasPort), '-max_socket', '1000']);
  try {
    await sleep(500);
    const result = await runSipp(OUT, ['-sf', 'uac.xml', '-inf', 'call.csv', '-t', 't1', '-i', SIPP_ADDRESS, '-p', '0', '-r', '100000', '-l', '200', '-max_socket', '1000', '-timeout', `${SECONDS}s`, target], { taskset: LOAD_CORE, timeoutMs: (SECONDS + 30) * 1000 });
    return successful(result.stdout) / SECONDS;
  } finally {
    await uas.stop();
  }
}

function startKamailio(port: number): Running {
  const config = `#!KAMAILIO
debug=0
log_stderror=yes
children=2
tcp_children=2
tcp_max_connections=20000
disable_tcp=no
auto_aliases=no
listen=tcp:${KAMAILIO_ADDRESS}:${port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "rr.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "ctl.so"
modparam("usrloc", "db_mode", 0)
modparam("ctl", "binrpc", "unix:${CONTROL_SOCKET}")
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    sl_send_reply("404", "Not here"); exit;
  }
  if (is_method("REGISTER")) { if (!save("location")) sl_reply_error(); exit; }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  record_route();
  if (!lookup("location")) { sl_send_reply("480", "Not registered"); exit; }
  t_relay();
}
`;
  writeFileSync(join(OUT, 'kamailio.cfg'), config);
  return start('kamailio', ['-f', join(OUT, 'kamailio.cfg'), '-DD', '-E', '-Y', OUT, '-P', join(OUT, 'kamailio.pid'), '-m', '512'], { taskset: SERVER_CORE });
}

async function dnslbPool(): Promise<RunningPool> {
  return startPool({ addresses: [DNSLB_ADDRESS], taskset: SERVER_CORE, serverArgs: ['--connections-max', '20000'], repo: SERVER_REPO });
}

type Server = 'dnslb' | 'kamailio';
interface Rates { register: number; registerMany: number; calls: number }

/** One run against a fresh `dnslb server`: REGISTER/s, then calls/s. */
async function measureDnslb(): Promise<Rates> {
  const pool = await dnslbPool();
  const target = `${DNSLB_ADDRESS}:${pool.tcpPort}`;
  try {
    // The many-connections shape last: thousands of connections left behind slow what follows.
    const register = await registerRate(target);
    const calls = await callRate(target, target);
    return { register, calls, registerMany: await registerRate(target, 'many') };
  } finally {
    await pool.stop();
  }
}

/** One run against a fresh Kamailio. */
async function measureKamailio(port: number): Promise<Rates> {
  rmSync(join(OUT, 'kamailio.pid'), { force: true });
  const kamailio = startKamailio(port);
  try {
    await waitUntil('kamailio pid file', () => existsSync(join(OUT, 'kamailio.pid')), { process: kamailio });
    await sleep(500);
    const target = `${KAMAILIO_ADDRESS}:${port}`;
    // The many-connections shape last: thousands of connections left behind slow what follows.
    const register = await registerRate(target);
    const calls = await callRate(target, target);
    return { register, calls, registerMany: await registerRate(target, 'many') };
  } finally {
    await kamailio.stop();
  }
}

/** "| label | median (low–high) | median (low–high) |" */
function rateRow(label: string, measured: Record<Server, Rates[]>, key: keyof Rates): string {
  const cell = (runs: Rates[]) => {
    const values = runs.map((rates) => rates[key]);
    return `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
  };
  return `| ${label} | ${cell(measured.dnslb)} | ${cell(measured.kamailio)} |`;
}

/** Registers MEMORY_USERS distinct users at `target` (one sipp connection) and checks every one was answered 200. */
async function registerMany(target: string): Promise<void> {
  const result = await runSipp(OUT, ['-sf', 'register.xml', '-inf', 'users.csv', '-t', 't1', '-i', SIPP_ADDRESS, '-p', '0', '-m', String(MEMORY_USERS), '-r', '200000', '-l', '400', '-max_socket', '1000', '-timeout', '120s', target], { taskset: LOAD_CORE, timeoutMs: 150_000 });
  if (successful(result.stdout) !== MEMORY_USERS) throw new Error(`expected ${MEMORY_USERS} REGISTERs answered 200, got ${successful(result.stdout)}`);
}

/**
 * Reads `sample` once a second for 60 s and returns the reading with the smallest first number
 * (RSS) and when it was taken: right after a burst, V8's heap still holds the burst's garbage and
 * its young generation at full size; its memory reducer gives them back once the process has been
 * idle for a while — after 8 s in one run, after more than 30 s in another, with the RSS flat until
 * then (so flatness is no sign of being settled). The smallest reading is a size the process really
 * had while holding every binding: what a server holding 100,000 bindings costs.
 */
async function settled(sample: () => Promise<[number, number]>): Promise<{ value: [number, number]; atS: number }> {
  const startedMs = Date.now();
  let best: { value: [number, number]; atS: number } | undefined;
  while (Date.now() - startedMs < 60_000) {
    const value = await sample();
    if (!best || value[0] < best.value[0]) best = { value, atS: Math.round((Date.now() - startedMs) / 1000) };
    await sleep(1000);
  }
  return best!;
}

async function dnslbMemoryPerBinding(): Promise<{ rss: number; heap: number; settledS: number }> {
  const pool = await dnslbPool();
  const memory = async (): Promise<[number, number]> => {
    const { rssBytes, heapUsedBytes } = (await pool.status(0)).memory;
    return [rssBytes, heapUsedBytes];
  };
  try {
    const before = await settled(memory);
    await registerMany(`${DNSLB_ADDRESS}:${pool.tcpPort}`);
    const status = await pool.status(0);
    if (status.bindings.bindings !== MEMORY_USERS) throw new Error(`expected ${MEMORY_USERS} bindings, got ${status.bindings.bindings}`);
    const after = await settled(memory);
    return { rss: (after.value[0] - before.value[0]) / MEMORY_USERS, heap: (after.value[1] - before.value[1]) / MEMORY_USERS, settledS: after.atS };
  } finally {
    await pool.stop();
  }
}

/** Kamailio's shared memory in use (`kamcmd core.shmmem`: usrloc keeps its bindings there), bytes. */
function kamailioShmUsed(): number {
  const output = execFileSync('kamcmd', ['-s', `unix:${CONTROL_SOCKET}`, 'core.shmmem']).toString();
  const used = /\bused:\s*(\d+)/.exec(output);
  if (!used) throw new Error(`kamcmd core.shmmem: no "used" in ${JSON.stringify(output)}`);
  return Number(used[1]);
}

async function kamailioMemoryPerBinding(port: number): Promise<number> {
  rmSync(join(OUT, 'kamailio.pid'), { force: true });
  const kamailio = startKamailio(port);
  try {
    await waitUntil('kamailio control socket', () => existsSync(CONTROL_SOCKET), { process: kamailio });
    const before = kamailioShmUsed();
    await registerMany(`${KAMAILIO_ADDRESS}:${port}`);
    const after = await settled(async () => [kamailioShmUsed(), 0]);
    return (after.value[0] - before) / MEMORY_USERS;
  } finally {
    await kamailio.stop();
  }
}

async function main(): Promise<void> {
  for (const tool of ['sipp', 'kamailio', 'taskset']) execFileSync('bash', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'users.csv'), `SEQUENTIAL\n${Array.from({ length: MEMORY_USERS }, (_, index) => `b${index}`).join('\n')}\n`);
  writeFileSync(join(OUT, 'register.xml'), REGISTER_ONCE);
  writeFileSync(join(OUT, 'register-contact.xml'), REGISTER_CONTACT);
  writeFileSync(join(OUT, 'uas.xml'), UAS_ANSWER);
  writeFileSync(join(OUT, 'uac.xml'), UAC_CALL.replace('<pause milliseconds="100"/>', ''));
  writeFileSync(join(OUT, 'call.csv'), 'SEQUENTIAL\ncaller;callee\n');

  const rows: string[] = [];
  if (ONLY === 'register') {
    const only = await dnslbPool();
    try {
      console.log(`dnslb${SERVER_REPO ? ` (${SERVER_REPO})` : ''}: ${(await registerRate(`${DNSLB_ADDRESS}:${only.tcpPort}`)).toFixed(0)} REGISTER/s`);
    } finally {
      await only.stop();
    }
    return;
  }
  // Rounds in the order dnslb, Kamailio, Kamailio, dnslb, dnslb, Kamailio…: neither server always
  // runs first (a warm or cold machine) and each figure is the median of ROUNDS runs.
  const kamailioPort = await freePortPair([KAMAILIO_ADDRESS]);
  const measured: Record<Server, Rates[]> = { dnslb: [], kamailio: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: Server[] = round % 2 === 0 ? ['dnslb', 'kamailio'] : ['kamailio', 'dnslb'];
    for (const server of order) {
      const rates = server === 'dnslb' ? await measureDnslb() : await measureKamailio(kamailioPort);
      measured[server].push(rates);
      console.log(`round ${round + 1}/${ROUNDS} ${server}: ${rates.register.toFixed(0)} REGISTER/s (one connection), ${rates.registerMany.toFixed(0)} (${MANY_CONNECTIONS} connections), ${rates.calls.toFixed(0)} calls/s`);
    }
  }
  rows.push(rateRow('REGISTER/s (TCP, one connection, 400 in flight)', measured, 'register'));
  rows.push(rateRow(`REGISTER/s (TCP, ${MANY_CONNECTIONS.toLocaleString('en')} connections, 400 in flight)`, measured, 'registerMany'));
  rows.push(rateRow('calls/s (INVITE/100/180/200/ACK/BYE/200, UAS connected, 200 in flight)', measured, 'calls'));
  const dnslbRegister = measured.dnslb.map((rates) => rates.register);
  const steadiness = median(dnslbRegister) / Math.max(...dnslbRegister);

  // Memory per binding at 100,000 bindings, once the process has settled (see settled()).
  const dnslbMemory = await dnslbMemoryPerBinding();
  const kamailioMemory = await kamailioMemoryPerBinding(kamailioPort);
  rows.push(`| memory per binding at 100,000 bindings, settled: the smallest of 60 readings a second after the load (dnslb: RSS growth / heap growth; Kamailio: shared memory used growth) | ${dnslbMemory.rss.toFixed(0)} B / ${dnslbMemory.heap.toFixed(0)} B (smallest reading of 60 s after the load, at ${dnslbMemory.settledS} s) | ${kamailioMemory.toFixed(0)} B |`);
  console.log(`dnslb: ${dnslbMemory.rss.toFixed(0)} B RSS, ${dnslbMemory.heap.toFixed(0)} B heap per binding; Kamailio ${kamailioMemory.toFixed(0)} B shm per binding`);

  const kamailioVersion = execFileSync('kamailio', ['-v']).toString().split('\n')[0]?.trim();
  // sipp -v exits non-zero; only its output matters.
  const sippVersion = spawnSync('sipp', ['-v']).stdout.toString().match(/SIPp v[^\s,]+/)?.[0]?.replace(/\.$/, '') ?? 'sipp';
  const section = `
${machineLine()}; ${kamailioVersion}; ${sippVersion}.
Each server pinned to core ${SERVER_CORE} (\`taskset\`), sipp to core ${LOAD_CORE}; ${SECONDS} s per run; SIP over TCP on loopback.
${ROUNDS} rounds, the order alternated (dnslb, Kamailio, Kamailio, dnslb, …); each cell is the median of the runs with the lowest–highest in brackets.
dnslb's REGISTER median is ${(100 * steadiness).toFixed(0)} % of its best run (issue 15's steadiness goal: ≥ 90 %).
Kamailio: registrar + usrloc in memory (db_mode 0), tm/rr for calls, children=2, tcp_children=2. dnslb: one \`dnslb server\` process (one pool member, no peers).

| | dnslb | Kamailio |
|---|---|---|
${rows.join('\n')}

The ${MANY_CONNECTIONS.toLocaleString('en')}-connection row is limited by the load generator, not the servers: one sipp process in \`-t tn\` mode manages that many sockets at a few hundred REGISTER/s against either server (Kamailio and dnslb alike), so it shows only that both serve that many connections; a generator that can drive them (several sipp processes, or a Node one) is still to be written.

Run with \`npm run bench:sip\` (BENCH_SECONDS to change the duration of a run, BENCH_ROUNDS the number of rounds). The machine is shared with other work, so figures vary by ±10–20 % between runs.
`;
  await writeSection('SIP: dnslb server vs Kamailio', section);
  console.log(section);
}

await main();
