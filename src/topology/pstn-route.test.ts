// routeForNumber over the multi-pool fixture and over generated route tables: most specific prefix
// wins, 484 when more digits could still reach a route, 404 with a reason otherwise.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MULTI_POOL_FILE } from '../../test/helpers/topology-text.ts';
import { fromObject, parseFile } from './parse.ts';
import { routeForNumber, routeDigits } from './pstn-route.ts';
import type { Topology, TopologyInput } from './schema.ts';

const topology = await parseFile(MULTI_POOL_FILE);

describe('routeForNumber on the multi-pool fixture', () => {
  // Routes: 0 redmond +1425 (11 digits), 1 nanp +1 (11), 2 international + (8–15).
  const found: [string, number, string][] = [
    ['tel:+1-425-555-0100', 0, '+14255550100'],
    ['sip:+14255550100@contoso.com;user=phone', 0, '+14255550100'],
    ['tel:+1-206-555-0100', 1, '+12065550100'],
    ['tel:+44-20-7946-0000', 2, '+442079460000'],
    ['tel:+12065550100999', 2, '+12065550100999'],
    ['tel:+12345678', 2, '+12345678'],
  ];
  for (const [uri, route, number] of found) {
    test(`${uri} → route ${route}`, () => {
      const result = routeForNumber(uri, topology);
      assert.ok(!('none' in result), JSON.stringify(result));
      assert.equal(result.route, route);
      assert.equal(result.number, number);
      assert.equal(result.pool, 'medpool.contoso.com');
      assert.deepEqual(result.gateways.map((gateway) => gateway.endpoint), [{ address: '127.0.2.90', port: 5060 }]);
    });
  }
  const refused: [string, 404 | 484, RegExp][] = [
    ['tel:+1425555', 484, /\+1425555 is incomplete: 7 digits, route "redmond" \(\+1425\) takes numbers of 11 digits/],
    ['tel:+1', 484, /incomplete: 1 digit,/],
    ['tel:+4420', 484, /route "international" \(\+\) takes numbers of 8–15 digits/],
    ['tel:555-0100;phone-context=+1-425', 404, /local number \(phone-context \+1-425\)/],
    ['sip:+14255550100@contoso.com', 404, /names a user, not a number/],
    ['tel:+1-425-CALL', 404, /not a global number/],
  ];
  for (const [uri, status, reason] of refused) {
    test(`${uri} → ${status}`, () => {
      const result = routeForNumber(uri, topology);
      assert.ok('none' in result, JSON.stringify(result));
      assert.equal(result.status, status);
      assert.match(result.reason, reason);
    });
  }
});

/** The fixture with other routes (all to its mediation pool). */
function withRoutes(routes: { prefix: string; digitsMin?: number; digitsMax?: number }[]): Topology {
  const document = JSON.parse(JSON.stringify(topology)) as TopologyInput & { pools: { gateways?: { endpoint: unknown }[] }[] };
  for (const pool of document.pools) pool.gateways?.forEach((gateway) => Object.assign(gateway, { endpoint: '127.0.2.90:5060' }));
  return fromObject({ ...document, pstn: { routes: routes.map((route) => ({ ...route, pool: 'medpool.contoso.com' })) } });
}

describe('routeForNumber on other route tables', () => {
  test('no routes: 404 saying so', () => {
    const result = routeForNumber('tel:+14255550100', withRoutes([]));
    assert.ok('none' in result && result.status === 404 && /no PSTN routes/.test(result.reason));
  });
  test('a number longer than its only route allows: 404 naming the route', () => {
    const result = routeForNumber('tel:+142555501001', withRoutes([{ prefix: '+1', digitsMax: 11 }]));
    assert.ok('none' in result && result.status === 404 && /12 digits, longer than route 0 \(\+1\) takes \(11\)/.test(result.reason), JSON.stringify(result));
  });
  test('a number no prefix starts: 404 listing the routes', () => {
    const result = routeForNumber('tel:+442079460000', withRoutes([{ prefix: '+1' }, { prefix: '+33' }]));
    assert.ok('none' in result && result.status === 404 && /no PSTN route for \+442079460000 \(routes: \+1, \+33\)/.test(result.reason), JSON.stringify(result));
  });

  test('property: the chosen route matches the number and no matching route has a longer prefix', () => {
    const route = fc.record({
      prefix: fc.stringMatching(/^\+[1-3]{0,4}$/),
      digitsMin: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
      digitsMax: fc.option(fc.integer({ min: 8, max: 15 }), { nil: undefined }),
    });
    // Unique prefixes, so that the table validates (routes of one prefix may not overlap).
    const routes = fc.uniqueArray(route, { minLength: 1, maxLength: 6, selector: (r) => r.prefix });
    fc.assert(
      fc.property(routes, fc.stringMatching(/^[1-3]{1,12}$/), (table, digits) => {
        const number = `+${digits}`;
        const result = routeForNumber(`tel:${number}`, withRoutes(table));
        const matches = table.filter((r) => {
          const range = routeDigits({ ...r, pool: 'x' });
          return number.startsWith(r.prefix) && digits.length >= range.min && digits.length <= range.max;
        });
        if ('none' in result) {
          assert.equal(matches.length, 0);
          // 484 only when some route's prefix agrees with the number and it is too short for it.
          const couldGrow = table.some((r) => (number.startsWith(r.prefix) || r.prefix.startsWith(number)) && digits.length < routeDigits({ ...r, pool: 'x' }).min);
          assert.equal(result.status, couldGrow ? 484 : 404, result.reason);
        } else {
          const chosen = table[result.route];
          assert.ok(chosen && matches.includes(chosen));
          assert.ok(matches.every((r) => r.prefix.length <= chosen.prefix.length));
        }
      }),
      { numRuns: 300 },
    );
  });
});

test('property: any text as a URI gets a route or a 404/484 with a reason, never an exception', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ maxLength: 60 }).map((text) => `tel:${text}`), fc.string({ maxLength: 60 }).map((text) => `sip:${text}@contoso.com;user=phone`)), (uri) => {
      const result = routeForNumber(uri, topology);
      if ('none' in result) {
        assert.ok(result.status === 404 || result.status === 484);
        assert.ok(result.reason.length > 0);
      } else {
        assert.match(result.number, /^\+[0-9]{1,15}$/);
      }
    }),
    { numRuns: 2000 },
  );
});
