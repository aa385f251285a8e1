// edge.federation: the schema (types, defaults, clear errors with line:column), the rules, and the
// Access Edge's decision per domain. Pools of BASE_YAML: 3 is the edge pool (edgepool.contoso.com).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertOneProblem, BASE_YAML, edit, positionOf, problemsOf } from '../../test/helpers/topology-text.ts';
import { federatingEdgePool, federationDecision } from './federation.ts';
import { parse } from './parse.ts';

const AV_LINE = '      av: { fqdn: av.contoso.com }\n';
const withFederation = (lines: string, base = BASE_YAML): string => edit(base, AV_LINE, `${AV_LINE}      federation:\n${lines}`);

function rejects(text: string, code: string, path: readonly (string | number)[], needle: string, nth = 0): string {
  return assertOneProblem(text, { code, path, at: positionOf(text, needle, nth) }).message;
}

describe('edge.federation in the schema', () => {
  test('partners, resolver and triesMax are read; names lower-cased; the defaults filled in', () => {
    const topology = parse(withFederation('        partners: [Fabrikam.COM, litware.com.]\n        resolver: "127.0.10.1:5310"\n'), 'test.yaml');
    const federation = topology.pools[3]?.edge?.federation;
    assert.deepEqual(federation, { partners: ['fabrikam.com', 'litware.com'], resolver: { address: '127.0.10.1', port: 5310 }, triesMax: 4 });
    assert.equal(federatingEdgePool(topology)?.fqdn, 'edgepool.contoso.com');
  });

  test('trustedCas: a CA file per partner domain (names lower-cased); a domain that is not a partner is TOPOLOGY_FEDERATION', () => {
    const topology = parse(withFederation('        partners: [fabrikam.com]\n        trustedCas: { Fabrikam.COM: /etc/dnslb/fabrikam-ca.pem }\n'), 'test.yaml');
    assert.deepEqual(topology.pools[3]?.edge?.federation?.trustedCas, { 'fabrikam.com': '/etc/dnslb/fabrikam-ca.pem' });
    const text = withFederation('        partners: [fabrikam.com]\n        trustedCas: { litware.com: ca.pem }\n');
    const problem = problemsOf(text).find((candidate) => candidate.code === 'TOPOLOGY_FEDERATION');
    assert.match(problem?.message ?? '', /trustedCas names litware\.com, which is not in partners/);
    assert.equal(problemsOf(withFederation('        partners: [fabrikam.com]\n        trustedCas: { fabrikam.com: "" }\n'))[0]?.code, 'TOPOLOGY_SCHEMA');
  });

  test('absent: no federation; an empty partner list federates with nobody', () => {
    assert.equal(federatingEdgePool(parse(BASE_YAML, 'test.yaml')), undefined);
    const topology = parse(withFederation('        partners: []\n'), 'test.yaml');
    assert.deepEqual(topology.pools[3]?.edge?.federation, { partners: [], triesMax: 4 });
  });

  test('a malformed partner is TOPOLOGY_BAD_FQDN at its position', () => {
    const text = withFederation('        partners: [fabrikam.com, "not a domain"]\n');
    const message = rejects(text, 'TOPOLOGY_BAD_FQDN', ['pools', 3, 'edge', 'federation', 'partners', 1], '"not a domain"');
    assert.match(message, /FQDN/);
  });

  test('a resolver that is not address:port is TOPOLOGY_BAD_ADDRESS', () => {
    const text = withFederation('        partners: [fabrikam.com]\n        resolver: dns.fabrikam.com\n');
    rejects(text, 'TOPOLOGY_BAD_ADDRESS', ['pools', 3, 'edge', 'federation', 'resolver'], 'dns.fabrikam.com\n');
  });

  test('an unknown key and an out-of-range triesMax are TOPOLOGY_SCHEMA', () => {
    rejects(withFederation('        partners: [fabrikam.com]\n        allow: [x.com]\n'), 'TOPOLOGY_SCHEMA', ['pools', 3, 'edge', 'federation', 'allow'], '[x.com]');
    const message = rejects(withFederation('        triesMax: 0\n'), 'TOPOLOGY_SCHEMA', ['pools', 3, 'edge', 'federation', 'triesMax'], '0\n');
    assert.match(message, />=1|at least 1|too small/i);
  });
});

describe('federation rules', () => {
  test('our own SIP domain as a partner is TOPOLOGY_FEDERATION, saying why', () => {
    const message = rejects(withFederation('        partners: [fabrikam.com, contoso.com]\n'), 'TOPOLOGY_FEDERATION', ['pools', 3, 'edge', 'federation', 'partners', 1], 'contoso.com]', 1);
    assert.match(message, /contoso\.com is a SIP domain of this topology/);
  });

  test('a partner listed twice is TOPOLOGY_DUPLICATE_NAME at the later one', () => {
    const message = rejects(withFederation('        partners: [fabrikam.com, litware.com, FABRIKAM.com]\n'), 'TOPOLOGY_DUPLICATE_NAME', ['pools', 3, 'edge', 'federation', 'partners', 2], 'FABRIKAM');
    assert.match(message, /partners\[0\]/);
  });

  test('federation on an edge pool other than the first is TOPOLOGY_FEDERATION naming the first', () => {
    const secondEdge = `  - fqdn: edgepool2.contoso.com
    kind: edge
    site: redmond
    loadBalancing: dns
    servers:
      - fqdn: edge9.contoso.com
        ipv4: 127.0.1.49
        external:
          accessEdge: { ipv4: 127.0.1.59 }
          webConferencing: { ipv4: 127.0.1.58 }
          av: { ipv4: 127.0.1.57 }
    edge:
      externalLoadBalancing: dns
      accessEdge: { fqdn: sip2.contoso.com }
      webConferencing: { fqdn: webconf2.contoso.com }
      av: { fqdn: av2.contoso.com }
      federation:
        partners: [fabrikam.com]
`;
    const text = edit(BASE_YAML, '  - fqdn: medpool.contoso.com\n', `${secondEdge}  - fqdn: medpool.contoso.com\n`);
    const problems = problemsOf(text);
    assert.deepEqual(
      problems.map((problem) => [problem.code, problem.path.join('.')]),
      [['TOPOLOGY_FEDERATION', 'pools.4.edge.federation']],
    );
    assert.match(problems[0]!.message, /edgepool\.contoso\.com/);
  });
});

describe('federationDecision', () => {
  const topology = parse(withFederation('        partners: [fabrikam.com]\n'), 'test.yaml');

  test('a listed partner passes, by URI or domain, whatever the case', () => {
    for (const who of ['sip:bob@fabrikam.com', 'sip:bob@FABRIKAM.com;transport=tls', '<sip:bob@fabrikam.com:5061>', 'fabrikam.com']) {
      assert.equal(federationDecision(topology, who).kind, 'partner', who);
    }
  });

  test('our own domain is ours, not federation', () => {
    assert.deepEqual(federationDecision(topology, 'sip:alice@contoso.com'), { kind: 'ours', domain: 'contoso.com' });
  });

  test('any other domain (a subdomain of a partner too) is refused with a one-line reason', () => {
    for (const who of ['sip:eve@litware.com', 'sip:bob@eu.fabrikam.com']) {
      const decision = federationDecision(topology, who);
      assert.equal(decision.kind, 'refused', who);
      assert.ok(decision.kind === 'refused' && /is not a federation partner of contoso\.com/.test(decision.reason) && !/[\r\n]/.test(decision.reason));
    }
  });

  test('without edge.federation every other domain is refused, saying federation is off', () => {
    const decision = federationDecision(parse(BASE_YAML, 'test.yaml'), 'sip:bob@fabrikam.com');
    assert.ok(decision.kind === 'refused' && /Federation is not enabled/.test(decision.reason));
  });
});
