// Prometheus metrics of real processes scraped over real HTTP: `dnslb dns serve --metrics-listen`
// after dig queries (a name that exists, one that does not, one over TCP) and a malformed packet;
// `dnslb server --admin-listen` after a REGISTER; `dnslb up`'s supervisor (127.0.31.x: the example
// topology's addresses under up, .200 and above for the others).
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../helpers/eventually.ts';
import { dig, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { parsePrometheusText, sampleValue, type Family } from '../helpers/prom-text.ts';
import { TestSipClient } from '../helpers/sip-client.ts';
import { startUp, type UpSystem } from '../helpers/up.ts';

const DNS_ADDRESS = '127.0.31.200';
const WORKERS_ADDRESS = '127.0.31.202';
const FRONTEND_ADDRESS = '127.0.31.201';
const CLIENT = '127.0.31.230';

async function scrape(url: string, token?: string): Promise<Map<string, Family>> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  assert.equal(response.status, 200, await response.clone().text());
  assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(await response.text());
}

/** One UDP datagram out, the answer back (or a timeout). */
async function exchange(address: string, port: number, packet: Buffer): Promise<Buffer> {
  const socket = createSocket('udp4');
  try {
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    socket.send(packet, port, address);
    const [answer] = (await Promise.race([once(socket, 'message'), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), 5000))])) as [Buffer];
    return answer;
  } finally {
    socket.close();
  }
}

describe('dns serve --metrics-listen', () => {
  let dns: RunningDns;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', `${DNS_ADDRESS}:0`, '--metrics-listen', `${DNS_ADDRESS}:0`]);
  });
  after(() => dns.stop());

  test('the listening line keeps its parts and ends with the metrics URL', () => {
    assert.equal(dns.address, DNS_ADDRESS);
    assert.match(dns.metricsUrl ?? '', /^http:\/\/127\.0\.31\.200:\d+\/metrics$/);
  });

  test('counters reflect the queries sent; the serial gauge is the SOA serial dig sees', async () => {
    const before = await scrape(dns.metricsUrl!);
    const queriesBefore = sampleValue(before, 'dnslb_dns_queries_total');
    const tcpBefore = sampleValue(before, 'dnslb_dns_tcp_connections_accepted_total');

    assert.equal((await dig(dns, ['pool01.contoso.com', 'A'])).status, 'NOERROR');
    assert.equal((await dig(dns, ['nothing-here.contoso.com', 'A'])).status, 'NXDOMAIN');
    const soa = await dig(dns, ['contoso.com', 'SOA']);
    assert.equal(soa.status, 'NOERROR');
    assert.equal((await dig(dns, ['+tcp', 'pool01.contoso.com', 'A'])).status, 'NOERROR');
    // A header with QDCOUNT 0 (RFC 1035 §4.1.1: a query carries one question): FORMERR.
    const malformed = Buffer.from([0xbe, 0xef, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    const answer = await exchange(dns.address, dns.port, malformed);
    assert.equal(answer.readUInt16BE(0), 0xbeef);
    assert.equal(answer[3]! & 0x0f, 1, 'RCODE FORMERR');

    const after = await scrape(dns.metricsUrl!);
    assert.ok(sampleValue(after, 'dnslb_dns_queries_total') >= queriesBefore + 5, 'four dig queries and the malformed packet');
    assert.ok(sampleValue(after, 'dnslb_dns_format_errors_total') >= 1);
    assert.ok(sampleValue(after, 'dnslb_dns_tcp_connections_accepted_total') >= tcpBefore + 1);
    assert.equal(sampleValue(after, 'dnslb_dns_server_failures_total'), 0);
    const serial = Number(soa.answer[0]!.data.split(' ')[2]);
    assert.ok(serial > 0);
    assert.equal(sampleValue(after, 'dnslb_dns_zone_serial', { zone: 'contoso.com' }), serial);
    const engine = / udp-engine (\w+)/.exec(dns.line)![1]!;
    assert.deepEqual(after.get('dnslb_dns_udp_engine_info')!.samples, [{ name: 'dnslb_dns_udp_engine_info', labels: { engine }, value: 1 }]);
    assert.ok(sampleValue(after, 'dnslb_process_resident_memory_bytes') > 0);
  });

  test('only GET /metrics, and no token needed', async () => {
    assert.equal((await fetch(dns.metricsUrl!.replace(/\/metrics$/, '/'))).status, 404);
    assert.equal((await fetch(dns.metricsUrl!, { method: 'DELETE' })).status, 405);
  });
});

describe('dns serve --workers 2 --metrics-listen: the primary sums what its workers count', () => {
  let dns: RunningDns;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', `${WORKERS_ADDRESS}:0`, '--workers', '2', '--metrics-listen', `${WORKERS_ADDRESS}:0`]);
  });
  after(() => dns.stop());

  test('queries from several sources (spread over both workers by the kernel) all counted', async () => {
    const sent = 8;
    // Distinct source addresses (the external view: SOA is in every view): with SO_REUSEPORT the
    // kernel picks the worker by the source.
    for (let i = 0; i < sent; i++) assert.equal((await dig(dns, ['contoso.com', 'SOA'], `127.0.31.${240 + i}`)).status, 'NOERROR');
    // Workers report once a second: wait for the sum rather than assume when it lands.
    await eventually(async () => {
      const counted = sampleValue(await scrape(dns.metricsUrl!), 'dnslb_dns_queries_total');
      assert.ok(counted >= sent, `${counted} of ${sent} queries counted; dns stderr: ${dns.stderr()}`);
    }, { intervalMs: 200 });
    const families = await scrape(dns.metricsUrl!);
    assert.equal(sampleValue(families, 'dnslb_dns_workers'), 2);
    assert.ok(sampleValue(families, 'dnslb_dns_zone_serial', { zone: 'contoso.com' }) > 0);
  });
});

describe('dnslb server: GET /metrics on the admin API', () => {
  let pool: RunningPool;
  let token = '';
  before(async () => {
    pool = await startPool({ addresses: [FRONTEND_ADDRESS] });
    token = readFileSync(join(pool.dir, 'admin-token'), 'utf8').trim();
  });
  after(() => pool.stop());

  test('needs the bearer token as every admin route', async () => {
    assert.equal((await fetch(`${pool.servers[0]!.adminUrl}/metrics`)).status, 401);
  });

  test('after one REGISTER: one user, one primary binding, one 2xx answer', async () => {
    const url = `${pool.servers[0]!.adminUrl}/metrics`;
    const before = await scrape(url, token);
    assert.equal(sampleValue(before, 'dnslb_registrar_bindings', { mode: 'primary' }), 0);
    const client = await TestSipClient.open(FRONTEND_ADDRESS, pool.tcpPort, CLIENT);
    try {
      const user = 'sip:alice@contoso.com';
      client.send([
        'REGISTER sip:contoso.com SIP/2.0',
        `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-metrics1`,
        'Max-Forwards: 70',
        `From: <${user}>;tag=m1`,
        `To: <${user}>`,
        'Call-ID: metrics-integration-1',
        'CSeq: 1 REGISTER',
        `Contact: <sip:alice@${CLIENT}:${client.localPort};transport=tcp>`,
        'Expires: 600',
      ]);
      assert.equal((await client.response('metrics-integration-1')).status, 200);
      const families = await scrape(url, token);
      assert.equal(sampleValue(families, 'dnslb_registrar_users'), 1);
      assert.equal(sampleValue(families, 'dnslb_registrar_bindings', { mode: 'primary' }), 1);
      assert.equal(sampleValue(families, 'dnslb_registrar_register_answers_total', { class: '2xx' }), 1);
      assert.equal(sampleValue(families, 'dnslb_frontend_info', { server: 'fe1.contoso.com' }), 1);
      assert.ok(sampleValue(families, 'dnslb_sip_connections_accepted_total') >= 1);
    } finally {
      client.close();
    }
  });
});

describe('dnslb up: GET /metrics on the pool admin API', () => {
  let up: UpSystem;
  before(async () => {
    up = await startUp('127.0.31');
  });
  after(() => up.stop());

  test('every child running, none restarted; the token is needed', async () => {
    const { url } = JSON.parse(await readFile(join(up.dataDir, 'admin.json'), 'utf8')) as { url: string };
    const token = (await readFile(join(up.dataDir, 'admin-token'), 'utf8')).trim();
    assert.equal((await fetch(`${url}/metrics`)).status, 401);
    const families = await scrape(`${url}/metrics`, token);
    const children = new Set(families.get('dnslb_supervisor_child_restarts_total')!.samples.map((sample) => sample.labels['child']));
    assert.ok(children.has('dns') && children.has('fe1.contoso.com'), [...children].join(' '));
    assert.equal(sampleValue(families, 'dnslb_supervisor_children', { state: 'running' }), children.size);
    assert.equal(sampleValue(families, 'dnslb_supervisor_child_state', { child: 'dns', state: 'running' }), 1);
    assert.equal(sampleValue(families, 'dnslb_supervisor_child_restarts_total', { child: 'fe1.contoso.com' }), 0);
  });
});
