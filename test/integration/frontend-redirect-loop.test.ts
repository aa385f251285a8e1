// "No redirect loops" (DESIGN §3): three Front End servers in this process on 127.0.10.21-23 where
// fe2 wrongly believes fe3 is out of the pool (an injected view) while fe1 and fe3 see it up. A real
// UserAgent whose user's sequence is [fe3, fe1, fe2] and whose DNS answer starts at fe2 ends
// registered at fe3, in primary mode, after exactly 2 redirects; no 3xx ever names its sender.
// And when the views disagree so much that a 3rd redirect comes (four servers on 127.0.14.21-24),
// the client does not follow it: it tries the next address DNS gave it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Discovery } from '../../src/client/discover.ts';
import { UserAgent, type Locator } from '../../src/client/user-agent.ts';
import { FrontEndServer } from '../../src/frontend/server.ts';
import { homeOf, sequenceOf } from '../../src/registrar/sequence.ts';
import { parse } from '../../src/topology/parse.ts';
import { headerValues } from '../../src/sip/message.ts';
import { eventually } from '../helpers/eventually.ts';
import { TestSipClient } from '../helpers/sip-client.ts';
import { freePortPair, topologyYaml } from '../helpers/frontend-pool.ts';
import { serverTls } from '../helpers/tls-certs.ts';

const ADDRESSES = ['127.0.10.21', '127.0.10.22', '127.0.10.23'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];

function userWithSequence(wanted: string[]): string {
  for (let n = 0; ; n++) {
    const user = `sip:loop${n}@contoso.com`;
    if (sequenceOf(user, SERVERS).join() === wanted.join()) return user;
  }
}

describe('two servers that disagree about a third do not make a client loop', () => {
  const servers: FrontEndServer[] = [];
  const agents: UserAgent[] = [];
  let port = 0;

  before(async () => {
    port = await freePortPair(ADDRESSES);
    const topology = parse(topologyYaml(ADDRESSES, port, 100), 'loop.yaml');
    for (const fqdn of SERVERS) {
      const server = new FrontEndServer({ topology, server: fqdn, tls: await serverTls(fqdn) });
      await server.start();
      servers.push(server);
    }
    await eventually(() => assert.ok(servers.every((server) => Object.values(server.status().heartbeat.peers).every((peer) => peer.state === 'active'))));
    // fe2's view: fe3 is out (as if it had not yet heard that fe3 was unblocked).
    servers[1]!.setAdminUnavailable(['fe3.contoso.com']);
  });
  after(async () => {
    await Promise.all(agents.map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
    await Promise.all(servers.map((server) => server.stop()));
  });

  function agent(aor: string, first: number): UserAgent {
    const order = [first, ...[0, 1, 2].filter((index) => index !== first)];
    const locator: Locator = {
      async discover(): Promise<Discovery> {
        return { domain: 'contoso.com', via: 'static', targets: [], steps: [], expiresAtMs: 0, endpoints: order.map((index) => ({ address: ADDRESSES[index]!, port, transport: 'tcp', host: ADDRESSES[index]! })) };
      },
      forget() {},
      async resolveHost(host: string) {
        return [ADDRESSES[SERVERS.indexOf(host.toLowerCase())]!];
      },
    };
    const ua = new UserAgent({ aor, locator, transport: 'tcp', retry: false, keepAliveIntervalMs: 600_000 });
    agents.push(ua);
    return ua;
  }

  test('fe2 → fe1 → fe3: registered at its primary after 2 redirects', async () => {
    const user = userWithSequence(['fe3.contoso.com', 'fe1.contoso.com', 'fe2.contoso.com']);
    assert.equal(homeOf(user, SERVERS, (fqdn) => servers[1]!.isAvailable(fqdn))!.server, 'fe1.contoso.com', 'fe2 believes fe1 is the home');
    assert.equal(homeOf(user, SERVERS, (fqdn) => servers[0]!.isAvailable(fqdn))!.server, 'fe3.contoso.com', 'fe1 believes fe3 is the home');
    const ua = agent(user, 1);
    const trace: string[] = [];
    ua.on('trace', (line) => trace.push(line));
    const registered = new Promise<{ server: string; mode: string; redirects: number }>((resolve) => ua.once('registered', resolve));
    await ua.start();
    const info = await registered;
    assert.equal(info.server, `${ADDRESSES[2]}:${port}`, trace.join('\n'));
    assert.equal(info.mode, 'primary');
    assert.equal(info.redirects, 2);
    // Each redirect named only other servers.
    const redirects = trace.filter((line) => / 301 /.test(line));
    assert.equal(redirects.length, 2, trace.join('\n'));
    assert.equal(servers[1]!.status().registrar.registersRedirected + servers[0]!.status().registrar.registersRedirected, 2);
  });

  test('a server never lists itself in a 301, even when it is later in the sequence and available', async () => {
    // Sequence [fe1, fe3, fe2] asked at fe3: home fe1; fe3 and fe2 are available, fe3 must not name itself.
    const user = userWithSequence(['fe1.contoso.com', 'fe3.contoso.com', 'fe2.contoso.com']);
    const client = await TestSipClient.open(ADDRESSES[2]!, port, '127.0.10.120');
    try {
      client.send([
        'REGISTER sip:contoso.com SIP/2.0',
        `Via: SIP/2.0/TCP 127.0.10.120:${client.localPort};branch=z9hG4bK-self1`,
        'Max-Forwards: 70',
        `From: <${user}>;tag=self1`,
        `To: <${user}>`,
        'Call-ID: self-1',
        'CSeq: 1 REGISTER',
        `Contact: <sip:x@127.0.10.120:${client.localPort};transport=tcp>`,
      ]);
      const answer = await client.response('self-1', 301);
      const contacts = headerValues(answer, 'Contact');
      assert.equal(contacts.length, 2, contacts.join(', '));
      assert.match(contacts[0]!, /^<sip:fe1\.contoso\.com:.*;q=0\.7$/);
      assert.match(contacts[1]!, /^<sip:fe2\.contoso\.com:/);
    } finally {
      client.close();
    }
  });
});

describe('a client follows at most 2 redirects, then tries the next address', () => {
  const ADDRESSES4 = ['127.0.14.21', '127.0.14.22', '127.0.14.23', '127.0.14.24'];
  const SERVERS4 = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com', 'fe4.contoso.com'];
  const servers: FrontEndServer[] = [];
  let ua: UserAgent | undefined;
  let port = 0;

  before(async () => {
    port = await freePortPair(ADDRESSES4);
    const topology = parse(topologyYaml(ADDRESSES4, port, 100), 'loop4.yaml');
    for (const fqdn of SERVERS4) {
      const server = new FrontEndServer({ topology, server: fqdn, tls: await serverTls(fqdn) });
      await server.start();
      servers.push(server);
    }
    await eventually(() => assert.ok(servers.every((server) => Object.values(server.status().heartbeat.peers).every((peer) => peer.state === 'active')), JSON.stringify(servers.map((server) => server.status().heartbeat.peers))), { timeoutMs: 30_000 });
    // Three views of fe3 and fe4 at once (as while an unblock spreads): fe2 has neither, fe1 has fe3 only, fe3 and fe4 have both.
    servers[1]!.setAdminUnavailable(['fe3.contoso.com', 'fe4.contoso.com']);
    servers[0]!.setAdminUnavailable(['fe4.contoso.com']);
  });
  after(async () => {
    await ua?.stop({ unregisterTimeoutMs: 200 });
    await Promise.all(servers.map((server) => server.stop()));
  });

  test('fe2 → fe1 → fe3 → (fe4 not followed): the client gives up on fe2 and registers through the next DNS address, fe4', async () => {
    let user = '';
    for (let n = 0; !user; n++) if (sequenceOf(`sip:far${n}@contoso.com`, SERVERS4).join() === ['fe4.contoso.com', 'fe3.contoso.com', 'fe1.contoso.com', 'fe2.contoso.com'].join()) user = `sip:far${n}@contoso.com`;
    const order = [1, 3, 0, 2]; // DNS gave fe2 first, then fe4
    const locator: Locator = {
      async discover(): Promise<Discovery> {
        return { domain: 'contoso.com', via: 'static', targets: [], steps: [], expiresAtMs: 0, endpoints: order.map((index) => ({ address: ADDRESSES4[index]!, port, transport: 'tcp', host: ADDRESSES4[index]! })) };
      },
      forget() {},
      async resolveHost(host: string) {
        return [ADDRESSES4[SERVERS4.indexOf(host.toLowerCase())]!];
      },
    };
    ua = new UserAgent({ aor: user, locator, transport: 'tcp', retry: false, keepAliveIntervalMs: 600_000 });
    const trace: string[] = [];
    ua.on('trace', (line) => trace.push(line));
    const registered = new Promise<{ server: string; mode: string; redirects: number }>((resolve) => ua!.once('registered', resolve));
    await ua.start();
    const info = await registered;
    const registers = trace.filter((line) => line.startsWith('REGISTER → '));
    assert.deepEqual(registers.map((line) => /REGISTER → ([0-9.]+):\d+: (\d+)/.exec(line)!.slice(1).join(' ')), [
      `${ADDRESSES4[1]} 301`, // fe2: fe3 and fe4 are out, so fe1
      `${ADDRESSES4[0]} 301`, // fe1: fe4 is out, so fe3
      `${ADDRESSES4[2]} 301`, // fe3: fe4 — a 3rd redirect, not followed
      `${ADDRESSES4[3]} 200`, // the next DNS address
    ], trace.join('\n'));
    assert.ok(trace.some((line) => /sign-in via 127\.0\.14\.22:\d+ failed: .*at most 2 are followed/.test(line)), trace.join('\n'));
    assert.equal(info.server, `${ADDRESSES4[3]}:${port}`);
    assert.equal(info.mode, 'primary');
    assert.equal(info.redirects, 0, 'registered at the next address without a redirect');
  });
});
