// Front End servers in this process on real sockets (127.0.6.31-33, the third one never started):
// OPTIONS state headers, the physical sequence (a down peer's users land in backup mode, others are
// redirected there), 404/480/483/482, a call cancelled across two servers, and the reg event.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrontEndServer, STATE_HEADER, TOPOLOGY_VERSION_HEADER } from './server.ts';
import { headerValue, headerValues, type SipRequest } from '../sip/message.ts';
import { parseMessage } from '../sip/parse.ts';
import { loopHash } from './proxy.ts';
import { homeOf } from '../registrar/sequence.ts';
import { parseRegInfo } from '../registrar/reg-event.ts';
import { parse } from '../topology/parse.ts';
import { freePortPair, topologyYaml } from '../../test/helpers/frontend-pool.ts';
import { TestSipClient } from '../../test/helpers/sip-client.ts';
import { waitUntil } from '../../test/helpers/process.ts';
import { serverTls } from '../../test/helpers/tls-certs.ts';

const ADDRESSES = ['127.0.6.31', '127.0.6.32', '127.0.6.33'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const CLIENT = '127.0.6.130';
let counter = 0;

function userHomedAt(wantedPrimary: string, prefix: string): string {
  for (let n = 0; ; n++) {
    const user = `sip:${prefix}${n}@contoso.com`;
    if (homeOf(user, SERVERS, new Set(SERVERS))!.server === wantedPrimary) return user;
  }
}

function registerLines(user: string, client: TestSipClient, extra: string[] = []): { lines: string[]; callId: string } {
  const n = ++counter;
  const callId = `reg-${n}@test`;
  return {
    callId,
    lines: [
      'REGISTER sip:contoso.com SIP/2.0',
      `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-r${n}`,
      'Max-Forwards: 70',
      `From: <${user}>;tag=f${n}`,
      `To: <${user}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${n} REGISTER`,
      `Contact: <${user.replace('@contoso.com', `@${CLIENT}:${client.localPort}`)};transport=tcp>`,
      'Expires: 600',
      ...extra,
    ],
  };
}

function inviteLines(from: string, toUser: string, client: TestSipClient, options: { maxForwards?: number; via?: string } = {}): { lines: string[]; callId: string } {
  const n = ++counter;
  const callId = `call-${n}@test`;
  return {
    callId,
    lines: [
      `INVITE ${toUser} SIP/2.0`,
      ...(options.via ? [`Via: ${options.via}`] : []),
      `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-i${n}`,
      `Max-Forwards: ${options.maxForwards ?? 70}`,
      `From: <${from}>;tag=caller${n}`,
      `To: <${toUser}>`,
      `Call-ID: ${callId}`,
      `CSeq: 1 INVITE`,
      `Contact: <sip:caller@${CLIENT}:${client.localPort};transport=tcp>`,
    ],
  };
}

describe('Front End servers in process: fe1 and fe2 up, fe3 never started', () => {
  const servers: FrontEndServer[] = [];
  const clients: TestSipClient[] = [];
  let port = 0;
  const open = async (index: number): Promise<TestSipClient> => {
    const client = await TestSipClient.open(ADDRESSES[index]!, port, CLIENT);
    clients.push(client);
    return client;
  };

  before(async () => {
    port = await freePortPair(ADDRESSES);
    const topology = parse(topologyYaml(ADDRESSES, port, 100), 'test.yaml');
    for (const fqdn of SERVERS.slice(0, 2)) {
      const server = new FrontEndServer({ topology, topologyVersion: 7, server: fqdn, tls: await serverTls(fqdn) });
      await server.start();
      servers.push(server);
    }
    await waitUntil('fe3 down, fe1/fe2 active', () =>
      servers.every((server) => {
        const peers = server.status().heartbeat.peers;
        return peers['fe3.contoso.com']?.state === 'down' && Object.values(peers).filter((peer) => peer.state === 'active').length === 1;
      }),
    );
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.stop()));
  });

  test('OPTIONS to a server from a client: 200 without the heartbeat\'s state (peers only); the state is in status()', async () => {
    const client = await open(0);
    client.send(['OPTIONS sip:fe1.contoso.com SIP/2.0', `Via: SIP/2.0/TCP ${CLIENT};branch=z9hG4bK-o1`, 'Max-Forwards: 70', 'From: <sip:probe@contoso.com>;tag=o1', 'To: <sip:fe1.contoso.com>', 'Call-ID: options-1', 'CSeq: 1 OPTIONS']);
    const answer = await client.response('options-1', 200);
    assert.equal(headerValue(answer, STATE_HEADER), undefined);
    assert.equal(headerValue(answer, TOPOLOGY_VERSION_HEADER), undefined);
    assert.equal(servers[1]!.status().heartbeat.peers['fe1.contoso.com']?.reportedState, 'active', 'fe2 reads it over its mutual TLS link');
    assert.equal(servers[1]!.status().heartbeat.peers['fe1.contoso.com']?.topologyVersion, 7);
    assert.deepEqual(servers[0]!.status().available, ['fe1.contoso.com', 'fe2.contoso.com']);
  });

  test('a user whose primary (fe3) is down registers in backup mode at the next server; the other server redirects there', async () => {
    const user = userHomedAt('fe3.contoso.com', 'orphan');
    const backup = homeOf(user, SERVERS, new Set(SERVERS.slice(0, 2)))!.server;
    const backupIndex = SERVERS.indexOf(backup);
    const other = await open(1 - backupIndex);
    const first = registerLines(user, other);
    other.send(first.lines);
    const redirect = await other.response(first.callId, 301);
    assert.equal(redirect.reason, 'Redirect request to Home Server');
    const contacts = headerValues(redirect, 'Contact');
    // Only available servers are offered (not fe3), and never the redirecting server itself (no redirect loops).
    assert.equal(contacts.length, 1, `one Contact: ${contacts.join(', ')}`);
    assert.match(contacts[0]!, new RegExp(`^<sip:${backup}:${port};transport=tcp;maddr=${ADDRESSES[backupIndex]!.replaceAll('.', '\\.')}>;q=0\\.7$`));
    const home = await open(backupIndex);
    const second = registerLines(user, home);
    home.send(second.lines);
    const ok = await home.response(second.callId, 200);
    assert.equal(headerValue(ok, 'X-Registrar-Mode'), 'backup');
    assert.match(headerValue(ok, 'Contact') ?? '', /;expires=600$/);
    assert.equal(servers[backupIndex]!.user(user).bindings[0]?.mode, 'backup');
  });

  test('404 for a domain we do not serve, 480 for a user with no binding, 483 when Max-Forwards is spent', async () => {
    const client = await open(0);
    const foreign = inviteLines('sip:a@contoso.com', 'sip:someone@fabrikam.com', client);
    client.send(foreign.lines);
    await client.response(foreign.callId, 404, 'INVITE');
    const nobody = inviteLines('sip:a@contoso.com', userHomedAt('fe2.contoso.com', 'nobody'), client);
    client.send(nobody.lines);
    await client.response(nobody.callId, 480, 'INVITE'); // forwarded to fe2, answered there
    const spent = inviteLines('sip:a@contoso.com', userHomedAt('fe2.contoso.com', 'spent'), client, { maxForwards: 0 });
    client.send(spent.lines);
    await client.response(spent.callId, 483, 'INVITE');
  });

  test('a request that comes back with our Via for the same request is a loop (482)', async () => {
    const client = await open(0);
    const callee = userHomedAt('fe2.contoso.com', 'loop');
    const probe = inviteLines('sip:a@contoso.com', callee, client);
    const text = `${probe.lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`;
    const hash = loopHash(parseMessage(Buffer.from(text)) as never);
    const looped = inviteLines('sip:a@contoso.com', callee, client, { via: `SIP/2.0/TCP ${ADDRESSES[0]}:${port};branch=z9hG4bK-dl-abc.${hash}` });
    // Same identifying fields as the probe (Call-ID, tags, CSeq), so the hash matches.
    const lines = looped.lines.map((line) => line.replace(looped.callId, probe.callId).replace(/caller\d+/, /caller\d+/.exec(probe.lines.join('\n'))![0]));
    client.send(lines);
    await client.response(probe.callId, 482, 'INVITE');
  });

  // Found in review: a server that is blocked (or draining, or handing users over in batches) keeps
  // its users for a while, but the sequence already names another home; calls from the rest of the
  // pool went to that home, found no binding and got 480. The home now asks the server holding it.
  test('a user still registered on a blocked server is reached from the rest of the pool (the home by the sequence asks the server that holds the binding)', async () => {
    const user = (() => {
      for (let n = 0; ; n++) {
        const candidate = `sip:held${n}@contoso.com`;
        if (homeOf(candidate, SERVERS, new Set(SERVERS.slice(0, 2)))!.server === 'fe1.contoso.com') return candidate;
      }
    })();
    const callee = await open(0);
    const reg = registerLines(user, callee);
    callee.send(reg.lines);
    await callee.response(reg.callId, 200);
    const blocked = new Map([['fe1.contoso.com', 'blocked' as const]]);
    for (const server of servers) server.applyAdminStates(blocked);
    try {
      assert.equal(servers[1]!.user(user).home, 'fe2.contoso.com', 'fe2 is the home by the sequence now');
      assert.equal(servers[1]!.user(user).bindings.length, 0, 'but the binding is still on fe1');
      const caller = await open(1);
      const invite = inviteLines('sip:caller@contoso.com', user, caller);
      caller.send(invite.lines);
      const incoming = await callee.request('INVITE', invite.callId);
      assert.equal(headerValues(incoming, 'Via').length, 3, 'fe2 and fe1 both proxied it');
      callee.send([
        'SIP/2.0 486 Busy Here',
        ...headerValues(incoming, 'Via').map((via) => `Via: ${via}`),
        `From: ${headerValue(incoming, 'From')}`,
        `To: ${headerValue(incoming, 'To')};tag=held`,
        `Call-ID: ${invite.callId}`,
        `CSeq: ${headerValue(incoming, 'CSeq')}`,
      ]);
      await caller.response(invite.callId, 486, 'INVITE');
      await callee.request('ACK', invite.callId);
    } finally {
      for (const server of servers) server.applyAdminStates(new Map());
    }
  });

  test('a call across fe1 → fe2 cancelled while ringing: 100, 180, CANCEL 200, 487 and ACK hop by hop; no dialog is left', async () => {
    const calleeUser = userHomedAt('fe2.contoso.com', 'callee');
    const callee = await open(1);
    const reg = registerLines(calleeUser, callee);
    callee.send(reg.lines);
    await callee.response(reg.callId, 200);
    const caller = await open(0);
    const invite = inviteLines('sip:caller@contoso.com', calleeUser, caller);
    caller.send(invite.lines);
    await caller.response(invite.callId, 100, 'INVITE');
    const incoming = await callee.request('INVITE', invite.callId);
    assert.equal(headerValues(incoming, 'Via').length, 3, 'two proxies added their Via');
    assert.equal(headerValues(incoming, 'Record-Route').length, 2, 'both servers record-route');
    assert.equal(headerValue(incoming, 'Max-Forwards'), '68');
    const answerLines = (status: string, req = incoming) => [
      `SIP/2.0 ${status}`,
      ...headerValues(req, 'Via').map((via) => `Via: ${via}`),
      `From: ${headerValue(req, 'From')}`,
      `To: ${headerValue(req, 'To')}${status.startsWith('100') ? '' : ';tag=callee1'}`,
      `Call-ID: ${headerValue(req, 'Call-ID')}`,
      `CSeq: ${headerValue(req, 'CSeq')}`,
    ];
    callee.send(answerLines('180 Ringing'));
    await caller.response(invite.callId, 180, 'INVITE');
    caller.send([
      `CANCEL ${calleeUser} SIP/2.0`,
      invite.lines[1]!,
      'Max-Forwards: 70',
      invite.lines[3]!,
      invite.lines[4]!,
      `Call-ID: ${invite.callId}`,
      'CSeq: 1 CANCEL',
    ]);
    await caller.response(invite.callId, 200, 'CANCEL');
    const cancel = await callee.request('CANCEL', invite.callId);
    callee.send(answerLines('200 OK', cancel));
    callee.send(answerLines('487 Request Terminated'));
    await caller.response(invite.callId, 487, 'INVITE');
    const ack = await callee.request('ACK', invite.callId);
    assert.equal(headerValue(ack, 'CSeq'), '1 ACK');
    assert.equal(servers[0]!.status().dialogs.active + servers[1]!.status().dialogs.active, 0);
  });

  /**
   * A call from a user homed at fe1 to one homed at fe2 (`NAMEcaller`, `NAMEcallee`), answered 200 by the
   * callee with the Record-Route copied (RFC 3261 §12.1.1) and its To tag `NAMEcallee`.
   */
  const callUp = async (name: string) => {
    const calleeUser = userHomedAt('fe2.contoso.com', `${name}callee`);
    const callerUser = userHomedAt('fe1.contoso.com', `${name}caller`);
    const callee = await open(1);
    const reg = registerLines(calleeUser, callee);
    callee.send(reg.lines);
    await callee.response(reg.callId, 200);
    const caller = await open(0);
    const invite = inviteLines(callerUser, calleeUser, caller);
    caller.send(invite.lines);
    const incoming = await callee.request('INVITE', invite.callId);
    const recordRoutes = headerValues(incoming, 'Record-Route');
    callee.send([
      'SIP/2.0 200 OK',
      ...headerValues(incoming, 'Via').map((via) => `Via: ${via}`),
      `From: ${headerValue(incoming, 'From')}`,
      `To: ${headerValue(incoming, 'To')};tag=${name}callee`,
      `Call-ID: ${invite.callId}`,
      `CSeq: ${headerValue(incoming, 'CSeq')}`,
      `Contact: <sip:callee@${CLIENT}:${callee.localPort};transport=tcp>`,
      ...recordRoutes.map((route) => `Record-Route: ${route}`),
    ]);
    await caller.response(invite.callId, 200, 'INVITE');
    return { calleeUser, callerUser, callee, caller, invite, recordRoutes };
  };

  // Found by test/integration/pool-drain-calls.test.ts: the dialog ended when the BYE was forwarded,
  // so a draining server could hand the caller over (deactivate → re-register elsewhere → the client
  // leaves its flow) while the BYE's 200 was still on its way back: the caller never got it.
  test('a BYE in flight keeps its dialog (and its users busy for the hand-over) until its answer passes back', async () => {
    const { calleeUser, callerUser, callee, caller, invite, recordRoutes } = await callUp('bye');
    const reply = (status: string, req: SipRequest) => [
      `SIP/2.0 ${status}`,
      ...headerValues(req, 'Via').map((via) => `Via: ${via}`),
      `From: ${headerValue(req, 'From')}`,
      `To: ${headerValue(req, 'To')}`,
      `Call-ID: ${headerValue(req, 'Call-ID')}`,
      `CSeq: ${headerValue(req, 'CSeq')}`,
    ];
    const fe1 = servers[0]!;
    assert.equal(fe1.status().dialogs.active, 1);
    // §12.1.2: the caller's route set is the Record-Route list reversed.
    caller.send([
      `BYE sip:callee@${CLIENT}:${callee.localPort};transport=tcp SIP/2.0`,
      `Via: SIP/2.0/TCP ${CLIENT}:${caller.localPort};branch=z9hG4bK-bye${counter}`,
      'Max-Forwards: 70',
      ...[...recordRoutes].reverse().map((route) => `Route: ${route}`),
      `From: <${callerUser}>;tag=caller${invite.callId.replace(/\D/g, '')}`,
      `To: <${calleeUser}>;tag=byecallee`,
      `Call-ID: ${invite.callId}`,
      'CSeq: 2 BYE',
    ]);
    const bye = await callee.request('BYE', invite.callId);
    // The hand-over's `busy` is this same dialog count (DialogCounter.inDialog).
    assert.equal(fe1.status().dialogs.active, 1, 'the BYE is not answered yet: the dialog, and its users\' busy state, are still up');
    callee.send(reply('200 OK', bye));
    await caller.response(invite.callId, 200, 'BYE');
    assert.equal(fe1.status().dialogs.active, 0);
  });

  // Found by test/integration/e2e.test.ts's commission (fe4 got 49 of its 50 users, now and then): a
  // call was up when an earlier test's simulator stopped, and no BYE of it reached a server (the
  // client reset its connection with the BYE still unread there). The server counted the dialog until
  // its 24 h age limit: its users stayed busy, and every hand-over deferred them behind each batch
  // for ever (a drain never ended either).
  test('a dialog ends at a server when a user agent\'s flow in it closes: no BYE needed, its users are no longer busy', async () => {
    const { callee, caller } = await callUp('gone');
    const [fe1, fe2] = [servers[0]!, servers[1]!];
    await waitUntil('the call is up at both servers', () => fe1.status().dialogs.active === 1 && fe2.status().dialogs.active === 1);
    // The callee's client is gone without a word (a reset connection): fe2 reached it only over that flow.
    callee.close();
    await waitUntil('the dialog ended at fe2', () => fe2.status().dialogs.active === 0);
    assert.equal(fe1.status().dialogs.active, 1, 'fe1 reaches the callee through fe2, and the caller is still there');
    // The caller's flow, fe1's only way to it, closes too.
    caller.close();
    await waitUntil('the dialog ended at fe1', () => fe1.status().dialogs.active === 0);
    assert.equal(fe1.status().dialogs.startedTotal, fe1.status().dialogs.endedTotal);
  });

  test('a BYE a server answers itself (480: the callee is registered nowhere) ends the dialog there too', async () => {
    const { calleeUser, callerUser, callee, caller, invite, recordRoutes } = await callUp('left');
    const [fe1, fe2] = [servers[0]!, servers[1]!];
    await waitUntil('the call is up at both servers', () => fe1.status().dialogs.active === 1 && fe2.status().dialogs.active === 1);
    // The callee unregisters (its connection stays open); the caller's BYE names the callee's AOR.
    const unregister = registerLines(calleeUser, callee);
    callee.send(unregister.lines.map((line) => (line === 'Expires: 600' ? 'Expires: 0' : line)));
    await callee.response(unregister.callId, 200);
    caller.send([
      `BYE ${calleeUser} SIP/2.0`,
      `Via: SIP/2.0/TCP ${CLIENT}:${caller.localPort};branch=z9hG4bK-leftbye${counter}`,
      'Max-Forwards: 70',
      ...[...recordRoutes].reverse().map((route) => `Route: ${route}`),
      `From: <${callerUser}>;tag=caller${invite.callId.replace(/\D/g, '')}`,
      `To: <${calleeUser}>;tag=leftcallee`,
      `Call-ID: ${invite.callId}`,
      'CSeq: 2 BYE',
    ]);
    const answer = await caller.response(invite.callId, undefined, 'BYE');
    assert.equal(answer.status, 480, answer.reason);
    assert.equal(fe1.status().dialogs.active, 0, 'fe1 forwarded the BYE and passed its answer back');
    assert.equal(fe2.status().dialogs.active, 0, 'fe2 answered the BYE itself');
  });

  test('reg event: a user subscribes to its own registration, gets full state, then the deactivated hand-over', async () => {
    const user = userHomedAt('fe1.contoso.com', 'watcher');
    const client = await open(0);
    const reg = registerLines(user, client);
    client.send(reg.lines);
    await client.response(reg.callId, 200);
    client.send([
      `SUBSCRIBE ${user} SIP/2.0`,
      `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-s1`,
      'Max-Forwards: 70',
      `From: <${user}>;tag=sub1`,
      `To: <${user}>`,
      'Call-ID: sub-1',
      'CSeq: 1 SUBSCRIBE',
      'Event: reg',
      'Accept: application/reginfo+xml',
      'Expires: 600',
      `Contact: <sip:watcher@${CLIENT}:${client.localPort};transport=tcp>`,
    ]);
    const ok = await client.response('sub-1', 200, 'SUBSCRIBE');
    assert.equal(headerValue(ok, 'Expires'), '600');
    const full = await client.request('NOTIFY', 'sub-1');
    assert.equal(headerValue(full, 'Subscription-State'), 'active;expires=600');
    const document = parseRegInfo(full.body);
    assert.equal(document.state, 'full');
    assert.equal(document.registrations[0]?.contacts.length, 1);
    servers[0]!.registrar.deactivate(user);
    const moved = await client.request('NOTIFY', 'sub-1');
    assert.equal(headerValue(moved, 'Subscription-State'), 'terminated;reason=deactivated');
    const after = parseRegInfo(moved.body);
    assert.equal(after.registrations[0]?.contacts[0]?.event, 'deactivated');
    assert.equal(servers[0]!.user(user).bindings.length, 0);
  });

  test('a user arriving is counted where it arrives, once: a refresh is not an arrival', async () => {
    const fe1 = servers[0]!;
    const before = fe1.status().registrar.usersArrived;
    const user = userHomedAt('fe1.contoso.com', 'arriving');
    const client = await open(0);
    const first = registerLines(user, client);
    client.send(first.lines);
    await client.response(first.callId, 200);
    const again = registerLines(user, client);
    client.send(again.lines);
    await client.response(again.callId, 200);
    assert.equal(fe1.status().registrar.usersArrived, before + 1);
    assert.equal(fe1.registrar.arrivals.peak(60_000).count, before + 1, 'in the busiest minute, the arrivals so far');
  });

  test('someone else may not subscribe to a user\'s registration (403)', async () => {
    const user = userHomedAt('fe1.contoso.com', 'private');
    const client = await open(0);
    client.send([
      `SUBSCRIBE ${user} SIP/2.0`,
      `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-s2`,
      'Max-Forwards: 70',
      'From: <sip:spy@contoso.com>;tag=spy',
      `To: <${user}>`,
      'Call-ID: sub-2',
      'CSeq: 1 SUBSCRIBE',
      'Event: reg',
      `Contact: <sip:spy@${CLIENT}:${client.localPort};transport=tcp>`,
    ]);
    await client.response('sub-2', 403, 'SUBSCRIBE');
  });
});
