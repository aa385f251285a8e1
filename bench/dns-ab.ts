// A/B of `dns serve` throughput for a change on the hot path (first used for response rate limiting:
// its "off" check must cost nothing): a base checkout (another commit, with node_modules and build/
// beside it) against this tree with dns.rateLimit off and on (a rate no source reaches). bench:dns's
// setup — its topology and query mix, server pinned to core 0, dnsperf on core 1 — one server at a
// time, in alternating order, reporting q/s and server CPU per query, medians of ROUNDS.
//   git archive BASE | tar -x -C /tmp/base && ln -s $PWD/node_modules /tmp/base/ && cp -r build /tmp/base/
//   npx tsx bench/dns-ab.ts --base /tmp/base [--seconds 6] [--rounds 5]
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { start, waitUntil } from '../test/helpers/process.ts';
import { freePort } from '../test/helpers/free-port.ts';
const run = promisify(execFile);
const REPO = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const option = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const BASE = option('--base');
const SECONDS = Number(option('--seconds') ?? 6);
const ROUNDS = Number(option('--rounds') ?? 5);
if (!BASE) throw new Error('--base DIR: a checkout of the commit to compare with (see the comment at the top)');
const ADDRESS = '127.0.0.1';
const dir = await mkdtemp(join(tmpdir(), 'dnslb-dns-ab-'));
const example = await readFile(join(REPO, 'examples/contoso.yaml'), 'utf8');
const hosts = Array.from({ length: 1000 }, (_, i) => `        - { name: host${i}.contoso.com, type: A, value: 10.2.${i >> 8}.${i & 0xff} }`).join('\n');
const text = example
  .replace(/- \{ name: www\.contoso\.com.*\n/, `- { name: www.contoso.com, type: A, value: 127.0.0.80 }\n${hosts}\n`)
  .replace(/ {2}views:\n( {4}.*\n)+?(?= {2}secondaries)/, '  views:\n    - name: everyone\n      clients: ["0.0.0.0/0", "::/0"]\n');
await writeFile(join(dir, 'ab.yaml'), text);
await writeFile(join(dir, 'ab-rrl.yaml'), text.replace('  secondaries: []', '  secondaries: []\n  rateLimit: { responsesPerSecond: 1000000, slip: 2 }'));
const lines: string[] = [];
for (let i = 0; i < 10_000; i++) {
  const slot = i % 10;
  if (slot < 7) lines.push('pool01.contoso.com A');
  else if (slot === 7) lines.push(i % 20 === 7 ? '_sipinternaltls._tcp.contoso.com SRV' : '_sip._tls.contoso.com SRV');
  else if (slot === 8) lines.push(`host${(i * 7919) % 1000}.contoso.com A`);
  else lines.push(`nope${i}.contoso.com A`);
}
await writeFile(join(dir, 'queries.txt'), `${lines.join('\n')}\n`);
const variants: [string, string, string][] = [
  ['base', BASE, join(dir, 'ab.yaml')],
  ['this tree, RRL off', REPO, join(dir, 'ab.yaml')],
  ['this tree, RRL on (10^6/s)', REPO, join(dir, 'ab-rrl.yaml')],
];
const results = new Map<string, number[]>();
const cpuResults = new Map<string, number[]>();
const cpuSeconds = async (pid: number): Promise<number> => {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, repo, topology] of round % 2 === 0 ? variants : [...variants].reverse()) {
    const port = await freePort(ADDRESS);
    const child = start('taskset', ['-c', '0', process.execPath, 'bin/dnslb.js', 'dns', 'serve', topology, '--listen', `${ADDRESS}:${port}`, '--log-level', 'warn'], { cwd: repo });
    await waitUntil('listening', () => /listening/.test(child.output()), { process: child, timeoutMs: 60_000 });
    const cpu0 = await cpuSeconds(child.pid!);
    const { stdout } = await run('taskset', ['-c', '1', 'dnsperf', '-s', ADDRESS, '-p', String(port), '-d', join(dir, 'queries.txt'), '-l', String(SECONDS), '-c', '8', '-q', '200', '-t', '2'], { maxBuffer: 1 << 24 });
    const cpu = (await cpuSeconds(child.pid!)) - cpu0;
    await child.stop();
    const completed = Number(/Queries completed:\s+(\d+)/.exec(stdout)?.[1]);
    const us = (cpu * 1e6) / completed;
    cpuResults.set(name, [...(cpuResults.get(name) ?? []), us]);
    const qps = Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1]);
    const lost = /Queries lost:\s+(\d+)/.exec(stdout)?.[1];
    console.log(`round ${round + 1}: ${name.padEnd(26)} ${Math.round(qps)} q/s lost ${lost} ${us.toFixed(2)} µs CPU/query`);
    results.set(name, [...(results.get(name) ?? []), qps]);
  }
}
for (const [name, all] of results) {
  const sorted = [...all].sort((a, b) => a - b);
  const cpu = [...cpuResults.get(name)!].sort((a, b) => a - b);
  console.log(`${name.padEnd(26)} median ${Math.round(sorted[Math.floor(sorted.length / 2)]!)} q/s (${sorted.map(Math.round).join(', ')}); CPU/query median ${cpu[Math.floor(cpu.length / 2)]!.toFixed(2)} µs (${cpu.map((v) => v.toFixed(2)).join(', ')})`);
}
await rm(dir, { recursive: true, force: true });
