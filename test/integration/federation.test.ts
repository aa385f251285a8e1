// Issue 14 §4: two organisations, two `dnslb up` side by side — contoso (the example, authentication on)
// and fabrikam (examples/fabrikam.yaml), each with its own data dir, store, DNS server and addresses,
// each listing the other as its federation partner and asking the other's DNS server for
// _sipfederationtls._tcp. A contoso user's IM and call to a fabrikam user cross both edges (contoso's
// Edge finds fabrikam's Access Edge through DNS, fabrikam's Edge relays inward to the user's home), and
// back; the calls' ACK and BYE follow both Edges' Record-Routes; a domain fabrikam does not list is
// refused with 403 and the reason. The two share one CA so that
// each trusts the other's Access Edge certificate (on the Internet: public CAs). Counts, not timing.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, test } from 'node:test';
import type { Call } from '../../src/client/call.ts';
import { PoolDiscoverer } from '../../src/client/discover.ts';
import { UserAgent } from '../../src/client/user-agent.ts';
import { REPO } from '../helpers/dns-process.ts';
import { startEdgeSystem, type EdgeSystem, type PoolStatusJson } from '../helpers/edge-system.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/free-port.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';

const CONTOSO_NET = '127.0.153';
const OUTSIDE = '127.1.153.5';
/** Fabrikam inside (127.0.17.x in the example) and its Access Edges (127.0.18.x). */
const FABRIKAM_NET = '127.0.154';
const FABRIKAM_EDGE_NET = '127.0.155';
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

interface Fabrikam {
  dataDir: string;
  dns: string;
  process: Running;
  status(): Promise<PoolStatusJson>;
  stop(): Promise<void>;
}

/** examples/fabrikam.yaml moved to this test's addresses, asking `contosoDns` for partners, started with contoso's CA. */
async function startFabrikam(dnsPort: number, contosoDns: string, contosoDataDir: string): Promise<Fabrikam> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-fabrikam-'));
  const text = (await readFile(join(REPO, 'examples/fabrikam.yaml'), 'utf8'))
    .replaceAll('127.0.17.', `${FABRIKAM_NET}.`)
    .replaceAll('127.0.18.', `${FABRIKAM_EDGE_NET}.`)
    .replace(`"${FABRIKAM_NET}.1:5310"`, `"${FABRIKAM_NET}.1:${dnsPort}"`)
    .replace('resolver: "127.0.0.1:5300"', `resolver: "${contosoDns}"`)
    // Fabrikam's users here ask from 127.0.0.1: inside.
    .replace(`clients: [${FABRIKAM_NET}.0/24]`, `clients: [${FABRIKAM_NET}.0/24, 127.0.0.1/32]`);
  if (!text.includes(`resolver: "${contosoDns}"`) || !text.includes('127.0.0.1/32')) throw new Error('examples/fabrikam.yaml no longer has the lines this test edits');
  const topologyFile = join(dataDir, 'topology.yaml');
  await writeFile(topologyFile, text);
  // One CA for both organisations: fabrikam's `up` keeps the CA it finds in its data dir.
  await mkdir(join(dataDir, 'tls'), { recursive: true, mode: 0o700 });
  for (const file of ['ca.pem', 'ca.key']) await copyFile(join(contosoDataDir, 'tls', file), join(dataDir, 'tls', file));
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
  return { dataDir, dns: `${FABRIKAM_NET}.1:${dnsPort}`, process: running, status, stop: () => running.stop(10_000) };
}

function upOrFailed(call: Call): Promise<void> {
  if (call.state === 'up') return Promise.resolve();
  return new Promise((resolve, reject) => {
    call.once('up', () => resolve());
    call.once('ended', (end) => reject(new Error(`call to ${call.remoteUri} ended: ${end.how} ${end.status ?? ''} ${end.detail ?? ''}`)));
  });
}

function hangUp(call: Call): Promise<number | null> {
  return new Promise((resolve) => {
    call.once('byeAnswered', (status) => resolve(status));
    call.hangUp();
  });
}

type FederationCounts = { inbound: number; outbound: number; refused: number };
const federationOf = (status: PoolStatusJson): FederationCounts =>
  status.servers
    .filter((entry) => entry.kind === 'edge')
    .map((entry) => (entry.status?.edge as { federation?: FederationCounts } | null | undefined)?.federation ?? { inbound: 0, outbound: 0, refused: 0 })
    .reduce((sum, counts) => ({ inbound: sum.inbound + counts.inbound, outbound: sum.outbound + counts.outbound, refused: sum.refused + counts.refused }), { inbound: 0, outbound: 0, refused: 0 });

describe('federation between two organisations (two dnslb up)', { timeout: 240_000 }, () => {
  let contoso: EdgeSystem;
  let fabrikam: Fabrikam;
  const agents: UserAgent[] = [];
  let alice: UserAgent;
  let bob: UserAgent;

  before(async () => {
    const fabrikamDnsPort = await freePort(`${FABRIKAM_NET}.1`);
    contoso = await startEdgeSystem(CONTOSO_NET, OUTSIDE, 4, { edit: (text) => text.replace('resolver: "127.0.17.1:5310"', `resolver: "${FABRIKAM_NET}.1:${fabrikamDnsPort}"`) });
    fabrikam = await startFabrikam(fabrikamDnsPort, `${contoso.system.dns.address}:${contoso.system.dns.port}`, contoso.system.dataDir);
    alice = contoso.agent(1, 'inside');
    const resolver = new Resolver({ timeout: 2000, tries: 3 });
    resolver.setServers([fabrikam.dns]);
    bob = new UserAgent({
      aor: 'sip:bob@fabrikam.com',
      locator: new PoolDiscoverer({ dnsServers: [fabrikam.dns], resolver, transport: 'tls' }),
      transport: 'tls',
      connect: { ca: contoso.ca, connectTimeoutMs: 2000 },
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
    assert.deepEqual([contosoEdges.outbound, contosoEdges.inbound], [1, 1], JSON.stringify(contosoEdges));
    assert.deepEqual([fabrikamEdges.outbound, fabrikamEdges.inbound], [1, 1], JSON.stringify(fabrikamEdges));
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

  test('a domain the organisation does not list is refused with 403 and the reason, before any DNS question', async () => {
    const refused = await bob.message('sip:eve@litware.com', 'hello?');
    assert.deepEqual(refused, { status: 403, reason: 'litware.com is not a federation partner of fabrikam.com' });
  });
});
