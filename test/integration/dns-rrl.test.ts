// Response rate limiting on UDP (src/dns/rrl.ts) in a real `dnslb dns serve`: dnsperf floods it at
// 20,000 q/s from one address while a second dnsperf, from another /24, asks at 50 q/s. The flood's
// prefix gets at most responsesPerSecond full answers a second, every slip-th response over it truncated
// (TC=1) and the rest dropped, counted in /metrics; the other source is answered every time, in
// full (dig during the flood: no TC, the answer there). TCP is not limited: the flood's own address
// gets its answer over TCP. With --workers 2 each worker limits at half the rate.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prom-text.ts';

const run = promisify(execFile);
const SERVER = '127.0.61.1';
const FLOODER = '127.0.62.1';
const CLIENT = '127.0.63.1';
const RATE = 100;

interface Perf {
  sent: number;
  completed: number;
  lost: number;
  seconds: number;
}

async function dnsperf(dns: RunningDns, from: string, queries: string, options: { qps: number; seconds: number; outstanding: number }): Promise<Perf> {
  const args = ['-a', from, '-s', dns.address, '-p', String(dns.port), '-d', queries, '-l', String(options.seconds), '-Q', String(options.qps), '-c', '4', '-q', String(options.outstanding), '-t', '2'];
  const { stdout } = await run('dnsperf', args, { maxBuffer: 16 * 1024 * 1024 });
  const number = (pattern: RegExp): number => Number(pattern.exec(stdout)?.[1]);
  const perf = { sent: number(/Queries sent:\s+(\d+)/), completed: number(/Queries completed:\s+(\d+)/), lost: number(/Queries lost:\s+(\d+)/), seconds: number(/Run time \(s\):\s+([\d.]+)/) };
  assert.ok(Number.isFinite(perf.sent) && Number.isFinite(perf.completed), `dnsperf's output:\n${stdout}`);
  return perf;
}

async function metrics(dns: RunningDns): Promise<{ dropped: number; slipped: number; queries: number }> {
  const families = parsePrometheusText(await (await fetch(dns.metricsUrl!)).text());
  return { dropped: sampleValue(families, 'dnslb_dns_rate_limit_dropped_total'), slipped: sampleValue(families, 'dnslb_dns_rate_limit_slipped_total'), queries: sampleValue(families, 'dnslb_dns_queries_total') };
}

async function dig(dns: RunningDns, from: string, tcp = false): Promise<string> {
  const { stdout } = await run('dig', [...(tcp ? ['+tcp'] : ['+ignore']), '+tries=1', '+time=3', '-b', from, '-p', String(dns.port), `@${dns.address}`, 'contoso.com', 'SOA']);
  return stdout;
}

for (const workers of [0, 2]) {
  describe(`response rate limiting on UDP${workers > 0 ? `, --workers ${workers}` : ''}`, () => {
    let dir = '';
    let dns: RunningDns | undefined;
    let queries = '';

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'dnslb-rrl-'));
      const topology = join(dir, 'topology.yaml');
      writeFileSync(topology, readFileSync(`${REPO}/examples/contoso.yaml`, 'utf8').replace('  secondaries: []', `  secondaries: []\n  rateLimit: { responsesPerSecond: ${RATE}, slip: 2 }`));
      queries = join(dir, 'queries.txt');
      writeFileSync(queries, 'contoso.com SOA\npool01.contoso.com A\n');
      dns = await startDns([topology, '--listen', `${SERVER}:0`, '--metrics-listen', `${SERVER}:0`, '--workers', String(workers)]);
    });
    after(async () => {
      await dns?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('a 20,000 q/s flood from one address is limited; another address is answered every time, in full', async (t) => {
      const before = await metrics(dns!);
      const kernelDropsBefore = udpReceiveBufferErrors();
      // The flood waits at most 2 s for each answer, so up to 20,000 × 2 queries are outstanding.
      const flooding = dnsperf(dns!, FLOODER, queries, { qps: 20_000, seconds: 4, outstanding: 45_000 });
      const other = dnsperf(dns!, CLIENT, queries, { qps: 50, seconds: 4, outstanding: 100 });
      const digs: string[] = [];
      for (let i = 0; i < 5; i++) digs.push(await dig(dns!, CLIENT));
      const [flood, calm] = await Promise.all([flooding, other]);
      // Workers report their counters to the primary every second: wait until the counts hold still.
      let last = -1;
      const after = await eventually(async () => {
        const now = await metrics(dns!);
        const seen = now.queries;
        const moving = seen !== last;
        last = seen;
        assert.ok(!moving, 'counters still moving');
        return now;
      }, { intervalMs: 1500 });
      const dropped = after.dropped - before.dropped;
      const slipped = after.slipped - before.slipped;

      const full = flood.completed - slipped;
      t.diagnostic(`flood: ${flood.sent} sent in ${flood.seconds} s, ${full} answered in full, ${slipped} truncated, ${dropped} dropped (dnsperf lost ${flood.lost}); other address: ${calm.completed}/${calm.sent} answered`);
      // A 20,000 q/s flood can overflow a socket's receive buffer on a loaded 2-core machine: the kernel
      // then drops datagrams, the other address's among them, before the server (and its limiter) sees
      // them — what real resolvers retry. Only a loss the kernel does not account for is the limiter's.
      const kernelDrops = udpReceiveBufferErrors() - kernelDropsBefore;
      assert.ok(calm.lost <= kernelDrops, `the other address lost ${calm.lost} of ${calm.sent}, more than the ${kernelDrops} datagrams the kernel dropped for full receive buffers`);
      assert.equal(calm.completed + calm.lost, calm.sent);
      for (const answer of digs) {
        assert.match(answer, /status: NOERROR/);
        assert.doesNotMatch(answer, /flags:[^;]*\btc\b/, 'not truncated');
        assert.match(answer, /ANSWER: 1,/);
      }
      // The flood: the server saw it (nearly all its queries over the rate) and limited it. Full answers
      // are bounded by the rate over the run (one second's burst, plus the calm source's own answers
      // are not in this count); every second limited response slipped (TC=1), the others dropped.
      assert.ok(flood.sent > 10 * RATE * flood.seconds, `the flood sent ${flood.sent} in ${flood.seconds} s`);
      assert.ok(full <= RATE * (flood.seconds + 3), `${full} full answers to the flood in ${flood.seconds} s at ${RATE}/s`);
      assert.ok(dropped > 0 && slipped > 0, `dropped ${dropped}, slipped ${slipped}`);
      // Slip 2 alternates over every limited response (each worker keeps its own count: ±1 per worker).
      assert.ok(Math.abs(dropped - slipped) <= Math.max(1, workers), `dropped ${dropped} vs slipped ${slipped}`);
      assert.ok(flood.lost >= dropped, `dnsperf lost ${flood.lost}, at least what the server dropped (${dropped})`);
    });

    test('TCP is not limited: the flooding address is answered over TCP at once', async () => {
      const flooding = dnsperf(dns!, FLOODER, queries, { qps: 20_000, seconds: 2, outstanding: 45_000 });
      const answer = await dig(dns!, FLOODER, true);
      await flooding;
      assert.match(answer, /status: NOERROR/);
      assert.match(answer, /ANSWER: 1,/);
    });
  });
}

/** UDP datagrams the kernel dropped because a socket's receive buffer was full (/proc/net/snmp RcvbufErrors). */
function udpReceiveBufferErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((line) => line.startsWith('Udp:'));
  const [names, values] = lines.map((line) => line.split(/\s+/).slice(1));
  const index = names?.indexOf('RcvbufErrors') ?? -1;
  const value = index >= 0 ? Number(values?.[index]) : NaN;
  assert.ok(Number.isFinite(value), 'RcvbufErrors in /proc/net/snmp');
  return value;
}
