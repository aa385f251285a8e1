// Answer policies of a pool (`rotate` | `random` | `fixed`, with `maxRecords`): which orders of the
// address records to prebuild, and which prebuilt order answers the next query.
import { assert } from '../shared/assert.ts';
import type { Random } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';

export type PolicyName = 'rotate' | 'random' | 'fixed';

export interface AnswerPolicy {
  readonly name: PolicyName;
  /**
   * The orders to prebuild for `recordCount` records: each a list of distinct record indexes,
   * `maxRecords` long at most (0 = all). Computed once per zone build, never per query.
   */
  orders(recordCount: number, maxRecords: number): number[][];
  /** Which of `orderCount` prebuilt orders answers the query numbered `counter` (0, 1, 2…). */
  choose(orderCount: number, counter: number): number;
}

function width(recordCount: number, maxRecords: number): number {
  return maxRecords === 0 ? recordCount : Math.min(recordCount, maxRecords);
}

/** Each answer starts one record later than the one before (round robin, as Lync's DNS did). */
export const rotatePolicy: AnswerPolicy = {
  name: 'rotate',
  orders(recordCount, maxRecords) {
    if (recordCount === 0) return [[]];
    const take = width(recordCount, maxRecords);
    return Array.from({ length: recordCount }, (_, start) => Array.from({ length: take }, (_, i) => (start + i) % recordCount));
  },
  choose(orderCount, counter) {
    return counter % orderCount;
  },
};

/** The records in the order the topology lists them, every time. */
export const fixedPolicy: AnswerPolicy = {
  name: 'fixed',
  orders(recordCount, maxRecords) {
    return [Array.from({ length: width(recordCount, maxRecords) }, (_, i) => i)];
  },
  choose() {
    return 0;
  },
};

/**
 * A random order per answer, drawn from `limits.dnsRandomOrdersMax` shuffles prebuilt with the
 * injected Random (Fisher–Yates). Each record leads one of the prebuilt orders when there are
 * enough of them, so no server is starved by an unlucky draw.
 */
export function randomPolicy(random: Random): AnswerPolicy {
  return {
    name: 'random',
    orders(recordCount, maxRecords) {
      if (recordCount === 0) return [[]];
      const take = width(recordCount, maxRecords);
      const count = Math.min(limits.dnsRandomOrdersMax, Math.max(recordCount, factorial(recordCount)));
      const orders: number[][] = [];
      for (let k = 0; k < count; k++) {
        const order = Array.from({ length: recordCount }, (_, i) => i);
        for (let i = recordCount - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        // Lead with record k for the first recordCount orders: every record leads sometimes.
        if (k < recordCount) {
          const at = order.indexOf(k);
          [order[0], order[at]] = [order[at]!, order[0]!];
        }
        orders.push(order.slice(0, take));
      }
      return orders;
    },
    choose(orderCount) {
      const index = Math.floor(random() * orderCount);
      return index < orderCount ? index : orderCount - 1;
    },
  };
}

function factorial(n: number): number {
  let value = 1;
  for (let i = 2; i <= n && value < 1e6; i++) value *= i;
  return value;
}

export function policyFor(name: PolicyName, random: Random): AnswerPolicy {
  switch (name) {
    case 'rotate':
      return rotatePolicy;
    case 'fixed':
      return fixedPolicy;
    case 'random':
      return randomPolicy(random);
  }
  assert(false, `unknown policy ${String(name)}`);
}
