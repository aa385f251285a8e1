// Routing between pools, in process on real sockets (the multi-pool fixture on 127.0.50.171–176; only
// fe1 of pool01 and fe4 of pool02 run, the other Front Ends refuse connections): a request for a user
// of another pool walks that pool's servers in the user's sequence, skipping the ones that refuse;
// two pools that disagree about a user's home pool end in 482 (or 483), with a bounded number of
// requests between them — never a storm; no routable server at all → 480 with a reason.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FrontEndServer } from './server.ts';
import { parse } from '../topology/parse.ts';
import { freePortPair } from '../../test/helpers/frontend-pool.ts';
import { multiPoolYaml } from '../../test/helpers/multi-pool.ts';
import { TestSipClient } from '../../test/helpers/sip-client.ts';
import { waitUntil } from '../../test/helpers/process.ts';
import { serverCertificateFiles, serverTls } from '../../test/helpers/tls-certs.ts';
import { readFile } from 'node:fs/promises';
import { storedRecord } from '../../test/helpers/store-fixtures.ts';

const PREFIX = '127.0.50';
const OFFSET = 160;
const FE1 = `${PREFIX}.171`;
const FE4 = `${PREFIX}.174`;
const CLIENT = `${PREFIX}.235`;
/** The Edge's internal address in the fixture (.41): a server, not a client. */
const EDGE = `${PREFIX}.201`;
const DIR1 = `${PREFIX}.191`;
let counter = 0;

function invite(client: TestSipClient, target: string, maxForwards = 70): { lines: string[]; callId: string } {
  const n = ++counter;
  const callId = `interpool-${n}@test`;
  return {
    callId,
    lines: [
      `INVITE ${target} SIP/2.0`,
      `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-ip${n}`,
      `Max-Forwards: ${maxForwards}`,
      `From: <sip:alice@contoso.com>;tag=a${n}`,
      `To: <${target}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:alice@${CLIENT}:${client.localPort};transport=tcp>`,
    ],
  };
}

describe('routing between pools (fe1 of pool01 and fe4 of pool02 in process)', () => {
  let fe1: FrontEndServer;
  let fe4: FrontEndServer;
  let dir1: FrontEndServer;
  const clients: TestSipClient[] = [];
  let port = 0;

  before(async () => {
    port = await freePortPair([FE1, FE4, DIR1]);
    const topology = parse(multiPoolYaml(PREFIX, port, 100, '', OFFSET), 'multi-pool.yaml');
    fe1 = new FrontEndServer({ topology, topologyVersion: 1, server: 'fe1.contoso.com', inviteTimeoutMs: 10_000, tls: await serverTls('fe1.contoso.com') });
    fe4 = new FrontEndServer({ topology, topologyVersion: 1, server: 'fe4.contoso.com', inviteTimeoutMs: 10_000, tls: await serverTls('fe4.contoso.com') });
    dir1 = new FrontEndServer({ topology, topologyVersion: 1, server: 'dir1.contoso.com', inviteTimeoutMs: 10_000, tls: await serverTls('dir1.contoso.com') });
    await fe1.start();
    await fe4.start();
    await dir1.start();
    // Each sees its pool's other (never started) servers down: it is every one of its users' home.
    await waitUntil('pool peers down', () => [fe1, fe4].every((server) => Object.values(server.status().heartbeat.peers).every((peer) => peer.state === 'down')));
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all([fe1?.stop(), fe4?.stop(), dir1?.stop()]);
  });

  const open = async (address: string, from = CLIENT): Promise<TestSipClient> => {
    const client = await TestSipClient.open(address, port, from);
    clients.push(client);
    return client;
  };

  test('a user of pool02 not registered anywhere: fe1 walks pool02 in its sequence (refusing servers skipped) to fe4, which answers 480', async () => {
    const before = fe1.status().proxy;
    const client = await open(FE1);
    const call = invite(client, 'sip:dub-nobody@contoso.com');
    client.send(call.lines);
    const answer = await client.response(call.callId, 480);
    assert.match(answer.reason, /not registered|Temporarily/i, 'fe4 answered: the user has no binding');
    const after = fe1.status().proxy;
    assert.equal(after.interPoolExhausted, before.interPoolExhausted, 'a server of pool02 answered');
    assert.ok(after.interPoolForwarded - before.interPoolForwarded <= 3, 'at most the pool size of tries');
    assert.ok(fe4.status().roles.fromOtherPools >= 1);
  });

  test('two pools disagree about a user home pool: 482, a handful of requests, never a storm', async () => {
    // fe1 believes the user lives on pool02 (its rule), fe4 has it assigned to pool01.
    fe4.setUser('sip:dub-loop@contoso.com', storedRecord('sip:dub-loop@contoso.com', { homePool: 'pool01.contoso.com' }));
    const before = [fe1.status().proxy.interPoolForwarded, fe4.status().proxy.interPoolForwarded];
    const client = await open(FE1);
    const call = invite(client, 'sip:dub-loop@contoso.com');
    client.send(call.lines);
    const answer = await client.response(call.callId, 482);
    assert.equal(answer.status, 482);
    const sent = [fe1.status().proxy.interPoolForwarded - before[0]!, fe4.status().proxy.interPoolForwarded - before[1]!];
    assert.ok(sent[0]! <= 3 && sent[1]! <= 3, `requests between the pools: ${sent.join(' + ')}`);
    assert.ok(fe1.status().proxy.loopsDetected >= 1, 'fe1 saw its own Via come back');
    // Max-Forwards bounds it too: a request with few hops left is answered 483 on the way.
    const short = invite(client, 'sip:dub-loop@contoso.com', 1);
    client.send(short.lines);
    assert.equal((await client.response(short.callId, 483)).status, 483);
    fe4.setUser('sip:dub-loop@contoso.com', undefined);
  });

  test('a Director: a client REGISTER gets 301 to the home pool; from a server (the Edge) it is proxied to the home registrar; the Director holds nothing', async () => {
    const register = (client: TestSipClient, from: string, user: string): { lines: string[]; callId: string } => {
      const n = ++counter;
      const callId = `dir-reg-${n}@test`;
      return {
        callId,
        lines: [
          'REGISTER sip:contoso.com SIP/2.0',
          `Via: SIP/2.0/TCP ${from}:${client.localPort};branch=z9hG4bK-dr${n}`,
          'Max-Forwards: 70',
          `From: <${user}>;tag=r${n}`,
          `To: <${user}>`,
          `Call-ID: ${callId}`,
          `CSeq: ${n} REGISTER`,
          `Contact: <sip:x@${from}:${client.localPort};transport=tcp>`,
          'Expires: 600',
        ],
      };
    };
    const client = await open(DIR1);
    const fromClient = register(client, CLIENT, 'sip:dub-eve@contoso.com');
    client.send(fromClient.lines);
    const redirect = await client.response(fromClient.callId, 301);
    assert.equal(redirect.reason, 'Redirect request to Home Server');
    // The Edge is a server by its certificate (mutual TLS between servers), not by its address.
    const edgeTls = await serverCertificateFiles('edge1.contoso.com', { ips: [EDGE] });
    const edge = await TestSipClient.openTls(DIR1, port + 1, EDGE, { ca: await readFile(edgeTls.caFile, 'utf8'), servername: 'dir1.contoso.com', cert: await readFile(edgeTls.certFile, 'utf8'), key: await readFile(edgeTls.keyFile, 'utf8') });
    clients.push(edge);
    const impostor = await open(DIR1, EDGE);
    const fromAddressOnly = register(impostor, EDGE, 'sip:dub-eve@contoso.com');
    impostor.send(fromAddressOnly.lines);
    assert.equal((await impostor.response(fromAddressOnly.callId, 301)).status, 301, "TCP from the Edge's address without its certificate: a client, redirected");
    const fromEdge = register(edge, EDGE, 'sip:dub-eve@contoso.com');
    edge.send(fromEdge.lines);
    const accepted = await edge.response(fromEdge.callId, 200);
    assert.ok(accepted.headers.some((header) => header.name === 'X-Registrar-Mode'), 'answered by pool02\'s registrar');
    assert.equal(fe4.user('sip:dub-eve@contoso.com').bindings.length, 1, 'fe4, the home in pool02 (fe5 and fe6 down), holds the binding');
    assert.equal(dir1.status().bindings.users, 0, 'the Director holds nothing');
    assert.equal(dir1.status().roles.role, 'director');
  });

  test('no server of the home pool can be reached: 480 naming what each server did', async () => {
    fe1.setUser('sip:alice2@contoso.com', storedRecord('sip:alice2@contoso.com', { homePool: 'pool02.contoso.com' }));
    await fe4.stop();
    const client = await open(FE1);
    const call = invite(client, 'sip:alice2@contoso.com');
    client.send(call.lines);
    const answer = await client.response(call.callId, 480);
    assert.match(answer.reason, /^No server of pool02\.contoso\.com answered \(fe\d\.contoso\.com: unreachable/);
    assert.ok(fe1.status().proxy.interPoolExhausted >= 1);
  });
});
