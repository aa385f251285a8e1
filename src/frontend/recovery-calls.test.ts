// Calls to a user that is still on its backup server after its home came back (the chaos soak's
// "480 User not registered" between faults): three Front End servers in this process on
// 127.0.66.51-53, heartbeat 250 ms (so that a loaded machine does not count a peer down mid-test), a
// hand-back of one user per 10 minutes. fe1 starts late, so the user signs in at fe2 in backup
// mode; then fe1 is up again and is the user's home by the sequence,
// but the user is on fe2 until its batch comes (or, handed over, still listens on its connection to
// fe2). A call to it from fe3 (through the home, which asks the backup) and from fe2 (which holds it)
// must reach it; before, both went to the home and ended 480 there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrontEndServer } from './server.ts';
import { headerValue, headerValues, type SipMessage, type SipResponse } from '../sip/message.ts';
import { homeOf } from '../registrar/sequence.ts';
import { parse } from '../topology/parse.ts';
import { freePortPair, topologyYaml } from '../../test/helpers/frontend-pool.ts';
import { TestSipClient } from '../../test/helpers/sip-client.ts';
import { waitUntil } from '../../test/helpers/process.ts';
import { serverTls } from '../../test/helpers/tls-certs.ts';

const ADDRESSES = ['127.0.66.51', '127.0.66.52', '127.0.66.53'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const CLIENT = '127.0.66.150';

describe('a user still on its backup after its home came back is reached from the whole pool', () => {
  const servers = new Map<string, FrontEndServer>();
  const clients: TestSipClient[] = [];
  let port = 0;
  let n = 0;
  // Homed at fe1 when all are up, at fe2 (backup mode) while fe1 is down: the first goes back at
  // once (the hand-back's first batch of one), the other waits for the next batch, 10 minutes on.
  const [first, user] = (() => {
    const found: string[] = [];
    for (let k = 0; found.length < 2; k++) {
      const candidate = `sip:held${k}@contoso.com`;
      if (homeOf(candidate, SERVERS, new Set(SERVERS))!.server === 'fe1.contoso.com' && homeOf(candidate, SERVERS, new Set(SERVERS.slice(1)))!.server === 'fe2.contoso.com') found.push(candidate);
    }
    return found as [string, string];
  })();
  const register = async (uri: string): Promise<TestSipClient> => {
    const client = await open('fe2.contoso.com');
    const contact = uri.replace('@contoso.com', `@${CLIENT}:${client.localPort}`);
    const callId = `reg-${++n}@test`;
    client.send(['REGISTER sip:contoso.com SIP/2.0', `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-reg${n}`, 'Max-Forwards: 70', `From: <${uri}>;tag=reg${n}`, `To: <${uri}>`, `Call-ID: ${callId}`, `CSeq: 1 REGISTER`, `Contact: <${contact};transport=tcp>`, 'Expires: 600']);
    const ok = await client.response(callId, 200);
    assert.equal(headerValue(ok, 'X-Registrar-Mode'), 'backup');
    return client;
  };
  const open = async (fqdn: string): Promise<TestSipClient> => {
    const client = await TestSipClient.open(ADDRESSES[SERVERS.indexOf(fqdn)]!, port, CLIENT);
    clients.push(client);
    return client;
  };
  const startServer = async (fqdn: string, topology: ReturnType<typeof parse>) => {
    const server = new FrontEndServer({ topology, server: fqdn, tls: await serverTls(fqdn) });
    await server.start();
    servers.set(fqdn, server);
  };
  let callee: TestSipClient;

  before(async () => {
    port = await freePortPair(ADDRESSES);
    const topology = parse(topologyYaml(ADDRESSES, port, 250, '', '  rehome: { batchSize: 1, intervalMs: 600000 }'), 'recovery-calls.yaml');
    for (const fqdn of SERVERS.slice(1)) await startServer(fqdn, topology);
    await waitUntil('fe1 down at fe2 and fe3', () => [...servers.values()].every((server) => server.status().heartbeat.peers['fe1.contoso.com']?.state === 'down'));
    await register(first);
    callee = await register(user);
    await startServer('fe1.contoso.com', topology);
    await waitUntil('all three active everywhere', () => [...servers.values()].every((server) => Object.values(server.status().heartbeat.peers).every((peer) => peer.state === 'active')));
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all([...servers.values()].map((server) => server.stop()));
  });

  /** An INVITE to the user from a client of `at`: 'delivered' when the callee's connection gets it, else the caller's final answer. */
  const call = async (at: string): Promise<string> => {
    const caller = await open(at);
    const callId = `call-${++n}@test`;
    caller.send([`INVITE ${user} SIP/2.0`, `Via: SIP/2.0/TCP ${CLIENT}:${caller.localPort};branch=z9hG4bK-i${n}`, 'Max-Forwards: 70', `From: <sip:caller${n}@contoso.com>;tag=c${n}`, `To: <${user}>`, `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:caller${n}@${CLIENT}:${caller.localPort};transport=tcp>`]);
    const final = (message: SipMessage): message is SipResponse => message.kind === 'response' && headerValue(message, 'Call-ID') === callId && message.status >= 200;
    const answered = caller.next(final, 10_000);
    const outcome = await Promise.race([callee.request('INVITE', callId).then((incoming) => ({ incoming })), answered.then((answer) => ({ answer }))]);
    if ('answer' in outcome) return `${outcome.answer.status} ${outcome.answer.reason}`;
    const { incoming } = outcome;
    callee.send(['SIP/2.0 486 Busy Here', ...headerValues(incoming, 'Via').map((via) => `Via: ${via}`), `From: ${headerValue(incoming, 'From')}`, `To: ${headerValue(incoming, 'To')};tag=busy${n}`, `Call-ID: ${callId}`, `CSeq: ${headerValue(incoming, 'CSeq')}`]);
    assert.equal((await answered).status, 486, 'the callee\'s answer comes back to the caller');
    await callee.request('ACK', callId);
    return 'delivered';
  };

  test('the home by the sequence is fe1 again; the first user was handed back, the other is still on fe2 in backup mode', async () => {
    const fe2 = servers.get('fe2.contoso.com')!;
    await waitUntil('the first batch released', () => fe2.status().resilience.handover.handedOverTotal.recovery === 1);
    assert.equal(servers.get('fe3.contoso.com')!.user(user).home, 'fe1.contoso.com');
    assert.equal(servers.get('fe1.contoso.com')!.user(user).bindings.length, 0);
    assert.equal(fe2.user(first).bindings.length, 0, 'handed back');
    assert.deepEqual(fe2.user(user).bindings.map((binding) => binding.mode), ['backup']);
  });

  test('from fe3: to the home, which asks the backup after it in the sequence', async () => {
    assert.equal(await call('fe3.contoso.com'), 'delivered');
  });

  test('from fe2: the server holding the user delivers it itself', async () => {
    assert.equal(await call('fe2.contoso.com'), 'delivered');
  });

  test('from fe1, the home: it asks the backup (as before)', async () => {
    assert.equal(await call('fe1.contoso.com'), 'delivered');
  });
});
