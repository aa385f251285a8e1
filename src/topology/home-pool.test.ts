// homePoolOf: explicit assignment, then home rules in order, then the default pool; no home is a reason.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { BASE_YAML, MULTI_POOL_FILE } from '../../test/helpers/topology-text.ts';
import { defaultHomePool, homePoolOf } from './home-pool.ts';
import { parse, parseFile } from './parse.ts';

const topology = await parseFile(MULTI_POOL_FILE);

describe('homePoolOf on the multi-pool fixture', () => {
  // Rules: 0 domain dublin.contoso.com → pool02, 1 sip:dub-*@contoso.com → pool02, 2 domain fabrikam.com → pool02; default pool01.
  const cases: [string, string | undefined, { pool: string; source: string; rule?: number }][] = [
    ['sip:alice@contoso.com', undefined, { pool: 'pool01.contoso.com', source: 'default' }],
    ['sip:dub-bob@contoso.com', undefined, { pool: 'pool02.contoso.com', source: 'rule', rule: 1 }],
    ['sip:Dub-bob@contoso.com', undefined, { pool: 'pool01.contoso.com', source: 'default' }],
    ['sip:carol@dublin.contoso.com', undefined, { pool: 'pool02.contoso.com', source: 'rule', rule: 0 }],
    ['sip:dave@fabrikam.com', undefined, { pool: 'pool02.contoso.com', source: 'rule', rule: 2 }],
    // The explicit assignment wins over the rules and the default, both ways.
    ['sip:alice@contoso.com', 'pool02.contoso.com', { pool: 'pool02.contoso.com', source: 'assignment' }],
    ['sip:dub-bob@contoso.com', 'POOL01.contoso.com.', { pool: 'pool01.contoso.com', source: 'assignment' }],
  ];
  for (const [user, assignment, expected] of cases) {
    test(`${user}${assignment ? ` assigned ${assignment}` : ''} → ${expected.pool} (${expected.source})`, () => {
      assert.deepEqual(homePoolOf(user, topology, assignment), expected);
    });
  }

  const none: [string, string | undefined, RegExp][] = [
    ['sip:eve@northwind.com', undefined, /northwind\.com is not a SIP domain of this deployment \(contoso\.com, dublin\.contoso\.com, fabrikam\.com\)/],
    ['sip:eve@contoso.com', 'pool09.contoso.com', /assigned to pool09\.contoso\.com, which is not a pool of the published topology/],
    ['sip:eve@contoso.com', 'dirpool.contoso.com', /assigned to dirpool\.contoso\.com, a director pool, not a frontend pool/],
    ['sips:eve@contoso.com', undefined, /not a canonical user URI/],
    ['eve@contoso.com', undefined, /not a canonical user URI/],
  ];
  for (const [user, assignment, reason] of none) {
    test(`${user}${assignment ? ` assigned ${assignment}` : ''} has no home`, () => {
      const result = homePoolOf(user, topology, assignment);
      assert.ok('none' in result, JSON.stringify(result));
      assert.match(result.reason, reason);
    });
  }
});

describe('the default pool', () => {
  test('one frontend pool and no homePools: that pool, for everyone', () => {
    const single = parse(BASE_YAML.replace(/ {2}- fqdn: pool02\.contoso\.com\n(?: {4}.*\n)+?(?= {2}- fqdn: dirpool)/, ''));
    assert.equal(single.pools.filter((pool) => pool.kind === 'frontend').length, 1);
    assert.equal(defaultHomePool(single), 'pool01.contoso.com');
    assert.deepEqual(homePoolOf('sip:alice@contoso.com', single), { pool: 'pool01.contoso.com', source: 'default' });
  });
  test('two frontend pools, no default, no rule matches: no home, never a guess', () => {
    const two = parse(BASE_YAML);
    assert.equal(defaultHomePool(two), null);
    const result = homePoolOf('sip:alice@contoso.com', two);
    assert.ok('none' in result);
    assert.match(result.reason, /sip:alice@contoso\.com has no home pool: not assigned, no home rules, and no homePools\.default \(2 frontend pools\)/);
  });
  test('two frontend pools with rules that do not match: the reason counts them', () => {
    const two = parse(`${BASE_YAML}homePools:\n  rules:\n    - { users: "sip:dub-*@contoso.com", pool: pool02.contoso.com }\n`);
    const result = homePoolOf('sip:alice@contoso.com', two);
    assert.ok('none' in result && /none of 1 home rule matches/.test(result.reason));
    assert.deepEqual(homePoolOf('sip:dub-x@contoso.com', two), { pool: 'pool02.contoso.com', source: 'rule', rule: 0 });
  });
});

test('property: the home is the first matching rule (checked with a regular expression), else the default', () => {
  const rulePattern = fc.tuple(fc.stringMatching(/^[ab*?]{1,4}$/), fc.constantFrom('contoso.com', 'dublin.contoso.com', '*')).map(([user, host]) => `sip:${user}@${host}`);
  const rules = fc.array(fc.record({ users: rulePattern, pool: fc.constantFrom('pool01.contoso.com', 'pool02.contoso.com') }), { maxLength: 5 });
  const user = fc.tuple(fc.stringMatching(/^[ab]{1,5}$/), fc.constantFrom('contoso.com', 'dublin.contoso.com')).map(([name, domain]) => `sip:${name}@${domain}`);
  const asRegExp = (glob: string): RegExp => new RegExp(`^${glob.replace(/[.]/g, '\\.').replace(/\*/g, '[^@]*').replace(/\?/g, '[^@]')}$`);
  fc.assert(
    fc.property(rules, user, (ruleList, uri) => {
      // Not validated: hidden rules are allowed here, the order alone must decide.
      const candidate = { ...topology, homePools: { default: 'pool01.contoso.com', rules: ruleList } };
      const expected = ruleList.findIndex((rule) => asRegExp(rule.users).test(uri));
      const result = homePoolOf(uri, candidate);
      assert.ok(!('none' in result));
      if (expected < 0) assert.deepEqual(result, { pool: 'pool01.contoso.com', source: 'default' });
      else assert.deepEqual(result, { pool: ruleList[expected]?.pool, source: 'rule', rule: expected });
    }),
    { numRuns: 1000 },
  );
});

test('property: any text as a user gets a home or a reason, never an exception', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), fc.option(fc.string({ maxLength: 60 }), { nil: undefined }), (text, assignment) => {
      const result = homePoolOf(text, topology, assignment);
      assert.ok('none' in result ? result.reason.length > 0 : topology.pools.some((pool) => pool.fqdn === result.pool && pool.kind === 'frontend'));
    }),
    { numRuns: 2000 },
  );
});
