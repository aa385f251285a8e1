// docs/errors.md and ERROR_CODES must list the same codes (fastify's errors.test.js habit): no code without
// documentation, no documented code that does not exist, and each listed once.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { DnslbError, ERROR_CODES, isDnslbError } from './errors.ts';

const DOCS = new URL('../../docs/errors.md', import.meta.url);

/** The codes docs/errors.md lists, from its lines "- `CODE` — meaning". */
async function documentedCodes(): Promise<string[]> {
  const text = await readFile(DOCS, 'utf8');
  return [...text.matchAll(/^- `([A-Z][A-Z0-9_]*)` — \S/gm)].map((match) => match[1] ?? '');
}

test('every code in ERROR_CODES is documented in docs/errors.md', async () => {
  const documented = new Set(await documentedCodes());
  const missing = ERROR_CODES.filter((code) => !documented.has(code));
  assert.deepEqual(missing, [], `add to docs/errors.md: ${missing.join(', ')}`);
});

test('every code documented in docs/errors.md exists in ERROR_CODES', async () => {
  const known = new Set<string>(ERROR_CODES);
  const unknown = (await documentedCodes()).filter((code) => !known.has(code));
  assert.deepEqual(unknown, [], `not in ERROR_CODES: ${unknown.join(', ')}`);
});

test('each code is listed once, in the code and in the docs', async () => {
  const documented = await documentedCodes();
  assert.equal(new Set(documented).size, documented.length, 'a code is listed twice in docs/errors.md');
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'a code is listed twice in ERROR_CODES');
});

test('DnslbError keeps its code and cause', () => {
  const cause = new Error('disk full');
  const error = new DnslbError('STORE_IO', 'cannot write', { cause });
  assert.equal(error.code, 'STORE_IO');
  assert.equal(error.cause, cause);
  assert.ok(isDnslbError(error, 'STORE_IO'));
  assert.ok(!isDnslbError(error, 'STORE_CORRUPT'));
  assert.ok(!isDnslbError(new Error('plain')));
});
