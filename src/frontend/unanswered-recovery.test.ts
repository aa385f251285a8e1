// A user taken in backup mode on its client's word must come home when its home is back (found with
// frontend-failover's recovery): three Front End servers in this process on 127.0.66.41-43, heartbeat
// 250 ms, 60 real UserAgents; fe1 stops, its users' flows reset and they sign in elsewhere naming fe1
// as unanswered — the backup takes them before its heartbeat has found fe1 down, and their reg
// SUBSCRIBE right after must be taken too (it was 301, so the `deactivated` of the hand-over never
// reached them and they stayed in backup mode); a new fe1 starts: every one of them is back at fe1 in
// primary mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrontEndServer } from './server.ts';
import { parse } from '../topology/parse.ts';
import { UserAgent, type Locator } from '../client/user-agent.ts';
import type { Discovery } from '../client/discover.ts';
import { freePortPair, topologyYaml } from '../../test/helpers/frontend-pool.ts';
import { waitUntil } from '../../test/helpers/process.ts';
import { serverTls } from '../../test/helpers/tls-certs.ts';

const ADDRESSES = ['127.0.66.41', '127.0.66.42', '127.0.66.43'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];

test('users taken in backup mode on their client\'s word go home when it is back (their reg subscription is held where they are)', { timeout: 120_000 }, async () => {
  const port = await freePortPair(ADDRESSES);
  const topology = parse(topologyYaml(ADDRESSES, port, 250, '', '  rehome: { batchSize: 10, intervalMs: 500 }'), 'r.yaml');
  const servers: FrontEndServer[] = [];
  for (const fqdn of SERVERS) { const s = new FrontEndServer({ topology, server: fqdn, tls: await serverTls(fqdn) }); await s.start(); servers.push(s); }
  const traces = new Map<UserAgent, string[]>();
  const agents: UserAgent[] = [];
  for (let n = 0; n < 60; n++) {
    const rotation = ADDRESSES.map((_, k) => ADDRESSES[(n + k) % 3]!);
    const locator: Locator = {
      async discover(): Promise<Discovery> { return { domain: 'contoso.com', via: 'static', targets: [], steps: [], expiresAtMs: 0, endpoints: rotation.map((address) => ({ address, port, transport: 'tcp', host: address })) }; },
      forget() {},
      async resolveHost(host: string) { return [ADDRESSES[SERVERS.indexOf(host.toLowerCase())]!]; },
    };
    const agent = new UserAgent({ aor: `sip:user${n}@contoso.com`, locator, transport: 'tcp', keepAliveIntervalMs: 600_000, backoffBaseMs: 300, backoffMaxMs: 2000, connect: { connectTimeoutMs: 1000 } });
    const t: string[] = []; traces.set(agent, t); agent.on('trace', (line: string) => { t.push(`${Date.now() % 100000} ${line}`); if (t.length > 40) t.shift(); });
    agents.push(agent);
  }
  await Promise.all(agents.map((a) => a.start()));
  const at = (a: UserAgent) => (a.state === 'registered' && a.server ? ADDRESSES.indexOf(a.server.split(':')[0]!) : -1);
  await waitUntil('all primary', () => agents.every((a) => a.registrarMode === 'primary'));
  const orphans = agents.filter((a) => at(a) === 0);
  await servers[0]!.stop();
  await waitUntil('orphans elsewhere', () => orphans.every((a) => at(a) > 0));
  assert.ok(orphans.length > 5 && orphans.every((a) => a.registrarMode === 'backup'), `${orphans.length} orphans, all in backup mode`);
  const again = new FrontEndServer({ topology, server: SERVERS[0]!, tls: await serverTls(SERVERS[0]!) });
  await again.start();
  try {
    await waitUntil('orphans back', () => orphans.every((a) => at(a) === 0 && a.registrarMode === 'primary'), { timeoutMs: 20_000 });
  } catch (error) {
    for (const a of orphans.filter((o) => !(at(o) === 0 && o.registrarMode === 'primary')).slice(0, 2)) console.log(a.aor, a.state, a.server, a.registrarMode, '\n  ' + traces.get(a)!.join('\n  '));
    console.log(JSON.stringify(servers[1]!.status().resilience?.handover ?? {}).slice(0, 600));
    throw error;
  } finally {
    await Promise.all(agents.map((a) => a.stop({ unregisterTimeoutMs: 100 })));
    await Promise.all([again, servers[1]!, servers[2]!].map((s) => s.stop()));
  }
});
