// A small valid topology as YAML text, and helpers to edit it and to find where a node sits (line:column),
// so that topology tests can assert the exact position each problem reports.
import assert from 'node:assert/strict';
import { parse } from '../../src/topology/parse.ts';
import { TopologyError, type Problem } from '../../src/topology/problem.ts';

/** Valid: one pool of each kind, a hardware-load-balanced frontend, two zones, two views, static records. */
export const BASE_YAML = `schemaVersion: 1
sipDomains: [contoso.com]
sites:
  - name: redmond
  - name: dublin
pools:
  - fqdn: pool01.contoso.com
    kind: frontend
    site: redmond
    loadBalancing: dns
    servers:
      - fqdn: fe1.contoso.com
        ipv4: 127.0.1.11
      - fqdn: fe2.contoso.com
        ipv4: 127.0.1.12
        ipv6: "fd00::12"
    webServices:
      internal:
        fqdn: webint.contoso.com
        vip: { ipv4: 127.0.1.21 }
      external:
        fqdn: webext.contoso.com
        vip: { ipv4: 127.0.1.22 }
  - fqdn: pool02.contoso.com
    kind: frontend
    site: dublin
    loadBalancing: hardware
    vip: { ipv4: 127.0.1.20 }
    servers:
      - fqdn: fe4.contoso.com
        ipv4: 127.0.1.14
  - fqdn: dirpool.contoso.com
    kind: director
    site: redmond
    loadBalancing: dns
    servers:
      - fqdn: dir1.contoso.com
        ipv4: 127.0.1.31
    webServices:
      internal:
        fqdn: dirweb.contoso.com
        vip: { ipv4: 127.0.1.23 }
  - fqdn: edgepool.contoso.com
    kind: edge
    site: redmond
    loadBalancing: dns
    servers:
      - fqdn: edge1.contoso.com
        ipv4: 127.0.1.41
        external:
          accessEdge: { ipv4: 127.0.1.51 }
          webConferencing: { ipv4: 127.0.1.53 }
          av: { ipv4: 127.0.1.55 }
    edge:
      externalLoadBalancing: dns
      accessEdge: { fqdn: sip.contoso.com, port: 443 }
      webConferencing: { fqdn: webconf.contoso.com }
      av: { fqdn: av.contoso.com }
  - fqdn: medpool.contoso.com
    kind: mediation
    site: redmond
    loadBalancing: dns
    servers:
      - fqdn: med1.contoso.com
        ipv4: 127.0.1.61
dns:
  servers:
    - fqdn: dns1.contoso.com
      listen: ["127.0.1.1:5300"]
  zones:
    - name: contoso.com
      soa: { mname: dns1.contoso.com, rname: hostmaster.contoso.com }
      records:
        - { name: www.contoso.com, type: A, value: 127.0.1.80, views: [external] }
        - { name: v6.contoso.com, type: AAAA, value: "fd00::80" }
        - { name: intranet.contoso.com, type: CNAME, value: www.contoso.com }
        - { name: contoso.com, type: MX, value: "10 mail.fabrikam.com" }
        - { name: _sip._tls.contoso.com, type: SRV, value: "0 0 443 sip.contoso.com" }
        - { name: contoso.com, type: TXT, value: "v=spf1 -all" }
    - name: fabrikam.com
      records: []
  views:
    - name: internal
      clients: [127.0.1.0/24]
    - name: external
      clients: [0.0.0.0/0, "::/0"]
`;

/** Replaces the one occurrence of \`from\` (failing the test if it is missing or ambiguous). */
export function edit(text: string, from: string, to: string): string {
  const first = text.indexOf(from);
  assert.notEqual(first, -1, `edit: "${from}" not found`);
  assert.equal(text.indexOf(from, first + 1), -1, `edit: "${from}" occurs more than once`);
  return text.slice(0, first) + to + text.slice(first + from.length);
}

/**
 * 1-based line and column of the \`nth\` (0-based) occurrence of \`needle\`; a "»" in the needle marks the
 * exact spot (it is not part of the text searched), so "- name: »redmond" points at the value.
 */
export function positionOf(text: string, needle: string, nth = 0): { line: number; column: number } {
  const mark = Math.max(needle.indexOf('»'), 0);
  const plain = needle.replace('»', '');
  let index = -1;
  for (let count = 0; count <= nth; count += 1) {
    index = text.indexOf(plain, index + 1);
    assert.notEqual(index, -1, `positionOf: occurrence ${nth} of "${plain}" not found`);
  }
  const before = text.slice(0, index + mark).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/** Every problem parse reports for the text; fails the test when it parses. */
export function problemsOf(text: string): readonly Problem[] {
  try {
    parse(text, 'test.yaml');
  } catch (error) {
    if (error instanceof TopologyError) return error.problems;
    throw error;
  }
  assert.fail('expected the document to be rejected');
}

/** Asserts there is exactly one problem and it has this code, path and position; returns it. */
export function assertOneProblem(text: string, expected: { code: string; path: readonly (string | number)[]; at: { line: number; column: number } }): Problem {
  const problems = problemsOf(text);
  assert.equal(problems.length, 1, `expected one problem, got:\n${problems.map((p) => `${p.code} ${p.path.join('.')} ${p.message}`).join('\n')}`);
  const [problem] = problems;
  assert.ok(problem);
  assert.equal(problem.code, expected.code);
  assert.deepEqual(problem.path, expected.path);
  assert.deepEqual({ line: problem.line, column: problem.column }, expected.at);
  return problem;
}

/** A valid multi-pool topology: two frontend pools of 3, a director pool of 2, an edge pool, a mediation pool of 2 with a gateway, home rules and PSTN routes. */
export const MULTI_POOL_FILE = new URL('../fixtures/topology/multi-pool.yaml', import.meta.url).pathname;
