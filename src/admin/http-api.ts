// A small JSON-over-HTTP server for the admin API: routes by method and path pattern, a bearer
// token on every request (except the few routes marked public: the dashboard's static files),
// bounded bodies, and errors as JSON with the DnslbError code.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DnslbError, isDnslbError } from '../shared/errors.ts';
import { describeListenError } from '../shared/listen-error.ts';
import { limits } from '../shared/limits.ts';
import { isAuthorized } from './credentials.ts';

export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

export interface Reply {
  status?: number;
  /** JSON unless `contentType` is given; then a string sent as it is (GET /metrics: Prometheus text). */
  body: unknown;
  contentType?: string;
  /** Extra response headers (the dashboard's Content-Security-Policy). */
  headers?: Record<string, string>;
}

export interface RouteOptions {
  /**
   * Served without the token. Only for what reveals nothing and changes nothing (the dashboard's
   * own HTML/JS/CSS): every data and action route keeps the token, so there is one rule to check.
   */
  public?: boolean;
}

export type Handler = (request: Request) => Promise<Reply> | Reply;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
  public: boolean;
}

/** Operating errors that are the caller's fault map to 4xx; the rest to 500/503. */
const STATUS_OF_CODE: Partial<Record<string, number>> = {
  ADMIN_BAD_REQUEST: 400,
  ADMIN_NOT_FOUND: 404,
  ADMIN_QUORUM: 409,
  STORE_STALE_VERSION: 409,
  STORE_UNKNOWN_SERVER: 404,
  STORE_NOT_FOUND: 404,
};

export class AdminApi {
  private readonly routes: Route[] = [];
  private server: Server | undefined;

  constructor(private readonly token: string) {}

  /**
   * `path` may hold `:name` segments (one segment each) and end in `:name*` (the rest of the path,
   * maybe empty, slashes included), given to the handler in `params`.
   */
  route(method: string, path: string, handler: Handler, options: RouteOptions = {}): this {
    const names: string[] = [];
    const pattern = new RegExp(`^${path.replace(/:([a-zA-Z]+)(\*?)/g, (_, name: string, rest: string) => (names.push(name), rest ? '(.*)' : '([^/]+)'))}$`);
    this.routes.push({ method, pattern, names, handler, public: options.public === true });
    return this;
  }

  async listen(host: string, port: number): Promise<string> {
    this.server = createServer((request, response) => void this.handle(request, response));
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    try {
      await new Promise<void>((resolve, reject) => {
        this.server!.once('error', reject);
        this.server!.listen(port, host, () => resolve());
      });
    } catch (error) {
      this.server = undefined;
      throw new DnslbError('ADMIN_LISTEN', `the admin API cannot listen on ${await describeListenError(error, 'tcp', host, port)}`, { cause: error });
    }
    const address = this.server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${shown}:${address.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => {
      const text = `${JSON.stringify(body, null, 2)}\n`;
      response.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      response.end(text);
    };
    try {
      const url = new URL(request.url ?? '/', 'http://admin');
      const open = this.routes.find((candidate) => candidate.public && candidate.method === request.method && candidate.pattern.test(url.pathname));
      if (!open && !isAuthorized(request.headers.authorization, this.token)) {
        response.setHeader('www-authenticate', 'Bearer realm="dnslb"');
        send(401, { error: { code: 'ADMIN_UNAUTHORIZED', message: 'a bearer token is required (see the admin-token file in the data dir)' } });
        request.resume();
        return;
      }
      const route = open ?? this.routes.find((candidate) => candidate.method === request.method && candidate.pattern.test(url.pathname));
      if (!route) {
        const known = this.routes.some((candidate) => candidate.pattern.test(url.pathname));
        send(known ? 405 : 404, { error: { code: known ? 'ADMIN_METHOD' : 'ADMIN_NOT_FOUND', message: `${request.method} ${url.pathname} is not an admin route` } });
        request.resume();
        return;
      }
      const match = route.pattern.exec(url.pathname)!;
      const params = Object.fromEntries(route.names.map((name, index) => [name, decodePathSegment(match[index + 1]!)]));
      const body = await readJson(request);
      const reply = await route.handler({ method: request.method!, path: url.pathname, params, query: url.searchParams, body });
      if (reply.contentType !== undefined) {
        const text = String(reply.body);
        response.writeHead(reply.status ?? 200, { ...COMMON_HEADERS, ...reply.headers, 'content-type': reply.contentType, 'content-length': Buffer.byteLength(text) });
        response.end(text);
      } else send(reply.status ?? 200, reply.body);
    } catch (error) {
      if (isDnslbError(error)) send(STATUS_OF_CODE[error.code] ?? 500, { error: { code: error.code, message: error.message } });
      else send(500, { error: { code: 'ADMIN_INTERNAL', message: (error as Error).message } });
    }
  }
}

function decodePathSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw new DnslbError('ADMIN_BAD_REQUEST', `bad percent-encoding in the path: ${text}`, { cause: error });
  }
}

/** On every answer: never cached (states change every second), never sniffed into another type. */
const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

async function readJson(request: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limits.adminBodyBytesMax) throw new DnslbError('ADMIN_BAD_REQUEST', `request body over ${limits.adminBodyBytesMax} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new DnslbError('ADMIN_BAD_REQUEST', `request body is not JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** The CLI side: calls the admin API of a running system with its token. */
export async function callAdmin(url: string, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(new URL(path, url), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new DnslbError('ADMIN_NOT_RUNNING', `cannot reach the admin API at ${url}: ${(error as Error).cause ?? (error as Error).message}`, { cause: error });
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not dnslb's admin API at all: admin.json is left from a run that ended badly and its port now
    // belongs to something else.
    throw new DnslbError('ADMIN_NOT_RUNNING', `${url} answered ${response.status} with a body that is not JSON: not a dnslb admin API (admin.json left from an earlier run?)`);
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } }).error;
    const code = (error?.code ?? 'ADMIN_INTERNAL') as ConstructorParameters<typeof DnslbError>[0];
    throw new DnslbError(code, error?.message ?? `HTTP ${response.status}`);
  }
  return parsed;
}
