// The shipped example topology stays valid: README, npm start and later tests depend on it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFile } from './parse.ts';

test('examples/contoso.yaml validates and is frozen', async () => {
  const topology = await parseFile(new URL('../../examples/contoso.yaml', import.meta.url).pathname);
  assert.equal(topology.pools.length, 4);
  assert.deepEqual(
    topology.pools.find((pool) => pool.kind === 'frontend')?.servers.map((server) => server.ipv4),
    ['127.0.0.11', '127.0.0.12', '127.0.0.13'],
  );
  assert.ok(Object.isFrozen(topology.pools[0]?.servers[0]));
});
