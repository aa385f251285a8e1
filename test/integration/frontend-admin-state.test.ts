// Admin state and topology changes applied to Front End servers in this process (127.0.10.31-33, real
// sockets): blocked is no home for new registrations (at itself and at its peers) but moves nobody;
// unblocked takes users again; a server that a new version leaves out drains, reports drained, and
// its peers stop linking to it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrontEndServer } from '../../src/frontend/server.ts';
import { headerValue, headerValues } from '../../src/sip/message.ts';
import { homeOf } from '../../src/registrar/sequence.ts';
import type { AdminState } from '../../src/store/store.ts';
import { parse } from '../../src/topology/parse.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePortPair, topologyYaml } from '../helpers/frontend-pool.ts';
import { TestSipClient } from '../helpers/sip-client.ts';
import { serverTls } from '../helpers/tls-certs.ts';

const ADDRESSES = ['127.0.10.31', '127.0.10.32', '127.0.10.33'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const CLIENT = '127.0.10.130';
let counter = 0;

function userHomedAt(server: string, prefix: string): string {
  for (let n = 0; ; n++) {
    const user = `sip:${prefix}${n}@contoso.com`;
    if (homeOf(user, SERVERS, new Set(SERVERS))!.server === server) return user;
  }
}

async function register(client: TestSipClient, user: string): Promise<{ status: number; mode: string | undefined; contacts: string[] }> {
  const n = ++counter;
  client.send([
    'REGISTER sip:contoso.com SIP/2.0',
    `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-a${n}`,
    'Max-Forwards: 70',
    `From: <${user}>;tag=a${n}`,
    `To: <${user}>`,
    `Call-ID: admin-${n}`,
    `CSeq: ${n} REGISTER`,
    `Contact: <${user.replace('@contoso.com', `@${CLIENT}:${client.localPort}`)};transport=tcp>`,
    'Expires: 600',
  ]);
  const answer = await client.response(`admin-${n}`);
  return { status: answer.status, mode: headerValue(answer, 'X-Registrar-Mode'), contacts: headerValues(answer, 'Contact') };
}

describe('admin state and topology changes', () => {
  const servers: FrontEndServer[] = [];
  const clients: TestSipClient[] = [];
  let port = 0;
  let yaml = (_count: number) => '';
  const open = async (index: number): Promise<TestSipClient> => {
    const client = await TestSipClient.open(ADDRESSES[index]!, port, CLIENT);
    clients.push(client);
    return client;
  };
  const applyEverywhere = (states: Record<string, AdminState>): void => {
    for (const server of servers) server.applyAdminStates(new Map(Object.entries(states)));
  };

  before(async () => {
    port = await freePortPair(ADDRESSES);
    yaml = (count) => topologyYaml(ADDRESSES.slice(0, count), port, 100, '', '  drain: { timeoutMs: 5000 }');
    const topology = parse(yaml(3), 'admin.yaml');
    for (const fqdn of SERVERS) {
      const server = new FrontEndServer({ topology, topologyVersion: 1, server: fqdn, tls: await serverTls(fqdn) });
      await server.start();
      servers.push(server);
    }
    await eventually(() => assert.ok(servers.every((server) => Object.values(server.status().heartbeat.peers).every((peer) => peer.state === 'active')), JSON.stringify(servers.map((server) => server.status().heartbeat.peers))));
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.stop()));
  });

  test('blocked: no home for new registrations, at itself or at a peer; its registered users stay', async () => {
    const settled = userHomedAt('fe1.contoso.com', 'settled');
    const fe1 = await open(0);
    assert.equal((await register(fe1, settled)).status, 200);
    applyEverywhere({ 'fe1.contoso.com': 'blocked' });
    const newcomer = userHomedAt('fe1.contoso.com', 'newcomer');
    const next = homeOf(newcomer, SERVERS, new Set(SERVERS.slice(1)))!.server;
    const atItself = await register(fe1, newcomer);
    assert.equal(atItself.status, 301);
    assert.ok(atItself.contacts[0]!.startsWith(`<sip:${next}:`), atItself.contacts.join(', '));
    assert.ok(atItself.contacts.every((contact) => !contact.includes('fe1.contoso.com')));
    const atPeer = await register(await open(SERVERS.indexOf(next) === 1 ? 2 : 1), newcomer);
    assert.equal(atPeer.status, 301);
    assert.ok(atPeer.contacts.every((contact) => !contact.includes('fe1.contoso.com')), 'peers treat fe1 as unavailable');
    const atNext = await register(await open(SERVERS.indexOf(next)), newcomer);
    assert.deepEqual([atNext.status, atNext.mode], [200, 'backup']);
    // Nobody is moved off a blocked server: its binding stays, nothing is queued.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const status = servers[0]!.status();
    assert.equal(status.bindings.users, 1);
    assert.equal(status.resilience.handover.run.moved + status.resilience.handover.run.remaining, 0);
    assert.equal(status.state, 'active', 'blocked is not draining');
    assert.equal(servers[0]!.livenessReport(1000).states[0]!.state, 'blocked');
  });

  test('unblocked: the server is a home again; users that registered elsewhere meanwhile come back', async () => {
    applyEverywhere({ 'fe1.contoso.com': 'active' });
    const fresh = userHomedAt('fe1.contoso.com', 'fresh');
    const result = await register(await open(0), fresh);
    assert.deepEqual([result.status, result.mode], [200, 'primary']);
    // The newcomer registered in backup mode while fe1 was blocked: its backup server hands it back.
    await eventually(() => assert.equal(servers.slice(1).reduce((sum, server) => sum + server.status().resilience.handover.handedOverTotal.recovery, 0), 1));
  });

  test('a version without fe3: fe3 drains and reports drained; fe1 and fe2 drop it from their pool and links', async () => {
    const two = parse(yaml(2), 'admin.yaml');
    for (const server of servers) server.setTopology(two, 2);
    const fe3 = servers[2]!;
    await eventually(() => {
      const status = fe3.status();
      assert.equal(status.resilience.removedFromTopology, true);
      assert.equal(status.resilience.drain?.cause, 'decommission');
      assert.equal(status.state, 'drained');
    });
    assert.equal(fe3.livenessReport(1000).states.length, 1, 'a removed server reports only itself');
    assert.equal(fe3.livenessReport(1000).states[0]!.state, 'drained');
    for (const server of servers.slice(0, 2)) {
      const status = server.status();
      assert.equal(status.topologyVersion, 2);
      assert.ok(!('fe3.contoso.com' in status.heartbeat.peers));
      assert.ok(!status.links.open.includes('fe3.contoso.com'));
      assert.ok(!status.available.includes('fe3.contoso.com'));
    }
  });
});
