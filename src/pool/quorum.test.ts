// The quorum table and guard, row by row.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkQuorum, quorumOf } from './quorum.ts';

test('quorumOf follows Lync 2013 table', () => {
  const table: [number, number][] = [[1, 1], [2, 1], [3, 2], [4, 2], [5, 3], [6, 3], [7, 4], [8, 4], [9, 4], [10, 5], [11, 5], [12, 5]];
  for (const [size, quorum] of table) assert.equal(quorumOf(size), quorum, `pool of ${size}`);
});

test('checkQuorum refuses what would go below quorum and says why', () => {
  const pool = ['fe1', 'fe2', 'fe3'];
  const all = new Set(pool);
  assert.equal(checkQuorum(pool, all, ['fe1']).allowed, true);
  const two = checkQuorum(pool, all, ['fe1', 'fe2']);
  assert.equal(two.allowed, false);
  assert.equal(two.availableAfter, 1);
  assert.match(two.reason, /only 1 of 3 .* quorum of 2 .*--force/);
  // One server already down: draining a second breaks quorum.
  assert.equal(checkQuorum(pool, new Set(['fe2', 'fe3']), ['fe2']).allowed, false);
  // Taking out a server that is already unavailable changes nothing.
  assert.equal(checkQuorum(pool, new Set(['fe2', 'fe3']), ['fe1']).allowed, true);
});
