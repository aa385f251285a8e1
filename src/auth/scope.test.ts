// challengeScope: a table of requests and who they come from.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMessage } from '../sip/parse.ts';
import type { SipRequest } from '../sip/message.ts';
import { challengeScope } from './scope.ts';

function request(method: string, toTag: boolean): SipRequest {
  const text = [`${method} sip:bob@contoso.com SIP/2.0`, 'Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1', 'From: <sip:alice@contoso.com>;tag=a', `To: <sip:bob@contoso.com>${toTag ? ';tag=b' : ''}`, 'Call-ID: c', `CSeq: 1 ${method}`, 'Max-Forwards: 70', 'Content-Length: 0', '', ''].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

const TABLE: Array<[string, boolean, boolean, string]> = [
  ['REGISTER', false, false, 'registrar'],
  ['REGISTER', false, true, 'none'],
  ['INVITE', false, false, 'proxy'],
  ['MESSAGE', false, false, 'proxy'],
  ['SUBSCRIBE', false, false, 'proxy'],
  ['OPTIONS', false, false, 'proxy'],
  ['INVITE', true, false, 'none'],
  ['BYE', true, false, 'none'],
  ['INVITE', false, true, 'none'],
  ['ACK', false, false, 'none'],
  ['CANCEL', false, false, 'none'],
];

for (const [method, toTag, fromPeer, expected] of TABLE) {
  test(`${method}${toTag ? ' in a dialog' : ''} from a ${fromPeer ? 'peer' : 'client'}: ${expected}`, () => {
    assert.equal(challengeScope(request(method, toTag), { fromPeer }), expected);
  });
}

test('a request from a server of another pool is not challenged again; one from an Edge is a client\'s from outside', () => {
  assert.equal(challengeScope(request('INVITE', false), { fromPeer: false, fromServer: true }), 'none');
  assert.equal(challengeScope(request('MESSAGE', false), { fromPeer: false, fromServer: true }), 'none');
  assert.equal(challengeScope(request('REGISTER', false), { fromPeer: false, fromServer: true }), 'none');
  assert.equal(challengeScope(request('REGISTER', false), { fromPeer: false, fromServer: true, fromEdge: true }), 'registrar');
  assert.equal(challengeScope(request('INVITE', false), { fromPeer: false, fromServer: true, fromEdge: true }), 'proxy');
  assert.equal(challengeScope(request('BYE', true), { fromPeer: false, fromServer: true, fromEdge: true }), 'none');
});

test('from an Edge, a listed partner\'s new request passes, its REGISTER does not (a forged partner From registers nobody)', () => {
  assert.equal(challengeScope(request('INVITE', false), { fromPeer: false, fromServer: true, fromEdge: true, partner: true }), 'none');
  assert.equal(challengeScope(request('MESSAGE', false), { fromPeer: false, fromServer: true, fromEdge: true, partner: true }), 'none');
  assert.equal(challengeScope(request('REGISTER', false), { fromPeer: false, fromServer: true, fromEdge: true, partner: true }), 'registrar');
  // A partner flag from anyone but an Edge means nothing: a client is challenged all the same.
  assert.equal(challengeScope(request('INVITE', false), { fromPeer: false, partner: true }), 'proxy');
});
