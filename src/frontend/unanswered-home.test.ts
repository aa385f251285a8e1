// A home that does not answer, seen from the rest of the pool (chaos soak findings, issue 12): three
// Front End servers in this process on 127.0.66.21-23; fe3 is stopped after all have answered each
// other, and fe1 is given liveness reports in which fe2 and fe3 itself still say fe3 is up — the
// moment after a death before the other reporters' word has reached the store, when fe1 keeps fe3 in
// the physical sequence on the consensus (membership.ts seenUpByOthers).
// - REGISTER: without a word from the client fe1 still names fe3 as the home (301); a client that
//   says fe3 did not answer (X-Dnslb-Unanswered) is taken in backup mode, or sent past fe3, never
//   back to it; the same word about a server fe1's heartbeat hears (fe2) changes nothing.
// - INVITE to a user registered nowhere whose sequence is [fe3, fe1, fe2]: fe1 (its home now) asks
//   fe2 whether it holds the user; fe2 must not hand the request back to fe1 (that was 482 Loop
//   Detected): 480.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrontEndServer } from './server.ts';
import { headerValue, headerValues, type SipResponse } from '../sip/message.ts';
import { UNANSWERED_HEADER } from '../sip/headers.ts';
import { sequenceOf } from '../registrar/sequence.ts';
import { parse } from '../topology/parse.ts';
import type { LivenessRecord } from '../store/store.ts';
import { freePortPair, topologyYaml } from '../../test/helpers/frontend-pool.ts';
import { TestSipClient } from '../../test/helpers/sip-client.ts';
import { waitUntil } from '../../test/helpers/process.ts';
import { serverTls } from '../../test/helpers/tls-certs.ts';

const ADDRESSES = ['127.0.66.21', '127.0.66.22', '127.0.66.23'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const CLIENT = '127.0.66.130';
let counter = 0;

function userWithSequence(wanted: readonly string[], prefix: string): string {
  for (let n = 0; ; n++) {
    const user = `sip:${prefix}${n}@contoso.com`;
    if (sequenceOf(user, SERVERS).join() === wanted.join()) return user;
  }
}

function register(user: string, client: TestSipClient, extra: string[] = []): string {
  const n = ++counter;
  const callId = `unanswered-reg-${n}@test`;
  client.send([
    'REGISTER sip:contoso.com SIP/2.0',
    `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-u${n}`,
    'Max-Forwards: 70',
    `From: <${user}>;tag=f${n}`,
    `To: <${user}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${n} REGISTER`,
    `Contact: <${user.replace('@contoso.com', `@${CLIENT}:${client.localPort}`)};transport=tcp>`,
    'Expires: 600',
    ...extra,
  ]);
  return callId;
}

describe('a stopped home the consensus still counts up: no redirect back to it, no loop between the others', () => {
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
    const topology = parse(topologyYaml(ADDRESSES, port, 100), 'unanswered.yaml');
    for (const fqdn of SERVERS) {
      const server = new FrontEndServer({ topology, server: fqdn, tls: await serverTls(fqdn) });
      await server.start();
      servers.push(server);
    }
    await waitUntil('every server active at every other', () => servers.every((server) => Object.values(server.status().heartbeat.peers).every((peer) => peer.state === 'active')));
    await servers[2]!.stop();
    await waitUntil('fe3 down at fe1 and fe2', () => servers.slice(0, 2).every((server) => server.status().heartbeat.peers['fe3.contoso.com']?.state === 'down'));
    // fe1 has not yet read fe2's word that fe3 is down: fe2's report and fe3's own say up.
    const atMs = Date.now();
    const record = (reporter: string, server: string, state: LivenessRecord['state']): LivenessRecord => ({ reporter, server, state, atMs, ttlMs: 600_000, topologyVersion: 1 });
    servers[0]!.applyLiveness([
      record('fe1.contoso.com', 'fe1.contoso.com', 'active'),
      record('fe1.contoso.com', 'fe3.contoso.com', 'down'),
      record('fe2.contoso.com', 'fe2.contoso.com', 'active'),
      record('fe2.contoso.com', 'fe3.contoso.com', 'active'),
      record('fe3.contoso.com', 'fe3.contoso.com', 'active'),
    ]);
    assert.ok(servers[0]!.isAvailable('fe3.contoso.com'), 'fe1 keeps fe3 a home on the consensus');
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.slice(0, 2).map((server) => server.stop()));
  });

  test('REGISTER: 301 to fe3 without the client\'s word; with it, backup mode here or a redirect past fe3; the word alone moves nobody', async () => {
    const fe3Address = `${ADDRESSES[2]}:${port + 1}`;
    const client = await open(0);
    const here = userWithSequence(['fe3.contoso.com', 'fe1.contoso.com', 'fe2.contoso.com'], 'here');
    const redirected = await client.response(register(here, client), 301);
    assert.match(headerValues(redirected, 'Contact')[0]!, /^<sip:fe3\.contoso\.com:/, 'fe3 named first, as before');

    const ok = await client.response(register(here, client, [`${UNANSWERED_HEADER}: ${fe3Address}`]), 200);
    assert.equal(headerValue(ok, 'X-Registrar-Mode'), 'backup');
    assert.equal(servers[0]!.user(here).bindings[0]?.mode, 'backup');

    const past = userWithSequence(['fe3.contoso.com', 'fe2.contoso.com', 'fe1.contoso.com'], 'past');
    const onward = await client.response(register(past, client, [`${UNANSWERED_HEADER}: 127.0.0.99:5061, [::1]:5061, ${fe3Address}`]), 301);
    assert.deepEqual(
      headerValues(onward, 'Contact').map((contact) => /^<sip:([^:]+):/.exec(contact)?.[1]),
      ['fe2.contoso.com'],
      'fe2 only: never fe3, never fe1 itself',
    );

    // fe1's heartbeat hears fe2: the client's word about it is not taken.
    const homedFe2 = userWithSequence(['fe2.contoso.com', 'fe1.contoso.com', 'fe3.contoso.com'], 'heard');
    const toFe2 = await client.response(register(homedFe2, client, [`${UNANSWERED_HEADER}: ${ADDRESSES[1]}:${port}`]), 301);
    assert.match(headerValues(toFe2, 'Contact')[0]!, /^<sip:fe2\.contoso\.com:/);
    assert.equal(servers[0]!.status().registrar.registersPastUnanswered, 2);
  });

  test('INVITE to a user registered nowhere, sequence [fe3, fe1, fe2], placed at fe1: 480, not 482', async () => {
    servers[0]!.applyLiveness([]); // fe1's view now: fe3 down, so fe1 is the callee's home
    const callee = userWithSequence(['fe3.contoso.com', 'fe1.contoso.com', 'fe2.contoso.com'], 'nowhere');
    const client = await open(0);
    const callId = `unanswered-call-${++counter}@test`;
    client.send([
      `INVITE ${callee} SIP/2.0`,
      `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-i${counter}`,
      'Max-Forwards: 70',
      `From: <sip:caller@contoso.com>;tag=c${counter}`,
      `To: <${callee}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:caller@${CLIENT}:${client.localPort};transport=tcp>`,
    ]);
    const answer = await client.next((message): message is SipResponse => message.kind === 'response' && message.status >= 200 && headerValue(message, 'Call-ID') === callId);
    assert.equal(answer.status, 480, `${answer.status} ${answer.reason}`);
    assert.equal(servers[0]!.status().proxy.loopsDetected, 0);
  });
});
