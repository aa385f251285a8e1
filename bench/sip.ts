// npm run bench:sip — REGISTER/s and calls/s with sipp over TCP (and over 5,000 TCP connections with
// bench/sip-load.ts) against one `dnslb server` and against
// Kamailio (registrar + usrloc in memory, TCP) on the same machine, each pinned to core 0 with sipp on
// core 1, 15 s each, three rounds in alternating order (median and spread); then memory per binding at 100,000 bindings once settled, beside Kamailio's shared memory. Writes bench/RESULTS.md.
import { loadNote, machineLine, median, treeCpuSeconds, writeSection } from './results.ts';
import { loadavg } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';

import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePortPair, REPO, startPool, type RunningPool } from '../test/helpers/frontend-pool.ts';
import { start, waitUntil, type Running } from '../test/helpers/process.ts';
import { registerWithDigest, REGISTER_CONTACT, REGISTER_ONCE, runSipp, startSipp, UAC_CALL, UAS_ANSWER, writeUsersWithPasswords } from '../test/helpers/sipp-scenarios.ts';
import { createTestCertificates } from '../test/helpers/tls-certs.ts';
import { ha1 } from '../src/auth/digest.ts';
import { syntheticPassword } from '../src/auth/passwords.ts';
import { sipLoad, type LoadResult } from './sip-load.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 15);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
/**
 * BENCH_SIP_ONLY=register: only dnslb's REGISTER/s, printed and not written to RESULTS.md (for
 * before/after comparisons); BENCH_SIP_REPO=DIR runs the `dnslb server` of another checkout (e.g. main).
 */
const ONLY = process.env['BENCH_SIP_ONLY'];
const SERVER_REPO = process.env['BENCH_SIP_REPO'];
/**
 * BENCH_SIP_ONLY=secure: only the TLS and digest rows (their own section of RESULTS.md);
 * BENCH_SIP_ONLY=plain: only the TCP rows and memory (the section "SIP: dnslb server vs Kamailio");
 * BENCH_SIP_ONLY=connections: only TLS over 1,000 and TCP over 5,000 connections, printed (connectionsOnly).
 * BENCH_SIP_ONLY=signin: only the sign-in rows, without and with digest (a few minutes, where the
 * whole secure section takes much longer): their own section "SIP: sign-in with digest authentication".
 */
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

/**
 * Connections of the many-connections shape: bench/sip-load.ts over TCP, one user and one REGISTER in
 * flight on each (one sipp process in `-t tn` mode drove only a few hundred REGISTER/s over this many).
 */
const MANY_CONNECTIONS = 5000;

/** REGISTER/s over one connection (sipp, 400 in flight). */
async function registerRate(target: string): Promise<number> {
  const result = await runSipp(OUT, ['-sf', 'register.xml', '-inf', 'users.csv', '-t', 't1', '-max_socket', '1000', '-i', SIPP_ADDRESS, '-p', '0', '-r', '200000', '-l', '400', '-timeout', `${SECONDS}s`, target], { taskset: LOAD_CORE, timeoutMs: (SECONDS + 30) * 1000 });
  return successful(result.stdout) / SECONDS;
}

/** REGISTER/s over MANY_CONNECTIONS TCP connections (bench/sip-load.ts), with its CPU and the server's. */
async function manyRate(host: string, port: number, serverPid: number): Promise<LoadResult> {
  const result = await sipLoad({ host, port, connections: MANY_CONNECTIONS, prefix: 'many', core: LOAD_CORE, localAddresses: [SIPP_ADDRESS], warmupMs: 2000, windowMs: SECONDS * 1000, serverPid });
  if (result.failed > 0 || result.lost > 0) throw new Error(`TCP load over ${MANY_CONNECTIONS} connections at ${host}:${port}: ${result.failed} answers not 2xx, ${result.lost} connections lost`);
  return result;
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

/** What a Kamailio run listens on and checks: TLS (its tls module, with this certificate), digest (auth + auth_db on db_text). */
interface KamailioFeatures {
  tls?: { port: number; certFile: string; keyFile: string };
  /** db_text folder holding `version` and `subscriber` (kamailioUsers()). */
  authDb?: string;
}

/**
 * usrloc's table has 2^this slots, sized as an operator would for the 100,000 users the one-connection
 * and memory runs register. At the default (2^10 = 1,024 slots) each slot chains ~100 users once they
 * are in, and Kamailio's CPU per REGISTER over 5,000 connections went from 37–41 µs (empty table) to
 * 67–70 µs; with 2^16 slots it stayed at 41. The table is allocated at start: the memory row (growth
 * under load) does not count it.
 */
const KAMAILIO_USRLOC_HASH_POWER = 16;

function startKamailio(port: number, features: KamailioFeatures = {}): Running {
  const tlsConfig = join(OUT, 'kamailio-tls.cfg');
  if (features.tls) {
    writeFileSync(tlsConfig, `[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\ncertificate = ${features.tls.certFile}\nprivate_key = ${features.tls.keyFile}\n`);
  }
  const tls = features.tls
    ? `enable_tls=yes
listen=tls:${KAMAILIO_ADDRESS}:${features.tls.port}
loadmodule "tls.so"
modparam("tls", "config", "${tlsConfig}")
`
    : '';
  // Digest as dnslb does it: qop=auth, nonce counts checked (a replayed count refused), HA1 stored (not the password).
  const auth = features.authDb
    ? `loadmodule "db_text.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("auth", "qop", "auth")
modparam("auth", "nonce_count", 1)
modparam("auth_db", "db_url", "text://${features.authDb}")
modparam("auth_db", "calculate_ha1", 0)
modparam("auth_db", "password_column", "ha1")
modparam("auth_db", "load_credentials", "")
`
    : '';
  const register = features.authDb
    ? 'if (!www_authorize("$td", "subscriber")) { www_challenge("$td", "1"); exit; } consume_credentials(); if (!save("location")) sl_reply_error(); exit;'
    : 'if (!save("location")) sl_reply_error(); exit;';
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
${tls}loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "rr.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "ctl.so"
${auth}modparam("usrloc", "db_mode", 0)
modparam("usrloc", "hash_size", ${KAMAILIO_USRLOC_HASH_POWER})
modparam("ctl", "binrpc", "unix:${CONTROL_SOCKET}")
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    sl_send_reply("404", "Not here"); exit;
  }
  if (is_method("REGISTER")) { ${register} }
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
interface Rates { register: number; calls: number; many: LoadResult }

/** One run against a fresh `dnslb server`: REGISTER/s, then calls/s. */
async function measureDnslb(): Promise<Rates> {
  const pool = await dnslbPool();
  const target = `${DNSLB_ADDRESS}:${pool.tcpPort}`;
  try {
    // The many-connections shape last: thousands of connections left behind slow what follows.
    const register = await registerRate(target);
    const calls = await callRate(target, target);
    return { register, calls, many: await manyRate(DNSLB_ADDRESS, pool.tcpPort, pool.servers[0]!.process.pid) };
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
    return { register, calls, many: await manyRate(KAMAILIO_ADDRESS, port, kamailio.pid) };
  } finally {
    await kamailio.stop();
  }
}

/** "| label | median (low–high) | median (low–high) |" */
function rateRow(label: string, measured: Record<Server, Rates[]>, pick: (rates: Rates) => number, digits = 0): string {
  const cell = (runs: Rates[]) => {
    const values = runs.map(pick);
    return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
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

// ---- TLS and digest authentication (issue 15 item 1; issue 13 "Speed") -------------------------

/** REGISTER/s over this many TLS connections, one REGISTER in flight on each (bench/sip-load.ts). */
const TLS_CONNECTIONS = 1000;
/** Users of the digest rows: `dnslb user import --synthetic` (user1…userN) and the same MD5 hashes in Kamailio's db_text table. */
const AUTH_USERS = 2000;
const AUTH_SEED = 'bench-sip-digest-seed';
/** sipp 3.6 answers MD5 only: the pool offers it first (as test/integration/frontend-auth-sipp.test.ts). */
const AUTH_SETTINGS = '  auth: { enabled: true, algorithms: [MD5, SHA-256] }';
/** Sign-in rows: each sipp call on a connection of its own (`-t tn`), this many at once. */
const SIGNIN_IN_FLIGHT = 200;

/**
 * Sign-ins per second, and the server's CPU time (its process tree, over the whole sipp run) per
 * sign-in; `netCpuUs` leaves out what the server spends when idle (heartbeat, liveness reports, the
 * store watch: measured over IDLE_MS before the run), which a slower run spreads over fewer sign-ins.
 */
interface SignIns { perSecond: number; serverCpuUs: number; netCpuUs: number; idleShare: number }
const IDLE_MS = 3000;

interface SecureRates {
  tls: LoadResult;
  /** A new TCP connection, REGISTER → 200. */
  signIn: SignIns;
  /** The same with digest: REGISTER → 401, REGISTER with Authorization → 200. */
  signInDigest: SignIns;
}

function sippCount(stdout: string, what: 'Successful' | 'Failed'): number {
  const match = new RegExp(`${what} call\\s*\\|\\s*\\d+\\s*\\|\\s*(\\d+)`).exec(stdout);
  return match ? Number(match[1]) : 0;
}

/**
 * sipp's address for a sign-in run, a new one for each run: sipp binds each new connection to its address
 * before connecting, so it needs a local port no socket on that address holds, and the previous run's
 * ~10,000 closed connections hold theirs in TIME_WAIT for 60 s. Reusing one address made every run after a
 * fast one crawl at ~240 sign-ins/s (the two shapes alternated between fast and slow for both servers).
 */
let signInSources = 0;
const nextSignInSource = (): string => `127.0.230.${1 + (signInSources++ % 250)}`;

/** Sign-ins per second: every sipp call a user signing in on a new TCP connection (closed at the call's end). */
async function signInRate(target: string, digest: boolean, serverPid: number): Promise<SignIns> {
  const idleBefore = await treeCpuSeconds(serverPid);
  await sleep(IDLE_MS);
  const cpuBefore = await treeCpuSeconds(serverPid);
  const idleShare = (cpuBefore - idleBefore) / (IDLE_MS / 1000);
  const startedMs = Date.now();
  const scenario = digest ? ['-sf', 'register-digest.xml', '-inf', 'users-auth.csv'] : ['-sf', 'register.xml', '-inf', 'users.csv'];
  const result = await runSipp(OUT, [...scenario, '-t', 'tn', '-max_socket', String(4 * SIGNIN_IN_FLIGHT), '-i', nextSignInSource(), '-p', '0', '-r', '200000', '-l', String(SIGNIN_IN_FLIGHT), '-timeout', `${SECONDS}s`, target], { taskset: LOAD_CORE, timeoutMs: (SECONDS + 30) * 1000 });
  const ok = sippCount(result.stdout, 'Successful');
  const failed = sippCount(result.stdout, 'Failed');
  // The calls cut short by the end of the run count as failed; more than those is a fault of the bench.
  if (failed > SIGNIN_IN_FLIGHT + ok / 100) throw new Error(`sign-in${digest ? ' with digest' : ''} at ${target}: ${failed} failed calls (${ok} succeeded): ${result.errors.slice(0, 1500)}`);
  const usedS = (await treeCpuSeconds(serverPid)) - cpuBefore;
  const runS = (Date.now() - startedMs) / 1000;
  return { perSecond: ok / SECONDS, serverCpuUs: (1e6 * usedS) / Math.max(1, ok), netCpuUs: (1e6 * Math.max(0, usedS - idleShare * runS)) / Math.max(1, ok), idleShare };
}

async function tlsRate(host: string, port: number, servername: string, caFile: string, serverPid: number): Promise<LoadResult> {
  const result = await sipLoad({ host, port, connections: TLS_CONNECTIONS, tls: { caFile, servername }, prefix: 'tls', core: LOAD_CORE, processes: Number(process.env['BENCH_TLS_PROCESSES'] ?? 1), warmupMs: 2000, windowMs: SECONDS * 1000, serverPid });
  if (result.failed > 0 || result.lost > 0) throw new Error(`TLS load at ${host}:${port}: ${result.failed} answers not 2xx, ${result.lost} connections lost`);
  return result;
}

interface Certificates { certFile: string; keyFile: string; caFile: string }

async function measureDnslbSecure(certificates: Certificates): Promise<SecureRates> {
  const serverArgs = ['--connections-max', '20000'];
  const plain = await startPool({ addresses: [DNSLB_ADDRESS], taskset: SERVER_CORE, serverArgs, repo: SERVER_REPO, tls: certificates });
  let tls: LoadResult;
  try {
    tls = await tlsRate(DNSLB_ADDRESS, plain.tlsPort, 'fe1.contoso.com', certificates.caFile, plain.servers[0]!.process.pid);
  } finally {
    await plain.stop();
  }
  return { tls, signIn: await dnslbSignIns(false), signInDigest: await dnslbSignIns(true) };
}

/**
 * Sign-ins at a dnslb server that follows a store holding the users (the directory is in the store),
 * with settings.auth off or on: the ratio of the two is authentication's alone. The users are imported
 * after the server started (the directory's changes reach it through the store's watch); the run
 * starts once the server holds them all.
 */
async function dnslbSignIns(digest: boolean): Promise<SignIns> {
  const pool = await startPool({ addresses: [DNSLB_ADDRESS], taskset: SERVER_CORE, serverArgs: ['--connections-max', '20000'], repo: SERVER_REPO, store: true, ...(digest ? { settingsYaml: AUTH_SETTINGS } : {}) });
  try {
    const imported = spawnSync(process.execPath, ['bin/dnslb.js', 'user', 'import', '--synthetic', String(AUTH_USERS), '--domain', 'contoso.com', '--password-seed-file', join(OUT, 'seed'), '--md5', '--store', pool.dir], { cwd: SERVER_REPO ?? REPO, encoding: 'utf8' });
    if (imported.status !== 0) throw new Error(`dnslb user import: ${imported.stderr}`);
    // A server that reads users from the store at each check (before the directory was held in memory) has no count.
    await waitUntil(`the server holds the ${AUTH_USERS} users`, async () => {
      const held = (await pool.status(0)).auth?.users;
      return held === undefined || held >= AUTH_USERS;
    }, { timeoutMs: 120_000 });
    return await signInRate(`${DNSLB_ADDRESS}:${pool.tcpPort}`, digest, pool.servers[0]!.process.pid);
  } finally {
    await pool.stop();
  }
}

/** Whether a TCP connection to host:port is accepted (then closed at once). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function withKamailio<T>(port: number, features: KamailioFeatures, run: (kamailio: Running) => Promise<T>): Promise<T> {
  rmSync(join(OUT, 'kamailio.pid'), { force: true });
  const kamailio = startKamailio(port, features);
  try {
    await waitUntil('kamailio pid file', () => existsSync(join(OUT, 'kamailio.pid')), { process: kamailio });
    // Listening on every port it was given (its TLS port can come later than the pid file on a busy machine).
    for (const listening of [port, ...(features.tls ? [features.tls.port] : [])]) await waitUntil(`kamailio listening on ${listening}`, () => accepts(KAMAILIO_ADDRESS, listening), { process: kamailio, timeoutMs: 30_000 });
    await sleep(500);
    return await run(kamailio);
  } finally {
    await kamailio.stop();
  }
}

/** Kamailio's sign-ins: plain (usrloc only), then with auth + auth_db on the same users. */
async function kamailioSignIns(port: number): Promise<Pick<SecureRates, 'signIn' | 'signInDigest'>> {
  const target = `${KAMAILIO_ADDRESS}:${port}`;
  const signIn = await withKamailio(port, {}, (kamailio) => signInRate(target, false, kamailio.pid));
  const signInDigest = await withKamailio(port, { authDb: join(OUT, 'kamailio-db') }, (kamailio) => signInRate(target, true, kamailio.pid));
  return { signIn, signInDigest };
}

/** The sign-in rows alone (BENCH_SIP_ONLY=signin): alternated rounds, their own section of RESULTS.md. */
async function signInSection(kamailioPort: number): Promise<void> {
  const startLoad = loadavg()[0]!;
  writeDigestUsers();
  const measured: Record<Server, Pick<SecureRates, 'signIn' | 'signInDigest'>[]> = { dnslb: [], kamailio: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: Server[] = round % 2 === 0 ? ['dnslb', 'kamailio'] : ['kamailio', 'dnslb'];
    for (const server of order) {
      const rates = server === 'dnslb' ? { signIn: await dnslbSignIns(false), signInDigest: await dnslbSignIns(true) } : await kamailioSignIns(kamailioPort);
      measured[server].push(rates);
      console.log(`round ${round + 1}/${ROUNDS} ${server}: sign-ins/s ${rates.signIn.perSecond.toFixed(0)} (${rates.signIn.serverCpuUs.toFixed(0)} µs server CPU each), with digest ${rates.signInDigest.perSecond.toFixed(0)} (${rates.signInDigest.serverCpuUs.toFixed(0)} µs)`);
    }
  }
  type Rates = Pick<SecureRates, 'signIn' | 'signInDigest'>;
  const cell = (values: number[]) => `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
  const of = (server: Server, pick: (rates: Rates) => number) => measured[server].map(pick);
  const row = (label: string, pick: (rates: Rates) => number) => `| ${label} | ${cell(of('dnslb', pick))} | ${cell(of('kamailio', pick))} | ${(median(of('dnslb', pick)) / median(of('kamailio', pick))).toFixed(2)} |`;
  const extra = (server: Server) => median(of(server, (rates) => rates.signInDigest.serverCpuUs)) - median(of(server, (rates) => rates.signIn.serverCpuUs));
  const perCore = (server: Server, pick: (rates: Rates) => number) => 1e6 / median(of(server, pick));
  const idle = (server: Server) => `${(100 * median(of(server, (rates) => rates.signIn.idleShare))).toFixed(1)} % / ${(100 * median(of(server, (rates) => rates.signInDigest.idleShare))).toFixed(1)} %`;
  const netRatio = (server: Server) => median(of(server, (rates) => rates.signIn.netCpuUs)) / median(of(server, (rates) => rates.signInDigest.netCpuUs));
  const body = `
${machineLine()}; ${execFileSync('kamailio', ['-v']).toString().split('\n')[0]?.trim()}.
Server pinned to core ${SERVER_CORE}, sipp to core ${LOAD_CORE}; ${SECONDS} s per run, ${ROUNDS} rounds in alternated order (dnslb, Kamailio, Kamailio, dnslb, …); each cell the median with the lowest–highest in brackets. Command: \`BENCH_SIP_ONLY=signin npm run bench:sip\` (the sign-in rows of the section "SIP: TLS and digest authentication" alone, without its TLS rows).
- sipp \`-t tn\`, every call a user on a new TCP connection (${SIGNIN_IN_FLIGHT} at once), closed at the call's end: REGISTER → 200; with digest REGISTER → 401, REGISTER with Authorization → 200 (MD5, qop=auth: sipp 3.6 knows no SHA-256). dnslb: one server following a file store into which ${AUTH_USERS.toLocaleString('en')} users are imported (\`dnslb user import --synthetic ${AUTH_USERS} --md5\`), \`settings.auth\` off for the plain figure and on for the digest one; the server holds the directory in memory (src/auth/user-table.ts), so a digest check reads no store. Kamailio: auth + auth_db on db_text with the same MD5 HA1s, nonce counts checked.

| | dnslb | Kamailio | dnslb ÷ Kamailio |
|---|---|---|---:|
${row('sign-ins/s (TCP, a new connection each, REGISTER → 200)', (rates) => rates.signIn.perSecond)}
${row('sign-ins/s with digest (REGISTER → 401 → REGISTER → 200)', (rates) => rates.signInDigest.perSecond)}
${row('server CPU per sign-in, µs', (rates) => rates.signIn.serverCpuUs)}
${row('server CPU per sign-in with digest, µs', (rates) => rates.signInDigest.serverCpuUs)}
${row('the same net of the server\'s idle CPU, without digest, µs', (rates) => rates.signIn.netCpuUs)}
${row('the same net of the server\'s idle CPU, with digest, µs', (rates) => rates.signInDigest.netCpuUs)}
| the server's idle CPU (share of a core, ${IDLE_MS / 1000} s before each run; medians without / with digest) | ${idle('dnslb')} | ${idle('kamailio')} | |

- Digest costs dnslb ${extra('dnslb').toFixed(0)} µs of CPU more per sign-in, Kamailio ${extra('kamailio').toFixed(0)} µs. On one core, by CPU alone: dnslb ${perCore('dnslb', (rates) => rates.signIn.serverCpuUs).toFixed(0)} sign-ins/s without digest, ${perCore('dnslb', (rates) => rates.signInDigest.serverCpuUs).toFixed(0)} with (${(median(of('dnslb', (rates) => rates.signIn.serverCpuUs)) / median(of('dnslb', (rates) => rates.signInDigest.serverCpuUs))).toFixed(2)}); Kamailio ${perCore('kamailio', (rates) => rates.signIn.serverCpuUs).toFixed(0)} and ${perCore('kamailio', (rates) => rates.signInDigest.serverCpuUs).toFixed(0)} (${(median(of('kamailio', (rates) => rates.signIn.serverCpuUs)) / median(of('kamailio', (rates) => rates.signInDigest.serverCpuUs))).toFixed(2)}). Net of idle CPU: dnslb ${netRatio('dnslb').toFixed(2)}, Kamailio ${netRatio('kamailio').toFixed(2)}. A sign-in with digest is two requests where one was, so 0.5 is the same cost per request; issue 13's "must not halve throughput" is met when that ratio stays above 0.5.
- Why net of idle: a run that sipp drives more slowly spreads the server's idle CPU (heartbeat, liveness reports, the store's watch) over fewer sign-ins. CPU per sign-in also grows as the rate falls for dnslb (fewer messages per wake-up of the event loop): the rows compare runs at the rates sipp reached, given in the first two rows. Each run's sipp has an address of its own (a previous run's connections in TIME_WAIT made the next one crawl at ~240/s).
- sipp (one process, a new connection per call) limits the sign-ins/s of both servers; the CPU rows are the comparison.
- ${loadNote(startLoad)}
`;
  await writeSection('SIP: sign-in with digest authentication, dnslb server vs Kamailio', body);
  console.log(body);
}

async function measureKamailioSecure(port: number, certificates: Certificates): Promise<SecureRates> {
  const target = `${KAMAILIO_ADDRESS}:${port}`;
  const [tls, signIn] = await withKamailio(port, { tls: { port: port + 1, certFile: certificates.certFile, keyFile: certificates.keyFile } }, async (kamailio) => [
    await tlsRate(KAMAILIO_ADDRESS, port + 1, 'kamailio.bench', certificates.caFile, kamailio.pid),
    await signInRate(target, false, kamailio.pid),
  ] as const);
  const signInDigest = await withKamailio(port, { authDb: join(OUT, 'kamailio-db') }, (kamailio) => signInRate(target, true, kamailio.pid));
  return { tls, signIn, signInDigest };
}

/** The digest users for both servers: sipp's CSV (name and its [authentication] keyword), Kamailio's db_text tables, dnslb's seed file. */
function writeDigestUsers(): void {
  writeFileSync(join(OUT, 'seed'), `${AUTH_SEED}\n`);
  const users = Array.from({ length: AUTH_USERS }, (_, index) => {
    const name = `user${index + 1}`;
    return [name, syntheticPassword(AUTH_SEED, `sip:${name}@contoso.com`)] as const;
  });
  writeUsersWithPasswords(OUT, users, 'users-auth.csv');
  const db = join(OUT, 'kamailio-db');
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'version'), 'id(int,auto) table_name(string) table_version(int)\n0:subscriber:7\n');
  // Hashes only, like dnslb's directory: db_text refuses empty columns, so the password (and ha1b) is "-".
  writeFileSync(join(db, 'subscriber'), `id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string)\n${users.map(([name, password], index) => `${index + 1}:${name}:contoso.com:-:${ha1('MD5', name, 'contoso.com', password)}:-`).join('\n')}\n`);
  writeFileSync(join(OUT, 'register-digest.xml'), registerWithDigest());
}

/** The TLS and digest rows: their own rounds (alternated like the others) and their own section of RESULTS.md. */
async function secureSection(kamailioPort: number): Promise<void> {
  const startLoad = loadavg()[0]!;
  writeDigestUsers();
  const issued = await createTestCertificates({ names: ['fe1.contoso.com', 'kamailio.bench'], ips: [DNSLB_ADDRESS, KAMAILIO_ADDRESS] });
  const certificates = { certFile: join(OUT, 'tls-cert.pem'), keyFile: join(OUT, 'tls-key.pem'), caFile: join(OUT, 'tls-ca.pem') };
  writeFileSync(certificates.certFile, issued.cert);
  writeFileSync(certificates.keyFile, issued.key);
  writeFileSync(certificates.caFile, issued.ca);
  await issued.cleanup();
  const measured: Record<Server, SecureRates[]> = { dnslb: [], kamailio: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: Server[] = round % 2 === 0 ? ['dnslb', 'kamailio'] : ['kamailio', 'dnslb'];
    for (const server of order) {
      const rates = server === 'dnslb' ? await measureDnslbSecure(certificates) : await measureKamailioSecure(kamailioPort, certificates);
      measured[server].push(rates);
      const { tls } = rates;
      console.log(`round ${round + 1}/${ROUNDS} ${server}: TLS ${tls.perSecond.toFixed(0)} REGISTER/s (${TLS_CONNECTIONS} connections; CPU: generator ${(100 * tls.generatorCpuS / tls.windowS).toFixed(0)} %, server ${(100 * tls.serverCpuS! / tls.windowS).toFixed(0)} %; ${tls.tlsSession}); sign-ins/s ${rates.signIn.perSecond.toFixed(0)} (${rates.signIn.serverCpuUs.toFixed(0)} µs server CPU each), with digest ${rates.signInDigest.perSecond.toFixed(0)} (${rates.signInDigest.serverCpuUs.toFixed(0)} µs); TLS connections retried during set-up: ${tls.setupRetries}`);
    }
  }
  const cell = (values: number[], digits = 0, suffix = '') => `${median(values).toFixed(digits)}${suffix} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
  const of = (server: Server, pick: (rates: SecureRates) => number) => measured[server].map(pick);
  const row = (label: string, pick: (rates: SecureRates) => number, digits = 0, suffix = '') => `| ${label} | ${cell(of('dnslb', pick), digits, suffix)} | ${cell(of('kamailio', pick), digits, suffix)} | ${(median(of('dnslb', pick)) / median(of('kamailio', pick))).toFixed(2)} |`;
  const share = (server: Server) => `${median(of(server, (rates) => rates.tls.serverCpuS! / rates.tls.windowS)) * 100 | 0} % / ${median(of(server, (rates) => rates.tls.generatorCpuS / rates.tls.windowS)) * 100 | 0} %`;
  const perRegisterUs = (result: LoadResult, cpuS: number) => (1e6 * cpuS) / Math.max(1, result.ok);
  const ratio = (server: Server) => median(of(server, (rates) => rates.signInDigest.perSecond)) / median(of(server, (rates) => rates.signIn.perSecond));
  const tlsMedian = (server: Server) => median(of(server, (rates) => rates.tls.perSecond));
  const body = `
${machineLine()}; ${execFileSync('kamailio', ['-v']).toString().split('\n')[0]?.trim()} with its tls module (Debian kamailio-tls-modules).
Server pinned to core ${SERVER_CORE}, load generator to core ${LOAD_CORE}; ${SECONDS} s per run, ${ROUNDS} rounds in alternated order (dnslb, Kamailio, Kamailio, dnslb, …); each cell the median with the lowest–highest in brackets. Command: \`BENCH_SIP_ONLY=secure npm run bench:sip\` (also part of a whole \`npm run bench:sip\`).
- **TLS**: bench/sip-load.ts (a Node generator: sipp here has no TLS) opens ${TLS_CONNECTIONS.toLocaleString('en')} TLS connections (one user each; TLS handshakes and a first REGISTER before the measured window) and keeps one REGISTER in flight on each (CSeq + 1 on the same Call-ID: a client refreshing). Both servers use the same certificate (RSA, from src/sip/certificates.ts); negotiated: ${measured.dnslb[0]?.tls.tlsSession} (dnslb), ${measured.kamailio[0]?.tls.tlsSession} (Kamailio).
- **Sign-in**: sipp \`-t tn\`, every call a user on a new TCP connection (${SIGNIN_IN_FLIGHT} at once), closed at the call's end: REGISTER → 200; with digest REGISTER → 401, REGISTER with Authorization → 200 (sipp's \`[authentication]\`, MD5 with qop=auth: sipp 3.6 knows no SHA-256). dnslb: a server following a file store that holds ${AUTH_USERS.toLocaleString('en')} users from \`dnslb user import --synthetic ${AUTH_USERS} --md5\`, \`settings.auth\` off for the plain figure and on for the digest one; Kamailio: auth + auth_db on db_text with the same users' MD5 HA1s, qop=auth, nonce counts checked (\`nonce_count\`). A flow is bound to the user that authenticated on it (src/auth/README.md), so each user needs a connection of its own: the sign-in shape, not one shared connection.

| | dnslb | Kamailio | dnslb ÷ Kamailio |
|---|---|---|---:|
${row(`REGISTER/s (TLS, ${TLS_CONNECTIONS.toLocaleString('en')} connections, one in flight on each)`, (rates) => rates.tls.perSecond)}
${row('TLS: CPU per REGISTER of the server (its process tree), µs', (rates) => perRegisterUs(rates.tls, rates.tls.serverCpuS!))}
${row('TLS: CPU per REGISTER of the load generator, µs', (rates) => perRegisterUs(rates.tls, rates.tls.generatorCpuS))}
${row('TLS: the generator\'s ceiling on its one core (10⁶ ÷ its µs per REGISTER), REGISTER/s', (rates) => 1e6 / perRegisterUs(rates.tls, rates.tls.generatorCpuS))}
| TLS: share of a core used over the window, server / generator (medians) | ${share('dnslb')} | ${share('kamailio')} | |
${row('sign-ins/s (TCP, a new connection each, REGISTER → 200)', (rates) => rates.signIn.perSecond)}
${row('sign-ins/s with digest (REGISTER → 401 → REGISTER → 200)', (rates) => rates.signInDigest.perSecond)}
${row('server CPU per sign-in, µs', (rates) => rates.signIn.serverCpuUs)}
${row('server CPU per sign-in with digest, µs', (rates) => rates.signInDigest.serverCpuUs)}

- TLS, dnslb ÷ Kamailio: ${(tlsMedian('dnslb') / tlsMedian('kamailio')).toFixed(2)} (issue 15 goal ≥ 1.0). The generator is not what limits either server: it used ${median(of('kamailio', (rates) => rates.tls.generatorCpuS / rates.tls.windowS)) * 100 | 0} % of its core against Kamailio and ${median(of('dnslb', (rates) => rates.tls.generatorCpuS / rates.tls.windowS)) * 100 | 0} % against dnslb; compare its ceiling on one core (the row above) with the figures. Connections refused or reset while the 1,000 handshakes were under way, and tried again: dnslb ${of('dnslb', (rates) => rates.tls.setupRetries).join(', ')}; Kamailio ${of('kamailio', (rates) => rates.tls.setupRetries).join(', ')} (per run).
- Digest, with ÷ without authentication (sign-ins/s): dnslb ${ratio('dnslb').toFixed(2)}, Kamailio ${ratio('kamailio').toFixed(2)}; a sign-in with digest is two requests where one was: 0.5 would be the same cost per request.
- ${loadNote(startLoad)}
- Digest, dnslb ÷ Kamailio (sign-ins/s): ${(median(of('dnslb', (rates) => rates.signInDigest.perSecond)) / median(of('kamailio', (rates) => rates.signInDigest.perSecond))).toFixed(2)}.
`;
  await writeSection('SIP: TLS and digest authentication, dnslb server vs Kamailio', body);
  console.log(body);
}

/**
 * BENCH_SIP_ONLY=connections: only the many-connection rows — TLS over TLS_CONNECTIONS and TCP over
 * MANY_CONNECTIONS, each server fresh per run, rounds alternated — printed, not written (for
 * before/after comparisons of the per-connection path without the sipp rows and the memory run).
 */
async function connectionsOnly(kamailioPort: number): Promise<void> {
  const issued = await createTestCertificates({ names: ['fe1.contoso.com', 'kamailio.bench'], ips: [DNSLB_ADDRESS, KAMAILIO_ADDRESS] });
  const certificates = { certFile: join(OUT, 'tls-cert.pem'), keyFile: join(OUT, 'tls-key.pem'), caFile: join(OUT, 'tls-ca.pem') };
  writeFileSync(certificates.certFile, issued.cert);
  writeFileSync(certificates.keyFile, issued.key);
  writeFileSync(certificates.caFile, issued.ca);
  await issued.cleanup();
  const measured: Record<Server, Array<{ tls: LoadResult; tcp: LoadResult }>> = { dnslb: [], kamailio: [] };
  const describe = (result: LoadResult) => `${result.perSecond.toFixed(0)} REGISTER/s, server ${((1e6 * result.serverCpuS!) / Math.max(1, result.ok)).toFixed(1)} µs each (${((100 * result.serverCpuS!) / result.windowS).toFixed(0)} % of its core; runnable but waiting for a CPU ${((100 * result.serverRunDelayS!) / result.windowS).toFixed(0)} % of the window), generator ${((1e6 * result.generatorCpuS) / Math.max(1, result.ok)).toFixed(1)} µs each (${((100 * result.generatorCpuS) / result.windowS).toFixed(0)} %), set-up ${(result.setupMs / 1000).toFixed(1)} s`;
  for (let round = 0; round < ROUNDS; round++) {
    const order: Server[] = round % 2 === 0 ? ['dnslb', 'kamailio'] : ['kamailio', 'dnslb'];
    for (const server of order) {
      let runs: { tls: LoadResult; tcp: LoadResult };
      if (server === 'dnslb') {
        const pool = await startPool({ addresses: [DNSLB_ADDRESS], taskset: SERVER_CORE, serverArgs: ['--connections-max', '20000'], repo: SERVER_REPO, tls: certificates });
        try {
          const pid = pool.servers[0]!.process.pid;
          runs = { tls: await tlsRate(DNSLB_ADDRESS, pool.tlsPort, 'fe1.contoso.com', certificates.caFile, pid), tcp: await manyRate(DNSLB_ADDRESS, pool.tcpPort, pid) };
        } catch (error) {
          console.log(`round ${round + 1}/${ROUNDS} dnslb failed: ${error instanceof Error ? error.message : String(error)}`);
          continue;
        } finally {
          await pool.stop();
        }
      } else {
        try {
          runs = await withKamailio(kamailioPort, { tls: { port: kamailioPort + 1, certFile: certificates.certFile, keyFile: certificates.keyFile } }, async (kamailio) => ({
            tls: await tlsRate(KAMAILIO_ADDRESS, kamailioPort + 1, 'kamailio.bench', certificates.caFile, kamailio.pid),
            tcp: await manyRate(KAMAILIO_ADDRESS, kamailioPort, kamailio.pid),
          }));
        } catch (error) {
          console.log(`round ${round + 1}/${ROUNDS} kamailio failed: ${error instanceof Error ? error.message : String(error)}`);
          continue;
        }
      }
      measured[server].push(runs);
      console.log(`round ${round + 1}/${ROUNDS} ${server}: TLS ${TLS_CONNECTIONS}: ${describe(runs.tls)}; TCP ${MANY_CONNECTIONS}: ${describe(runs.tcp)}`);
    }
  }
  if (measured.dnslb.length === 0 || measured.kamailio.length === 0) return;
  for (const shape of ['tls', 'tcp'] as const) {
    const cell = (server: Server, pick: (result: LoadResult) => number, digits = 0) => {
      const values = measured[server].map((runs) => pick(runs[shape]));
      return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
    };
    const rate = (server: Server) => median(measured[server].map((runs) => runs[shape].perSecond));
    const serverUs = (result: LoadResult) => (1e6 * result.serverCpuS!) / Math.max(1, result.ok);
    const ceiling = (result: LoadResult) => Math.max(1, result.ok) / result.generatorCpuS;
    console.log(`${shape}: REGISTER/s dnslb ${cell('dnslb', (result) => result.perSecond)} Kamailio ${cell('kamailio', (result) => result.perSecond)} ratio ${(rate('dnslb') / rate('kamailio')).toFixed(2)}; server µs/REGISTER dnslb ${cell('dnslb', serverUs)} Kamailio ${cell('kamailio', serverUs)}; generator ceiling dnslb ${cell('dnslb', ceiling)} Kamailio ${cell('kamailio', ceiling)}; set-up s dnslb ${cell('dnslb', (result) => result.setupMs / 1000, 1)} Kamailio ${cell('kamailio', (result) => result.setupMs / 1000, 1)}`);
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
  if (ONLY === 'secure') {
    await secureSection(await freePortPair([KAMAILIO_ADDRESS]));
    return;
  }
  if (ONLY === 'connections') {
    await connectionsOnly(await freePortPair([KAMAILIO_ADDRESS]));
    return;
  }
  if (ONLY === 'signin') {
    await signInSection(await freePortPair([KAMAILIO_ADDRESS]));
    return;
  }
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
      const { many } = rates;
      console.log(`round ${round + 1}/${ROUNDS} ${server}: ${rates.register.toFixed(0)} REGISTER/s (one connection), ${many.perSecond.toFixed(0)} (${MANY_CONNECTIONS} connections; CPU: generator ${(100 * many.generatorCpuS / many.windowS).toFixed(0)} %, server ${(100 * many.serverCpuS! / many.windowS).toFixed(0)} %, runnable but waiting for a CPU ${(100 * many.serverRunDelayS! / many.windowS).toFixed(0)} %; set-up ${(many.setupMs / 1000).toFixed(1)} s), ${rates.calls.toFixed(0)} calls/s`);
    }
  }
  const perRegisterUs = (result: LoadResult, cpuS: number) => (1e6 * cpuS) / Math.max(1, result.ok);
  rows.push(rateRow('REGISTER/s (TCP, one connection, 400 in flight)', measured, (rates) => rates.register));
  rows.push(rateRow(`REGISTER/s (TCP, ${MANY_CONNECTIONS.toLocaleString('en')} connections, one in flight on each)`, measured, (rates) => rates.many.perSecond));
  rows.push(rateRow(`${MANY_CONNECTIONS.toLocaleString('en')} connections: CPU per REGISTER of the server (its process tree), µs`, measured, (rates) => perRegisterUs(rates.many, rates.many.serverCpuS!)));
  rows.push(rateRow(`${MANY_CONNECTIONS.toLocaleString('en')} connections: the generator's ceiling on its one core (10⁶ ÷ its µs per REGISTER), REGISTER/s`, measured, (rates) => 1e6 / perRegisterUs(rates.many, rates.many.generatorCpuS)));
  rows.push(rateRow(`${MANY_CONNECTIONS.toLocaleString('en')} connections: share of a core used over the window by the generator, %`, measured, (rates) => (100 * rates.many.generatorCpuS) / rates.many.windowS));
  rows.push(rateRow(`${MANY_CONNECTIONS.toLocaleString('en')} connections: set-up (connect and a first REGISTER answered on each, before the window), s`, measured, (rates) => rates.many.setupMs / 1000, 1));
  rows.push(rateRow('calls/s (INVITE/100/180/200/ACK/BYE/200, UAS connected, 200 in flight)', measured, (rates) => rates.calls));
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
Kamailio: registrar + usrloc in memory (db_mode 0, a table of 2^${KAMAILIO_USRLOC_HASH_POWER} slots), tm/rr for calls, children=2, tcp_children=2. dnslb: one \`dnslb server\` process (one pool member, no peers).

| | dnslb | Kamailio |
|---|---|---|
${rows.join('\n')}

The ${MANY_CONNECTIONS.toLocaleString('en')}-connection rows: bench/sip-load.ts (a Node generator, one process on core ${LOAD_CORE}; one sipp process in \`-t tn\` mode drove only a few hundred REGISTER/s over that many sockets) opens ${MANY_CONNECTIONS.toLocaleString('en')} TCP connections, one user each, answers a first REGISTER on each, then keeps one REGISTER in flight on every connection (CSeq + 1 on the same Call-ID). Its ceiling row (its own CPU per REGISTER on one core) shows whether it or the server was the limit. dnslb ÷ Kamailio (median REGISTER/s): ${(median(measured.dnslb.map((rates) => rates.many.perSecond)) / median(measured.kamailio.map((rates) => rates.many.perSecond))).toFixed(2)}.

Run with \`npm run bench:sip\` (BENCH_SECONDS to change the duration of a run, BENCH_ROUNDS the number of rounds). The machine is shared with other work, so figures vary by ±10–20 % between runs.
`;
  await writeSection('SIP: dnslb server vs Kamailio', section);
  console.log(section);
  if (ONLY !== 'plain') await secureSection(kamailioPort);
}

await main();
