// Issue 14 §4: two organisations, two `dnslb up` side by side — contoso (the example, authentication on)
// and fabrikam (examples/fabrikam.yaml), each with its own data dir, store, CA, DNS server and
// addresses, each listing the other as its federation partner, trusting the other's CA for it
// (edge.federation.trustedCas) and asking the other's DNS server for _sipfederationtls._tcp. A contoso
// user's IM and call to a fabrikam user cross both edges (contoso's Edge finds fabrikam's Access Edge
// through DNS and presents its own certificate; fabrikam's Edge believes it only because that
// certificate verifies against contoso's CA and names sip.contoso.com, the target of contoso's SRV),
// and back; the calls' ACK and BYE follow both Edges' Record-Routes; a domain fabrikam does not list is
// refused with 403 and the reason. Forgeries on contoso's federation port — a From of fabrikam.com
// over a connection without a certificate, with one of fabrikam's CA naming another domain, with one
// naming sip.fabrikam.com from a CA nobody trusts for fabrikam — get 403 with the reason and reach no
// user. Counts, not timing.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { Call } from '../../src/client/call.ts';
import { syntheticPassword } from '../../src/auth/passwords.ts';
import { PoolDiscoverer } from '../../src/client/discover.ts';
import { UserAgent } from '../../src/client/user-agent.ts';
import { ensureCertificate } from '../../src/sip/certificates.ts';
import { REPO } from '../helpers/dns-process.ts';
import { hangUp, startEdgeSystem, upOrFailed, type EdgeSystem, type PoolStatusJson } from '../helpers/edge-system.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/free-port.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';
import { createTestCertificates } from '../helpers/tls-certs.ts';

const CONTOSO_NET = '127.0.153';
const OUTSIDE = '127.1.153.5';
/** Where the forged partner connections come from (outside). */
const FORGER = '127.1.153.9';
/** Fabrikam inside (127.0.17.x in the example) and its Access Edges (127.0.18.x). */
const FABRIKAM_NET = '127.0.154';
const FABRIKAM_EDGE_NET = '127.0.155';
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

interface Fabrikam {
  dataDir: string;
  dns: string;
  ca: string;
  process: Running;
  status(): Promise<PoolStatusJson>;
  stop(): Promise<void>;
}

/**
 * examples/fabrikam.yaml moved to this test's addresses, asking `contosoDns` for partners and trusting
 * contoso's CA for contoso.com, started in `dataDir` (its `up` makes its own CA there).
 */
async function startFabrikam(dataDir: string, dnsPort: number, contosoDns: string, contosoDataDir: string): Promise<Fabrikam> {
  const text = (await readFile(join(REPO, 'examples/fabrikam.yaml'), 'utf8'))
    .replaceAll('127.0.17.', `${FABRIKAM_NET}.`)
    .replaceAll('127.0.18.', `${FABRIKAM_EDGE_NET}.`)
    .replace(`"${FABRIKAM_NET}.1:5310"`, `"${FABRIKAM_NET}.1:${dnsPort}"`)
    .replace('resolver: "127.0.0.1:5300"', `resolver: "${contosoDns}"`)
    .replace('trustedCas: { contoso.com: .dnslb/tls/ca.pem }', `trustedCas: { contoso.com: "${join(contosoDataDir, 'tls', 'ca.pem')}" }`)
    // Fabrikam's users here ask from 127.0.0.1: inside.
    .replace(`clients: [${FABRIKAM_NET}.0/24]`, `clients: [${FABRIKAM_NET}.0/24, 127.0.0.1/32]`);
  if (!text.includes(`resolver: "${contosoDns}"`) || !text.includes('127.0.0.1/32') || !text.includes(contosoDataDir)) throw new Error('examples/fabrikam.yaml no longer has the lines this test edits');
  const topologyFile = join(dataDir, 'topology.yaml');
  await writeFile(topologyFile, text);
  const adminPort = await freePort('127.0.0.1');
  const running = start(process.execPath, ['bin/dnslb.js', '--data-dir', dataDir, 'up', topologyFile, '--admin-listen', `127.0.0.1:${adminPort}`], { cwd: REPO });
  await waitUntil('fabrikam: dnslb up running', () => running.output().includes('dnslb up: running'), { process: running, timeoutMs: 60_000 });
  const status = async (): Promise<PoolStatusJson> => {
    const { execFile } = await import('node:child_process');
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['bin/dnslb.js', '--data-dir', dataDir, 'pool', 'status', '--json'], { cwd: REPO }, (error, out) => (error ? reject(error) : resolve(out))),
    );
    return JSON.parse(stdout) as PoolStatusJson;
  };
  return { dataDir, dns: `${FABRIKAM_NET}.1:${dnsPort}`, ca: await readFile(join(dataDir, 'tls', 'ca.pem'), 'utf8'), process: running, status, stop: () => running.stop(10_000) };
}

/** One MESSAGE over a new TLS connection to `address:port` from FORGER (with `certificate` when given): the status line of the answer. */
async function sendOver(address: string, port: number, certificate: { cert: string; key: string } | null, from: string, to: string): Promise<string> {
  const socket = tlsConnect({ socket: tcpConnect({ host: address, port, localAddress: FORGER }), rejectUnauthorized: false, ...(certificate ?? {}) });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const callId = `forged-${Math.random().toString(36).slice(2)}@${FORGER}`;
  const body = 'hello';
  socket.write(
    [`MESSAGE ${to} SIP/2.0`, `Via: SIP/2.0/TLS ${FORGER}:5061;branch=z9hG4bK-${callId.slice(7, 15)}`, 'Max-Forwards: 70', `From: <${from}>;tag=f1`, `To: <${to}>`, `Call-ID: ${callId}`, 'CSeq: 1 MESSAGE', 'Content-Type: text/plain', `Content-Length: ${body.length}`, '', body].join('\r\n'),
  );
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  await waitUntil('an answer to the forged MESSAGE', () => /^SIP\/2\.0 [2-6]\d\d .*\r\n/m.test(received), { timeoutMs: 20_000 });
  socket.destroy();
  return received.slice(0, received.indexOf('\r\n'));
}

type FederationCounts = { inbound: number; outbound: number; refused: number; notVerified: number };
const federationOf = (status: PoolStatusJson): FederationCounts =>
  status.servers
    .filter((entry) => entry.kind === 'edge')
    .map((entry) => (entry.status?.edge as { federation?: FederationCounts } | null | undefined)?.federation ?? { inbound: 0, outbound: 0, refused: 0, notVerified: 0 })
    .reduce((sum, counts) => ({ inbound: sum.inbound + counts.inbound, outbound: sum.outbound + counts.outbound, refused: sum.refused + counts.refused, notVerified: sum.notVerified + counts.notVerified }), { inbound: 0, outbound: 0, refused: 0, notVerified: 0 });

describe('federation between two organisations (two dnslb up)', { timeout: 240_000 }, () => {
  let contoso: EdgeSystem;
  let fabrikam: Fabrikam;
  const agents: UserAgent[] = [];
  let alice: UserAgent;
  let bob: UserAgent;

  before(async () => {
    const fabrikamDnsPort = await freePort(`${FABRIKAM_NET}.1`);
    // Fabrikam's data dir first: contoso's topology names the CA file its `up` will make there.
    const fabrikamDir = await mkdtemp(join(tmpdir(), 'dnslb-fabrikam-'));
    contoso = await startEdgeSystem(CONTOSO_NET, OUTSIDE, 4, {
      edit: (text) =>
        text
          .replace('resolver: "127.0.17.1:5310"', `resolver: "${FABRIKAM_NET}.1:${fabrikamDnsPort}"`)
          .replace('trustedCas: { fabrikam.com: .dnslb-fabrikam/tls/ca.pem }', `trustedCas: { fabrikam.com: "${join(fabrikamDir, 'tls', 'ca.pem')}" }`),
    });
    fabrikam = await startFabrikam(fabrikamDir, fabrikamDnsPort, `${contoso.system.dns.address}:${contoso.system.dns.port}`, contoso.system.dataDir);
    assert.notEqual(fabrikam.ca, contoso.ca, 'each organisation has its own CA');
    alice = contoso.agent(1, 'inside');
    const resolver = new Resolver({ timeout: 2000, tries: 3 });
    resolver.setServers([fabrikam.dns]);
    bob = new UserAgent({
      aor: 'sip:bob@fabrikam.com',
      locator: new PoolDiscoverer({ dnsServers: [fabrikam.dns], resolver, transport: 'tls' }),
      transport: 'tls',
      connect: { ca: fabrikam.ca, connectTimeoutMs: 2000 },
      keepAliveIntervalMs: 600_000,
    });
    agents.push(alice, bob);
    await Promise.all(agents.map((agent) => agent.start()));
    await eventually(() => assert.deepEqual(agents.map((agent) => agent.state), ['registered', 'registered']), WAIT);
  });
  after(async () => {
    await Promise.all(agents.map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
    await fabrikam?.stop();
    await contoso?.stop();
    if (fabrikam) await rm(fabrikam.dataDir, { recursive: true, force: true });
  });

  test('an IM from a contoso user to a fabrikam user crosses both edges, and one back', async () => {
    const received: string[] = [];
    bob.on('message', ({ from, text }) => received.push(`${from} ${text}`));
    alice.on('message', ({ from, text }) => received.push(`${from} ${text}`));
    const there = await alice.message('sip:bob@fabrikam.com', 'hello fabrikam');
    assert.equal(there.status, 200, there.reason);
    const back = await bob.message('sip:user1@contoso.com', 'hello contoso');
    assert.equal(back.status, 200, back.reason);
    assert.deepEqual(received, ['sip:user1@contoso.com hello fabrikam', 'sip:bob@fabrikam.com hello contoso']);
    const contosoEdges = federationOf(await contoso.poolStatus());
    const fabrikamEdges = federationOf(await fabrikam.status());
    assert.deepEqual([contosoEdges.outbound, contosoEdges.inbound, contosoEdges.notVerified], [1, 1, 0], JSON.stringify(contosoEdges));
    assert.deepEqual([fabrikamEdges.outbound, fabrikamEdges.inbound, fabrikamEdges.notVerified], [1, 1, 0], JSON.stringify(fabrikamEdges));
  });

  test('calls between a contoso user and a fabrikam user, both ways, come up across both edges and end with 200 to the BYE, from either side', async () => {
    const there = alice.call('sip:bob@fabrikam.com');
    await upOrFailed(there);
    assert.equal(await hangUp(there), 200);
    const back = bob.call('sip:user1@contoso.com');
    await upOrFailed(back);
    assert.equal(await hangUp(back), 200);
    // The callee hangs up: its BYE goes back out through both Edges the other way.
    const third = alice.call('sip:bob@fabrikam.com');
    const incoming = new Promise<Call>((resolve) => bob.once('incomingCall', resolve));
    await upOrFailed(third);
    const bobSide = await incoming;
    await upOrFailed(bobSide);
    assert.equal(await hangUp(bobSide), 200);
  });

  test('a re-INVITE in a federation call, from either side, crosses both edges along the route set and gets 200', async () => {
    const call = alice.call('sip:bob@fabrikam.com');
    const incoming = new Promise<Call>((resolve) => bob.once('incomingCall', resolve));
    await upOrFailed(call);
    const bobSide = await incoming;
    await upOrFailed(bobSide);
    assert.equal(await call.reinvite(), 200, 'contoso → fabrikam');
    assert.equal(await bobSide.reinvite(), 200, 'fabrikam → contoso');
    assert.equal(call.state, 'up');
    assert.equal(await hangUp(call), 200);
  });

  test('a remote contoso user (through an Access Edge) calls a fabrikam user: each call goes Edge → Director → an Edge out, the same one about half the time, and all come up', async () => {
    const carol = contoso.agent(3, 'outside');
    agents.push(carol);
    await carol.start();
    await eventually(() => assert.equal(carol.state, 'registered'), WAIT);
    // Ten calls, ten Call-IDs: the Director picks the Edge out by the Call-ID's hash, so some go back
    // out through the Edge they came in by (a spiral, not a loop: 482 there was the defect).
    for (let n = 0; n < 10; n++) {
      const call = carol.call('sip:bob@fabrikam.com');
      await upOrFailed(call);
      assert.equal(await hangUp(call), 200, `call ${n}`);
    }
  });

  test('the README step: `client register --call` signs a contoso user in and calls the fabrikam user across both Edges', async () => {
    const passwordFile = join(contoso.system.dataDir, 'user2.password');
    await writeFile(passwordFile, `${syntheticPassword('edge-test-seed', 'sip:user2@contoso.com')}\n`);
    const run = await contoso.system.cli(
      'client', 'register', '--uri', 'sip:user2@contoso.com', '--dns', `${contoso.system.dns.address}:${contoso.system.dns.port}`, '--ca', join(contoso.system.dataDir, 'tls', 'ca.pem'),
      '--no-autodiscover', '--password-file', passwordFile, '--call', 'sip:bob@fabrikam.com',
    );
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    assert.match(run.stdout, /registered at /);
    assert.match(run.stdout, /call to sip:bob@fabrikam\.com: up/);
    assert.match(run.stdout, /call to sip:bob@fabrikam\.com: hung up \(BYE 200\)/);
  });

  test('a domain the organisation does not list is refused with 403 and the reason, before any DNS question', async () => {
    const refused = await bob.message('sip:eve@litware.com', 'hello?');
    assert.deepEqual(refused, { status: 403, reason: 'litware.com is not a federation partner of fabrikam.com' });
  });

  test('forged partner connections on contoso\'s federation port: 403 with the reason, nothing reaches the user', async () => {
    const received: string[] = [];
    const onMessage = ({ from }: { from: string }): void => void received.push(from);
    alice.on('message', onMessage);
    // Certificates made by fabrikam's own CA (trusted for fabrikam.com) and by a CA nobody trusts.
    const forgeDir = await mkdtemp(join(tmpdir(), 'dnslb-forge-'));
    for (const file of ['ca.pem', 'ca.key']) await copyFile(join(fabrikam.dataDir, 'tls', file), join(forgeDir, file));
    const litwareFiles = await ensureCertificate(forgeDir, 'litware', { names: ['sip.litware.com'], ips: [], days: 1 });
    const litware = { cert: await readFile(litwareFiles.certFile, 'utf8'), key: await readFile(litwareFiles.keyFile, 'utf8') };
    const stranger = await createTestCertificates({ names: ['sip.fabrikam.com'], ips: [] });
    const edge1 = `${CONTOSO_NET}.51`;
    const before = federationOf(await contoso.poolStatus());
    try {
      const noCertificate = await sendOver(edge1, 5061, null, 'sip:bob@fabrikam.com', 'sip:user1@contoso.com');
      assert.match(noCertificate, /^SIP\/2\.0 403 Not fabrikam\.com's Access Edge: the connection presented no certificate/);
      const otherDomain = await sendOver(edge1, 5061, litware, 'sip:bob@fabrikam.com', 'sip:user1@contoso.com');
      assert.match(otherDomain, /^SIP\/2\.0 403 Not fabrikam\.com's Access Edge: its certificate names sip\.litware\.com, not the Access Edge sip\.fabrikam\.com that _sipfederationtls\._tcp\.fabrikam\.com names$/);
      const untrusted = await sendOver(edge1, 5061, { cert: stranger.cert, key: stranger.key }, 'sip:bob@fabrikam.com', 'sip:user1@contoso.com');
      assert.match(untrusted, /^SIP\/2\.0 403 Not fabrikam\.com's Access Edge: certificate .* does not verify against the CAs trusted for this partner/);
    } finally {
      alice.off('message', onMessage);
      await rm(forgeDir, { recursive: true, force: true });
      await stranger.cleanup();
    }
    const after = federationOf(await contoso.poolStatus());
    assert.deepEqual([after.notVerified - before.notVerified, after.inbound - before.inbound], [3, 0]);
    assert.deepEqual(received, [], 'no forged IM reached the user');
  });
});
