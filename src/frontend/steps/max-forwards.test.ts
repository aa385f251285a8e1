// The max-forwards step: 483 and 482 for requests to proxy; requests we answer ourselves pass.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixedRandom, request, runStep, stepView } from '../../../test/helpers/step-fixture.ts';
import { loopHash } from '../proxy.ts';
import { BRANCH_PREFIX } from '../wire.ts';
import { MaxForwardsStep } from './max-forwards.ts';

function step(): { step: MaxForwardsStep; counters: { loopsDetected: number } } {
  const counters = { loopsDetected: 0 };
  return { step: new MaxForwardsStep(stepView, counters, fixedRandom), counters };
}

test('max-forwards: Max-Forwards 0 on a request to proxy', () => {
  const rows: [string, ReturnType<typeof request>, 'answered' | 'continue', number | null][] = [
    ['INVITE to a user, 0 → 483', request('INVITE sip:bob@contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), 'answered', 483],
    ['INVITE to a user, 1 → passes', request('INVITE sip:bob@contoso.com SIP/2.0', [], { 'Max-Forwards': '1' }), 'continue', null],
    ['no Max-Forwards → passes', request('INVITE sip:bob@contoso.com SIP/2.0', [], { 'Max-Forwards': '' }), 'continue', null],
    ['ACK, 0 → dropped, never answered', request('ACK sip:bob@contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), 'answered', null],
    ['CANCEL, 0 → follows its INVITE', request('CANCEL sip:bob@contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), 'continue', null],
    ['REGISTER, 0 → ours, a UAS does not look (§8.2)', request('REGISTER sip:contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), 'continue', null],
    ['OPTIONS, 0 → ours (§11)', request('OPTIONS sip:bob@contoso.com SIP/2.0', [], { 'Max-Forwards': '0' }), 'continue', null],
    ['INVITE to us, 0 → 405 later, not 483', request('INVITE sip:127.0.7.1 SIP/2.0', [], { 'Max-Forwards': '0' }), 'continue', null],
  ];
  for (const [name, message, outcome, status] of rows) {
    const ran = runStep(step().step, message);
    assert.equal(ran.outcome, outcome, name);
    assert.equal(ran.flow.responses()[0]?.status ?? null, status, name);
  }
});

test('max-forwards: our Via with the loop hash of this very request → 482, counted; a spiral passes', () => {
  const looped = request('INVITE sip:bob@contoso.com SIP/2.0');
  const hash = loopHash(looped);
  const withOurVia = request('INVITE sip:bob@contoso.com SIP/2.0', [], { Via: `SIP/2.0/TCP 127.0.7.1:5060;branch=${BRANCH_PREFIX}x.${hash}, SIP/2.0/TCP 127.0.9.1:40000;branch=z9hG4bK-c`, 'Call-ID': headerOf(looped, 'Call-ID'), From: headerOf(looped, 'From') });
  const { step: maxForwards, counters } = step();
  const ran = runStep(maxForwards, withOurVia);
  assert.equal(ran.outcome, 'answered');
  assert.equal(ran.flow.responses()[0]?.status, 482);
  assert.equal(counters.loopsDetected, 1);
  const spiral = request('INVITE sip:carol@contoso.com SIP/2.0', [], { Via: `SIP/2.0/TCP 127.0.7.1:5060;branch=${BRANCH_PREFIX}x.${hash}, SIP/2.0/TCP 127.0.9.1:40000;branch=z9hG4bK-c`, 'Call-ID': headerOf(looped, 'Call-ID'), From: headerOf(looped, 'From') });
  assert.equal(runStep(maxForwards, spiral).outcome, 'continue', 'another Request-URI: a spiral');
  assert.equal(counters.loopsDetected, 1);
});

test('max-forwards: a hop marked as a spiral (an Edge relaying a remote user inside) comes back once unchanged and passes; round again, it is a loop', () => {
  const sent = request('INVITE sip:carol@fabrikam.com SIP/2.0');
  const callId = headerOf(sent, 'Call-ID');
  const fromValue = headerOf(sent, 'From');
  // The Edge (127.0.7.1) sent it inside with the spiral mark; the Director sends it back out unchanged.
  const marked = `SIP/2.0/TLS 127.0.7.1:5061;branch=${BRANCH_PREFIX}a.${loopHash(sent, 'from-outside')}`;
  const back = request('INVITE sip:carol@fabrikam.com SIP/2.0', [], { Via: `SIP/2.0/TLS 127.0.0.31:5061;branch=z9hG4bK-d1, ${marked}, SIP/2.0/TLS 127.0.1.5:40000;branch=z9hG4bK-c`, 'Call-ID': callId, From: fromValue });
  const { step: maxForwards, counters } = step();
  assert.equal(runStep(maxForwards, back).outcome, 'continue', 'the spiral passes');
  // This time the Edge forwards it without the mark; should it come back yet again, that is a loop.
  const unmarked = `SIP/2.0/TLS 127.0.7.1:5061;branch=${BRANCH_PREFIX}b.${loopHash(sent)}`;
  const again = request('INVITE sip:carol@fabrikam.com SIP/2.0', [], { Via: `SIP/2.0/TLS 127.0.0.31:5061;branch=z9hG4bK-d2, ${unmarked}, SIP/2.0/TLS 127.0.0.31:5061;branch=z9hG4bK-d1, ${marked}, SIP/2.0/TLS 127.0.1.5:40000;branch=z9hG4bK-c`, 'Call-ID': callId, From: fromValue });
  const ran = runStep(maxForwards, again);
  assert.equal(ran.flow.responses()[0]?.status, 482);
  assert.equal(counters.loopsDetected, 1);
});

function headerOf(message: ReturnType<typeof request>, name: string): string {
  return message.headers.find((header) => header.name === name)!.value;
}
