// The Web services of one server over real HTTPS (port 0 on 127.0.0.1): the autodiscover document,
// the health endpoint in every state, bad requests, and the per-site counters.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createTestCertificates, type TestCertificates } from '../../test/helpers/tls-certs.ts';
import { parse } from '../topology/parse.ts';
import type { Topology } from '../topology/schema.ts';
import { AUTODISCOVER_PATH, autodiscoverDocument, domainOfRequest, type AutodiscoverDocument } from './autodiscover.ts';
import type { WebServerState } from './health.ts';
import { WebServices } from './web-services.ts';

const EXAMPLE = new URL('../../examples/contoso.yaml', import.meta.url);

async function exampleWithFe1At(address: string): Promise<Topology> {
  return parse((await readFile(EXAMPLE, 'utf8')).replace('ipv4: 127.0.0.11 }', `ipv4: ${address} }`), 'contoso.yaml');
}

function get(port: number, path: string, options: { ca: string; host: string; method?: string }): Promise<{ statusCode: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', ca: options.ca, servername: options.host, headers: { host: options.host, connection: 'keep-alive' }, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, body }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe('autodiscover document', () => {
  test('internal, on Lync\'s ports (443): the pool\'s SIP access, the Access Edge, both Web sites, and who answered', async () => {
    // The example as its comments say to run it as root: without its Web services' port and serverPort
    // fields, and without the Access Edge's port (Lync's 443).
    const topology = parse((await readFile(EXAMPLE, 'utf8')).replace(/, port: \d+, serverPort: \d+ \}/g, ' }').replace('port: 4443, federationPort', 'federationPort'), 'contoso.yaml');
    const pool = topology.pools[0]!;
    const document = autodiscoverDocument({ topology, pool, server: 'fe2.contoso.com', side: 'internal', domain: 'contoso.com' });
    assert.equal(document.AccessLocation, 'Internal');
    assert.deepEqual(document.SipClientInternalAccess, { fqdn: 'pool01.contoso.com', port: 5061 });
    assert.deepEqual(document.SipClientExternalAccess, { fqdn: 'sip.contoso.com', port: 443 });
    assert.deepEqual(document.SipServerExternalAccess, { fqdn: 'sip.contoso.com', port: 5061 });
    assert.deepEqual(document.SipAccess.map((access) => access.transport), ['tls', 'tcp']);
    assert.equal(document._links['self']?.href, `https://lyncdiscoverinternal.contoso.com${AUTODISCOVER_PATH}?originalDomain=contoso.com`);
    assert.equal(document._links['external/webservices']?.href, 'https://webext.contoso.com/');
    assert.equal(document.Server, 'fe2.contoso.com');
  });
  test('external, on a VIP port other than 443 (the example\'s 4443): the port is in the links', async () => {
    const topology = parse(await readFile(EXAMPLE, 'utf8'), 'contoso.yaml');
    const document = autodiscoverDocument({ topology, pool: topology.pools[0]!, server: 'fe1.contoso.com', side: 'external', domain: 'contoso.com' });
    assert.equal(document.AccessLocation, 'External');
    assert.equal(document._links['self']?.href, `https://lyncdiscover.contoso.com:4443${AUTODISCOVER_PATH}?originalDomain=contoso.com`);
    assert.equal(document._links['internal/webservices']?.href, 'https://webint.contoso.com:8443/');
  });
  test('the domain comes from originalDomain, else from the lyncdiscover host name', async () => {
    const topology = await exampleWithFe1At('127.0.0.11');
    assert.equal(domainOfRequest(topology, 'lyncdiscoverinternal.CONTOSO.com:443', null), 'contoso.com');
    assert.equal(domainOfRequest(topology, 'webint.contoso.com', 'contoso.com'), 'contoso.com');
    assert.equal(domainOfRequest(topology, '127.0.0.21', null), 'contoso.com', 'an address: the first SIP domain');
    assert.equal(domainOfRequest(topology, 'lyncdiscover.contoso.com', 'fabrikam.com'), undefined);
  });
});

describe('WebServices over HTTPS', () => {
  let certificates: TestCertificates;
  let web: WebServices;
  let state: WebServerState = 'active';
  let ports: { internal: number; external: number };
  const host = 'lyncdiscoverinternal.contoso.com';

  before(async () => {
    certificates = await createTestCertificates({ names: ['fe1.contoso.com', host, 'lyncdiscover.contoso.com'], ips: ['127.0.0.1'] });
    web = new WebServices({ topology: await exampleWithFe1At('127.0.0.1'), server: 'FE1.contoso.com', tls: certificates, state: () => state, ports: { internal: 0, external: 0 } });
    const listening = await web.start();
    ports = { internal: Number(listening.internal?.split(':')[1]), external: Number(listening.external?.split(':')[1]) };
  });
  after(async () => {
    await web?.stop();
    await certificates?.cleanup();
  });

  test('GET the autodiscover root on each site', async () => {
    const internal = await get(ports.internal, `${AUTODISCOVER_PATH}?originalDomain=contoso.com`, { ca: certificates.ca, host });
    assert.equal(internal.statusCode, 200);
    assert.match(String(internal.headers['content-type']), /^application\/json/);
    const document = JSON.parse(internal.body) as AutodiscoverDocument;
    assert.equal(document.Server, 'fe1.contoso.com');
    assert.equal(document.AccessLocation, 'Internal');
    const external = JSON.parse((await get(ports.external, AUTODISCOVER_PATH.toUpperCase(), { ca: certificates.ca, host: 'lyncdiscover.contoso.com' })).body) as AutodiscoverDocument;
    assert.equal(external.AccessLocation, 'External');
  });

  test('the health endpoint says the state: 200 while serving, 503 once drained or blocked, Connection: close unless active', async () => {
    const seen: [WebServerState, number, string, unknown][] = [];
    for (const each of ['active', 'draining', 'drained', 'blocked'] as const) {
      state = each;
      const answer = await get(ports.internal, '/health', { ca: certificates.ca, host });
      seen.push([each, answer.statusCode, (JSON.parse(answer.body) as { state: string }).state, answer.headers['connection']]);
    }
    state = 'active';
    assert.deepEqual(seen, [
      ['active', 200, 'active', 'keep-alive'],
      ['draining', 200, 'draining', 'close'],
      ['drained', 503, 'drained', 'close'],
      ['blocked', 503, 'blocked', 'close'],
    ]);
  });

  test('bad requests get a clear answer and are counted apart', async () => {
    const before = web.status().requests.internal;
    assert.equal((await get(ports.internal, '/nothing', { ca: certificates.ca, host })).statusCode, 404);
    const post = await get(ports.internal, AUTODISCOVER_PATH, { ca: certificates.ca, host, method: 'POST' });
    assert.equal(post.statusCode, 405);
    assert.match(post.body, /POST is not allowed/);
    assert.equal((await get(ports.internal, `${AUTODISCOVER_PATH}?originalDomain=fabrikam.com`, { ca: certificates.ca, host })).statusCode, 404);
    const now = web.status().requests.internal;
    assert.equal(now.other - before.other, 3);
    assert.equal(now.autodiscover, before.autodiscover);
  });

  test('a second listener on a port in use fails with WEBSERVICES_LISTEN naming the address', async () => {
    const clash = new WebServices({ topology: await exampleWithFe1At('127.0.0.1'), server: 'fe1.contoso.com', tls: certificates, state: () => 'active', ports: { internal: ports.internal, external: 0 } });
    await assert.rejects(clash.start(), (error: Error & { code?: string }) => error.code === 'WEBSERVICES_LISTEN' && error.message.includes(`127.0.0.1:${ports.internal}`) && error.message.includes('EADDRINUSE'));
  });

  test('a server without Web services is refused with WEBSERVICES_NO_POOL', async () => {
    assert.throws(() => new WebServices({ topology: web['topology'], server: 'med1.contoso.com', tls: certificates, state: () => 'active' }), { code: 'WEBSERVICES_NO_POOL' });
  });
});
