// Every cross-document rule: a document that breaks it (code, YAML path, line:column) and a near miss that passes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertOneProblem, BASE_YAML, edit, positionOf, problemsOf } from '../../test/helpers/topology-text.ts';
import { parse } from './parse.ts';
import { checkRules, RULES } from './rules.ts';

/** One problem with this code at this path, positioned where `needle` (with its » mark) is, in the edited text. */
function rejects(text: string, code: string, path: readonly (string | number)[], needle: string, nth = 0): void {
  assertOneProblem(text, { code, path, at: positionOf(text, needle, nth) });
}

function accepts(text: string): void {
  assert.doesNotThrow(() => parse(text, 'test.yaml'));
}

const FE1 = `      - fqdn: fe1.contoso.com
        ipv4: 127.0.1.11
`;
const MED1 = `      - fqdn: med1.contoso.com
        ipv4: 127.0.1.61
`;

test('the base document passes every rule', () => {
  const topology = parse(BASE_YAML, 'base.yaml');
  assert.deepEqual(checkRules(topology), []);
  assert.ok(RULES.length >= 13);
});

describe('unique sites, SIP domains, zones and views (TOPOLOGY_DUPLICATE_NAME)', () => {
  test('a site declared twice', () => {
    const text = edit(BASE_YAML, '  - name: dublin\n', '  - name: redmond\n');
    // pool02 now names "redmond" too; only the duplicate declaration is a problem.
    rejects(edit(text, 'site: dublin', 'site: redmond'), 'TOPOLOGY_DUPLICATE_NAME', ['sites', 1, 'name'], '  - name: »redmond', 1);
  });
  test('a SIP domain listed twice', () => {
    rejects(edit(BASE_YAML, '[contoso.com]', '[contoso.com, Contoso.com]'), 'TOPOLOGY_DUPLICATE_NAME', ['sipDomains', 1], '»Contoso.com]');
  });
  test('a zone declared twice', () => {
    rejects(edit(BASE_YAML, '- name: fabrikam.com', '- name: contoso.com'), 'TOPOLOGY_DUPLICATE_NAME', ['dns', 'zones', 1, 'name'], '- name: »contoso.com\n      records: []');
  });
  test('a view declared twice', () => {
    const internal = '    - name: internal\n      clients: [127.0.1.0/24]\n';
    rejects(edit(BASE_YAML, internal, internal + internal), 'TOPOLOGY_DUPLICATE_NAME', ['dns', 'views', 1, 'name'], '- name: »internal', 1);
  });
  test('the same word may name a site and a view', () => {
    accepts(edit(edit(BASE_YAML, '  - name: dublin\n', '  - name: internal\n'), 'site: dublin', 'site: internal'));
  });
});

describe('references (TOPOLOGY_UNKNOWN_REFERENCE)', () => {
  test('a pool in an undeclared site', () => {
    rejects(edit(BASE_YAML, 'site: dublin', 'site: paris'), 'TOPOLOGY_UNKNOWN_REFERENCE', ['pools', 1, 'site'], 'site: »paris');
  });
  test('a static record in an undeclared view', () => {
    rejects(edit(BASE_YAML, 'views: [external]', 'views: [external, outside]'), 'TOPOLOGY_UNKNOWN_REFERENCE', ['dns', 'zones', 0, 'records', 0, 'views', 1], '»outside]');
  });
  test('declared sites and views pass', () => {
    accepts(edit(BASE_YAML, 'views: [external]', 'views: [internal, external]'));
  });
});

describe('pools have servers (TOPOLOGY_NO_SERVERS)', () => {
  test('a pool with an empty server list', () => {
    rejects(edit(BASE_YAML, `    servers:\n${MED1}`, '    servers: []\n'), 'TOPOLOGY_NO_SERVERS', ['pools', 4, 'servers'], 'servers: »[]');
  });
  test('a pool with one server passes', () => {
    accepts(BASE_YAML);
  });
});

describe('keys that fit the pool kind', () => {
  const EDGE_BLOCK = `    edge:
      externalLoadBalancing: dns
      accessEdge: { fqdn: sip.contoso.com, port: 443 }
      webConferencing: { fqdn: webconf.contoso.com }
      av: { fqdn: av.contoso.com }
`;
  test('an edge pool without "edge" (TOPOLOGY_EDGE_REQUIRED)', () => {
    rejects(edit(BASE_YAML, EDGE_BLOCK, ''), 'TOPOLOGY_EDGE_REQUIRED', ['pools', 3], '- »fqdn: edgepool.contoso.com');
  });
  test('an edge server without "external" addresses (TOPOLOGY_EDGE_REQUIRED)', () => {
    const text = edit(BASE_YAML, '        external:\n          accessEdge: { ipv4: 127.0.1.51 }\n          webConferencing: { ipv4: 127.0.1.53 }\n          av: { ipv4: 127.0.1.55 }\n', '');
    rejects(text, 'TOPOLOGY_EDGE_REQUIRED', ['pools', 3, 'servers', 0], '- »fqdn: edge1.contoso.com');
  });
  test('"edge" on a mediation pool (TOPOLOGY_KEY_NOT_ALLOWED)', () => {
    const text = edit(BASE_YAML, MED1, `${MED1}    edge:\n      externalLoadBalancing: dns\n      accessEdge: { fqdn: sip2.contoso.com }\n      webConferencing: { fqdn: webconf2.contoso.com }\n      av: { fqdn: av2.contoso.com }\n`);
    rejects(text, 'TOPOLOGY_KEY_NOT_ALLOWED', ['pools', 4, 'edge'], '      »externalLoadBalancing: dns', 1);
  });
  test('"external" on a frontend server (TOPOLOGY_KEY_NOT_ALLOWED)', () => {
    const text = edit(BASE_YAML, FE1, `${FE1}        external: { accessEdge: { ipv4: 127.0.2.1 }, webConferencing: { ipv4: 127.0.2.2 }, av: { ipv4: 127.0.2.3 } }\n`);
    rejects(text, 'TOPOLOGY_KEY_NOT_ALLOWED', ['pools', 0, 'servers', 0, 'external'], 'external: »{ accessEdge');
  });
  test('"webServices" on a mediation pool (TOPOLOGY_KEY_NOT_ALLOWED)', () => {
    const text = edit(BASE_YAML, MED1, `${MED1}    webServices:\n      internal: { fqdn: medweb.contoso.com, vip: { ipv4: 127.0.1.69 } }\n`);
    rejects(text, 'TOPOLOGY_KEY_NOT_ALLOWED', ['pools', 4, 'webServices'], '      »internal: { fqdn: medweb');
  });
  test('"vip" on a DNS-load-balanced pool (TOPOLOGY_KEY_NOT_ALLOWED)', () => {
    const text = edit(BASE_YAML, MED1, `${MED1}    vip: { ipv4: 127.0.1.60 }\n`);
    rejects(text, 'TOPOLOGY_KEY_NOT_ALLOWED', ['pools', 4, 'vip'], 'vip: »{ ipv4: 127.0.1.60 }');
  });
  test('an edge service "vip" with DNS load balancing outside (TOPOLOGY_KEY_NOT_ALLOWED)', () => {
    const text = edit(BASE_YAML, 'av: { fqdn: av.contoso.com }', 'av: { fqdn: av.contoso.com, vip: { ipv4: 127.0.1.59 } }');
    rejects(text, 'TOPOLOGY_KEY_NOT_ALLOWED', ['pools', 3, 'edge', 'av', 'vip'], 'vip: »{ ipv4: 127.0.1.59 }');
  });
  test('every kind with its own keys passes', () => {
    accepts(BASE_YAML);
  });
});

const EDGE_DNS = 'kind: edge\n    site: redmond\n    loadBalancing: dns\n';
const EDGE_HARDWARE = 'kind: edge\n    site: redmond\n    loadBalancing: hardware\n    vip: { ipv4: 127.0.1.40 }\n';

describe('edge interfaces use one load-balancing type (TOPOLOGY_EDGE_LOAD_BALANCING)', () => {
  test('hardware inside, DNS outside', () => {
    rejects(edit(BASE_YAML, EDGE_DNS, EDGE_HARDWARE), 'TOPOLOGY_EDGE_LOAD_BALANCING', ['pools', 3, 'edge', 'externalLoadBalancing'], 'externalLoadBalancing: »dns');
  });
  test('DNS inside, hardware outside', () => {
    const text = edit(
      edit(edit(edit(BASE_YAML, 'externalLoadBalancing: dns', 'externalLoadBalancing: hardware'), '{ fqdn: sip.contoso.com, port: 443 }', '{ fqdn: sip.contoso.com, port: 443, vip: { ipv4: 127.0.1.57 } }'), '{ fqdn: webconf.contoso.com }', '{ fqdn: webconf.contoso.com, vip: { ipv4: 127.0.1.58 } }'),
      '{ fqdn: av.contoso.com }',
      '{ fqdn: av.contoso.com, vip: { ipv4: 127.0.1.59 } }',
    );
    rejects(text, 'TOPOLOGY_EDGE_LOAD_BALANCING', ['pools', 3, 'edge', 'externalLoadBalancing'], 'externalLoadBalancing: »hardware');
  });
  test('hardware on both interfaces passes', () => {
    const text = edit(
      edit(edit(edit(edit(BASE_YAML, EDGE_DNS, EDGE_HARDWARE), 'externalLoadBalancing: dns', 'externalLoadBalancing: hardware'), '{ fqdn: sip.contoso.com, port: 443 }', '{ fqdn: sip.contoso.com, port: 443, vip: { ipv4: 127.0.1.57 } }'), '{ fqdn: webconf.contoso.com }', '{ fqdn: webconf.contoso.com, vip: { ipv4: 127.0.1.58 } }'),
      '{ fqdn: av.contoso.com }',
      '{ fqdn: av.contoso.com, vip: { ipv4: 127.0.1.59 } }',
    );
    accepts(text);
  });
});

describe('hardware load balancing has VIPs (TOPOLOGY_MISSING_VIP)', () => {
  test('a hardware-load-balanced pool without "vip"', () => {
    rejects(edit(BASE_YAML, '    vip: { ipv4: 127.0.1.20 }\n', ''), 'TOPOLOGY_MISSING_VIP', ['pools', 1], '- »fqdn: pool02.contoso.com');
  });
  test('a hardware external edge interface missing one service VIP', () => {
    const text = edit(
      edit(edit(edit(BASE_YAML, EDGE_DNS, EDGE_HARDWARE), 'externalLoadBalancing: dns', 'externalLoadBalancing: hardware'), '{ fqdn: sip.contoso.com, port: 443 }', '{ fqdn: sip.contoso.com, port: 443, vip: { ipv4: 127.0.1.57 } }'),
      '{ fqdn: webconf.contoso.com }',
      '{ fqdn: webconf.contoso.com, vip: { ipv4: 127.0.1.58 } }',
    );
    rejects(text, 'TOPOLOGY_MISSING_VIP', ['pools', 3, 'edge', 'av'], 'av: »{ fqdn: av.contoso.com }');
  });
  test('a hardware-load-balanced pool with its VIP passes', () => {
    accepts(BASE_YAML);
  });
});

describe('Web services override on DNS-load-balanced frontend and director pools (TOPOLOGY_WEB_SERVICES_OVERRIDE)', () => {
  const DIR_WEB = '    webServices:\n      internal:\n        fqdn: dirweb.contoso.com\n        vip: { ipv4: 127.0.1.23 }\n';
  test('no webServices at all', () => {
    rejects(edit(BASE_YAML, DIR_WEB, ''), 'TOPOLOGY_WEB_SERVICES_OVERRIDE', ['pools', 2], '- »fqdn: dirpool.contoso.com');
  });
  test('webServices with only the external FQDN', () => {
    const text = edit(BASE_YAML, DIR_WEB, '    webServices:\n      external: { fqdn: dirwebext.contoso.com, vip: { ipv4: 127.0.1.24 } }\n');
    rejects(text, 'TOPOLOGY_WEB_SERVICES_OVERRIDE', ['pools', 2, 'webServices'], '      »external: { fqdn: dirwebext');
  });
  test('an internal override equal to the pool FQDN (one problem, not also a duplicate FQDN)', () => {
    rejects(edit(BASE_YAML, 'fqdn: dirweb.contoso.com', 'fqdn: DIRPOOL.contoso.com'), 'TOPOLOGY_WEB_SERVICES_OVERRIDE', ['pools', 2, 'webServices', 'internal', 'fqdn'], 'fqdn: »DIRPOOL');
  });
  test('a hardware-load-balanced frontend needs no override', () => {
    accepts(BASE_YAML); // pool02 is hardware and has no webServices
  });
});

describe('Web services ports and the HLB (TOPOLOGY_WEB_SERVICES_PORT, TOPOLOGY_HLB)', () => {
  const DIR_WEB = '    webServices:\n      internal:\n        fqdn: dirweb.contoso.com\n        vip: { ipv4: 127.0.1.23 }\n';
  test('a Web site port that is also the pool\'s SIP port', () => {
    const text = edit(BASE_YAML, DIR_WEB, `${DIR_WEB}        serverPort: 5061\n`);
    rejects(text, 'TOPOLOGY_WEB_SERVICES_PORT', ['pools', 2, 'webServices', 'internal', 'serverPort'], 'serverPort: »5061');
  });
  test('internal and external Web sites on one server port', () => {
    const text = edit(BASE_YAML, DIR_WEB, `${DIR_WEB}      external: { fqdn: dirwebext.contoso.com, vip: { ipv4: 127.0.1.24 }, serverPort: 443 }\n`);
    rejects(text, 'TOPOLOGY_WEB_SERVICES_PORT', ['pools', 2, 'webServices', 'external', 'serverPort'], 'serverPort: »443 }');
  });
  test('hlb: haproxy with no VIP to listen on', () => {
    // A hardware-load-balanced frontend needs no override, so webServices may name neither side.
    const hardware = edit(BASE_YAML, '    vip: { ipv4: 127.0.1.20 }\n', '    vip: { ipv4: 127.0.1.20 }\n    webServices:\n      hlb: haproxy\n');
    rejects(hardware, 'TOPOLOGY_HLB', ['pools', 1, 'webServices', 'hlb'], 'hlb: »haproxy');
  });
  test('hlb: haproxy with the internal and external Web services on one VIP and port', () => {
    const text = edit(BASE_YAML, DIR_WEB, `${DIR_WEB}      external: { fqdn: dirwebext.contoso.com, vip: { ipv4: 127.0.1.23 } }\n      hlb: haproxy\n`);
    rejects(text, 'TOPOLOGY_HLB', ['pools', 2, 'webServices', 'external', 'vip', 'ipv4'], 'vip: { ipv4: »127.0.1.23 } }');
  });
  test('one VIP with two ports, and the same VIP without hlb, pass', () => {
    accepts(edit(BASE_YAML, DIR_WEB, `${DIR_WEB}      external: { fqdn: dirwebext.contoso.com, vip: { ipv4: 127.0.1.23 }, port: 8443 }\n      hlb: haproxy\n`));
    accepts(edit(BASE_YAML, DIR_WEB, `${DIR_WEB}      external: { fqdn: dirwebext.contoso.com, vip: { ipv4: 127.0.1.23 } }\n`));
  });
  test('an unknown hlb is a schema error', () => {
    assert.throws(() => parse(edit(BASE_YAML, DIR_WEB, `${DIR_WEB}      hlb: nginx\n`), 'test.yaml'), /TOPOLOGY_SCHEMA[\s\S]*hlb/);
  });
});

describe('unique FQDNs', () => {
  test('a server in two pools (TOPOLOGY_DUPLICATE_SERVER), with its own address: no IP problem', () => {
    const text = edit(BASE_YAML, MED1, `${MED1}      - fqdn: fe1.contoso.com\n        ipv4: 127.0.1.11\n`);
    const problem = problemsOf(text);
    rejects(text, 'TOPOLOGY_DUPLICATE_SERVER', ['pools', 4, 'servers', 1, 'fqdn'], '- fqdn: »fe1.contoso.com', 1);
    assert.match(problem[0]?.message ?? '', /already in pool pool01\.contoso\.com/);
  });
  test('a server listed twice in one pool (TOPOLOGY_DUPLICATE_SERVER)', () => {
    rejects(edit(BASE_YAML, FE1, `${FE1}${FE1}`), 'TOPOLOGY_DUPLICATE_SERVER', ['pools', 0, 'servers', 1, 'fqdn'], '- fqdn: »fe1.contoso.com', 1);
  });
  test('two pools with one FQDN (TOPOLOGY_DUPLICATE_FQDN)', () => {
    rejects(edit(BASE_YAML, 'fqdn: pool02.contoso.com', 'fqdn: pool01.contoso.com'), 'TOPOLOGY_DUPLICATE_FQDN', ['pools', 1, 'fqdn'], 'fqdn: »pool01.contoso.com', 1);
  });
  test('a server FQDN equal to a pool FQDN (TOPOLOGY_DUPLICATE_FQDN)', () => {
    rejects(edit(BASE_YAML, 'fqdn: med1.contoso.com', 'fqdn: medpool.contoso.com'), 'TOPOLOGY_DUPLICATE_FQDN', ['pools', 4, 'servers', 0, 'fqdn'], 'fqdn: »medpool.contoso.com', 1);
  });
  test("a Web services FQDN equal to another pool's Web services FQDN (TOPOLOGY_DUPLICATE_FQDN)", () => {
    rejects(edit(BASE_YAML, 'fqdn: dirweb.contoso.com', 'fqdn: webext.contoso.com'), 'TOPOLOGY_DUPLICATE_FQDN', ['pools', 2, 'webServices', 'internal', 'fqdn'], 'fqdn: »webext.contoso.com', 1);
  });
  test('internal and external Web services with one FQDN (TOPOLOGY_DUPLICATE_FQDN)', () => {
    rejects(edit(BASE_YAML, 'fqdn: webext.contoso.com', 'fqdn: webint.contoso.com'), 'TOPOLOGY_DUPLICATE_FQDN', ['pools', 0, 'webServices', 'external', 'fqdn'], 'fqdn: »webint.contoso.com', 1);
  });
  test('an edge service FQDN equal to a Web services FQDN (TOPOLOGY_DUPLICATE_FQDN)', () => {
    rejects(edit(BASE_YAML, '{ fqdn: webconf.contoso.com }', '{ fqdn: webext.contoso.com }'), 'TOPOLOGY_DUPLICATE_FQDN', ['pools', 3, 'edge', 'webConferencing', 'fqdn'], '{ fqdn: »webext.contoso.com }');
  });
  test('a DNS server FQDN equal to a server FQDN (TOPOLOGY_DUPLICATE_FQDN)', () => {
    rejects(edit(BASE_YAML, 'fqdn: dns1.contoso.com', 'fqdn: med1.contoso.com'), 'TOPOLOGY_DUPLICATE_FQDN', ['dns', 'servers', 0, 'fqdn'], 'fqdn: »med1.contoso.com', 1);
  });
  test('distinct names pass, whatever their case', () => {
    accepts(edit(BASE_YAML, 'fqdn: fe1.contoso.com', 'fqdn: FE1.Contoso.com.'));
  });
});

describe('unique IP addresses (TOPOLOGY_DUPLICATE_IP)', () => {
  test('two servers with one address', () => {
    rejects(edit(BASE_YAML, 'ipv4: 127.0.1.12', 'ipv4: 127.0.1.11'), 'TOPOLOGY_DUPLICATE_IP', ['pools', 0, 'servers', 1, 'ipv4'], 'ipv4: »127.0.1.11', 1);
  });
  test('one IPv6 address spelled two ways', () => {
    const text = edit(BASE_YAML, '        ipv4: 127.0.1.14\n', '        ipv4: 127.0.1.14\n        ipv6: "FD00:0:0::12"\n');
    rejects(text, 'TOPOLOGY_DUPLICATE_IP', ['pools', 1, 'servers', 0, 'ipv6'], 'ipv6: »"FD00:0:0::12"');
  });
  test('a server address equal to a VIP', () => {
    rejects(edit(BASE_YAML, 'ipv4: 127.0.1.31', 'ipv4: 127.0.1.20'), 'TOPOLOGY_DUPLICATE_IP', ['pools', 2, 'servers', 0, 'ipv4'], 'ipv4: »127.0.1.20', 1);
  });
  test("an edge server's external address equal to its internal one", () => {
    rejects(edit(BASE_YAML, 'av: { ipv4: 127.0.1.55 }', 'av: { ipv4: 127.0.1.41 }'), 'TOPOLOGY_DUPLICATE_IP', ['pools', 3, 'servers', 0, 'external', 'av', 'ipv4'], 'av: { ipv4: »127.0.1.41 }');
  });
  test('one edge server, one external address for all three services, passes', () => {
    accepts(edit(edit(BASE_YAML, 'webConferencing: { ipv4: 127.0.1.53 }', 'webConferencing: { ipv4: 127.0.1.51 }'), 'av: { ipv4: 127.0.1.55 }', 'av: { ipv4: 127.0.1.51 }'));
  });
  test("a pool's internal and external Web services on one VIP passes", () => {
    accepts(edit(BASE_YAML, 'vip: { ipv4: 127.0.1.22 }', 'vip: { ipv4: 127.0.1.21 }'));
  });
});

describe('names are inside the declared zones (TOPOLOGY_OUTSIDE_ZONE)', () => {
  const cases: [string, string, string, (string | number)[], string][] = [
    ['a pool FQDN', 'fqdn: pool02.contoso.com', 'fqdn: pool02.contoso.net', ['pools', 1, 'fqdn'], 'fqdn: »pool02.contoso.net'],
    ['a server FQDN', 'fqdn: fe4.contoso.com', 'fqdn: fe4.contoso.net', ['pools', 1, 'servers', 0, 'fqdn'], 'fqdn: »fe4.contoso.net'],
    ['a Web services FQDN', 'fqdn: webext.contoso.com', 'fqdn: webext.contoso.net', ['pools', 0, 'webServices', 'external', 'fqdn'], 'fqdn: »webext.contoso.net'],
    ['an edge service FQDN', '{ fqdn: av.contoso.com }', '{ fqdn: av.contoso.net }', ['pools', 3, 'edge', 'av', 'fqdn'], '{ fqdn: »av.contoso.net }'],
    ['a DNS server FQDN', 'fqdn: dns1.contoso.com', 'fqdn: dns1.contoso.net', ['dns', 'servers', 0, 'fqdn'], 'fqdn: »dns1.contoso.net'],
    ['a SIP domain', '[contoso.com]', '[contoso.com, contoso.net]', ['sipDomains', 1], '»contoso.net]'],
    ['an SOA mname', 'mname: dns1.contoso.com', 'mname: ns.contoso.net', ['dns', 'zones', 0, 'soa', 'mname'], 'mname: »ns.contoso.net'],
    ['a static record outside the zone it is listed under', 'name: v6.contoso.com', 'name: v6.fabrikam.com', ['dns', 'zones', 0, 'records', 1, 'name'], 'name: »v6.fabrikam.com'],
  ];
  for (const [what, from, to, path, needle] of cases) {
    test(what, () => rejects(edit(BASE_YAML, from, to), 'TOPOLOGY_OUTSIDE_ZONE', path, needle));
  }
  test('names in the second zone pass, and the SOA rname (a mailbox) may be anywhere', () => {
    accepts(edit(edit(edit(BASE_YAML, 'fqdn: pool02.contoso.com', 'fqdn: pool02.fabrikam.com'), 'fqdn: fe4.contoso.com', 'fqdn: fe4.fabrikam.com'), 'rname: hostmaster.contoso.com', 'rname: dns-admin.example.net'));
  });
});

describe('topology names are not static records (TOPOLOGY_POOL_RECORD)', () => {
  const names = ['pool01.contoso.com', 'fe2.contoso.com', 'webint.contoso.com', 'sip.contoso.com'];
  for (const name of names) {
    test(`a static record named ${name}`, () => {
      rejects(edit(BASE_YAML, 'name: www.contoso.com', `name: ${name}`), 'TOPOLOGY_POOL_RECORD', ['dns', 'zones', 0, 'records', 0, 'name'], `- { name: »${name}`);
    });
  }
  test('a record below a pool FQDN, or for the DNS server, passes', () => {
    accepts(edit(edit(BASE_YAML, 'name: www.contoso.com', 'name: www.pool01.contoso.com'), 'name: v6.contoso.com', 'name: dns1.contoso.com'));
  });
});

describe('static record values fit their type', () => {
  const cases: [string, string, string, string, (string | number)[], string][] = [
    ['an A record with an IPv6 value', 'value: 127.0.1.80', 'value: "fd00::81"', 'TOPOLOGY_BAD_ADDRESS', ['dns', 'zones', 0, 'records', 0, 'value'], 'value: »"fd00::81"'],
    ['an AAAA record with an IPv4 value', 'value: "fd00::80"', 'value: 127.0.1.81', 'TOPOLOGY_BAD_ADDRESS', ['dns', 'zones', 0, 'records', 1, 'value'], 'value: »127.0.1.81'],
    ['a CNAME whose target is not a name', 'value: www.contoso.com', 'value: "www contoso"', 'TOPOLOGY_BAD_FQDN', ['dns', 'zones', 0, 'records', 2, 'value'], 'value: »"www contoso"'],
    ['an MX without preference', 'value: "10 mail.fabrikam.com"', 'value: "mail.fabrikam.com"', 'TOPOLOGY_BAD_RECORD', ['dns', 'zones', 0, 'records', 3, 'value'], 'value: »"mail.fabrikam.com"'],
    ['an MX with a preference above 65535', 'value: "10 mail.fabrikam.com"', 'value: "70000 mail.fabrikam.com"', 'TOPOLOGY_BAD_RECORD', ['dns', 'zones', 0, 'records', 3, 'value'], 'value: »"70000'],
    ['an MX whose exchange is not a name', 'value: "10 mail.fabrikam.com"', 'value: "10 -mail"', 'TOPOLOGY_BAD_FQDN', ['dns', 'zones', 0, 'records', 3, 'value'], 'value: »"10 -mail"'],
    ['an MX whose exchange is a CNAME', 'value: "10 mail.fabrikam.com"', 'value: "10 intranet.contoso.com"', 'TOPOLOGY_BAD_RECORD', ['dns', 'zones', 0, 'records', 3, 'value'], 'value: »"10 intranet'],
    ['an SRV with three fields', 'value: "0 0 443 sip.contoso.com"', 'value: "0 443 sip.contoso.com"', 'TOPOLOGY_BAD_RECORD', ['dns', 'zones', 0, 'records', 4, 'value'], 'value: »"0 443'],
    ['an SRV whose name lacks _service._proto', 'name: _sip._tls.contoso.com', 'name: sip2.contoso.com', 'TOPOLOGY_BAD_RECORD', ['dns', 'zones', 0, 'records', 4, 'name'], 'name: »sip2.contoso.com'],
  ];
  for (const [what, from, to, code, path, needle] of cases) {
    test(what, () => rejects(edit(BASE_YAML, from, to), code, path, needle));
  }
  test('well-formed values pass, and an SRV target of "." (no service, RFC 2782)', () => {
    accepts(edit(BASE_YAML, 'value: "0 0 443 sip.contoso.com"', 'value: "0 0 0 ."'));
  });
});

describe('a CNAME is alone at its name (TOPOLOGY_CNAME_CONFLICT)', () => {
  test('a CNAME and an A record at one name in the same views', () => {
    rejects(edit(BASE_YAML, 'name: intranet.contoso.com', 'name: www.contoso.com'), 'TOPOLOGY_CNAME_CONFLICT', ['dns', 'zones', 0, 'records', 2, 'name'], '{ name: »www.contoso.com, type: CNAME');
  });
  test('a CNAME at the zone apex', () => {
    const text = edit(BASE_YAML, '      records: []\n', '      records:\n        - { name: fabrikam.com, type: CNAME, value: contoso.com }\n');
    rejects(text, 'TOPOLOGY_CNAME_CONFLICT', ['dns', 'zones', 1, 'records', 0, 'name'], '{ name: »fabrikam.com, type: CNAME');
  });
  test('a CNAME in one view and an A record in another pass', () => {
    accepts(edit(BASE_YAML, '{ name: intranet.contoso.com, type: CNAME, value: www.contoso.com }', '{ name: www.contoso.com, type: CNAME, value: intranet.fabrikam.com, views: [internal] }'));
  });
});

test('a document with several problems reports every one, in document order', () => {
  let text = edit(BASE_YAML, 'site: dublin', 'site: paris');
  text = edit(text, 'ipv4: 127.0.1.12', 'ipv4: 127.0.1.11');
  text = edit(text, 'fqdn: dirweb.contoso.com', 'fqdn: dirpool.contoso.com');
  text = edit(text, 'name: www.contoso.com', 'name: pool01.contoso.com');
  const problems = problemsOf(text);
  assert.deepEqual(
    problems.map((problem) => problem.code),
    ['TOPOLOGY_DUPLICATE_IP', 'TOPOLOGY_UNKNOWN_REFERENCE', 'TOPOLOGY_WEB_SERVICES_OVERRIDE', 'TOPOLOGY_POOL_RECORD'],
  );
  const lines = problems.map((problem) => problem.line);
  assert.deepEqual(lines, [...lines].sort((left, right) => left - right));
});
