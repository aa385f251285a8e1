// The dashboard's files on the pool admin API: a fixed list of paths, each mapped to one file on
// disk and its content type, served without the token (they hold no data; the page's calls carry it).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { DnslbError } from '../../shared/errors.ts';
import type { AdminApi, Reply } from '../http-api.ts';

const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));
// uPlot ships ready-made browser builds; served from node_modules because the machine (and many an
// operator's management network) has no way to a CDN.
const fromPackage = createRequire(import.meta.url).resolve;

/** URL path → file and content type. Nothing else is ever read: no path from the request reaches the file system. */
const FILES: ReadonlyMap<string, { file: string; contentType: string }> = new Map([
  ['/dashboard', { file: here('index.html'), contentType: 'text/html; charset=utf-8' }],
  ['/dashboard/dashboard.js', { file: here('dashboard.js'), contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard/model.js', { file: here('model.js'), contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard/dashboard.css', { file: here('dashboard.css'), contentType: 'text/css; charset=utf-8' }],
  ['/dashboard/uPlot.iife.min.js', { file: fromPackage('uplot/dist/uPlot.iife.min.js'), contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard/uPlot.min.css', { file: fromPackage('uplot/dist/uPlot.min.css'), contentType: 'text/css; charset=utf-8' }],
]);

export const DASHBOARD_PATHS: readonly string[] = [...FILES.keys()];

/**
 * Scripts and styles only from this origin (no inline script: an injected string can never run),
 * data only from this origin, no frames, no forms posted anywhere, no base-URL games.
 * uPlot sizes its elements through the CSSOM (element.style), which style-src does not restrict.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  // The token travels in the fragment, which no Referer carries; this keeps the page's own path out too.
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * The dashboard's address for an operator. The token rides in the fragment (`#token=…`): browsers
 * never send a fragment to the server, so it reaches no access log or proxy, and the page moves it
 * into the tab's sessionStorage and out of the address bar. Without it, the address and a hint.
 */
export function dashboardUrl(adminUrl: string, token: string, withToken: boolean): string {
  const page = new URL('/dashboard', adminUrl).href;
  return withToken ? `${page}#token=${encodeURIComponent(token)}` : `${page} (append #token= and the admin-token file's content, or paste the token in the page)`;
}

/** Adds GET /dashboard and its files (public), and a 404 for every other path under /dashboard/. */
export function addDashboardRoutes(api: AdminApi): AdminApi {
  // Read once, on first use: the files do not change under a running process.
  const cache = new Map<string, Promise<string>>();
  const serve = async (path: string): Promise<Reply> => {
    const entry = FILES.get(path);
    if (!entry) throw new DnslbError('ADMIN_NOT_FOUND', `${path} is not a dashboard file (there are ${DASHBOARD_PATHS.join(', ')})`);
    let text = cache.get(path);
    if (!text) {
      text = readFile(entry.file, 'utf8');
      cache.set(path, text);
      text.catch(() => cache.delete(path));
    }
    return { body: await text, contentType: entry.contentType, headers: HEADERS };
  };
  api.route('GET', '/dashboard', () => serve('/dashboard'), { public: true });
  api.route('GET', '/dashboard/:file*', (request) => serve(request.path), { public: true });
  return api;
}
