// The require step: Proxy-Require for every request, Require only for what this server answers itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValue } from '../../sip/message.ts';
import { fixedRandom, request, runStep } from '../../../test/helpers/step-fixture.ts';
import { RegisterAnswers } from '../register-answers.ts';
import { RequireStep } from './require.ts';

function step(): { step: RequireStep; answers: RegisterAnswers } {
  const answers = new RegisterAnswers();
  return { step: new RequireStep(fixedRandom, answers), answers };
}

test('regression: OPTIONS to the server itself with an unknown Require was answered 200; it gets 420 with Unsupported (RFC 3261 §8.2.2.3)', () => {
  const { outcome, flow } = runStep(step().step, request('OPTIONS sip:127.0.7.1:5060 SIP/2.0', ['Require: an-unknown-extension'], { To: '<sip:127.0.7.1:5060>' }));
  assert.equal(outcome, 'answered');
  const [response] = flow.responses();
  assert.equal(response?.status, 420);
  assert.equal(response?.reason, 'Bad Extension');
  assert.equal(headerValue(response!, 'Unsupported'), 'an-unknown-extension');
  assert.match(headerValue(response!, 'To') ?? '', /;tag=/);
});

test('require: what passes and what gets 420', () => {
  const rows: [string, ReturnType<typeof request>, number | null, string | null][] = [
    ['OPTIONS to us, supported Require', request('OPTIONS sip:127.0.7.1 SIP/2.0', ['Require: outbound']), null, null],
    ['heartbeat OPTIONS (Max-Forwards 0, no Require)', request('OPTIONS sip:fe1.contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), null, null],
    ['OPTIONS with Max-Forwards 0 and an unknown Require: we are its UAS', request('OPTIONS sip:bob@contoso.com SIP/2.0', ['Require: foo'], { 'Max-Forwards': '0' }), 420, 'foo'],
    ['REGISTER, unknown Require', request('REGISTER sip:contoso.com SIP/2.0', ['Require: foo, path']), 420, 'foo'],
    ['REGISTER, supported Require', request('REGISTER sip:contoso.com SIP/2.0', ['Require: path, outbound']), null, null],
    ['reg SUBSCRIBE, unknown Require', request('SUBSCRIBE sip:alice@contoso.com SIP/2.0', ['Event: reg', 'Require: foo']), 420, 'foo'],
    ['proxied INVITE: Require is the UAS\'s business (§16.3)', request('INVITE sip:bob@contoso.com SIP/2.0', ['Require: 100rel, foo']), null, null],
    ['proxied OPTIONS to a user: Require ignored', request('OPTIONS sip:bob@contoso.com SIP/2.0', ['Require: foo']), null, null],
    ['INVITE to us: 405 comes first (§8.2.1), Require not looked at', request('INVITE sip:127.0.7.1 SIP/2.0', ['Require: foo']), null, null],
    ['Proxy-Require on a proxied request (§16.3 step 5)', request('INVITE sip:bob@contoso.com SIP/2.0', ['Proxy-Require: sec-agree']), 420, 'sec-agree'],
    ['Proxy-Require on a REGISTER', request('REGISTER sip:contoso.com SIP/2.0', ['Proxy-Require: foo']), 420, 'foo'],
    ['ACK is never answered', request('ACK sip:bob@contoso.com SIP/2.0', ['Proxy-Require: foo', 'Require: foo']), null, null],
    ['CANCEL is never refused', request('CANCEL sip:bob@contoso.com SIP/2.0', ['Proxy-Require: foo']), null, null],
  ];
  for (const [name, message, status, unsupported] of rows) {
    const { outcome, flow } = runStep(step().step, message);
    const response = flow.responses()[0];
    assert.equal(outcome, status === null ? 'continue' : 'answered', name);
    assert.equal(response?.status ?? null, status, name);
    if (unsupported !== null) assert.equal(headerValue(response!, 'Unsupported'), unsupported, name);
  }
});

test('require: a REGISTER refused 420 is counted in the REGISTER answers (Require and Proxy-Require)', () => {
  const { step: require, answers } = step();
  runStep(require, request('REGISTER sip:contoso.com SIP/2.0', ['Require: foo']));
  runStep(require, request('REGISTER sip:contoso.com SIP/2.0', ['Proxy-Require: foo']));
  runStep(require, request('OPTIONS sip:127.0.7.1 SIP/2.0', ['Require: foo']));
  assert.equal(answers.byClass['4xx'], 2);
});
