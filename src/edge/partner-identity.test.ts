// A federation partner is its certificate (partner-identity.ts): real certificates from two throw-away
// CAs (openssl, src/sip/certificates.ts); the partner's SRV targets given as a table.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureCertificate } from '../sip/certificates.ts';
import type { Topology } from '../topology/schema.ts';
import { parseFile } from '../topology/parse.ts';
import { certificatesOfPem, chainProblem, PartnerIdentity, type AccessEdgeNames } from './partner-identity.ts';

const DAY = 86_400_000;

describe('PartnerIdentity: a partner is believed by its certificate, not its From domain', () => {
  const dirs: string[] = [];
  let topology: Topology;
  /** fabrikam's CA (trusted for fabrikam.com) and another CA nobody trusts. */
  let fabrikamCa: string;
  const issued: Record<string, X509Certificate> = {};
  let edges: AccessEdgeNames;

  const issue = async (ca: string, name: string, names: string[]): Promise<X509Certificate> => {
    const files = await ensureCertificate(ca, name, { names, ips: [], days: 2 });
    return new X509Certificate(await readFile(files.certFile, 'utf8'));
  };

  before(async () => {
    const fabrikam = mkdtempSync(join(tmpdir(), 'dnslb-partner-ca-'));
    const other = mkdtempSync(join(tmpdir(), 'dnslb-other-ca-'));
    dirs.push(fabrikam, other);
    issued['edge'] = await issue(fabrikam, 'edge1', ['edge1.fabrikam.com', 'sip.fabrikam.com']);
    issued['litware'] = await issue(fabrikam, 'litware', ['sip.litware.com']);
    issued['stranger'] = await issue(other, 'stranger', ['sip.fabrikam.com']);
    fabrikamCa = join(fabrikam, 'ca.pem');
    const example = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);
    topology = {
      ...example,
      pools: example.pools.map((pool) => (pool.edge?.federation ? { ...pool, edge: { ...pool.edge, federation: { ...pool.edge.federation, trustedCas: { 'fabrikam.com': fabrikamCa } } } } : pool)),
    };
  });
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const identity = (options: { nowMs?: number; topology?: Topology } = {}): PartnerIdentity =>
    new PartnerIdentity({
      topology: () => options.topology ?? topology,
      accessEdgesOf: async () => edges,
      clock: { nowMs: () => options.nowMs ?? Date.now() } as never,
    });

  test('the partner\'s edge certificate: from the CA trusted for it, naming its _sipfederationtls target', async () => {
    edges = { names: ['sip.fabrikam.com'] };
    assert.deepEqual(await identity().decide([issued['edge']!], 'fabrikam.com'), { ok: true });
  });

  test('forgeries and failures, each with its reason', async () => {
    edges = { names: ['sip.fabrikam.com'] };
    const cases: [string, X509Certificate[], PartnerIdentity, number, RegExp][] = [
      ['no certificate', [], identity(), 403, /presented no certificate/],
      ['the trusted CA, another domain\'s name', [issued['litware']!], identity(), 403, /names sip\.litware\.com, not the Access Edge sip\.fabrikam\.com that _sipfederationtls\._tcp\.fabrikam\.com names/],
      ['the right name, a CA not trusted for fabrikam', [issued['stranger']!], identity(), 403, /does not verify against the CAs trusted for this partner/],
      ['expired (a week later)', [issued['edge']!], identity({ nowMs: Date.now() + 7 * DAY }), 403, /is not valid now/],
      ['no trustedCas entry: the public roots, which did not sign it', [issued['edge']!], identity({ topology: { ...topology, pools: topology.pools.map((pool) => (pool.edge?.federation ? { ...pool, edge: { ...pool.edge, federation: { ...pool.edge.federation, trustedCas: {} } } } : pool)) } }), 403, /public roots/],
    ];
    for (const [name, chain, check, status, reason] of cases) {
      const verdict = await check.decide(chain, 'fabrikam.com');
      assert.ok(!verdict.ok, name);
      assert.equal(verdict.status, status, name);
      assert.match(verdict.reason, reason, name);
      assert.match(verdict.reason, /^Not fabrikam\.com's Access Edge: /, name);
    }
  });

  test('the partner\'s DNS: no Access Edge published is 403, a failed lookup 503 (not the partner\'s fault: may pass)', async () => {
    edges = { status: 404, reason: 'No Access Edge for partner fabrikam.com' };
    assert.deepEqual(await identity().decide([issued['edge']!], 'fabrikam.com'), { ok: false, status: 403, reason: "Not fabrikam.com's Access Edge: No Access Edge for partner fabrikam.com" });
    edges = { status: 503, reason: 'Partner fabrikam.com lookup failed' };
    assert.deepEqual(await identity().decide([issued['edge']!], 'fabrikam.com'), { ok: false, status: 503, reason: 'Partner fabrikam.com lookup failed' });
  });

  test('an unreadable CA file is 503 naming it', async () => {
    const missing = { ...topology, pools: topology.pools.map((pool) => (pool.edge?.federation ? { ...pool, edge: { ...pool.edge, federation: { ...pool.edge.federation, trustedCas: { 'fabrikam.com': '/nonexistent/ca.pem' } } } } : pool)) };
    const verdict = await identity({ topology: missing }).decide([issued['edge']!], 'fabrikam.com');
    assert.ok(!verdict.ok && verdict.status === 503 && verdict.reason.includes('/nonexistent/ca.pem'));
  });

  test('chainProblem: through a presented chain only when each link is a CA that signed the one below', async () => {
    const trusted = certificatesOfPem(await readFile(fabrikamCa, 'utf8'));
    assert.equal(chainProblem([issued['edge']!], trusted, Date.now()), null);
    assert.equal(chainProblem([issued['edge']!, ...trusted], trusted, Date.now()), null, 'the CA itself sent along');
    // A leaf presented as if it were the intermediate of another: not a CA, does not count.
    assert.match(chainProblem([issued['stranger']!, issued['edge']!], trusted, Date.now()) ?? '', /does not verify/);
  });
});
