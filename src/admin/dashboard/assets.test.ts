// The dashboard's routes on a real pool admin API (a PoolAdmin over a file store, on a real socket):
// the fixed files with their content types and security headers, 404 for anything else under
// /dashboard/, no token for the page, the token still required for the data.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { tempFileStore } from '../../../test/helpers/temp-store.ts';
import { systemClock } from '../../shared/clock.ts';
import { parseFile } from '../../topology/parse.ts';
import type { AdminApi } from '../http-api.ts';
import { PoolAdmin } from '../pool-api.ts';
import { CONTENT_SECURITY_POLICY, DASHBOARD_PATHS, dashboardUrl } from './assets.ts';

const TOKEN = 'a'.repeat(43);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request: the path goes on the wire exactly as given (fetch would normalise `..` first). */
function get(base: string, path: string, options: { method?: string; token?: string } = {}): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: hostname, port, path, method: options.method ?? 'GET', headers: options.token ? { authorization: `Bearer ${options.token}` } : {} }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

const EXPECTED_TYPES: Record<string, string> = {
  '/dashboard': 'text/html; charset=utf-8',
  '/dashboard/dashboard.js': 'text/javascript; charset=utf-8',
  '/dashboard/model.js': 'text/javascript; charset=utf-8',
  '/dashboard/dashboard.css': 'text/css; charset=utf-8',
  '/dashboard/uPlot.iife.min.js': 'text/javascript; charset=utf-8',
  '/dashboard/uPlot.min.css': 'text/css; charset=utf-8',
};

describe('dashboard routes', () => {
  let api: AdminApi;
  let url = '';
  let store: Awaited<ReturnType<typeof tempFileStore>>;

  before(async () => {
    store = await tempFileStore();
    await store.publish(await parseFile(fileURLToPath(new URL('../../../examples/contoso.yaml', import.meta.url))), 0, { by: 'test' });
    api = new PoolAdmin({ store, token: TOKEN, clock: systemClock }).api();
    url = await api.listen('127.0.0.1', 0);
  });
  after(async () => {
    await api?.close();
    await store?.close();
  });

  test('serves exactly the fixed files, without the token, with their content types and security headers', async () => {
    assert.deepEqual([...DASHBOARD_PATHS].sort(), Object.keys(EXPECTED_TYPES).sort());
    for (const path of DASHBOARD_PATHS) {
      const answer = await get(url, path);
      assert.equal(answer.status, 200, path);
      assert.equal(answer.headers['content-type'], EXPECTED_TYPES[path], path);
      assert.equal(answer.headers['content-security-policy'], CONTENT_SECURITY_POLICY, path);
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(answer.headers['x-frame-options'], 'DENY', path);
      assert.equal(answer.headers['cache-control'], 'no-store', path);
      assert.equal(Number(answer.headers['content-length']), Buffer.byteLength(answer.body), path);
      assert.ok(answer.body.length > 0, path);
    }
    // uPlot's own build, byte for byte, from node_modules (no CDN).
    const uplot = createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js');
    assert.equal((await get(url, '/dashboard/uPlot.iife.min.js')).body, await readFile(uplot, 'utf8'));
  });

  test('the policy allows no inline script, and the page holds none: every script and style is a file of the list', async () => {
    assert.match(CONTENT_SECURITY_POLICY, /(^|; )default-src 'none'(;|$)/);
    assert.match(CONTENT_SECURITY_POLICY, /(^|; )script-src 'self'(;|$)/);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|\*/);
    const html = (await get(url, '/dashboard')).body;
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 2);
    for (const [, attributes, content] of scripts) {
      assert.equal(content!.trim(), '', 'no inline script');
      const source = /\bsrc="([^"]+)"/.exec(attributes!)?.[1];
      assert.ok(source && DASHBOARD_PATHS.includes(source), `script ${source}`);
    }
    for (const [, href] of html.matchAll(/<link rel="stylesheet" href="([^"]+)">/g)) assert.ok(DASHBOARD_PATHS.includes(href!), `stylesheet ${href}`);
    assert.doesNotMatch(html, /<style\b|\sstyle=|\son[a-z]+=/i, 'no inline style or event handler attribute');
    // The module imports only a file of the list.
    const module = (await get(url, '/dashboard/dashboard.js')).body;
    for (const [, imported] of module.matchAll(/^import .* from '\.\/([^']+)';$/gm)) assert.ok(DASHBOARD_PATHS.includes(`/dashboard/${imported}`), imported);
  });

  test('anything else under /dashboard/ is 404, with or without the token; nothing outside the list is read', async () => {
    const others = [
      '/dashboard/',
      '/dashboard/index.html',
      '/dashboard/assets.ts',
      '/dashboard/assets.test.ts',
      '/dashboard/dashboard.js/x',
      '/dashboard/..%2f..%2f..%2fpackage.json',
      '/dashboard/%2e%2e%2fassets.ts',
      '/dashboard/node_modules/uplot/package.json',
      '/dashboard/uPlot.iife.js',
    ];
    for (const path of others) {
      for (const token of [undefined, TOKEN]) {
        const answer = await get(url, path, token ? { token } : {});
        assert.equal(answer.status, 404, `${path} ${token ? 'with' : 'without'} token`);
        assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'ADMIN_NOT_FOUND');
      }
    }
    assert.equal((await get(url, '/dashboard/%zz')).status, 400, 'bad percent-encoding is the caller\'s error, not a crash');
    // `..` segments are resolved before routing: they leave /dashboard/ and meet the token check.
    for (const path of ['/dashboard/../status', '/dashboard/%2e%2e/status', '/dashboard/../admin-token']) assert.equal((await get(url, path)).status, 401, path);
  });

  test('the page needs no token, the data and the actions still do', async () => {
    assert.equal((await get(url, '/dashboard')).status, 200);
    const refused = await get(url, '/status');
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['x-content-type-options'], 'nosniff');
    assert.equal((await get(url, '/servers/fe1.contoso.com/block', { method: 'POST' })).status, 401);
    assert.equal((await get(url, '/metrics')).status, 401);
    const allowed = await get(url, '/status', { token: TOKEN });
    assert.equal(allowed.status, 200);
    assert.equal((JSON.parse(allowed.body) as { topologyVersion: number }).topologyVersion, 1);
    // Public means GET only: another method on the page is the token-guarded 405.
    assert.equal((await get(url, '/dashboard', { method: 'POST' })).status, 401);
    assert.equal((await get(url, '/dashboard', { method: 'POST', token: TOKEN })).status, 405);
  });

  test('the URL for the operator: the token in the fragment, encoded; or the address alone with a hint', () => {
    assert.equal(dashboardUrl('http://127.0.0.1:7300', 'abc-_9', true), 'http://127.0.0.1:7300/dashboard#token=abc-_9');
    assert.equal(dashboardUrl('http://[::1]:7300', 'a+b/c=', true), 'http://[::1]:7300/dashboard#token=a%2Bb%2Fc%3D');
    const bare = dashboardUrl('http://127.0.0.1:7300', 'secret-token', false);
    assert.match(bare, /^http:\/\/127\.0\.0\.1:7300\/dashboard \(/);
    assert.ok(!bare.includes('secret-token'));
  });
});
