// Front End server metrics from two real servers in this process (127.0.31.11-12, real SIP over
// TCP): a REGISTER at the home shows in bindings and the 2xx class, one at the other server in 3xx,
// each server sees its peer `active` (1) and no other state, and the exposition text is valid.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FrontEndServer } from '../frontend/server.ts';
import { homeOf } from '../registrar/sequence.ts';
import { parse } from '../topology/parse.ts';
import { eventually } from '../../test/helpers/eventually.ts';
import { freePortPair, topologyYaml } from '../../test/helpers/frontend-pool.ts';
import { parsePrometheusText, sampleValue, type Family } from '../../test/helpers/prom-text.ts';
import { TestSipClient } from '../../test/helpers/sip-client.ts';
import { registerFrontendMetrics } from './frontend-metrics.ts';
import { createRegistry, type Registry } from './metrics.ts';
import { serverTls } from '../../test/helpers/tls-certs.ts';

const ADDRESSES = ['127.0.31.11', '127.0.31.12'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com'];
const CLIENT = '127.0.31.100';

function userHomedAt(server: string): string {
  for (let n = 0; ; n++) {
    const user = `sip:metrics${n}@contoso.com`;
    if (homeOf(user, SERVERS, new Set(SERVERS))!.server === server) return user;
  }
}

let sequence = 0;
async function register(client: TestSipClient, user: string): Promise<number> {
  const n = ++sequence;
  client.send([
    'REGISTER sip:contoso.com SIP/2.0',
    `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-m${n}`,
    'Max-Forwards: 70',
    `From: <${user}>;tag=m${n}`,
    `To: <${user}>`,
    `Call-ID: metrics-${n}`,
    `CSeq: ${n} REGISTER`,
    `Contact: <${user.replace('@contoso.com', `@${CLIENT}:${client.localPort}`)};transport=tcp>`,
    'Expires: 600',
  ]);
  return (await client.response(`metrics-${n}`)).status;
}

describe('Front End server metrics', () => {
  const servers: FrontEndServer[] = [];
  const registries: Registry[] = [];
  const clients: TestSipClient[] = [];
  let port = 0;
  const scrape = async (index: number): Promise<Map<string, Family>> => parsePrometheusText(await registries[index]!.metrics());

  before(async () => {
    port = await freePortPair(ADDRESSES);
    const topology = parse(topologyYaml(ADDRESSES, port, 100), 'metrics.yaml');
    for (const fqdn of SERVERS) {
      const server = new FrontEndServer({ topology, topologyVersion: 3, server: fqdn, tls: await serverTls(fqdn) });
      await server.start();
      servers.push(server);
      const registry = createRegistry();
      registerFrontendMetrics(registry, server);
      registries.push(registry);
    }
    await eventually(() => assert.ok(servers.every((server) => Object.values(server.status().heartbeat.peers).every((peer) => peer.state === 'active'))));
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.stop()));
  });

  test('before any REGISTER: no bindings, who this server is, its peer active', async () => {
    const families = await scrape(0);
    assert.equal(sampleValue(families, 'dnslb_registrar_users'), 0);
    assert.equal(sampleValue(families, 'dnslb_registrar_bindings', { mode: 'primary' }), 0);
    assert.equal(sampleValue(families, 'dnslb_frontend_info', { server: 'fe1.contoso.com', pool: 'pool01.contoso.com' }), 1);
    assert.equal(sampleValue(families, 'dnslb_frontend_topology_version'), 3);
    assert.equal(sampleValue(families, 'dnslb_frontend_state', { state: 'active' }), 1);
    assert.equal(sampleValue(families, 'dnslb_frontend_state', { state: 'draining' }), 0);
    assert.equal(sampleValue(families, 'dnslb_frontend_admin_state', { state: 'active' }), 1);
    assert.equal(sampleValue(families, 'dnslb_frontend_accepting_connections'), 1);
    assert.equal(sampleValue(families, 'dnslb_frontend_available_servers'), 2);
    // One sample per (peer, state): 1 for active, 0 for the five others; no sample about itself.
    const peerStates = families.get('dnslb_heartbeat_peer_state')!.samples;
    assert.equal(peerStates.length, 6);
    assert.ok(peerStates.every((sample) => sample.labels['peer'] === 'fe2.contoso.com'));
    assert.deepEqual(peerStates.filter((sample) => sample.value === 1).map((sample) => sample.labels['state']), ['active']);
  });

  test('a REGISTER at the home: bindings 1 (primary), 2xx 1; one at the other server: 3xx 1 there', async () => {
    const user = userHomedAt('fe1.contoso.com');
    const atHome = await TestSipClient.open(ADDRESSES[0]!, port, CLIENT);
    const elsewhere = await TestSipClient.open(ADDRESSES[1]!, port, CLIENT);
    clients.push(atHome, elsewhere);
    assert.equal(await register(elsewhere, user), 301);
    assert.equal(await register(atHome, user), 200);
    const fe1 = await scrape(0);
    assert.equal(sampleValue(fe1, 'dnslb_registrar_users'), 1);
    assert.equal(sampleValue(fe1, 'dnslb_registrar_bindings', { mode: 'primary' }), 1);
    assert.equal(sampleValue(fe1, 'dnslb_registrar_bindings', { mode: 'backup' }), 0);
    assert.equal(sampleValue(fe1, 'dnslb_registrar_register_answers_total', { class: '2xx' }), 1);
    assert.equal(sampleValue(fe1, 'dnslb_registrar_register_answers_total', { class: '3xx' }), 0);
    const fe2 = await scrape(1);
    assert.equal(sampleValue(fe2, 'dnslb_registrar_register_answers_total', { class: '3xx' }), 1);
    assert.equal(sampleValue(fe2, 'dnslb_registrar_users'), 0);
    assert.ok(sampleValue(fe2, 'dnslb_sip_messages_received_total') >= 1);
  });

  test('every family is named dnslb_…, typed, helped; counters end in _total', async () => {
    for (const family of (await scrape(0)).values()) {
      assert.ok(family.name.startsWith('dnslb_'), family.name);
      assert.notEqual(family.help, '', family.name);
      assert.notEqual(family.type, 'untyped', family.name);
      if (family.type === 'counter') assert.ok(family.name.endsWith('_total'), family.name);
    }
  });
});
