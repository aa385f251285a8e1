// The authenticate step: off, it lets everything pass; on, what it challenges and what it does not
// (peers, ACK, in-dialog requests, OPTIONS to the server), a bound flow decided at once, a checked
// request continuing at once, and the limiter's delay honoured on the clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../test/helpers/fake-clock.ts';
import { CLIENT_ADDRESS, fixedRandom, PEER_ADDRESS, request, runStep } from '../../../test/helpers/step-fixture.ts';
import { answerChallenge, parseChallenge } from '../../auth/answer.ts';
import { Authenticator } from '../../auth/authenticate.ts';
import { credentialFor } from '../../auth/user-credential.ts';
import { headerValue, type SipResponse } from '../../sip/message.ts';
import { UserTable } from '../../auth/user-table.ts';
import { pino } from 'pino';
import { parseFile } from '../../topology/parse.ts';
import { PoolView } from '../pool-view.ts';
import { RegisterAnswers } from '../register-answers.ts';
import { AuthenticateStep } from './authenticate.ts';

const USERS = new UserTable();
USERS.set('sip:alice@contoso.com', { uri: 'sip:alice@contoso.com', disabled: false, credential: credentialFor('sip:alice@contoso.com', 'alice-pw', { md5: false }), by: 'test', atMs: 0 });

function setup(on = true): { step: AuthenticateStep; auth: Authenticator; clock: FakeClock; answers: RegisterAnswers } {
  const clock = new FakeClock();
  let salt = 0;
  const auth = new Authenticator({ directory: USERS, secret: Buffer.alloc(32, 7), realms: ['contoso.com'], clock, randomBytes: (count) => Buffer.alloc(count, ++salt) });
  const answers = new RegisterAnswers();
  const step = new AuthenticateStep({ auth: () => (on ? auth : null), clock, random: fixedRandom, logger: pino({ level: 'silent' }), registerAnswers: answers });
  return { step, auth, clock, answers };
}


test('off: every request passes, nothing is checked', () => {
  const { step, answers } = setup(false);
  assert.equal(runStep(step, request('REGISTER sip:contoso.com SIP/2.0')).outcome, 'continue');
  assert.equal(runStep(step, request('INVITE sip:bob@contoso.com SIP/2.0')).outcome, 'continue');
  assert.deepEqual(answers.byClass['4xx'], 0);
});

test('on: not challenged — peers, ACK, CANCEL, in-dialog requests, OPTIONS to the server itself', () => {
  const { step } = setup();
  assert.equal(runStep(step, request('INVITE sip:bob@contoso.com SIP/2.0'), { from: PEER_ADDRESS }).outcome, 'continue');
  assert.equal(runStep(step, request('ACK sip:bob@contoso.com SIP/2.0')).outcome, 'continue');
  assert.equal(runStep(step, request('CANCEL sip:bob@contoso.com SIP/2.0')).outcome, 'continue');
  assert.equal(runStep(step, request('BYE sip:bob@contoso.com SIP/2.0', [], { To: '<sip:bob@contoso.com>;tag=b1' })).outcome, 'continue');
  assert.equal(runStep(step, request('OPTIONS sip:fe1.contoso.com SIP/2.0')).outcome, 'continue');
});

test('on: REGISTER is answered 401 (counted as a REGISTER answer); with the password it continues at once (the directory is in memory), and the flow is then bound', () => {
  const { step, answers } = setup();
  const first = runStep(step, request('REGISTER sip:contoso.com SIP/2.0'));
  assert.equal(first.outcome, 'answered');
  const challenge = first.flow.responses()[0] as SipResponse;
  assert.equal(challenge.status, 401);
  assert.equal(answers.byClass['4xx'], 1);
  const authorization = answerChallenge({ challenge: parseChallenge(headerValue(challenge, 'WWW-Authenticate')!), username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com', cnonce: 'c', nc: 1 });
  const second = runStep(step, request('REGISTER sip:contoso.com SIP/2.0', [`Authorization: ${authorization}`]));
  assert.equal(second.outcome, 'continue', 'the password is checked at once');
  assert.equal(second.context.kind, 'register');
  // A request from alice on the same flow (flow-1, from the same client address) is decided at once.
  assert.equal(runStep(step, request('INVITE sip:bob@contoso.com SIP/2.0')).outcome, 'continue');
  const spoofed = runStep(step, request('INVITE sip:bob@contoso.com SIP/2.0', [], { From: '<sip:bob@contoso.com>;tag=x' }));
  assert.equal(spoofed.outcome, 'answered');
  assert.equal(spoofed.flow.responses()[0]?.status, 403);
});

test('on: an INVITE on an unauthenticated flow gets 407; a wrong password past the third is held back on the clock', () => {
  const { step, clock } = setup();
  const first = runStep(step, request('INVITE sip:bob@contoso.com SIP/2.0'), { from: '127.0.9.2' });
  const challenge = first.flow.responses()[0] as SipResponse;
  assert.equal(challenge.status, 407);
  const wrong = (nc: number) => {
    const value = answerChallenge({ challenge: parseChallenge(headerValue(challenge, 'Proxy-Authenticate')!), username: 'alice', password: 'nope', method: 'INVITE', uri: 'sip:bob@contoso.com', cnonce: 'c', nc });
    return runStep(step, request('INVITE sip:bob@contoso.com SIP/2.0', [`Proxy-Authorization: ${value}`]), { from: CLIENT_ADDRESS });
  };
  for (let nc = 1; nc <= 3; nc++) {
    const attempt = wrong(nc);
    assert.equal(attempt.flow.responses()[0]?.status, 407, `attempt ${nc} answered at once`);
  }
  const fourth = wrong(4);
  assert.equal(fourth.flow.responses().length, 0, 'held back');
  clock.advance(500);
  assert.equal(fourth.flow.responses()[0]?.status, 407);
});

test('on: what an Edge relays is a client\'s from outside — challenged with its flow named; without the mark, 403; a partner\'s new request and a dialog\'s pass', async () => {
  const { step } = setup();
  const topology = await parseFile(new URL('../../../examples/contoso.yaml', import.meta.url).pathname);
  const view = new PoolView(topology, 'dir1.contoso.com', 1);
  const EDGE = '127.0.0.41';
  const mark = (extra = ''): string => `X-Dnslb-Remote-Flow: token=t1;source=198.51.100.7${extra}`;
  // The reviewer's forged REGISTER as it would have reached the Director without the Edge's mark.
  const unmarked = runStep(step, request('REGISTER sip:contoso.com SIP/2.0', [], { To: '<sip:ceo@contoso.com>' }), { from: EDGE, view });
  assert.equal(unmarked.outcome, 'answered');
  assert.deepEqual([unmarked.flow.responses()[0]?.status, unmarked.flow.responses()[0]?.reason], [403, 'A request relayed by an Edge must name its client flow']);
  assert.equal(runStep(step, request('INVITE tel:+14255550100 SIP/2.0'), { from: EDGE, view }).flow.responses()[0]?.status, 403);
  const register = runStep(step, request('REGISTER sip:contoso.com SIP/2.0', [mark()]), { from: EDGE, view });
  assert.equal(register.flow.responses()[0]?.status, 401);
  const invite = runStep(step, request('INVITE tel:+14255550100 SIP/2.0', [mark()]), { from: EDGE, view });
  assert.equal(invite.flow.responses()[0]?.status, 407);
  // A partner's REGISTER is challenged like anyone's; its new INVITE is not (its organisation vouched for it).
  const partnerRegister = runStep(step, request('REGISTER sip:contoso.com SIP/2.0', [mark(';partner=fabrikam.com')]), { from: EDGE, view });
  assert.equal(partnerRegister.flow.responses()[0]?.status, 401);
  assert.equal(runStep(step, request('INVITE sip:alice@contoso.com SIP/2.0', [mark(';partner=fabrikam.com')], { From: '<sip:bob@fabrikam.com>;tag=f' }), { from: EDGE, view }).outcome, 'continue');
  assert.equal(runStep(step, request('BYE sip:alice@contoso.com SIP/2.0', [mark()], { To: '<sip:bob@contoso.com>;tag=b1' }), { from: EDGE, view }).outcome, 'continue');
  // From a Front End of another pool (not an Edge) nothing changes: authenticated where it entered.
  assert.equal(runStep(step, request('INVITE tel:+14255550100 SIP/2.0'), { from: '127.0.0.11', view }).outcome, 'continue');
});

test('a closing link forgets the remote clients relayed through it, and only those', async () => {
  const { step } = setup();
  const topology = await parseFile(new URL('../../../examples/contoso.yaml', import.meta.url).pathname);
  const view = new PoolView(topology, 'dir1.contoso.com', 1);
  const relay = (token: string) => runStep(step, request('REGISTER sip:contoso.com SIP/2.0', [`X-Dnslb-Remote-Flow: token=${token};source=198.51.100.7`]), { from: '127.0.0.41', view });
  const link = relay('t1').flow.flow.id;
  assert.equal(relay('t2').flow.flow.id, link, 'both through one Edge link');
  const closed: string[] = [];
  const auth = { flowClosed: (id: string) => void closed.push(id) };
  step.linkClosed('a client link that relayed nothing', auth);
  assert.deepEqual(closed, []);
  step.linkClosed(link, auth);
  assert.deepEqual(closed, [`${link}/t1`, `${link}/t2`]);
  step.linkClosed(link, auth);
  assert.deepEqual(closed, [`${link}/t1`, `${link}/t2`], 'each identity once');
});
