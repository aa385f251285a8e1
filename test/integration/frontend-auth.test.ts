// SIP digest authentication on a real 3-server pool (`dnslb server` processes on 127.0.40.101-103 with
// settings.auth on, users in the file store they follow): REGISTER is challenged (401, SHA-256 only),
// a wrong password and an unknown user get the same answer and never a binding, a replayed nonce
// count is refused, a nonce fe1 issued is good at fe2 after fe1's 301, a flow authenticated as alice
// cannot speak as bob (403), an unauthenticated INVITE gets 407 and then goes through with
// credentials, and 10,000 wrong passwords from one address are refused while alice, from another
// address, still signs in.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { answerChallenge, parseChallenge } from '../../src/auth/answer.ts';
import { credentialFor } from '../../src/auth/user-credential.ts';
import { homeOf, sequenceOf } from '../../src/registrar/sequence.ts';
import { headerValue, type SipResponse } from '../../src/sip/message.ts';
import { startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { TestSipClient } from '../helpers/sip-client.ts';
import { eventually } from '../helpers/eventually.ts';

const ADDRESSES = ['127.0.40.101', '127.0.40.102', '127.0.40.103'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const ALL = new Set(SERVERS);
const CLIENT = '127.0.40.120';
const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw' };

let sequence = 0;

function homeIndex(user: string): number {
  return SERVERS.indexOf(homeOf(`sip:${user}@contoso.com`, SERVERS, ALL)!.server);
}

interface Sent {
  callId: string;
  lines: string[];
}

function register(client: TestSipClient, user: string, options: { authorization?: string; callId?: string; cseq?: number } = {}): Sent {
  const n = ++sequence;
  const callId = options.callId ?? `reg-${n}@auth-test`;
  const lines = [
    'REGISTER sip:contoso.com SIP/2.0',
    `Via: SIP/2.0/TCP ${client.socket.localAddress}:${client.localPort};branch=z9hG4bK-auth${n}`,
    'Max-Forwards: 70',
    `From: <sip:${user}@contoso.com>;tag=f${n}`,
    `To: <sip:${user}@contoso.com>`,
    `Call-ID: ${callId}`,
    `CSeq: ${options.cseq ?? n} REGISTER`,
    `Contact: <sip:${user}@${client.socket.localAddress}:${client.localPort};transport=tcp>`,
    'Expires: 600',
    ...(options.authorization ? [`Authorization: ${options.authorization}`] : []),
  ];
  client.send(lines);
  return { callId, lines };
}

function invite(client: TestSipClient, from: string, to: string, options: { proxyAuthorization?: string } = {}): Sent {
  const n = ++sequence;
  const callId = `inv-${n}@auth-test`;
  const lines = [
    `INVITE sip:${to}@contoso.com SIP/2.0`,
    `Via: SIP/2.0/TCP ${client.socket.localAddress}:${client.localPort};branch=z9hG4bK-inv${n}`,
    'Max-Forwards: 70',
    `From: <sip:${from}@contoso.com>;tag=f${n}`,
    `To: <sip:${to}@contoso.com>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 INVITE`,
    `Contact: <sip:${from}@${client.socket.localAddress}:${client.localPort};transport=tcp>`,
    ...(options.proxyAuthorization ? [`Proxy-Authorization: ${options.proxyAuthorization}`] : []),
  ];
  client.send(lines);
  return { callId, lines };
}

/** The credentials answering `challenge` (a 401's WWW-Authenticate or a 407's Proxy-Authenticate). */
function credentials(challenge: SipResponse, user: string, password: string, options: { method?: string; uri?: string; nc?: number } = {}): string {
  const value = headerValue(challenge, challenge.status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate');
  assert.ok(value, `a ${challenge.status} with a challenge`);
  return answerChallenge({ challenge: parseChallenge(value), username: user, password, method: options.method ?? 'REGISTER', uri: options.uri ?? 'sip:contoso.com', cnonce: `cn${++sequence}`, nc: options.nc ?? 1 });
}

/** A response with what varies per request (tags, Call-ID, branch, nonce) blanked: what an unauthenticated sender learns. */
function shape(response: SipResponse): string {
  return [`${response.status} ${response.reason}`, ...response.headers.filter((header) => !/^(via|from|to|call-id|cseq)$/i.test(header.name)).map((header) => `${header.name}: ${header.value.replace(/nonce="[^"]*"/, 'nonce="…"')}`)].join('\n');
}

async function signIn(pool: RunningPool, user: string, localAddress = CLIENT): Promise<TestSipClient> {
  const client = await TestSipClient.open(pool.servers[homeIndex(user)]!.address, pool.tcpPort, localAddress);
  const first = register(client, user);
  const challenge = await client.response(first.callId, 401);
  const second = register(client, user, { authorization: credentials(challenge, user, PASSWORDS[user]!) });
  await client.response(second.callId, 200);
  return client;
}

describe('SIP digest authentication on a 3-server pool', () => {
  let pool: RunningPool;
  const clients: TestSipClient[] = [];
  const open = async (server: number, localAddress = CLIENT): Promise<TestSipClient> => {
    const client = await TestSipClient.open(pool.servers[server]!.address, pool.tcpPort, localAddress);
    clients.push(client);
    return client;
  };
  const registeredAnywhere = async (user: string): Promise<boolean> => {
    for (let index = 0; index < SERVERS.length; index++) if ((await pool.users(index)).some((entry) => entry.user === `sip:${user}@contoso.com`)) return true;
    return false;
  };

  before(async () => {
    pool = await startPool({ addresses: ADDRESSES, store: true, settingsYaml: '  auth: { enabled: true }' });
    for (const [user, password] of Object.entries(PASSWORDS)) {
      const uri = `sip:${user}@contoso.com`;
      await pool.store!.addUser({ uri, disabled: false, credential: credentialFor(uri, password, { md5: false }) }, { by: 'test' });
    }
    await pool.directoryHeld(Object.keys(PASSWORDS).length);
  });
  after(async () => {
    for (const client of clients) client.close();
    await pool?.stop();
  });

  test('REGISTER without credentials: 401 with a SHA-256 challenge only (MD5 is off); the right password: 200 and a binding', async () => {
    const client = await open(homeIndex('alice'));
    const first = register(client, 'alice');
    const challenge = await client.response(first.callId, 401);
    const offered = challenge.headers.filter((header) => header.name.toLowerCase() === 'www-authenticate').map((header) => header.value);
    assert.equal(offered.length, 1, offered.join(' | '));
    assert.match(offered[0]!, /^Digest realm="contoso.com", .*algorithm=SHA-256/);
    assert.match(offered[0]!, /qop="auth"/);
    const second = register(client, 'alice', { authorization: credentials(challenge, 'alice', 'alice-pw') });
    const ok = await client.response(second.callId, 200);
    assert.match(headerValue(ok, 'Contact') ?? '', /sip:alice@/);
    await eventually(async () => assert.ok(await registeredAnywhere('alice')));
  });

  test('a wrong password gets 401 again and never a binding; an unknown user gets the very same answer', async () => {
    const client = await open(homeIndex('bob'));
    const first = register(client, 'bob');
    const challenge = await client.response(first.callId, 401);
    const wrong = register(client, 'bob', { authorization: credentials(challenge, 'bob', 'guess') });
    const wrongAnswer = await client.response(wrong.callId);
    assert.equal(wrongAnswer.status, 401);
    const unknownFirst = register(client, 'mallory');
    const unknownChallenge = await client.response(unknownFirst.callId, 401);
    const unknown = register(client, 'mallory', { authorization: credentials(unknownChallenge, 'mallory', 'guess') });
    const unknownAnswer = await client.response(unknown.callId);
    assert.equal(shape(unknownAnswer), shape(wrongAnswer), 'nothing tells an unknown user from a wrong password');
    assert.equal(await registeredAnywhere('bob'), false, 'no binding for a wrong password');
    assert.equal(await registeredAnywhere('mallory'), false);
    const status = await pool.status(homeIndex('bob'));
    assert.ok(status.auth !== null && status.auth.enabled);
    assert.ok(status.auth.counters.failed >= 2, JSON.stringify(status.auth.counters));
  });

  test('a replayed nonce count is refused (401 stale=true), and binds nothing', async () => {
    const client = await open(homeIndex('bob'), '127.0.40.121');
    const first = register(client, 'bob');
    const challenge = await client.response(first.callId, 401);
    const authorization = credentials(challenge, 'bob', 'bob-pw');
    const ok = register(client, 'bob', { authorization });
    await client.response(ok.callId, 200);
    // A second connection (the flow binding would otherwise let the copy through) sends the same Authorization.
    const thief = await open(homeIndex('bob'), '127.0.40.122');
    const replay = register(thief, 'bob', { authorization });
    const answer = await thief.response(replay.callId);
    assert.equal(answer.status, 401);
    assert.match(headerValue(answer, 'WWW-Authenticate') ?? '', /stale=true/);
    const status = await pool.status(homeIndex('bob'));
    assert.ok(status.auth!.counters.replayed >= 1);
  });

  test('a nonce issued by fe1 is accepted by the home server after fe1 redirects there; the 301 names only servers of the user\'s sequence', async () => {
    // A user whose home is not fe1.
    let user = '';
    for (let index = 0; user === ''; index++) if (homeIndex(`carol${index}`) !== 0) user = `carol${index}`;
    const uri = `sip:${user}@contoso.com`;
    await pool.store!.addUser({ uri, disabled: false, credential: credentialFor(uri, 'carol-pw', { md5: false }) }, { by: 'test' });
    // Servers hold the directory in memory: a new user is known to each once it applied the change.
    await pool.directoryHeld(Object.keys(PASSWORDS).length + 1);
    const atFe1 = await open(0, '127.0.40.123');
    const first = register(atFe1, user);
    const challenge = await atFe1.response(first.callId, 401);
    const second = register(atFe1, user, { authorization: credentials(challenge, user, 'carol-pw', { nc: 1 }) });
    const redirect = await atFe1.response(second.callId, 301);
    const contacts = redirect.headers.filter((header) => header.name.toLowerCase() === 'contact').map((header) => header.value);
    const named = contacts.map((contact) => /maddr=([0-9.]+)/.exec(contact)?.[1]);
    const mayUse = new Set(sequenceOf(uri, SERVERS).map((fqdn) => ADDRESSES[SERVERS.indexOf(fqdn)]));
    assert.ok(named.length > 0 && named.every((address) => address !== undefined && mayUse.has(address)), contacts.join(' | '));
    const home = await open(homeIndex(user), '127.0.40.123');
    const third = register(home, user, { authorization: credentials(challenge, user, 'carol-pw', { nc: 2 }) });
    await home.response(third.callId, 200);
  });

  test("alice's flow cannot INVITE as bob (403); an unauthenticated flow's INVITE gets 407, then goes through with credentials", async () => {
    const bob = await signIn(pool, 'bob', '127.0.40.124');
    clients.push(bob);
    const alice = await signIn(pool, 'alice', '127.0.40.125');
    clients.push(alice);
    const spoofed = invite(alice, 'bob', 'alice');
    assert.equal((await alice.response(spoofed.callId)).status, 403);

    const fresh = await open(homeIndex('alice'), '127.0.40.126');
    const unauthenticated = invite(fresh, 'alice', 'bob');
    const challenge = await fresh.response(unauthenticated.callId, 407);
    assert.match(headerValue(challenge, 'Proxy-Authenticate') ?? '', /algorithm=SHA-256/);
    const retried = invite(fresh, 'alice', 'bob', { proxyAuthorization: credentials(challenge, 'alice', 'alice-pw', { method: 'INVITE', uri: 'sip:bob@contoso.com' }) });
    const arrived = await bob.request('INVITE', retried.callId);
    assert.equal(headerValue(arrived, 'Proxy-Authorization'), undefined, 'our credentials are not passed on to the callee');
  });

  test('10,000 wrong passwords from one address: slowed, then refused (counted); alice, from another address, still signs in', async () => {
    const attacker = await open(homeIndex('alice'), '127.0.40.130');
    const first = register(attacker, 'alice');
    const challenge = await attacker.response(first.callId, 401);
    const attempts = 10_000;
    const callIds = new Set<string>();
    for (let index = 1; index <= attempts; index++) {
      callIds.add(register(attacker, 'alice', { authorization: credentials(challenge, 'alice', `guess${index}`, { nc: index }) }).callId);
      if (index % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const byStatus = new Map<number, number>();
    await eventually(
      () => {
        const answered = attacker.messages.filter((message): message is SipResponse => message.kind === 'response' && callIds.has(headerValue(message, 'Call-ID') ?? ''));
        assert.equal(answered.length, attempts);
        byStatus.clear();
        for (const response of answered) byStatus.set(response.status, (byStatus.get(response.status) ?? 0) + 1);
      },
      { timeoutMs: 120_000 },
    );
    const refused = byStatus.get(403) ?? 0;
    const challenged = byStatus.get(401) ?? 0;
    console.log(`# brute force: ${attempts} attempts → ${challenged}×401, ${refused}×403`);
    assert.equal(challenged + refused, attempts, JSON.stringify([...byStatus]));
    assert.ok(challenged <= 10, `at most 10 passwords tried before the source is refused (${challenged})`);
    const status = await pool.status(homeIndex('alice'));
    assert.ok(status.auth!.limiter.refusedSource >= attempts - 10, JSON.stringify(status.auth!.limiter));
    assert.ok(status.auth!.limiter.delayed >= 1, 'answers were held back before the refusal');
    // Alice, from her own address, is not locked out by one attacker.
    const alice = await signIn(pool, 'alice', '127.0.40.131');
    clients.push(alice);
  });
});
