// npm run bench:sip — REGISTER/s and calls/s with sipp over TCP against one `dnslb server` and against
// Kamailio (registrar + usrloc in memory, TCP) on the same machine, each pinned to core 0 with sipp on
// core 1, 15 s each, three rounds in alternating order (median and spread); then bytes of memory per binding at 100,000 bindings. Writes bench/RESULTS.md.
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


function successful(stdout: string): number {
  const match = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(stdout);
  return match ? Number(match[1]) : 0;
}

async function registerRate(target: string): Promise<number> {
  const result = await runSipp(OUT, ['-sf', 'register.xml', '-inf', 'users.csv', '-t', 't1', '-i', SIPP_ADDRESS, '-p', '0', '-r', '200000', '-l', '400', '-max_socket', '1000', '-timeout', `${SECONDS}s`, target], { taskset: LOAD_CORE, timeoutMs: (SECONDS + 30) * 1000 });
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
modparam("usrloc", "db_mode", 0)
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
interface Rates { register: number; calls: number }

/** One run against a fresh `dnslb server`: REGISTER/s, then calls/s. */
async function measureDnslb(): Promise<Rates> {
  const pool = await dnslbPool();
  const target = `${DNSLB_ADDRESS}:${pool.tcpPort}`;
  try {
    return { register: await registerRate(target), calls: await callRate(target, target) };
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
    return { register: await registerRate(target), calls: await callRate(target, target) };
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

async function main(): Promise<void> {
  for (const tool of ['sipp', 'kamailio', 'taskset']) execFileSync('bash', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'users.csv'), `SEQUENTIAL\n${Array.from({ length: 100_000 }, (_, index) => `b${index}`).join('\n')}\n`);
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
      console.log(`round ${round + 1}/${ROUNDS} ${server}: ${rates.register.toFixed(0)} REGISTER/s, ${rates.calls.toFixed(0)} calls/s`);
    }
  }
  rows.push(rateRow('REGISTER/s (TCP, one connection, 400 in flight)', measured, 'register'));
  rows.push(rateRow('calls/s (INVITE/100/180/200/ACK/BYE/200, UAS connected, 200 in flight)', measured, 'calls'));
  const dnslbRegister = measured.dnslb.map((rates) => rates.register);
  const steadiness = median(dnslbRegister) / Math.max(...dnslbRegister);

  // Memory per binding at 100,000 bindings (dnslb).
  const pool = await dnslbPool();
  let perBindingRss: number;
  let perBindingHeap: number;
  try {
    await sleep(1000);
    const before = await pool.status(0);
    const result = await runSipp(OUT, ['-sf', 'register.xml', '-inf', 'users.csv', '-t', 't1', '-i', SIPP_ADDRESS, '-p', '0', '-m', '100000', '-r', '200000', '-l', '400', '-max_socket', '1000', '-timeout', '120s', `${DNSLB_ADDRESS}:${pool.tcpPort}`], { taskset: LOAD_CORE, timeoutMs: 150_000 });
    await sleep(2000);
    const after = await pool.status(0);
    if (after.bindings.bindings !== 100_000) throw new Error(`expected 100,000 bindings, got ${after.bindings.bindings} (${successful(result.stdout)} REGISTERs answered 200)`);
    perBindingRss = (after.memory.rssBytes - before.memory.rssBytes) / 100_000;
    perBindingHeap = (after.memory.heapUsedBytes - before.memory.heapUsedBytes) / 100_000;
  } finally {
    await pool.stop();
  }
  rows.push(`| memory per binding at 100,000 bindings (RSS growth / heap growth) | ${perBindingRss.toFixed(0)} B / ${perBindingHeap.toFixed(0)} B | — |`);
  console.log(`dnslb: ${perBindingRss.toFixed(0)} B RSS, ${perBindingHeap.toFixed(0)} B heap per binding`);

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

Run with \`npm run bench:sip\` (BENCH_SECONDS to change the duration of a run, BENCH_ROUNDS the number of rounds). The machine is shared with other work, so figures vary by ±10–20 % between runs.
`;
  await writeSection('SIP: dnslb server vs Kamailio', section);
  console.log(section);
}

await main();
