// planPoolMoves and parseMoveList: homes before and after a move between pools, every bad request named.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MULTI_POOL_FILE } from '../../test/helpers/topology-text.ts';
import { isDnslbError } from '../shared/errors.ts';
import { parseFile } from '../topology/parse.ts';
import { parseMoveList, planPoolMoves } from './move-plan.ts';
import { Sequencer } from './sequence.ts';

const topology = await parseFile(MULTI_POOL_FILE);
const POOL01 = new Sequencer(['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com']);
const POOL02 = new Sequencer(['fe4.contoso.com', 'fe5.contoso.com', 'fe6.contoso.com']);

function badInput(action: () => unknown, ...messages: RegExp[]): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(isDnslbError(error, 'CLI_BAD_INPUT'), String(error));
    for (const message of messages) assert.match(error.message, message);
    return true;
  });
}

describe('planPoolMoves', () => {
  test('a move: from the home server in the old pool to the home server in the new one', () => {
    const plan = planPoolMoves(topology, [{ user: 'sips:Alice@Contoso.com', pool: 'pool02.contoso.com' }]);
    assert.deepEqual(plan.moves, [
      {
        user: 'sip:Alice@contoso.com',
        from: { pool: 'pool01.contoso.com', server: POOL01.sequenceOf('sip:Alice@contoso.com')[0] },
        to: { pool: 'pool02.contoso.com', server: POOL02.sequenceOf('sip:Alice@contoso.com')[0] },
      },
    ]);
    assert.equal(plan.moved, 1);
    assert.equal(plan.unchanged, 0);
  });
  test('the store\'s explicit assignment is where a user is now; null drops it (back to the rules)', () => {
    const assignmentOf = (user: string): string | undefined => (user === 'sip:bob@contoso.com' ? 'pool02.contoso.com' : undefined);
    const plan = planPoolMoves(topology, [{ user: 'sip:bob@contoso.com', pool: null }], { assignmentOf });
    assert.equal(plan.moves[0]?.from?.pool, 'pool02.contoso.com');
    assert.equal(plan.moves[0]?.to.pool, 'pool01.contoso.com');
    assert.deepEqual(plan.flows.map((flow) => [flow.fromPool, flow.toPool, flow.count]), [['pool02.contoso.com', 'pool01.contoso.com', 1]]);
  });
  test('a user already homed on the target pool is unchanged', () => {
    const plan = planPoolMoves(topology, [{ user: 'sip:carol@dublin.contoso.com', pool: 'pool02.contoso.com' }]);
    assert.deepEqual([plan.users, plan.moved, plan.unchanged, plan.flows.length], [1, 0, 1, 0]);
  });
  test('with a server unavailable, the home is the next server of the sequence', () => {
    const first = POOL02.sequenceOf('sip:dan@contoso.com');
    const plan = planPoolMoves(topology, [{ user: 'sip:dan@contoso.com', pool: 'pool02.contoso.com' }], { available: (server) => server !== first[0] });
    assert.equal(plan.moves[0]?.to.server, first[1]);
  });
  test('every bad request is named, and nothing is planned', () => {
    badInput(
      () =>
        planPoolMoves(topology, [
          { user: 'sip:a@contoso.com', pool: 'edgepool.contoso.com', source: 'm.csv:1' },
          { user: 'tel:+14255550100', pool: 'pool02.contoso.com', source: 'm.csv:2' },
          { user: 'sip:b@contoso.com', pool: 'pool02.contoso.com', source: 'm.csv:3' },
          { user: 'sip:b@contoso.com', pool: 'pool01.contoso.com', source: 'm.csv:4' },
        ]),
      /3 bad moves; nothing was planned/,
      /m\.csv:1: edgepool\.contoso\.com is an edge pool; users move to frontend pools/,
      /m\.csv:2: not a sip or sips URI/,
      /m\.csv:4: sip:b@contoso\.com is already moved at m\.csv:3/,
    );
  });
});

describe('parseMoveList', () => {
  test('lines, a header, comments, blank lines and an empty pool', () => {
    assert.deepEqual(parseMoveList('user,pool\n# note\n\nsip:a@contoso.com, pool02.contoso.com\r\nsip:b@contoso.com,\n', 'm.csv'), [
      { user: 'sip:a@contoso.com', pool: 'pool02.contoso.com', source: 'm.csv:4' },
      { user: 'sip:b@contoso.com', pool: null, source: 'm.csv:5' },
    ]);
  });
  test('malformed lines name file:line', () => {
    badInput(() => parseMoveList('sip:a@contoso.com\nsip:b@contoso.com,pool02.contoso.com,extra\n,pool02.contoso.com\n', 'm.csv'), /3 malformed lines in m\.csv/, /m\.csv:1: expected "user,pool"/, /m\.csv:3:/);
  });
});
