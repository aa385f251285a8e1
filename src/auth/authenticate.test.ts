// The authenticate step against in-memory directory data: challenge, answer, flow binding, replay,
// stale nonces across servers, unknown users answered as wrong passwords, disabled users, the limiter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import type { Header, SipRequest } from '../sip/message.ts';
import { parseMessage } from '../sip/parse.ts';
import type { UserRecord } from '../store/users.ts';
import { answerChallenge, parseChallenge } from './answer.ts';
import { Authenticator, type AuthOutcome, type AuthenticatorOptions } from './authenticate.ts';
import { BruteForceLimiter } from './limiter.ts';
import { credentialFor } from './user-credential.ts';
import { UserTable } from './user-table.ts';

const SECRET = Buffer.alloc(32, 9);

function directory(users: Array<{ uri: string; password: string; disabled?: boolean; md5?: boolean }>): AuthenticatorOptions['directory'] {
  const table = new UserTable();
  table.replace(users.map((user): UserRecord => ({ uri: user.uri, disabled: user.disabled ?? false, credential: credentialFor(user.uri, user.password, { md5: user.md5 === true }), by: 'test', atMs: 0 })));
  return table;
}

const USERS = directory([
  { uri: 'sip:alice@contoso.com', password: 'alice-pw' },
  { uri: 'sip:bob@contoso.com', password: 'bob-pw', md5: true },
  { uri: 'sip:carol@contoso.com', password: 'carol-pw', disabled: true },
]);

let salt = 0;
function authenticator(clock: FakeClock, extra: Partial<AuthenticatorOptions> = {}): Authenticator {
  return new Authenticator({ directory: USERS, secret: SECRET, realms: ['contoso.com'], clock, randomBytes: (count) => Buffer.alloc(count, ++salt), ...extra });
}

let cseq = 0;
function request(method: string, options: { from?: string; to?: string; uri?: string; headers?: Header[] } = {}): SipRequest {
  const from = options.from ?? 'sip:alice@contoso.com';
  const to = options.to ?? (method === 'REGISTER' ? from : 'sip:bob@contoso.com');
  const uri = options.uri ?? (method === 'REGISTER' ? 'sip:contoso.com' : to);
  const lines = [
    `${method} ${uri} SIP/2.0`,
    'Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK' + String(++cseq),
    'Max-Forwards: 70',
    `From: <${from}>;tag=f${cseq}`,
    `To: <${to}>`,
    `Call-ID: c${cseq}@test`,
    `CSeq: ${cseq} ${method}`,
    ...(options.headers ?? []).map((header) => `${header.name}: ${header.value}`),
    'Content-Length: 0',
    '',
    '',
  ];
  const message = parseMessage(Buffer.from(lines.join('\r\n')));
  assert.equal(message.kind, 'request');
  return message;
}

function answered(outcome: AuthOutcome): Extract<AuthOutcome, { kind: 'answer' }> {
  assert.equal(outcome.kind, 'answer', JSON.stringify(outcome));
  return outcome as Extract<AuthOutcome, { kind: 'answer' }>;
}

/** Answers the first challenge of `outcome` as a client would. */
function credentialsFor(outcome: AuthOutcome, input: { username: string; password: string; method: string; uri: string; nc?: number; cnonce?: string }): Header {
  const answer = answered(outcome);
  const challengeHeader = answer.headers[0];
  assert.ok(challengeHeader);
  const name = answer.status === 401 ? 'Authorization' : 'Proxy-Authorization';
  return { name, value: answerChallenge({ challenge: parseChallenge(challengeHeader.value), nc: input.nc ?? 1, cnonce: input.cnonce ?? 'cn', username: input.username, password: input.password, method: input.method, uri: input.uri }) };
}

const FLOW = { id: 'flow-1', remoteAddress: '192.0.2.10' };

test('REGISTER: 401 with a SHA-256 WWW-Authenticate, then 200-worthy with the right password; the flow is bound to alice', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock);
  const challenge = answered(await auth.authenticate(request('REGISTER'), FLOW));
  assert.equal(challenge.status, 401);
  assert.equal(challenge.headers.length, 1);
  assert.equal(challenge.headers[0]?.name, 'WWW-Authenticate');
  assert.match(challenge.headers[0]?.value ?? '', /^Digest realm="contoso\.com", nonce="[A-Za-z0-9_-]{44}", algorithm=SHA-256, qop="auth"$/);
  const header = credentialsFor(challenge, { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com' });
  assert.deepEqual(await auth.authenticate(request('REGISTER', { headers: [header] }), FLOW), { kind: 'authenticated', identity: 'sip:alice@contoso.com', via: 'digest' });
  assert.equal(auth.identityOf('flow-1'), 'sip:alice@contoso.com');
  // On the bound flow: no challenge for alice's next requests…
  assert.deepEqual(await auth.authenticate(request('INVITE'), FLOW), { kind: 'authenticated', identity: 'sip:alice@contoso.com', via: 'flow' });
  // …and alice's flow cannot speak for bob, with or without bob's credentials.
  const asBob = answered(await auth.authenticate(request('INVITE', { from: 'sip:bob@contoso.com', to: 'sip:alice@contoso.com' }), FLOW));
  assert.equal(asBob.status, 403);
  assert.equal(answered(await auth.authenticate(request('REGISTER', { from: 'sip:bob@contoso.com' }), FLOW)).status, 403);
  auth.flowClosed('flow-1');
  assert.equal(answered(await auth.authenticate(request('INVITE'), FLOW)).status, 407, 'a new flow with the same id starts unauthenticated');
});

test('INVITE on an unauthenticated flow: 407 Proxy-Authenticate, then authenticated with Proxy-Authorization', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock);
  const invite = request('INVITE');
  const challenge = answered(await auth.authenticate(invite, FLOW));
  assert.equal(challenge.status, 407);
  assert.equal(challenge.headers[0]?.name, 'Proxy-Authenticate');
  const header = credentialsFor(challenge, { username: 'alice', password: 'alice-pw', method: 'INVITE', uri: 'sip:bob@contoso.com' });
  assert.equal((await auth.authenticate(request('INVITE', { headers: [header] }), FLOW)).kind, 'authenticated');
  // An Authorization (the registrar's header) does not answer a proxy challenge.
  const wrongHeader = { ...header, name: 'Authorization' };
  assert.equal(answered(await auth.authenticate(request('INVITE', { headers: [wrongHeader] }), { id: 'flow-2', remoteAddress: '192.0.2.11' })).status, 407);
});

test('an unknown user gets exactly the answer a wrong password gets: 401, a fresh challenge, no other header', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock);
  const shape = (outcome: AuthOutcome): unknown => {
    const answer = answered(outcome);
    return { status: answer.status, reason: answer.reason, delayMs: answer.delayMs, headers: answer.headers.map((header) => [header.name, header.value.replace(/nonce="[^"]+"/, 'nonce=X')]) };
  };
  const first = await auth.authenticate(request('REGISTER', { from: 'sip:mallory@contoso.com' }), FLOW);
  const unknown = await auth.authenticate(request('REGISTER', { from: 'sip:mallory@contoso.com', headers: [credentialsFor(first, { username: 'mallory', password: 'x', method: 'REGISTER', uri: 'sip:contoso.com' })] }), { id: 'a', remoteAddress: '192.0.2.20' });
  const second = await auth.authenticate(request('REGISTER'), FLOW);
  const wrong = await auth.authenticate(request('REGISTER', { headers: [credentialsFor(second, { username: 'alice', password: 'guess', method: 'REGISTER', uri: 'sip:contoso.com' })] }), { id: 'b', remoteAddress: '192.0.2.21' });
  assert.deepEqual(shape(unknown), shape(wrong));
  assert.equal(answered(unknown).status, 401);
  assert.match(answered(unknown).why, /unknown user/);
  assert.match(answered(wrong).why, /wrong password/);
  assert.equal(auth.counters.failed, 2);
});

test('a replayed nonce count is refused (401 stale=true), a higher one accepted; a forged response burns no count', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock);
  const challenge = await auth.authenticate(request('REGISTER'), FLOW);
  const input = { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com' };
  const forged = credentialsFor(challenge, { ...input, password: 'guess', nc: 1 });
  assert.equal(answered(await auth.authenticate(request('REGISTER', { headers: [forged] }), { id: 'x', remoteAddress: '192.0.2.30' })).status, 401);
  const first = credentialsFor(challenge, { ...input, nc: 1 });
  assert.equal((await auth.authenticate(request('REGISTER', { headers: [first] }), { id: 'f1', remoteAddress: '192.0.2.10' })).kind, 'authenticated', 'nc 1 still good after the forged attempt');
  const replay = answered(await auth.authenticate(request('REGISTER', { headers: [first] }), { id: 'f2', remoteAddress: '192.0.2.31' }));
  assert.equal(replay.status, 401);
  assert.match(replay.headers[0]?.value ?? '', /stale=true/);
  assert.match(replay.why, /nonce count 00000001 replayed/);
  const next = credentialsFor(challenge, { ...input, nc: 2 });
  assert.equal((await auth.authenticate(request('REGISTER', { headers: [next] }), { id: 'f3', remoteAddress: '192.0.2.10' })).kind, 'authenticated');
});

test('a nonce issued by fe1 is accepted by fe2 (same pool secret), refused by another pool; stale after the lifetime', async () => {
  const clock = new FakeClock();
  const fe1 = authenticator(clock);
  const fe2 = authenticator(clock);
  const otherPool = authenticator(clock, { secret: Buffer.alloc(32, 1) });
  const challenge = await fe1.authenticate(request('REGISTER'), FLOW);
  const input = { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com' };
  assert.equal((await fe2.authenticate(request('REGISTER', { headers: [credentialsFor(challenge, input)] }), FLOW)).kind, 'authenticated');
  const refused = answered(await otherPool.authenticate(request('REGISTER', { headers: [credentialsFor(challenge, { ...input, nc: 2 })] }), FLOW));
  assert.equal(refused.status, 401);
  assert.doesNotMatch(refused.headers[0]?.value ?? '', /stale/, 'a foreign nonce is not "stale"');
  clock.advance(300_001);
  const stale = answered(await fe2.authenticate(request('REGISTER', { headers: [credentialsFor(challenge, { ...input, nc: 3 })] }), { id: 'n', remoteAddress: '192.0.2.10' }));
  assert.equal(stale.status, 401);
  assert.match(stale.headers[0]?.value ?? '', /stale=true/);
  assert.equal(fe2.limiter.counters.failures, 0, 'a stale nonce is not a failed password');
});

test('MD5: offered after SHA-256 only when enabled; a user without an MD5 hash is challenged again', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock, { config: { md5: true } });
  const challenge = answered(await auth.authenticate(request('REGISTER', { from: 'sip:bob@contoso.com' }), FLOW));
  assert.deepEqual(challenge.headers.map((header) => /algorithm=([A-Z0-9-]+)/.exec(header.value)?.[1]), ['SHA-256', 'MD5']);
  const md5Challenge = { ...challenge, headers: [challenge.headers[1] as Header] };
  const bob = credentialsFor(md5Challenge, { username: 'bob', password: 'bob-pw', method: 'REGISTER', uri: 'sip:contoso.com' });
  assert.match(bob.value, /algorithm=MD5/);
  assert.equal((await auth.authenticate(request('REGISTER', { from: 'sip:bob@contoso.com', headers: [bob] }), { id: 'b', remoteAddress: '192.0.2.40' })).kind, 'authenticated');
  const alice = credentialsFor(md5Challenge, { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com' });
  const again = answered(await auth.authenticate(request('REGISTER', { headers: [alice] }), { id: 'a', remoteAddress: '192.0.2.41' }));
  assert.equal(again.status, 401);
  assert.match(again.why, /no MD5 hash/);
  const sha = authenticator(clock);
  assert.equal(answered(await sha.authenticate(request('REGISTER', { from: 'sip:bob@contoso.com', headers: [bob] }), FLOW)).status, 401, 'MD5 disabled: an MD5 answer gets a SHA-256 challenge');
});

test('other answers: 403 for a disabled user with the right password, for credentials of another user, for a domain not served; 400 for a malformed header or a mismatched digest uri', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock);
  const carolChallenge = await auth.authenticate(request('REGISTER', { from: 'sip:carol@contoso.com' }), FLOW);
  const carol = credentialsFor(carolChallenge, { username: 'carol', password: 'carol-pw', method: 'REGISTER', uri: 'sip:contoso.com' });
  assert.equal(answered(await auth.authenticate(request('REGISTER', { from: 'sip:carol@contoso.com', headers: [carol] }), FLOW)).status, 403);
  const aliceChallenge = await auth.authenticate(request('INVITE'), FLOW);
  const asAlice = credentialsFor(aliceChallenge, { username: 'alice', password: 'alice-pw', method: 'INVITE', uri: 'sip:alice@contoso.com' });
  const forBob = answered(await auth.authenticate(request('INVITE', { from: 'sip:bob@contoso.com', to: 'sip:alice@contoso.com', headers: [asAlice] }), FLOW));
  assert.equal(forBob.status, 403);
  assert.equal(answered(await auth.authenticate(request('REGISTER', { from: 'sip:alice@fabrikam.com' }), FLOW)).status, 403);
  const malformed = answered(await auth.authenticate(request('REGISTER', { headers: [{ name: 'Authorization', value: 'Digest username="alice, realm="contoso.com"' }] }), FLOW));
  assert.equal(malformed.status, 400);
  const otherUri = credentialsFor(await auth.authenticate(request('REGISTER'), FLOW), { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:fabrikam.com' });
  assert.equal(answered(await auth.authenticate(request('REGISTER', { headers: [otherUri] }), FLOW)).status, 400);
  assert.equal(auth.identityOf(FLOW.id), undefined, 'nothing was bound');
});

test('credentials for another realm (another proxy on the path) are ignored: challenged for ours', async () => {
  const auth = authenticator(new FakeClock());
  const foreign = { name: 'Authorization', value: `Digest username="alice", realm="fabrikam.com", nonce="n", uri="sip:contoso.com", response="${'a'.repeat(64)}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"` };
  assert.equal(answered(await auth.authenticate(request('REGISTER', { headers: [foreign] }), FLOW)).status, 401);
});

test('brute force through the step: wrong passwords are slowed then refused (403) for the source; alice from elsewhere still signs in', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock, { limiter: new BruteForceLimiter() });
  const attacker = { id: 'evil', remoteAddress: '203.0.113.66' };
  const statuses: number[] = [];
  const delays: number[] = [];
  for (let attempt = 0; attempt < 12; attempt++) {
    const challenge = await auth.authenticate(request('REGISTER'), attacker);
    const outcome = answered(await auth.authenticate(request('REGISTER', { headers: [credentialsFor(challenge, { username: 'alice', password: `guess${attempt}`, method: 'REGISTER', uri: 'sip:contoso.com' })] }), attacker));
    statuses.push(outcome.status);
    delays.push(outcome.delayMs);
  }
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 403, 403]);
  assert.deepEqual(delays, [0, 0, 0, 500, 1000, 2000, 4000, 8000, 8000, 8000, 0, 0]);
  const challenge = await auth.authenticate(request('REGISTER'), FLOW);
  const real = await auth.authenticate(request('REGISTER', { headers: [credentialsFor(challenge, { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com' })] }), FLOW);
  assert.equal(real.kind, 'authenticated');
});

test('guesses pipelined on one connection: all start before any fails, yet only the first 10 are tried, the rest refused (403)', async () => {
  const clock = new FakeClock();
  const auth = authenticator(clock);
  const challenge = answered(await auth.authenticate(request('REGISTER'), FLOW));
  const guesses = Array.from({ length: 200 }, (_, index) =>
    auth.authenticate(request('REGISTER', { headers: [credentialsFor(challenge, { username: 'alice', password: `guess${index}`, method: 'REGISTER', uri: 'sip:contoso.com', nc: index + 1 })] }), FLOW),
  );
  const statuses = (await Promise.all(guesses)).map((outcome) => answered(outcome).status);
  assert.equal(statuses.filter((status) => status === 401).length, 10);
  assert.equal(statuses.filter((status) => status === 403).length, 190);
  assert.equal(auth.limiter.counters.failures, 10);
});
