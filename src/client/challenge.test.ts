// The client answers a proxy's challenge on INVITE and MESSAGE (a Director that has not authenticated
// the flow yet — the next one after one died — answers 407): once per request, with the credentials
// the challenge asks for (Proxy-Authorization for 407, Authorization for 401), same Call-ID and From
// tag, next CSeq; a second challenge is the end, with a reason saying the credentials were refused.
// Against a small SIP server of our own transport on loopback (127.0.34.x): REGISTER 200, then the
// challenges as each test scripts them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createResponse, headerValue, type SipRequest } from '../sip/message.ts';
import { callId, from } from '../sip/headers.ts';
import { SipTransport } from '../sip/transport.ts';
import type { Flow } from '../sip/flow.ts';
import { UserAgent } from './user-agent.ts';
import type { Call } from './call.ts';

const HOST = '127.0.34.21';

describe('the client answers 401/407 on INVITE and MESSAGE once', () => {
  const server = new SipTransport();
  let port = 0;
  /** How many challenges each Call-ID gets before a 200 (Infinity: always challenged). */
  let challengesPerRequest = 1;
  const seen: { method: string; callId: string; cseq: string; fromTag: string | null; credentials: string | undefined }[] = [];
  const challenged = new Map<string, number>();
  let agent: UserAgent;

  before(async () => {
    server.on('message', (flow: Flow, message) => {
      if (message.kind !== 'request') return;
      const request = message as SipRequest;
      if (request.method === 'ACK') return;
      const id = callId(request);
      const answer = (status: number, headers: { name: string; value: string }[] = []): void => void flow.send(createResponse(request, status, { toTag: 'srv', headers }));
      if (request.method === 'REGISTER' || request.method === 'SUBSCRIBE') return answer(200, [{ name: 'Contact', value: headerValue(request, 'Contact') ?? '*' }, { name: 'Expires', value: '600' }]);
      if (request.method === 'BYE') return answer(200);
      seen.push({ method: request.method, callId: id, cseq: headerValue(request, 'CSeq') ?? '', fromTag: from(request).tag, credentials: headerValue(request, 'Proxy-Authorization') });
      const count = challenged.get(id) ?? 0;
      if (count < challengesPerRequest) {
        challenged.set(id, count + 1);
        return answer(407, [{ name: 'Proxy-Authenticate', value: `Digest realm="contoso.com", nonce="n${count}${id.slice(0, 6)}", qop="auth", algorithm=MD5` }]);
      }
      if (request.method === 'INVITE') return answer(200, [{ name: 'Contact', value: `<sip:callee@${HOST}:${port};transport=tcp>` }, { name: 'Content-Type', value: 'application/sdp' }]);
      return answer(200);
    });
    const bound = await server.listen({ transport: 'tcp', host: HOST, port: 0 });
    port = bound.port;
    agent = new UserAgent({
      aor: 'sip:alice@contoso.com',
      transport: 'tcp',
      password: 'secret',
      keepAliveIntervalMs: 600_000,
      locator: {
        discover: async () => ({ domain: 'contoso.com', via: 'test', targets: [], endpoints: [{ address: HOST, port, transport: 'tcp', host: HOST }], steps: [], expiresAtMs: Date.now() + 600_000 }),
        forget: () => {},
        resolveHost: async () => [HOST],
      },
    });
    await agent.start();
    assert.equal(agent.state, 'registered');
  });
  after(async () => {
    await agent?.stop({ unregisterTimeoutMs: 100 });
    await server.close();
  });

  const ended = (call: Call): Promise<{ how: string; status?: number; detail?: string }> => new Promise((resolve) => call.once('ended', resolve));
  const up = (call: Call): Promise<void> => new Promise((resolve, reject) => {
    call.once('up', () => resolve());
    call.once('ended', (end) => reject(new Error(`${end.how} ${end.status ?? ''} ${end.detail ?? ''}`)));
  });

  test('one 407: INVITE and MESSAGE go again with Proxy-Authorization (same Call-ID and From tag, CSeq + 1) and succeed', async () => {
    challengesPerRequest = 1;
    seen.length = 0;
    const call = agent.call('sip:bob@contoso.com');
    await up(call);
    const im = await agent.message('sip:bob@contoso.com', 'hi');
    assert.equal(im.status, 200, im.reason);
    assert.deepEqual(seen.map((entry) => [entry.method, entry.cseq, entry.credentials !== undefined]), [
      ['INVITE', '1 INVITE', false],
      ['INVITE', '2 INVITE', true],
      ['MESSAGE', '1 MESSAGE', false],
      ['MESSAGE', '2 MESSAGE', true],
    ]);
    assert.equal(seen[0]!.callId, seen[1]!.callId);
    assert.equal(seen[0]!.fromTag, seen[1]!.fromTag);
    assert.match(seen[1]!.credentials!, /^Digest username="alice", realm="contoso.com", .*uri="sip:bob@contoso.com"/);
    call.hangUp();
  });

  test('a second 407: the call and the IM fail, saying the credentials were refused; no third try', async () => {
    challengesPerRequest = Infinity;
    seen.length = 0;
    const call = agent.call('sip:carol@contoso.com');
    const end = await ended(call);
    assert.equal(end.status, 407);
    assert.match(end.detail ?? '', /challenged again after answering with the credentials of sip:alice@contoso\.com \(refused/);
    const im = await agent.message('sip:carol@contoso.com', 'hi');
    assert.equal(im.status, 407);
    assert.match(im.reason, /challenged again after answering with the credentials/);
    assert.deepEqual(seen.map((entry) => entry.method), ['INVITE', 'INVITE', 'MESSAGE', 'MESSAGE']);
  });
});
