// Prometheus metrics (DESIGN §2: admin/ owns them): one prom-client registry per process component,
// samples read from the component's own counters at scrape time, and GET /metrics either as a route
// of the admin API or on a small listener of its own (`dns serve --metrics-listen`).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry as PromRegistry } from 'prom-client';
import { assert } from '../shared/assert.ts';
import { DnslbError } from '../shared/errors.ts';
import { describeListenError } from '../shared/listen-error.ts';
import type { AdminApi } from './http-api.ts';

/**
 * prom-client's registry, counting its scrapes: every metrics() call is one scrape, so that
 * oncePerScrape can tell one scrape's collectors from the next scrape's without guessing from the
 * event loop.
 */
export class Registry extends PromRegistry {
  #scrapes = 0;
  /** How many scrapes have started. */
  get scrapes(): number {
    return this.#scrapes;
  }

  override metrics(): Promise<string> {
    this.#scrapes += 1;
    return super.metrics();
  }
}
export type Labels = Record<string, string>;

/** What a collect-time metric reads: one number, or one number per label set. */
export type Samples = number | Iterable<readonly [Labels, number]>;

export interface MetricSpec {
  /** `dnslb_…`, units in the name; a counter's ends in `_total`. */
  name: string;
  /** What it counts and why one would look at it (the `# HELP` line). */
  help: string;
  labelNames?: readonly string[];
  /** Called at each scrape; never on the component's own hot path. */
  read: () => Samples;
}

const NAME = /^dnslb_[a-z0-9_]+$/;

/**
 * A registry of its own (never prom-client's global one: a test may build several in one process),
 * with the default process metrics (CPU, memory, event loop lag, GC, handles) under `dnslb_`.
 */
export function createRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'dnslb_' });
  return registry;
}

function* samplesOf(samples: Samples): Iterable<readonly [Labels, number]> {
  if (typeof samples === 'number') yield [{}, samples];
  else yield* samples;
}

/** A gauge whose value(s) are read from `spec.read` at each scrape; label sets not read are gone. */
export function collectedGauge(registry: Registry, spec: MetricSpec): Gauge {
  assert(NAME.test(spec.name), `metric name ${spec.name}`);
  return new Gauge({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of samplesOf(spec.read())) this.set(labels, value);
    },
  });
}

/**
 * A counter read from a component's own running total at each scrape (the total only grows, so the
 * counter does too; a restart of the process starts it at 0, as Prometheus expects of counters).
 */
export function collectedCounter(registry: Registry, spec: MetricSpec): Counter {
  assert(NAME.test(spec.name) && spec.name.endsWith('_total'), `counter name ${spec.name}`);
  return new Counter({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of samplesOf(spec.read())) this.inc(labels, value);
    },
  });
}

/** One sample per value of an enumeration, 1 for the current one and 0 for the others (so `== 1` finds it). */
export function oneOf(label: string, values: readonly string[], current: string, base: Labels = {}): [Labels, number][] {
  return values.map((value) => [{ ...base, [label]: value }, value === current ? 1 : 0]);
}

/**
 * `read` called at most once per scrape of `registry`: every metric of one scrape sees the same
 * snapshot (one `status()` call, not one per metric), and the next scrape reads again.
 */
export function oncePerScrape<T>(registry: Registry, read: () => T): () => T {
  let cached: { scrape: number; value: T } | undefined;
  return () => {
    if (cached?.scrape !== registry.scrapes) cached = { scrape: registry.scrapes, value: read() };
    return cached.value;
  };
}

/** GET /metrics on an admin API (behind its bearer token, as every admin route). */
export function addMetricsRoute(api: AdminApi, registry: Registry): AdminApi {
  return api.route('GET', '/metrics', async () => ({ body: await registry.metrics(), contentType: registry.contentType }));
}

export interface MetricsListener {
  /** `http://ADDRESS:PORT/metrics` */
  url: string;
  close(): Promise<void>;
}

/**
 * A listener that serves GET /metrics and nothing else, without a token: it is read-only and off
 * unless asked for, and the operator chooses where it binds (loopback or a management network).
 */
export async function listenMetrics(registry: Registry, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((request, response) => {
    request.resume();
    const path = new URL(request.url ?? '/', 'http://metrics').pathname;
    const text = (status: number, body: string, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
      response.end(body);
    };
    if (path !== '/metrics') return text(404, 'only /metrics here\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(405, 'GET /metrics\n', { allow: 'GET, HEAD' });
    registry.metrics().then(
      (body) => {
        response.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => text(500, `collecting metrics failed: ${(error as Error).message}\n`),
    );
  });
  // Scrapes are small and quick; a client that holds a connection open gets little of it.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    throw new DnslbError('ADMIN_METRICS_LISTEN', `the metrics listener cannot listen on ${await describeListenError(error, 'tcp', host, port)}`, { cause: error });
  }
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
