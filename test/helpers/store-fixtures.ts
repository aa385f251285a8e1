// What the store tests share: a small valid topology, its server names, and an assertion that a
// promise fails with a given DnslbError code.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isDnslbError } from '../../src/shared/errors.ts';
import { fromObject } from '../../src/topology/parse.ts';
import type { Topology } from '../../src/topology/schema.ts';
import type { UserRecord } from '../../src/store/users.ts';
import { topologyDocument, topologyShape } from './topology-arbitrary.ts';

/** A small valid topology; `servers` names the frontend pool's servers (fe1.example.com …). */
export function storeTopology(servers = 2, seed = 0): Topology {
  const shape = fc.sample(topologyShape, { numRuns: 1, seed })[0];
  assert.ok(shape);
  return fromObject(topologyDocument({ ...shape, prefix: 'x', pools: [{ ...(shape.pools[0] as (typeof shape.pools)[number]), kind: 'frontend', servers, loadBalancing: 'dns' }] }));
}

/** A valid topology with a frontend pool (xpool0…) and a director pool (xpool1…): home-pool checks need both kinds. */
export function storeTopologyWithDirector(seed = 0): Topology {
  const shape = fc.sample(topologyShape, { numRuns: 1, seed })[0];
  assert.ok(shape);
  const first = shape.pools[0] as (typeof shape.pools)[number];
  return fromObject(topologyDocument({ ...shape, prefix: 'x', pools: [{ ...first, kind: 'frontend', servers: 2, loadBalancing: 'dns' }, { ...first, kind: 'director', servers: 1, loadBalancing: 'dns' }] }));
}

/** A user record for the directory tests: HA1s are fixed hex strings (the store never sees a password). */
export function storeUser(uri: string, extra: { homePool?: string; disabled?: boolean; md5?: boolean } = {}): { uri: string; homePool?: string; disabled: boolean; credential: { realm: string; ha1Sha256: string; ha1Md5?: string } } {
  const realm = uri.slice(uri.lastIndexOf('@') + 1);
  return {
    uri,
    ...(extra.homePool === undefined ? {} : { homePool: extra.homePool }),
    disabled: extra.disabled ?? false,
    credential: { realm, ha1Sha256: 'a'.repeat(64), ...(extra.md5 ? { ha1Md5: 'b'.repeat(32) } : {}) },
  };
}

export function serverNames(value: Topology): string[] {
  return value.pools.flatMap((pool) => pool.servers.map((server) => server.fqdn));
}

/** Awaits `promise` and asserts it failed with DnslbError `code` (and a message including / matching `message`). */
export async function rejectsWith(promise: Promise<unknown>, code: string, message?: string | RegExp): Promise<Error> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(isDnslbError(caught), `expected DnslbError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (typeof message === 'string') assert.ok(caught.message.includes(message), caught.message);
  else if (message) assert.match(caught.message, message);
  return caught;
}

/** A full user record (as the store hands it out) for in-memory directories: `server.setUser(uri, storedRecord(uri, { homePool }))`. */
export function storedRecord(uri: string, extra: { homePool?: string; disabled?: boolean; md5?: boolean; number?: string } = {}): UserRecord {
  return { ...storeUser(uri, extra), ...(extra.number === undefined ? {} : { number: extra.number }), by: 'test', atMs: 0 };
}
