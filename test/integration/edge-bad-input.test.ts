// The Access Edge faces the Internet (issue 14 tests): the SIP bad-input suite (test/helpers/sip-bad-input.ts:
// a slow sender, a megabyte header, lying Content-Lengths, random bytes, a stalled TLS handshake, many idle
// TLS connections) against an edge server's external interface under `dnslb up`; and requests from
// outside that claim to come from a server — the header only an Edge sets, a Path, a forged flow token, a
// Route straight to an internal server, a request addressed to a server, a source address that is a
// Director's — are refused at the Edge (403) or treated as a client's (challenged), and none of the
// refused ones reaches a Director. A forged federation Route (`sip:fed@<edge>` with a partner's From)
// registers nobody and calls no number: a listener on the PSTN gateway's address sees nothing. The
// internal interface refuses hosts that are not servers.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { lyingContentLength, megabyteHeader, idleConnections, nextRequestNumber, openTo, optionsRequest, randomGarbage, slowSender, stalledHandshake, type BadInputSuite, type BadInputTarget } from '../helpers/sip-bad-input.ts';
import { answeringServer, startEdgeSystem, type EdgeSystem, type ServerJson } from '../helpers/edge-system.ts';
import { eventually } from '../helpers/eventually.ts';
import { waitUntil } from '../helpers/process.ts';

const NET = '127.0.153';
const OUTSIDE = '127.1.153.5';
const GARBAGE_FROM = '127.1.153.6';
/**
 * The issue's 10,000 idle TLS connections, all at edge1's Access Edge port, from 20 outside source
 * addresses (500 each: no port exhaustion; ulimit -n is 20,000 here). That is exactly a server's
 * documented connection limit (`connectionsMax` 10,000 flows + handshakes, src/sip/README.md; the
 * idle timeout, 300 s, is longer than the test): edge1 fills up and resets the excess at accept
 * (its links to the other servers hold a few slots), stays alive with bounded memory, and a remote
 * user signing in meanwhile walks on to edge2; once the idle ones close edge1 answers again.
 */
const IDLE_TLS = 10_000;
/** A server's connection limit (`dnslb node --connections-max`, default; `dnslb up` keeps it). */
const CONNECTIONS_MAX = 10_000;
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

function request(n: number, lines: { start: string; from?: string; to?: string; toTag?: string; extra?: string[] }): string {
  const uri = lines.start.split(' ')[1]!;
  return [
    lines.start,
    `Via: SIP/2.0/TLS ${OUTSIDE};branch=z9hG4bK-forged-${n}`,
    'Max-Forwards: 70',
    `To: <${lines.to ?? uri}>${lines.toTag ? `;tag=${lines.toTag}` : ''}`,
    `From: <${lines.from ?? 'sip:user1@contoso.com'}>;tag=f${n}`,
    `Call-ID: forged-${n}@${OUTSIDE}`,
    `CSeq: 1 ${lines.start.split(' ')[0]}`,
    'Contact: <sip:user1@127.1.153.5:5061;transport=tls>',
    ...(lines.extra ?? []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** The status line of the answer to request `n` on a connection's received text. */
async function answerTo(received: () => string, n: number): Promise<string> {
  await waitUntil(`answer to request ${n}`, () => received().includes(`Call-ID: forged-${n}@`), { timeoutMs: 15_000 });
  const text = received();
  const start = text.lastIndexOf('SIP/2.0 ', text.indexOf(`Call-ID: forged-${n}@`));
  return text.slice(start, text.indexOf('\r\n', start));
}

/** The status line of the final answer (past any 1xx) to request `n`; the answers carry no bodies. */
async function finalAnswerTo(received: () => string, n: number): Promise<string> {
  const final = (): string | undefined => received().split('\r\n\r\n').find((message) => message.includes(`Call-ID: forged-${n}@`) && /^SIP\/2\.0 [2-6]\d\d /.test(message.trimStart()))?.trimStart();
  await waitUntil(`final answer to request ${n}`, () => final() !== undefined, { timeoutMs: 15_000 });
  const message = final()!;
  return message.slice(0, message.indexOf('\r\n'));
}

describe('the Access Edge under bad input and forged server claims (dnslb up)', { timeout: 240_000 }, () => {
  let edge: EdgeSystem;
  let target: BadInputTarget;
  let suite: BadInputSuite;

  const edge1 = (): Promise<ServerJson> => answeringServer(edge, 'edge1.contoso.com', WAIT);
  const directorsForwarded = (): Promise<number> =>
    eventually(async () => {
      const directors = (await edge.poolStatus()).servers.filter((entry) => entry.kind === 'director');
      assert.ok(directors.every((entry) => entry.status), 'every Director answers');
      return directors.reduce((sum, entry) => sum + Object.values(entry.status!.proxy.requestsForwardedByMethod).reduce((a, b) => a + b, 0), 0);
    }, WAIT);

  before(async () => {
    edge = await startEdgeSystem(NET, OUTSIDE, 2);
    target = { address: `${NET}.51`, port: 4443, transport: 'tls', ca: edge.ca, servername: 'sip.contoso.com' };
    const stillAnswers = async (): Promise<void> => {
      const client = await openTo(target, OUTSIDE);
      const n = nextRequestNumber();
      client.socket.write(optionsRequest(n, 'sip:sip.contoso.com', OUTSIDE));
      await waitUntil('OPTIONS answered', () => client.received().includes('SIP/2.0 200 OK') && client.received().includes(`bad-${n}@`), { timeoutMs: 15_000 });
      client.socket.destroy();
    };
    suite = { target, from: GARBAGE_FROM, requestUri: 'sip:sip.contoso.com', stillAnswers };
    await eventually(async () => assert.equal((await edge1()).status?.state, 'active'), WAIT);
  });
  after(async () => edge?.stop());

  test('slow sender, megabyte header, lying Content-Lengths, random bytes: the Edge answers or closes, and serves others', async () => {
    await slowSender(suite);
    await megabyteHeader(suite);
    await lyingContentLength(suite);
    await randomGarbage(suite, 30);
  });

  test('a stalled TLS handshake on the Access Edge port is dropped; others are served meanwhile', async () => {
    await stalledHandshake(suite, target.port);
  });

  test(`${IDLE_TLS} idle TLS connections on edge1's Access Edge: it holds its limit and resets the excess, a remote user signs in through edge2, edge1 answers again after`, async (t) => {
    type Transport = { transport: { flowsOpen: number; connectionsRefused: number }; memory: { rssBytes: number } };
    const before = (await edge1()).status as unknown as Transport;
    const started = Date.now();
    const idle = await idleConnections(target, IDLE_TLS, Array.from({ length: 20 }, (_, index) => `127.1.153.${20 + index}`));
    t.diagnostic(`${IDLE_TLS} TLS connections opened (or reset) in ${Date.now() - started} ms`);
    const user = edge.agent(1, 'outside');
    try {
      await eventually(async () => {
        const status = (await edge1()).status as unknown as Transport;
        // Full: the limit reached, never passed; what did not fit was reset at accept (counted).
        assert.equal(status.transport.flowsOpen, CONNECTIONS_MAX, `flows open ${status.transport.flowsOpen}`);
        assert.ok(status.transport.connectionsRefused > before.transport.connectionsRefused, `refused ${status.transport.connectionsRefused}`);
        assert.ok(status.memory.rssBytes < 600 * 1024 * 1024, `RSS ${status.memory.rssBytes}`);
        t.diagnostic(`edge1 full: ${status.transport.flowsOpen} flows, ${status.transport.connectionsRefused - before.transport.connectionsRefused} reset, RSS ${Math.round(status.memory.rssBytes / 1048576)} MiB`);
      }, WAIT);
      // A real remote user signs in meanwhile (DNS, TLS, the Director's digest): edge1 resets it, edge2 takes it.
      await user.start();
      await eventually(() => assert.equal(user.state, 'registered'), WAIT);
      assert.equal(user.server, edge.accessEdges[1], 'through edge2');
    } finally {
      await user.stop({ unregisterTimeoutMs: 200 });
      idle.close();
    }
    await eventually(() => suite.stillAnswers(), WAIT);
  });

  test('requests from outside that claim what only a server may are refused with 403 and reach no Director', async () => {
    const forwardedBefore = await directorsForwarded();
    const forgedBefore = (await edge1()).status!.edge!.guard;
    const client = await openTo(target, OUTSIDE);
    const cases: { name: string; text: (n: number) => string; status: RegExp }[] = [
      { name: 'the Edge\'s own relayed-flow header', text: (n) => request(n, { start: 'REGISTER sip:contoso.com SIP/2.0', to: 'sip:user1@contoso.com', extra: ['X-Dnslb-Remote-Flow: token=abc;source=127.0.153.31'] }), status: /^SIP\/2\.0 403/ },
      { name: 'a Path', text: (n) => request(n, { start: 'REGISTER sip:contoso.com SIP/2.0', to: 'sip:user1@contoso.com', extra: [`Path: <sip:${NET}.31;lr>`] }), status: /^SIP\/2\.0 403/ },
      { name: 'a forged flow token in a Route naming the Edge', text: (n) => request(n, { start: 'INVITE sip:user2@contoso.com SIP/2.0', extra: [`Route: <sip:forgedtoken@${NET}.41:5061;transport=tls;lr>`, `Route: <sip:${NET}.31:5061;transport=tls;lr>`] }), status: /^SIP\/2\.0 403/ },
      { name: 'a Route straight to a Director', text: (n) => request(n, { start: 'INVITE sip:user2@contoso.com SIP/2.0', extra: [`Route: <sip:${NET}.31:5061;transport=tls;lr>`] }), status: /^SIP\/2\.0 403/ },
      { name: 'a request addressed to a server', text: (n) => request(n, { start: `MESSAGE sip:${NET}.11:5061;transport=tls SIP/2.0` }), status: /^SIP\/2\.0 403/ },
      { name: 'a request addressed to a server by name', text: (n) => request(n, { start: 'MESSAGE sip:fe1.contoso.com SIP/2.0' }), status: /^SIP\/2\.0 403/ },
      { name: 'an in-dialog request with no route set through this Edge', text: (n) => request(n, { start: 'BYE sip:user2@contoso.com SIP/2.0', to: 'sip:user2@contoso.com', toTag: 'x' }), status: /^SIP\/2\.0 403/ },
      // fabrikam.com is a federation partner in the example (a remote user's request to it goes inside and is challenged there); litware.com is not.
      { name: 'another domain that is no federation partner', text: (n) => request(n, { start: 'MESSAGE sip:eve@litware.com SIP/2.0' }), status: /^SIP\/2\.0 403/ },
    ];
    for (const forged of cases) {
      const n = nextRequestNumber();
      client.socket.write(forged.text(n));
      assert.match(await answerTo(client.received, n), forged.status, forged.name);
    }
    client.socket.destroy();
    const guard = (await edge1()).status!.edge!.guard;
    assert.ok(guard['forgedFromOutside']! - forgedBefore['forgedFromOutside']! >= 3, JSON.stringify(guard));
    assert.ok(guard['toServerFromOutside']! - forgedBefore['toServerFromOutside']! >= 2, JSON.stringify(guard));
    assert.equal(await directorsForwarded(), forwardedBefore, 'nothing refused at the Edge reached a Director');
  });

  test('a forged federation Route from the Internet registers nobody and calls no number (403 at the Edge, 407 inside)', async () => {
    // The example's PSTN gateway address: whatever reaches it is counted (no Mediation server should connect).
    const gatewayBytes: Buffer[] = [];
    const gateway: Server = createServer((socket) => socket.on('data', (chunk: Buffer) => gatewayBytes.push(chunk)).on('error', () => {}));
    await new Promise<void>((resolve, reject) => gateway.once('error', reject).listen(5060, `${NET}.90`, resolve));
    try {
      const sum = (entries: ServerJson[], value: (entry: ServerJson) => number): number => entries.reduce((total, entry) => total + value(entry), 0);
      const totals = async (): Promise<{ bindings: number; mediationForwarded: number }> => {
        const servers = (await edge.answeringStatus()).servers;
        return {
          bindings: sum(servers.filter((entry) => entry.kind === 'frontend'), (entry) => entry.status?.bindings.bindings ?? 0),
          mediationForwarded: sum(servers.filter((entry) => entry.kind === 'mediation'), (entry) => Object.values(entry.status?.proxy.requestsForwardedByMethod ?? {}).reduce((a, b) => a + b, 0)),
        };
      };
      const before = await totals();
      const forgedRoute = `Route: <sip:fed@${NET}.51;lr>, <sip:fe1.contoso.com;lr>`;
      const client = await openTo(target, '127.1.153.77');
      const cases: { name: string; text: (n: number) => string; status: RegExp }[] = [
        // The reviewer's example, exactly: register as the CEO with a partner's From.
        { name: 'REGISTER as ceo with a fed Route', text: (n) => request(n, { start: 'REGISTER sip:contoso.com SIP/2.0', from: 'sip:x@fabrikam.com', to: 'sip:ceo@contoso.com', extra: [forgedRoute] }), status: /^SIP\/2\.0 403/ },
        { name: 'REGISTER as an existing user with a fed Route', text: (n) => request(n, { start: 'REGISTER sip:contoso.com SIP/2.0', from: 'sip:x@fabrikam.com', to: 'sip:user1@contoso.com', extra: [forgedRoute] }), status: /^SIP\/2\.0 403/ },
        { name: 'INVITE to a number with a fed Route', text: (n) => request(n, { start: 'INVITE tel:+14255550100 SIP/2.0', from: 'sip:x@fabrikam.com', to: 'tel:+14255550100', extra: [forgedRoute] }), status: /^SIP\/2\.0 403/ },
        { name: 'INVITE to a number, fed Route to a Mediation server, as if in a dialog', text: (n) => request(n, { start: 'INVITE tel:+14255550100 SIP/2.0', from: 'sip:x@fabrikam.com', to: 'tel:+14255550100', toTag: 't', extra: [`Route: <sip:fed@${NET}.51;lr>, <sip:${NET}.61:5061;transport=tls;lr>`] }), status: /^SIP\/2\.0 403/ },
        // Without a forged Route, as one of our users: relayed inside, marked, and challenged there.
        { name: 'INVITE to a number as user1', text: (n) => request(n, { start: 'INVITE tel:+14255550100 SIP/2.0', from: 'sip:user1@contoso.com', to: 'tel:+14255550100' }), status: /^SIP\/2\.0 407/ },
      ];
      for (const forged of cases) {
        const n = nextRequestNumber();
        client.socket.write(forged.text(n));
        assert.match(await finalAnswerTo(client.received, n), forged.status, forged.name);
      }
      client.socket.destroy();
      assert.deepEqual(await totals(), before, 'no binding was created and no Mediation server forwarded anything');
      assert.equal(Buffer.concat(gatewayBytes).length, 0, 'nothing reached the PSTN gateway');
    } finally {
      await new Promise<void>((resolve) => gateway.close(() => resolve()));
    }
  });

  test('a client outside using a Director\'s own address as its source is a client: its REGISTER is challenged, never trusted', async () => {
    // The whole of 127/8 is local: a "client" can bind the Director's address. On the Access Edge it is still the Internet.
    const client = await openTo(target, `${NET}.31`);
    const n = nextRequestNumber();
    client.socket.write(request(n, { start: 'REGISTER sip:contoso.com SIP/2.0', to: 'sip:user1@contoso.com' }));
    assert.match(await answerTo(client.received, n), /^SIP\/2\.0 401/);
    client.socket.destroy();
  });

  test('the internal interface serves only the servers of the topology', async () => {
    const inside = await openTo({ address: `${NET}.41`, port: 5060, transport: 'tcp' }, OUTSIDE);
    const n = nextRequestNumber();
    inside.socket.write(request(n, { start: 'INVITE sip:user2@contoso.com SIP/2.0' }).replace('SIP/2.0/TLS', 'SIP/2.0/TCP'));
    assert.match(await answerTo(inside.received, n), /^SIP\/2\.0 403/);
    inside.socket.destroy();
    assert.ok(((await edge1()).status!.edge!.guard['notServerInside'] ?? 0) >= 1);
  });
});
