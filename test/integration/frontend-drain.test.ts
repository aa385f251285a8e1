// Draining with real `dnslb server --store` processes on 127.0.10.11-13 and real UserAgents: the
// store says fe1 is draining while calls run through it — no new connection is accepted, new
// out-of-dialog requests get 302 to the user's next server, users are handed over in batches, every
// call goes on until hung up, then fe1 is drained (status, OPTIONS, liveness); resumed, it accepts
// again and its users come back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Call } from '../../src/client/call.ts';
import { headerValue, headerValues } from '../../src/sip/message.ts';
import { homeOf } from '../../src/registrar/sequence.ts';
import { readFileSync } from 'node:fs';
import { startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { serverCertificateFiles } from '../helpers/tls-certs.ts';
import { eventually } from '../helpers/eventually.ts';
import { stopAll } from '../helpers/process.ts';
import { TestSipClient } from '../helpers/sip-client.ts';
import { startFleet, type Fleet } from '../helpers/ua-fleet.ts';

const ADDRESSES = ['127.0.10.11', '127.0.10.12', '127.0.10.13'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const CLIENT = '127.0.10.100';
const BATCH = { batchSize: 5, intervalMs: 300 };

function rawUserHomedAt(server: string): string {
  for (let n = 0; ; n++) {
    const user = `sip:raw${n}@contoso.com`;
    if (homeOf(user, SERVERS, new Set(SERVERS))!.server === server) return user;
  }
}

function request(client: TestSipClient, method: string, user: string, target: string, callId: string): void {
  client.send([
    `${method} ${target} SIP/2.0`,
    `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-${callId}`,
    'Max-Forwards: 70',
    `From: <${user}>;tag=t-${callId}`,
    `To: <${method === 'REGISTER' ? user : target}>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    `Contact: <${user.replace('@contoso.com', `@${CLIENT}:${client.localPort}`)};transport=tcp>`,
    ...(method === 'REGISTER' ? ['Expires: 600'] : []),
  ]);
}

/** Fails (instead of hanging) when `promise` takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what()}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('draining fe1 through the store with calls up, then resuming it', () => {
  let pool: RunningPool;
  let fleet: Fleet;
  let raw: TestSipClient;
  const rawUser = rawUserHomedAt('fe1.contoso.com');
  const calls: { caller: Call; callee: Call }[] = [];

  before(async () => {
    pool = await startPool({
      addresses: ADDRESSES,
      store: true,
      heartbeatIntervalMs: 250,
      settingsYaml: `  rehome: { batchSize: ${BATCH.batchSize}, intervalMs: ${BATCH.intervalMs} }\n  drain: { timeoutMs: 120000 }`,
    });
    fleet = await startFleet({ pool, addresses: ADDRESSES, discovered: 3, count: 60, prefix: 'drain' });
    await eventually(() => assert.ok(fleet.agents.every((agent) => agent.state === 'registered')), { timeoutMs: 20_000 });
    // A plain RFC 3261 client on its own connection to fe1, registered before the drain.
    raw = await TestSipClient.open(ADDRESSES[0]!, pool.tcpPort, CLIENT);
    request(raw, 'REGISTER', rawUser, 'sip:contoso.com', 'raw-reg-1');
    await raw.response('raw-reg-1', 200);
  });
  after(async () => {
    raw?.close();
    await fleet?.stop();
    await pool?.stop();
    await stopAll();
  });

  test('calls through fe1 come up (caller on fe1, callee on fe1, and one between other servers)', async () => {
    const on = (server: number) => fleet.agents.filter((agent) => fleet.serverOf(agent) === server);
    const [a, b] = on(0);
    const [c] = on(1);
    const [d] = on(2);
    const e = on(0)[2]!;
    for (const [from, to] of [[a!, c!], [d!, b!], [e, on(0)[3]!]] as const) {
      const incoming = once(to, 'incomingCall') as Promise<[Call]>;
      const caller = from.call(to.aor);
      await once(caller, 'up');
      const [callee] = await incoming;
      calls.push({ caller, callee });
    }
    assert.equal((await pool.status(0)).dialogs.active, 3);
  });

  test('draining: no new connection, 302 for new requests, users leave in batches, calls stay up', async () => {
    const refusedBefore = (await pool.status(0)).transport.connectionsRefused;
    await pool.store!.setAdminState('fe1.contoso.com', 'draining', { by: 'test', reason: 'maintenance' });
    await eventually(async () => {
      const status = await pool.status(0);
      assert.equal(status.state, 'draining');
      assert.equal(status.resilience.drain?.phase, 'draining');
      assert.equal(status.resilience.acceptingConnections, false);
    });
    // A new connection is taken and dropped at once: nothing is ever answered on it.
    const late = await TestSipClient.open(ADDRESSES[0]!, pool.tcpPort, CLIENT);
    await eventually(() => assert.ok(late.closed, 'the server dropped the new connection'));
    assert.ok((await pool.status(0)).transport.connectionsRefused > refusedBefore);
    // New out-of-dialog requests on an existing flow: 302 Moved Temporarily to the user's next server.
    const next = homeOf(rawUser, SERVERS, new Set(SERVERS.slice(1)))!.server;
    request(raw, 'MESSAGE', rawUser, fleet.agents[0]!.aor, 'raw-msg-1');
    const moved = await raw.response('raw-msg-1', 302);
    assert.equal(moved.reason, 'Moved Temporarily');
    const contacts = headerValues(moved, 'Contact');
    assert.match(contacts[0]!, new RegExp(`^<sip:${next.replaceAll('.', '\\.')}:${pool.tcpPort};transport=tcp;maddr=`));
    assert.ok(contacts.every((contact) => !contact.includes('fe1.contoso.com')), 'never to itself');
    request(raw, 'REGISTER', rawUser, 'sip:contoso.com', 'raw-reg-2');
    assert.equal((await raw.response('raw-reg-2', 302)).reason, 'Moved Temporarily');
    // The users of fe1 not in a call leave, in batches.
    const inCall = new Set(calls.flatMap(({ caller, callee }) => [caller, callee]).map((call) => call.remoteUri));
    await eventually(() => {
      const left = fleet.agents.filter((agent) => fleet.serverOf(agent) === 0 && !inCall.has(agent.aor));
      assert.equal(left.length, 0, `${left.length} users still on fe1`);
    }, { timeoutMs: 20_000 });
    const status = await pool.status(0);
    assert.equal(status.resilience.drain?.phase, 'draining', 'calls are still up');
    assert.equal(status.resilience.drain?.dialogsLeft, 3);
    assert.ok(status.resilience.handover.batches.every((batch) => batch.handedOver <= BATCH.batchSize));
    assert.ok(calls.every(({ caller, callee }) => caller.state === 'up' && callee.state === 'up'), 'no call dropped');
    // Peers see the drain in the OPTIONS answers and take fe1 out of their sequences.
    const peerView = await pool.status(1);
    assert.equal(peerView.heartbeat.peers['fe1.contoso.com']?.reportedState, 'draining');
    assert.ok(!peerView.available.includes('fe1.contoso.com'));
  });

  test('the calls end normally (BYE through fe1), then fe1 is drained: status, OPTIONS and liveness say so', async () => {
    for (const { caller, callee } of calls) {
      const ended = once(callee, 'ended') as Promise<[{ how: string }]>;
      const hungUp = once(caller, 'ended') as Promise<[{ how: string }]>;
      caller.hangUp();
      const state = () => `caller ${caller.state} ${JSON.stringify(caller.ended)}, callee ${callee.state} ${JSON.stringify(callee.ended)}`;
      assert.equal((await within(hungUp, 10_000, state))[0].how, 'bye-sent');
      assert.equal((await within(ended, 10_000, state))[0].how, 'bye-received');
    }
    await eventually(async () => {
      const status = await pool.status(0);
      assert.equal(status.state, 'drained');
      assert.equal(status.resilience.drain?.phase, 'drained');
    }, { timeoutMs: 20_000 });
    const drain = (await pool.status(0)).resilience.drain!;
    assert.equal(drain.timedOut, false);
    assert.equal(drain.bindingsLeft, 0);
    assert.equal(drain.dialogsLeft, 0);
    assert.ok(drain.finishedAtMs! >= drain.startedAtMs);
    assert.ok(drain.handedOver >= 1);
    assert.ok(fleet.agents.every((agent) => fleet.serverOf(agent) > 0), 'every user is on fe2 or fe3');
    await eventually(async () => {
      assert.equal((await pool.status(1)).heartbeat.peers['fe1.contoso.com']?.reportedState, 'drained');
      const own = (await pool.store!.liveness()).find((record) => record.server === 'fe1.contoso.com' && record.reporter === 'fe1.contoso.com');
      assert.equal(own?.state, 'drained');
    });
    // A peer still gets in (pool links are kept while draining): recognised by its certificate after
    // the TLS handshake. The same address without it, over TCP, is a client and is turned away.
    const fe2 = await serverCertificateFiles('fe2.contoso.com', { names: ['pool01.contoso.com'], ips: [ADDRESSES[1]!] });
    const peer = await TestSipClient.openTls(ADDRESSES[0]!, pool.tlsPort, ADDRESSES[1]!, { ca: readFileSync(fe2.caFile, 'utf8'), servername: 'fe1.contoso.com', cert: readFileSync(fe2.certFile, 'utf8'), key: readFileSync(fe2.keyFile, 'utf8') });
    const impostor = await TestSipClient.open(ADDRESSES[0]!, pool.tcpPort, ADDRESSES[1]!);
    await eventually(() => assert.equal(impostor.closed, true, 'TCP from a peer\'s address without its certificate: refused while draining'));
    peer.send(['OPTIONS sip:fe1.contoso.com SIP/2.0', `Via: SIP/2.0/TLS ${ADDRESSES[1]}:${peer.localPort};branch=z9hG4bK-o1`, 'Max-Forwards: 0', 'From: <sip:fe2.contoso.com>;tag=o1', 'To: <sip:fe1.contoso.com>', 'Call-ID: drained-options', 'CSeq: 1 OPTIONS']);
    assert.equal(headerValue(await peer.response('drained-options', 200), 'X-Dnslb-State'), 'drained');
    peer.close();
  });

  test('resume: fe1 accepts connections again and its users come back in batches', async () => {
    await pool.store!.setAdminState('fe1.contoso.com', 'active', { by: 'test', reason: 'done' });
    const primaries = fleet.agents.filter((agent) => homeOf(agent.aor, SERVERS, new Set(SERVERS))!.server === 'fe1.contoso.com');
    await eventually(() => {
      const away = primaries.filter((agent) => fleet.serverOf(agent) !== 0 || agent.registrarMode !== 'primary');
      assert.equal(away.length, 0, `${away.length} of ${primaries.length} not back`);
    }, { timeoutMs: 20_000 });
    const status = await pool.status(0);
    assert.equal(status.state, 'active');
    assert.equal(status.resilience.acceptingConnections, true);
    assert.equal(status.resilience.drain?.phase, 'resumed');
    const fresh = await TestSipClient.open(ADDRESSES[0]!, pool.tcpPort, CLIENT);
    fresh.send(['OPTIONS sip:fe1.contoso.com SIP/2.0', `Via: SIP/2.0/TCP ${CLIENT}:${fresh.localPort};branch=z9hG4bK-o2`, 'Max-Forwards: 70', 'From: <sip:probe@contoso.com>;tag=o2', 'To: <sip:fe1.contoso.com>', 'Call-ID: resumed-options', 'CSeq: 1 OPTIONS']);
    // A client is answered again (the heartbeat's state is for peers only).
    assert.equal(headerValue(await fresh.response('resumed-options', 200), 'X-Dnslb-State'), undefined);
    fresh.close();
    for (const index of [1, 2]) {
      const peer = await pool.status(index);
      assert.ok(peer.resilience.handover.batches.every((batch) => batch.handedOver <= BATCH.batchSize));
    }
  });
});
