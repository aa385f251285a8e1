// The admin HTTP layer on a real socket: token required, routes with parameters, JSON errors with codes.
import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DnslbError } from '../shared/errors.ts';
import { ensureToken, readEndpoint, writeEndpoint } from './credentials.ts';
import { AdminApi, callAdmin } from './http-api.ts';

describe('admin API', () => {
  let api: AdminApi;
  let url = '';
  let token = '';

  before(async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-admin-'));
    const first = await ensureToken(dataDir);
    assert.equal(first.created, true);
    const again = await ensureToken(dataDir);
    assert.deepEqual(again, { token: first.token, created: false });
    assert.equal((await stat(join(dataDir, 'admin-token'))).mode & 0o777, 0o600);
    token = first.token;
    api = new AdminApi(token)
      .route('GET', '/status', () => ({ body: { ok: true } }))
      .route('POST', '/servers/:server/drain', (request) => ({ body: { server: request.params.server, body: request.body } }))
      .route('POST', '/servers/:server/block', () => {
        throw new DnslbError('ADMIN_QUORUM', 'below quorum');
      });
    url = await api.listen('127.0.0.1', 0);
    await writeEndpoint(dataDir, { url, pid: process.pid, startedAtMs: 1 });
    assert.equal((await readEndpoint(dataDir)).url, url);
  });
  after(() => api.close());

  test('no token or a wrong token: 401', async () => {
    assert.equal((await fetch(`${url}/status`)).status, 401);
    assert.equal((await fetch(`${url}/status`, { headers: { authorization: 'Bearer nope' } })).status, 401);
    await assert.rejects(callAdmin(url, `${token}x`, 'GET', '/status'), { code: 'ADMIN_UNAUTHORIZED' });
  });

  test('routes, parameters and bodies', async () => {
    assert.deepEqual(await callAdmin(url, token, 'GET', '/status'), { ok: true });
    assert.deepEqual(await callAdmin(url, token, 'POST', '/servers/fe1.contoso.com/drain', { force: true }), { server: 'fe1.contoso.com', body: { force: true } });
  });

  test('errors keep their code: unknown route 404, wrong method 405, operating errors mapped, bad JSON 400', async () => {
    await assert.rejects(callAdmin(url, token, 'GET', '/nothing'), { code: 'ADMIN_NOT_FOUND' });
    await assert.rejects(callAdmin(url, token, 'DELETE', '/status'), { code: 'ADMIN_METHOD' });
    await assert.rejects(callAdmin(url, token, 'POST', '/servers/fe1/block'), { code: 'ADMIN_QUORUM', message: 'below quorum' });
    const response = await fetch(`${url}/servers/fe1/drain`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{not json' });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'ADMIN_BAD_REQUEST');
  });

  test('a system that is not running is named as such', async () => {
    await assert.rejects(callAdmin('http://127.0.0.1:1', token, 'GET', '/status'), { code: 'ADMIN_NOT_RUNNING' });
    await assert.rejects(readEndpoint('/nonexistent-dir'), { code: 'ADMIN_NOT_RUNNING' });
  });
});
