// The metrics core on real sockets: the DNS registry renders valid exposition text with exactly the
// numbers of the stats objects it reads, counters never go back, labels are escaped, GET /metrics is
// served by the standalone listener (no token) and the admin API (token), the supervisor's metrics.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import type { NotifyStats } from '../dns/notify.ts';
import type { DnsServerStats } from '../dns/server.ts';
import { WorkerStats } from '../dns/cluster.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import { parsePrometheusText, sampleValue } from '../../test/helpers/prom-text.ts';
import { registerDnsMetrics } from './dns-metrics.ts';
import { AdminApi } from './http-api.ts';
import { addMetricsRoute, collectedGauge, createRegistry, listenMetrics, oncePerScrape } from './metrics.ts';
import { registerSupervisorMetrics } from './supervisor-metrics.ts';

const HOST = '127.0.31.2';

function dnsSource() {
  const stats: DnsServerStats = { queries: 0, dropped: 0, formErrors: 0, serverFailures: 0, tcpConnections: 0, tcpRejected: 0, tcpIdleClosed: 0, rateLimitDropped: 0, rateLimitSlipped: 0 };
  const notify: NotifyStats = { sent: 0, retried: 0, acknowledged: 0, failed: 0 };
  const serials = new Map([['contoso.com', 2024010101]]);
  let open = 0;
  return {
    stats,
    notify,
    serials,
    setOpen: (value: number) => (open = value),
    source: { stats: () => stats, openConnections: () => open, notify, serials: () => serials, udpEngine: 'batch', workers: 0 },
  };
}

describe('DNS metrics', () => {
  test('exact sample lines for known stats, valid exposition text, every family typed and helped', async () => {
    const { stats, notify, serials, setOpen, source } = dnsSource();
    const registry = createRegistry();
    registerDnsMetrics(registry, source);
    Object.assign(stats, { queries: 12, dropped: 1, formErrors: 2, serverFailures: 0, tcpConnections: 3, tcpRejected: 4, tcpIdleClosed: 5 });
    Object.assign(notify, { sent: 7, retried: 2, acknowledged: 4, failed: 1 });
    serials.set('fabrikam.com', 5);
    setOpen(2);
    const text = await registry.metrics();
    const lines = new Set(text.split('\n'));
    for (const line of [
      'dnslb_dns_queries_total 12',
      'dnslb_dns_dropped_total 1',
      'dnslb_dns_format_errors_total 2',
      'dnslb_dns_server_failures_total 0',
      'dnslb_dns_tcp_connections_accepted_total 3',
      'dnslb_dns_tcp_connections_rejected_total 4',
      'dnslb_dns_tcp_connections_idle_closed_total 5',
      'dnslb_dns_tcp_connections_open 2',
      'dnslb_dns_zone_serial{zone="contoso.com"} 2024010101',
      'dnslb_dns_zone_serial{zone="fabrikam.com"} 5',
      'dnslb_dns_notify_sent_total 7',
      'dnslb_dns_notify_retried_total 2',
      'dnslb_dns_notify_acknowledged_total 4',
      'dnslb_dns_notify_failed_total 1',
      'dnslb_dns_udp_engine_info{engine="batch"} 1',
      'dnslb_dns_workers 0',
      '# TYPE dnslb_dns_queries_total counter',
      '# TYPE dnslb_dns_zone_serial gauge',
    ]) {
      assert.ok(lines.has(line), `missing line: ${line}`);
    }
    const families = parsePrometheusText(text);
    for (const family of families.values()) {
      assert.ok(family.name.startsWith('dnslb_'), family.name);
      assert.notEqual(family.help, '', `${family.name} has no help`);
      assert.notEqual(family.type, 'untyped', `${family.name} has no type`);
      if (family.type === 'counter') assert.ok(family.name.endsWith('_total'), `counter ${family.name} does not end in _total`);
    }
    // The default process metrics are there too, under the prefix.
    assert.ok(families.has('dnslb_process_resident_memory_bytes'));
    assert.ok(families.has('dnslb_nodejs_eventloop_lag_seconds'));
  });

  test('counters follow the stats and never go back, scrape after scrape (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ queries: fc.nat(1000), formErrors: fc.nat(10), sent: fc.nat(5) }), { minLength: 1, maxLength: 8 }), async (steps) => {
        const { stats, notify, source } = dnsSource();
        const registry = createRegistry({ processMetrics: false });
        registerDnsMetrics(registry, source);
        let previous = { queries: 0, formErrors: 0, sent: 0 };
        for (const step of steps) {
          stats.queries += step.queries;
          stats.formErrors += step.formErrors;
          notify.sent += step.sent;
          const families = parsePrometheusText(await registry.metrics());
          const now = {
            queries: sampleValue(families, 'dnslb_dns_queries_total'),
            formErrors: sampleValue(families, 'dnslb_dns_format_errors_total'),
            sent: sampleValue(families, 'dnslb_dns_notify_sent_total'),
          };
          assert.deepEqual(now, { queries: stats.queries, formErrors: stats.formErrors, sent: notify.sent });
          assert.ok(now.queries >= previous.queries && now.formErrors >= previous.formErrors && now.sent >= previous.sent);
          previous = now;
        }
      }),
      { numRuns: 30 },
    );
  });

  test('under --workers the sum keeps a dead worker\'s counts (no counter goes back on a re-fork)', () => {
    const one = (queries: number): DnsServerStats => ({ queries, dropped: 0, formErrors: 1, serverFailures: 0, tcpConnections: 0, tcpRejected: 0, tcpIdleClosed: 0, rateLimitDropped: 0, rateLimitSlipped: 0 });
    const sum = new WorkerStats();
    sum.report(1, one(10), 2);
    sum.report(2, one(5), 1);
    assert.equal(sum.stats().queries, 15);
    assert.equal(sum.openConnections(), 3);
    sum.retire(1);
    sum.report(3, one(0), 0);
    assert.deepEqual({ queries: sum.stats().queries, formErrors: sum.stats().formErrors, open: sum.openConnections() }, { queries: 15, formErrors: 3, open: 1 });
    sum.report(2, one(7), 0);
    assert.equal(sum.stats().queries, 17);
  });

  test('two registries in one process do not collide (no global registry)', async () => {
    const a = createRegistry();
    const b = createRegistry();
    registerDnsMetrics(a, dnsSource().source);
    const other = dnsSource();
    other.stats.queries = 99;
    registerDnsMetrics(b, other.source);
    assert.equal(sampleValue(parsePrometheusText(await a.metrics()), 'dnslb_dns_queries_total'), 0);
    assert.equal(sampleValue(parsePrometheusText(await b.metrics()), 'dnslb_dns_queries_total'), 99);
  });
});

describe('collect-time helpers', () => {
  test('label values with quotes, backslashes and newlines come back as they were', async () => {
    const registry = createRegistry({ processMetrics: false });
    const odd = 'a"b\\c\nd';
    collectedGauge(registry, { name: 'dnslb_test_odd', help: 'test', labelNames: ['peer'], read: () => [[{ peer: odd }, 3]] });
    assert.equal(sampleValue(parsePrometheusText(await registry.metrics()), 'dnslb_test_odd', { peer: odd }), 3);
  });

  test('a label set no longer read is gone from the next scrape (a peer that left the pool)', async () => {
    const registry = createRegistry({ processMetrics: false });
    let peers = ['fe2', 'fe3'];
    collectedGauge(registry, { name: 'dnslb_test_peers', help: 'test', labelNames: ['peer'], read: () => peers.map((peer) => [{ peer }, 1] as const) });
    assert.equal(parsePrometheusText(await registry.metrics()).get('dnslb_test_peers')!.samples.length, 2);
    peers = ['fe2'];
    assert.deepEqual(parsePrometheusText(await registry.metrics()).get('dnslb_test_peers')!.samples.map((sample) => sample.labels['peer']), ['fe2']);
  });

  test('oncePerScrape: every metric of one scrape sees one snapshot; the next scrape reads again', async () => {
    const registry = createRegistry({ processMetrics: false });
    let reads = 0;
    const status = oncePerScrape(registry, () => ({ n: ++reads }));
    for (const name of ['dnslb_test_a', 'dnslb_test_b', 'dnslb_test_c']) collectedGauge(registry, { name, help: 'test', read: () => status().n });
    const first = parsePrometheusText(await registry.metrics());
    assert.deepEqual(['dnslb_test_a', 'dnslb_test_b', 'dnslb_test_c'].map((name) => sampleValue(first, name)), [1, 1, 1]);
    assert.equal(sampleValue(parsePrometheusText(await registry.metrics()), 'dnslb_test_b'), 2);
  });
});

describe('GET /metrics over HTTP', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closers) await close();
  });

  test('the standalone listener: no token, Prometheus content type, only GET /metrics', async () => {
    const { stats, source } = dnsSource();
    stats.queries = 42;
    const registry = createRegistry();
    registerDnsMetrics(registry, source);
    const listener = await listenMetrics(registry, HOST, 0);
    closers.push(listener.close);
    assert.match(listener.url, /^http:\/\/127\.0\.31\.2:\d+\/metrics$/);
    const response = await fetch(listener.url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(sampleValue(parsePrometheusText(await response.text()), 'dnslb_dns_queries_total'), 42);
    assert.equal((await fetch(listener.url.replace('/metrics', '/status'))).status, 404);
    const post = await fetch(listener.url, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('a listen address in use is ADMIN_METRICS_LISTEN', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, HOST, resolve));
    closers.push(() => new Promise((resolve) => holder.close(() => resolve())));
    const port = (holder.address() as { port: number }).port;
    await assert.rejects(listenMetrics(createRegistry({ processMetrics: false }), HOST, port), { code: 'ADMIN_METRICS_LISTEN' });
  });

  test('on the admin API: behind the bearer token like every route, text not JSON', async () => {
    const registry = createRegistry();
    registerDnsMetrics(registry, dnsSource().source);
    const api = addMetricsRoute(new AdminApi('secret-token'), registry);
    const url = await api.listen(HOST, 0);
    closers.push(() => api.close());
    assert.equal((await fetch(`${url}/metrics`)).status, 401);
    const response = await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer secret-token' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), registry.contentType);
    assert.equal(sampleValue(parsePrometheusText(await response.text()), 'dnslb_dns_udp_engine_info', { engine: 'batch' }), 1);
  });
});

describe('supervisor metrics', () => {
  test('children per state, each child\'s state, restarts of a child that keeps dying', async () => {
    const supervisor = new Supervisor(
      [
        { name: 'dns', command: process.execPath, args: ['-e', 'setTimeout(() => {}, 60000)'] },
        { name: 'fe1.contoso.com', command: process.execPath, args: ['-e', 'process.exit(3)'] },
      ],
      { restartDelayMs: 20, output: () => {} },
    );
    const registry = createRegistry({ processMetrics: false });
    registerSupervisorMetrics(registry, supervisor);
    try {
      supervisor.startAll();
      let families = parsePrometheusText(await registry.metrics());
      for (let waited = 0; sampleValue(families, 'dnslb_supervisor_child_restarts_total', { child: 'fe1.contoso.com' }) < 2; waited += 20) {
        assert.ok(waited < 60_000, 'fe1 was never restarted twice');
        await new Promise((resolve) => setTimeout(resolve, 20));
        families = parsePrometheusText(await registry.metrics());
      }
      assert.equal(sampleValue(families, 'dnslb_supervisor_child_state', { child: 'dns', state: 'running' }), 1);
      assert.equal(sampleValue(families, 'dnslb_supervisor_child_state', { child: 'dns', state: 'stopped' }), 0);
      assert.equal(sampleValue(families, 'dnslb_supervisor_child_restarts_total', { child: 'dns' }), 0);
      const perState = families.get('dnslb_supervisor_children')!.samples;
      assert.equal(perState.reduce((sum, sample) => sum + sample.value, 0), 2);
      assert.deepEqual(perState.map((sample) => sample.labels['state']).sort(), ['restarting', 'running', 'starting', 'stopped', 'stopping']);
    } finally {
      await supervisor.shutdown();
    }
    const families = parsePrometheusText(await registry.metrics());
    assert.equal(sampleValue(families, 'dnslb_supervisor_children', { state: 'stopped' }), 2);
  });
});
