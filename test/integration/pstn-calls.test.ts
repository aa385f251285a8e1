// PSTN calls through a Mediation pool (issue 10 §5, DESIGN §7 Mediation): real `dnslb server`
// processes of the multi-pool fixture (pool01's three Front Ends and the Mediation pool's two servers,
// 127.0.51.N) and a real sipp UAS as the PSTN gateway. sipp UACs call numbers through fe1/fe2:
// 1. 200 calls reach the gateway, each Mediation server carrying exactly the calls the Call-ID's hash
//    gives it (40–60 % each), counted in each server's status and in /metrics (per gateway outcome);
// 2. med1 killed with 40 calls up on both Mediation servers, the gateway being sipp's built-in `uas`
//    (no Record-Route in its answers, as in the README): every BYE of a call on med2, set up after
//    the kill or after med1's restart is answered 200; the BYEs of the calls that were on med1 get a
//    final failure at once (503 while med1 is down, 481 from the restarted med1), exactly those;
// 3. the gateway down → the caller gets a failure with a reason naming it, at once (nothing rings);
// 4. a number matching no route → 404, an incomplete one → 484, each with the reason;
// 5. a call from the gateway (a sipp UAC at its address) to a user reaches the user's home server, and
//    so does one to the user's number (the user directory's `number`); a number nobody has → 404.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Call } from '../../src/client/call.ts';
import { UserAgent } from '../../src/client/user-agent.ts';
import { credentialFor } from '../../src/auth/user-credential.ts';
import { sequencerOf } from '../../src/pool/routing.ts';
import { freePortPair } from '../helpers/frontend-pool.ts';
import { startMultiPool, type MultiPool } from '../helpers/multi-pool.ts';
import { waitUntil } from '../helpers/process.ts';
import { parsePrometheusText, sampleValue, type Family } from '../helpers/prom-text.ts';
import { TestSipClient } from '../helpers/sip-client.ts';
import { runSipp, startSipp, UAC_CALL, UAS_ANSWER } from '../helpers/sipp-scenarios.ts';

const PREFIX = '127.0.51';
const GATEWAY = `${PREFIX}.90`;
const UAC = `${PREFIX}.100`;
const CLIENT = `${PREFIX}.101`;
const POOL01 = ['fe1', 'fe2', 'fe3'].map((name) => `${name}.contoso.com`);
const MEDIATION = ['med1', 'med2'].map((name) => `${name}.contoso.com`);

/** The caller's scenario with a telephone number as the Request-URI and To (RFC 3261 §19.1.1 user=phone). */
const UAC_NUMBER = UAC_CALL.replace('INVITE sip:[field1]@contoso.com SIP/2.0', 'INVITE sip:[field1]@contoso.com;user=phone SIP/2.0').replace('To: <sip:[field1]@contoso.com>', 'To: <sip:[field1]@contoso.com;user=phone>');

/** The number of call `n` (sequential from 0). */
const numberOf = (n: number): string => `+1425555${String(n).padStart(4, '0')}`;
/**
 * The Call-IDs of a run of calls starting at number `first`: sipp's `-cid_str` with its call number
 * (1, 2, …). sipp's own Call-IDs hold its pid, so the split over the Mediation servers was a draw (a
 * fair hash put 200 calls outside 80–120 in 0.36 % of runs, exact binomial); with these the test
 * knows each call's server in advance (med1 104, med2 96 of these 200).
 */
const callIdPattern = (first: number): string => `call%u-${first}@pstn.test`;
const callIdOf = (first: number, n: number): string => `call${n - first + 1}-${first}@pstn.test`;
const mediationOf = (callId: string): string => sequencerOf(system.topology.pools.find((pool) => pool.fqdn === 'medpool.contoso.com')!).sequenceOfCanonical(callId)[0]!;

let system: MultiPool;
let dir: string;
let gatewayPort: number;
let gateway: ReturnType<typeof startSipp> | null = null;

/**
 * The gateway: our answering scenario (copies Record-Route into its answers, RFC 3261 §12.1.1), or
 * with `builtin` sipp's own `uas` — the README's gateway — which leaves Record-Route out, so callers
 * have no route set and their ACK and BYE carry the gateway's Contact alone.
 */
async function startGateway(builtin = false): Promise<void> {
  gateway = startSipp(dir, [...(builtin ? ['-sn', 'uas'] : ['-sf', 'uas.xml']), '-t', 't1', '-i', GATEWAY, '-p', String(gatewayPort), '-max_socket', '100', '-deadcall_wait', '1']);
  await waitUntil('the sipp gateway listens', () => probe(GATEWAY, gatewayPort), { timeoutMs: 10_000 });
}

async function probe(host: string, port: number): Promise<boolean> {
  try {
    const client = await TestSipClient.open(host, port, CLIENT);
    client.close();
    return true;
  } catch {
    return false;
  }
}

/** Each Mediation server's count of calls it sent to the gateway (0 for a stopped one). */
async function toGateway(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const fqdn of MEDIATION) counts[fqdn] = system.running(fqdn) ? (await system.status(fqdn)).proxy.pstnToGateway : 0;
  return counts;
}

/** `count` calls from a sipp UAC through `fe` to Redmond numbers (+1425555NNNN); sipp's exit code and output. */
async function callNumbers(fe: string, count: number, first: number): Promise<{ code: number | null; detail: string }> {
  const lines = Array.from({ length: count }, (_, n) => `caller${n};${numberOf(first + n)}`);
  writeFileSync(join(dir, 'numbers.csv'), `SEQUENTIAL\n${lines.join('\n')}\n`);
  const port = await freePortPair([UAC]);
  const result = await runSipp(dir, ['-sf', 'uac.xml', '-inf', 'numbers.csv', '-t', 't1', '-i', UAC, '-p', String(port), '-m', String(count), '-r', '40', '-l', '40', '-cid_str', callIdPattern(first), '-timeout', '90s', `${system.addressOf(fe)}:${system.port}`], { timeoutMs: 120_000 });
  return { code: result.code, detail: `${result.stderr}\n${result.errors}` };
}

/** One server's /metrics, parsed. */
async function metricsOf(fqdn: string): Promise<Map<string, Family>> {
  return parsePrometheusText(await system.metrics(fqdn));
}

/** One INVITE over a raw connection to `fe` (any server), with `extra` headers; the final answer's status and reason. */
async function finalAnswer(fe: string, requestUri: string, source = CLIENT, extra: readonly string[] = []): Promise<{ status: number; reason: string; provisional: number[] }> {
  const client = await TestSipClient.open(system.addressOf(fe), system.port, source);
  try {
    const callId = `pstn-${Math.random().toString(36).slice(2)}@test`;
    client.send([
      `INVITE ${requestUri} SIP/2.0`,
      `Via: SIP/2.0/TCP ${source}:${client.localPort};branch=z9hG4bK-${callId.slice(5, 15)}`,
      'Max-Forwards: 70',
      'From: <sip:caller@contoso.com>;tag=c1',
      `To: <${requestUri}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:caller@${source}:${client.localPort};transport=tcp>`,
      ...extra,
    ]);
    const provisional: number[] = [];
    for (;;) {
      // Up to 20 s: in the whole suite (two files at a time on two cores) a server's first answer once
      // came later than the client's default 5 s.
      const answer = await client.response(callId, undefined, 'INVITE', 20_000);
      if (answer.status < 200) {
        provisional.push(answer.status);
        continue;
      }
      return { status: answer.status, reason: answer.reason, provisional };
    }
  } finally {
    client.close();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dnslb-pstn-'));
  writeFileSync(join(dir, 'uas.xml'), UAS_ANSWER);
  writeFileSync(join(dir, 'uac.xml'), UAC_NUMBER);
  gatewayPort = await freePortPair([GATEWAY]);
  system = await startMultiPool({
    prefix: PREFIX,
    servers: [...POOL01, ...MEDIATION],
    edit: (yaml) => yaml.replace(`endpoint: "${GATEWAY}:5060"`, `endpoint: "${GATEWAY}:${gatewayPort}"`),
  });
  assert.equal(system.topology.pools.find((pool) => pool.fqdn === 'medpool.contoso.com')!.gateways![0]!.endpoint.port, gatewayPort);
  await startGateway();
});

after(async () => {
  await gateway?.stop();
  await system?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('200 calls to numbers reach the sipp gateway, each Mediation server carrying the calls its Call-IDs hash to (40–60 % each), in status and /metrics', { timeout: 180_000 }, async () => {
  const expected = { 'med1.contoso.com': 0, 'med2.contoso.com': 0 } as Record<string, number>;
  for (let n = 0; n < 200; n++) expected[mediationOf(callIdOf(n < 100 ? 0 : 100, n))]!++;
  // The 200 numbers' Call-IDs are fixed: this holds or fails the same way on every run.
  for (const fqdn of MEDIATION) assert.ok(expected[fqdn]! >= 80 && expected[fqdn]! <= 120, `the hash gives ${fqdn} ${expected[fqdn]} of 200 calls`);
  const before = await toGateway();
  const viaFe1 = await callNumbers('fe1.contoso.com', 100, 0);
  assert.equal(viaFe1.code, 0, `calls through fe1 failed: ${viaFe1.detail}`);
  const viaFe2 = await callNumbers('fe2.contoso.com', 100, 100);
  assert.equal(viaFe2.code, 0, `calls through fe2 failed: ${viaFe2.detail}`);
  const after = await toGateway();
  const med1 = after['med1.contoso.com']! - before['med1.contoso.com']!;
  const med2 = after['med2.contoso.com']! - before['med2.contoso.com']!;
  assert.equal(med1 + med2, 200, `every call went to the gateway through one Mediation server (med1 ${med1}, med2 ${med2})`);
  assert.deepEqual({ 'med1.contoso.com': med1, 'med2.contoso.com': med2 }, expected, 'each call went through the server its Call-ID hashes to');
  let sent = 0;
  for (const fqdn of ['fe1.contoso.com', 'fe2.contoso.com']) sent += (await system.status(fqdn)).proxy.pstnToMediation;
  assert.equal(sent, 200, 'fe1 and fe2 sent each call to the Mediation pool once');
  // The same counts in /metrics: calls to the Mediation pool at the Front Ends, per gateway outcome at the Mediation servers.
  let toMediation = 0;
  for (const fqdn of ['fe1.contoso.com', 'fe2.contoso.com']) toMediation += sampleValue(await metricsOf(fqdn), 'dnslb_pstn_calls_to_mediation_total');
  assert.equal(toMediation, 200);
  for (const fqdn of MEDIATION) {
    const families = await metricsOf(fqdn);
    assert.equal(sampleValue(families, 'dnslb_pstn_gateway_calls_total', { gateway: 'gw1.contoso.com', outcome: 'answered' }), expected[fqdn], fqdn);
    assert.equal(sampleValue(families, 'dnslb_pstn_gateway_calls_total', { gateway: 'gw1.contoso.com', outcome: 'unreachable' }), 0, fqdn);
    assert.equal(sampleValue(families, 'dnslb_pstn_calls_to_gateway_total'), after[fqdn], fqdn);
  }
  console.log(`PSTN: 200 calls, med1 ${med1}, med2 ${med2}`);
});

test('a number matching no route → 404, an incomplete number → 484, each with the reason (sip: user=phone and tel:)', { timeout: 60_000 }, async () => {
  const none = await finalAnswer('fe1.contoso.com', 'sip:12345@contoso.com;user=phone');
  assert.equal(none.status, 404);
  assert.match(none.reason, /local number/);
  const short = await finalAnswer('fe1.contoso.com', 'tel:+1425555');
  assert.equal(short.status, 484);
  assert.match(short.reason, /incomplete/);
  const tooLong = await finalAnswer('fe1.contoso.com', 'tel:+1-425-555-0100-00000');
  assert.equal(tooLong.status, 404);
  assert.match(tooLong.reason, /16 digits/);
  let noRoute = 0;
  for (const fqdn of ['fe1.contoso.com']) noRoute += (await system.status(fqdn)).proxy.pstnNoRoute;
  assert.equal(noRoute, 3, 'fe1 answered each itself: nothing went to the Mediation pool');
});

test('a client\'s INVITE to a number preloaded with a Mediation server\'s Route reaches no gateway (403 with the reason)', { timeout: 60_000 }, async () => {
  const before = await toGateway();
  for (const med of MEDIATION) {
    const route = `Route: <sip:${system.addressOf(med)}:${system.port};transport=tcp;lr>`;
    for (const uri of ['tel:+14255550142', 'sip:+14255550142@contoso.com;user=phone']) {
      // Straight to the Mediation server, its own Route preloaded as if the call followed its Record-Route.
      const answer = await finalAnswer(med, uri, CLIENT, [route]);
      assert.equal(answer.status, 403, `${med} ${uri}: ${answer.status} ${answer.reason}`);
      assert.match(answer.reason, /takes calls from the servers of the topology and the gateways/);
    }
  }
  assert.deepEqual(await toGateway(), before, 'no call went to the gateway');
});

test('med1 killed with calls up on both Mediation servers: every BYE of a call on med2 or set up after the kill is answered 200; the BYEs of the calls that were on med1 get a final failure, exactly those', { timeout: 240_000 }, async () => {
  const pool01 = system.poolAddresses('pool01.contoso.com');
  const callers = Array.from({ length: 8 }, (_, n) => new UserAgent({ aor: `sip:pstn-caller${n}@contoso.com`, locator: system.locator(pool01, n), transport: 'tcp', keepAliveIntervalMs: 600_000 }));
  /** Places one call to number `n`; resolves with it once it is up (fails the test otherwise). */
  const place = async (caller: UserAgent, n: number): Promise<Call> => {
    const placed = caller.call(`sip:${numberOf(n)}@contoso.com;user=phone`);
    const how = await new Promise<string>((resolve) => {
      placed.once('up', () => resolve('up'));
      placed.once('ended', ({ how: ended, status, detail }) => resolve(`${ended} ${status ?? ''} ${detail ?? ''}`));
    });
    assert.equal(how, 'up', `the call to ${numberOf(n)} came up`);
    return placed;
  };
  /** Hangs up `calls` together; each call's BYE answer (null: none came). */
  const hangUpAll = (calls: readonly Call[]): Promise<(number | null)[]> =>
    Promise.all(
      calls.map((call) => {
        const answered = new Promise<number | null>((resolve) => call.once('byeAnswered', resolve));
        call.hangUp();
        return answered;
      }),
    );
  // The README's gateway (no Record-Route in its answers): every in-dialog request of the callers must
  // still reach the Mediation server its call went through, never the other one.
  await gateway!.stop();
  await waitUntil('the gateway is gone', async () => !(await probe(GATEWAY, gatewayPort)), { timeoutMs: 10_000 });
  await startGateway(true);
  try {
    await Promise.all(callers.map((caller) => caller.start()));
    await waitUntil('the callers registered', () => callers.every((caller) => caller.state === 'registered'), { timeoutMs: 30_000 });
    // 40 calls up at once, spread over both Mediation servers by their Call-IDs (the client's own).
    const before = (await Promise.all(callers.map((caller, c) => Promise.all(Array.from({ length: 5 }, (_, k) => place(caller, 400 + c * 5 + k)))))).flat();
    const onMed1 = before.filter((call) => mediationOf(call.callId) === 'med1.contoso.com');
    const onMed2 = before.filter((call) => mediationOf(call.callId) === 'med2.contoso.com');
    assert.ok(onMed1.length >= 1 && onMed2.length >= 1, `calls on both Mediation servers (med1 ${onMed1.length}, med2 ${onMed2.length})`);
    assert.ok((await system.status('med2.contoso.com')).dialogs.active >= onMed2.length, 'med2 holds its calls');
    await system.kill('med1.contoso.com');
    // Calls set up right after the kill (the Front Ends may not know med1 is down yet: a call whose
    // Call-ID hashes to med1 fails over to med2) and once med1 is known down.
    const viaMed2Before = (await toGateway())['med2.contoso.com']!;
    const afterKill = (await Promise.all(callers.map((caller, c) => place(caller, 500 + c)))).concat(await Promise.all(callers.map((caller, c) => place(caller, 600 + c))));
    assert.equal((await toGateway())['med2.contoso.com']! - viaMed2Before, afterKill.length, 'med2 carried every call set up after the kill');
    // Hang up the survivors and half of med1's calls while med1 is down: calls never on med1 end
    // cleanly through med2; those on med1 get a final failure from their Front End at once (503:
    // med1 refuses connections), none hangs.
    const half = Math.ceil(onMed1.length / 2);
    const survivors = [...onMed2, ...afterKill];
    const ended = await hangUpAll([...survivors, ...onMed1.slice(0, half)]);
    assert.deepEqual(
      ended
        .slice(0, survivors.length)
        .map((status, index) => ({ status, callId: survivors[index]!.callId }))
        .filter(({ status }) => status !== 200),
      [],
      'every BYE of a call on med2 or set up after the kill got 200',
    );
    const lostWhileDown = ended.slice(survivors.length);
    for (const status of lostWhileDown) assert.ok(status !== null && [408, 481, 503].includes(status), `a BYE of a call on med1 (med1 down) answered ${status}`);
    let followed = 0;
    for (const fqdn of POOL01) followed += (await system.status(fqdn)).proxy.dialogHopsFollowed;
    assert.ok(followed >= ended.length, `the Front Ends sent each BYE (and ACK) to the call's Mediation server (${followed})`);

    // sipp callers through fe1 with med1 down: med2 carries every call, and their BYEs are answered.
    const viaMed2 = (await toGateway())['med2.contoso.com']!;
    const calls = await callNumbers('fe1.contoso.com', 50, 300);
    assert.equal(calls.code, 0, `calls with med1 down failed: ${calls.detail}`);
    assert.equal((await toGateway())['med2.contoso.com']! - viaMed2, 50, 'med2 carried every call');

    // med1 back (as the supervisor restarts it): new calls spread over both servers again and end
    // cleanly; the BYEs of the calls the old med1 carried reach the new one, which does not carry
    // them (nor does the gateway any more): 481 at once, counted.
    await system.startServer('med1.contoso.com');
    const afterRestart: Call[] = [];
    for (let round = 0; (await toGateway())['med1.contoso.com']! === 0; round++) {
      assert.ok(round < 100, 'calls go through med1 within 100 rounds after its restart');
      afterRestart.push(...(await Promise.all(callers.map((caller, c) => place(caller, 700 + round * 10 + c)))));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const endedLater = await hangUpAll([...afterRestart, ...onMed1.slice(half)]);
    assert.deepEqual(endedLater.slice(0, afterRestart.length).filter((status) => status !== 200), [], 'every BYE of a call set up after the restart got 200');
    const lostAfterRestart = endedLater.slice(afterRestart.length);
    for (const status of lostAfterRestart) assert.ok(status !== null && [408, 481, 503].includes(status), `a BYE of a call on the old med1 answered ${status}`);
    const unknown = (await system.status('med1.contoso.com')).proxy.unknownDialogs;
    assert.equal(unknown, lostAfterRestart.filter((status) => status === 481).length, 'the new med1 answered 481 to each BYE of a call it never carried');
    assert.equal(lostWhileDown.length + lostAfterRestart.length, onMed1.length, 'exactly the calls on med1 were lost');
    console.log(`PSTN kill: ${before.length} calls up (med1 ${onMed1.length}, med2 ${onMed2.length}), ${afterKill.length} after the kill, ${afterRestart.length} after the restart; BYEs lost: ${lostWhileDown.join(',')} while med1 was down, ${lostAfterRestart.join(',')} after`);
  } finally {
    await Promise.all(callers.map((caller) => caller.stop({ unregisterTimeoutMs: 200 })));
  }
});

test('the gateway down: the caller gets a failure naming the gateway at once, nothing rings', { timeout: 60_000 }, async () => {
  await gateway!.stop();
  gateway = null;
  await waitUntil('the gateway is gone', async () => !(await probe(GATEWAY, gatewayPort)), { timeoutMs: 10_000 });
  const answer = await finalAnswer('fe1.contoso.com', 'sip:+14255550199@contoso.com;user=phone');
  assert.ok(answer.status === 480 || answer.status === 503, `${answer.status} ${answer.reason}`);
  assert.match(answer.reason, /PSTN gateway unreachable/);
  assert.deepEqual(answer.provisional.filter((status) => status !== 100), [], 'nothing rang');
  const status = await system.status('med2.contoso.com');
  assert.ok(status.proxy.pstnGatewayDown >= 1);
  assert.ok(sampleValue(await metricsOf('med2.contoso.com'), 'dnslb_pstn_gateway_calls_total', { gateway: 'gw1.contoso.com', outcome: 'unreachable' }) >= 1);
});

test('a call from the gateway (a sipp UAC at its address) to a user, and to the user\'s number, reaches it at its home server in pool01; a number nobody has → 404', { timeout: 120_000 }, async () => {
  const pool01 = system.poolAddresses('pool01.contoso.com');
  const callee = new UserAgent({ aor: 'sip:pstn-callee@contoso.com', locator: system.locator(pool01, 0), transport: 'tcp', keepAliveIntervalMs: 600_000, answerDelayMs: 0 });
  try {
    await callee.start();
    await waitUntil('the callee registered', () => callee.state === 'registered', { timeoutMs: 30_000 });
    const home = sequencerOf(system.topology.pools.find((pool) => pool.fqdn === 'pool01.contoso.com')!).sequenceOfCanonical(callee.aor)[0]!;
    assert.equal(callee.server, `${system.addressOf(home)}:${system.port}`, 'the callee is at its home server');
    const homeBefore = (await system.status(home)).roles.fromOtherPools;
    const medBefore = (await system.status('med2.contoso.com')).proxy.interPoolForwarded;
    writeFileSync(join(dir, 'inbound.csv'), 'SEQUENTIAL\n+14255550123;pstn-callee\n');
    writeFileSync(join(dir, 'inbound.xml'), UAC_CALL);
    const port = await freePortPair([GATEWAY]);
    const result = await runSipp(dir, ['-sf', 'inbound.xml', '-inf', 'inbound.csv', '-t', 't1', '-i', GATEWAY, '-p', String(port), '-m', '1', '-timeout', '30s', `${system.addressOf('med2.contoso.com')}:${system.port}`], { timeoutMs: 60_000 });
    assert.equal(result.code, 0, `the inbound call failed: ${result.stderr}\n${result.errors}`);
    // med2 sent the INVITE to pool01 by the callee's sequence there; INVITE, ACK and BYE reached the
    // callee's home server from med2 (ACK and BYE along the Record-Route).
    assert.equal((await system.status('med2.contoso.com')).proxy.interPoolForwarded - medBefore, 1);
    const fromMediation = (await system.status(home)).roles.fromOtherPools - homeBefore;
    assert.ok(fromMediation >= 3, `${home} got ${fromMediation} requests from med2`);

    // The same user by its number: the user directory gives pstn-callee +1-425-555-0123; med2 learns
    // it from the store's change (it follows the directory) and retargets the gateway's call to the user.
    await system.store.addUser({ uri: callee.aor, number: '+14255550123', disabled: false, credential: credentialFor(callee.aor, 'not-used', { md5: false }) }, { by: 'test' });
    await waitUntil('med2 knows the number', async () => (await system.status('med2.contoso.com')).roles.numbers === 1, { timeoutMs: 30_000 });
    const byNumberBefore = (await system.status(home)).roles.fromOtherPools;
    writeFileSync(join(dir, 'inbound-number.csv'), 'SEQUENTIAL\n+19995550100;+1-425-555-0123\n');
    writeFileSync(join(dir, 'inbound-number.xml'), UAC_NUMBER);
    const byNumber = await runSipp(dir, ['-sf', 'inbound-number.xml', '-inf', 'inbound-number.csv', '-t', 't1', '-i', GATEWAY, '-p', String(await freePortPair([GATEWAY])), '-m', '1', '-timeout', '30s', `${system.addressOf('med2.contoso.com')}:${system.port}`], { timeoutMs: 60_000 });
    assert.equal(byNumber.code, 0, `the call to the number failed: ${byNumber.stderr}\n${byNumber.errors}`);
    assert.equal((await system.status('med2.contoso.com')).proxy.pstnFromGateway, 1);
    const byNumberAtHome = (await system.status(home)).roles.fromOtherPools - byNumberBefore;
    assert.ok(byNumberAtHome >= 3, `${home} got ${byNumberAtHome} requests of the call to the number`);
    // A number nobody has: 404 naming it, from med2 itself.
    const nobody = await finalAnswer('med2.contoso.com', 'sip:+14255550999@contoso.com;user=phone', GATEWAY);
    assert.equal(nobody.status, 404);
    assert.match(nobody.reason, /\+14255550999: no user has this number/);
    assert.equal(sampleValue(await metricsOf('med2.contoso.com'), 'dnslb_pstn_calls_unknown_number_total'), 1);
  } finally {
    await callee.stop({ unregisterTimeoutMs: 200 });
  }
});
