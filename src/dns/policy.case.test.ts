// The contract every answer policy honours (one suite, every policy through it), then what sets
// each policy apart.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { limits } from '../shared/limits.ts';
import { seededRandom as seeded } from '../../test/helpers/seeded-random.ts';
import { fixedPolicy, randomPolicy, rotatePolicy, type AnswerPolicy } from './policy.ts';

const policies: [string, () => AnswerPolicy][] = [
  ['rotate', () => rotatePolicy],
  ['random', () => randomPolicy(seeded(7))],
  ['fixed', () => fixedPolicy],
];

for (const [name, make] of policies) {
  describe(`answer policy contract: ${name}`, () => {
    for (const [recordCount, maxRecords] of [[0, 0], [1, 0], [3, 0], [5, 2], [4, 4], [4, 9], [12, 0]] as const) {
      test(`${recordCount} records, maxRecords ${maxRecords}: orders are lists of distinct valid indexes of the right length`, () => {
        const policy = make();
        const orders = policy.orders(recordCount, maxRecords);
        assert.ok(orders.length >= 1);
        const expectedLength = maxRecords === 0 ? recordCount : Math.min(recordCount, maxRecords);
        for (const order of orders) {
          assert.equal(order.length, expectedLength);
          assert.equal(new Set(order).size, order.length);
          for (const index of order) assert.ok(Number.isInteger(index) && index >= 0 && index < recordCount);
        }
        assert.ok(orders.length <= Math.max(recordCount, limits.dnsRandomOrdersMax));
      });
    }

    test('choose always names a prebuilt order', () => {
      const policy = make();
      for (const count of [1, 2, 3, 7, 24]) for (let counter = 0; counter < 60; counter++) {
        const chosen = policy.choose(count, counter);
        assert.ok(Number.isInteger(chosen) && chosen >= 0 && chosen < count);
      }
    });

    test('without maxRecords every order holds every record (a permutation)', () => {
      for (const order of make().orders(6, 0)) assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4, 5]);
    });

    test('one record: the one order is that record', () => {
      for (const order of make().orders(1, 0)) assert.deepEqual(order, [0]);
    });
  });
}

describe('what sets each policy apart', () => {
  test('rotate: each answer starts one record later, wrapping around', () => {
    const orders = rotatePolicy.orders(3, 0);
    const firsts = Array.from({ length: 7 }, (_, counter) => orders[rotatePolicy.choose(orders.length, counter)]![0]);
    assert.deepEqual(firsts, [0, 1, 2, 0, 1, 2, 0]);
    assert.deepEqual(orders[1], [1, 2, 0]);
  });

  test('rotate with maxRecords: a window that slides over all records', () => {
    assert.deepEqual(rotatePolicy.orders(4, 2), [[0, 1], [1, 2], [2, 3], [3, 0]]);
  });

  test('fixed: the topology order, every time, cut to maxRecords', () => {
    assert.deepEqual(fixedPolicy.orders(4, 0), [[0, 1, 2, 3]]);
    assert.deepEqual(fixedPolicy.orders(4, 3), [[0, 1, 2]]);
  });

  test('random: every record leads some prebuilt order, and choices spread over the orders', () => {
    const policy = randomPolicy(seeded(42));
    const orders = policy.orders(5, 0);
    assert.deepEqual(new Set(orders.map((order) => order[0])), new Set([0, 1, 2, 3, 4]));
    const firstSeen = new Set<number>();
    for (let counter = 0; counter < 400; counter++) firstSeen.add(orders[policy.choose(orders.length, counter)]![0]!);
    assert.equal(firstSeen.size, 5);
  });

  test('random: the same seed gives the same orders (randomness is injected)', () => {
    assert.deepEqual(randomPolicy(seeded(3)).orders(6, 0), randomPolicy(seeded(3)).orders(6, 0));
    assert.notDeepEqual(randomPolicy(seeded(3)).orders(6, 0), randomPolicy(seeded(4)).orders(6, 0));
  });
});
