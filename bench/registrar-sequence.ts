// Registrar figures: sequenceOf per second (hrw64 vs SHA-256), spread and moves vs the 1/(n+1)
// minimum, and bytes per binding at 100,000 bindings.
// Run: node --expose-gc --import tsx bench/registrar-sequence.ts   (about 20 s on one core)
import { createHash } from 'node:crypto';
import { LocationService } from '../src/registrar/location.ts';
import type { RegisterFacts } from '../src/registrar/location.ts';
import { Sequencer, canonicalUser, planMoves, sequenceOf } from '../src/registrar/sequence.ts';
import { systemClock } from '../src/shared/clock.ts';

const pool = (count: number): string[] => Array.from({ length: count }, (_, index) => `fe${index + 1}.pool01.contoso.com`);
const users = (count: number): string[] => Array.from({ length: count }, (_, index) => `sip:user${index}@contoso.com`);

/** The alternative measured: weight = first 8 bytes of SHA-256(user ‖ 0x00 ‖ server). */
function sha256Sequence(user: string, servers: readonly string[]): string[] {
  const canonical = canonicalUser(user);
  return servers
    .map((server) => ({ server, weight: createHash('sha256').update(`${canonical}\u0000${server}`).digest().readBigUInt64BE(0) }))
    .sort((a, b) => (a.weight === b.weight ? a.server.localeCompare(b.server) : a.weight > b.weight ? -1 : 1))
    .map((entry) => entry.server);
}

function perSecond(label: string, run: (index: number) => unknown, budgetMs = 700): number {
  for (let index = 0; index < 2000; index++) run(index); // warm up
  let count = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < budgetMs) {
    for (let index = 0; index < 1000; index++) run(count + index);
    count += 1000;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const rate = (count / elapsedMs) * 1000;
  console.log(`${label.padEnd(48)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} /s`);
  return rate;
}

function firstShares(sequence: (user: string) => string[], servers: readonly string[], userList: readonly string[]): { min: number; max: number } {
  const counts = new Map(servers.map((server) => [server, 0]));
  for (const user of userList) {
    const first = sequence(user)[0]!;
    counts.set(first, counts.get(first)! + 1);
  }
  const shares = [...counts.values()].map((count) => (count / userList.length) * servers.length);
  return { min: Math.min(...shares), max: Math.max(...shares) };
}

console.log('== sequenceOf throughput');
const names = users(100_000);
for (const size of [3, 12]) {
  const servers = pool(size);
  const sequencer = new Sequencer(servers);
  perSecond(`hrw64 Sequencer.sequenceOf, ${size} servers`, (index) => sequencer.sequenceOf(names[index % names.length]!));
  perSecond(`hrw64 sequenceOf(user, list), ${size} servers`, (index) => sequenceOf(names[index % names.length]!, servers));
  perSecond(`sha256 alternative, ${size} servers`, (index) => sha256Sequence(names[index % names.length]!, servers));
}

console.log('\n== spread: share of users whose first server is each server, × n (1.00 = perfectly even), 100,000 users');
for (const size of [3, 12]) {
  const servers = pool(size);
  const sequencer = new Sequencer(servers);
  const hrw = firstShares((user) => sequencer.sequenceOf(user), servers, names);
  const sha = firstShares((user) => sha256Sequence(user, servers), servers, names);
  console.log(`${size} servers: hrw64 ${hrw.min.toFixed(3)}–${hrw.max.toFixed(3)}   sha256 ${sha.min.toFixed(3)}–${sha.max.toFixed(3)}`);
}

console.log('\n== one server failed: how its users spread over the others (30,000 users)');
for (const size of [3, 12]) {
  const servers = pool(size);
  const failed = servers[0]!;
  const plan = planMoves(users(30_000), { servers }, { servers, available: (server) => server !== failed });
  const shares = plan.flows.map((flow) => flow.count / plan.moved);
  console.log(`${size} servers, ${failed} failed: ${plan.moved} orphans over ${plan.flows.length} survivors, each took ${(100 * Math.min(...shares)).toFixed(1)}–${(100 * Math.max(...shares)).toFixed(1)} % (even: ${(100 / (size - 1)).toFixed(1)} %)`);
}

console.log('\n== users moved on commission / decommission vs the minimum (100,000 users)');
for (const size of [3, 12]) {
  const servers = pool(size);
  const added = [...servers, `fe${size + 1}.pool01.contoso.com`];
  const addPlan = planMoves(names, { servers }, { servers: added });
  console.log(`add a server to ${size}: moved ${(100 * addPlan.moved / addPlan.users).toFixed(2)} %, minimum 1/(n+1) = ${(100 / (size + 1)).toFixed(2)} %, all to the new server: ${addPlan.flows.every((flow) => flow.to === added.at(-1))}`);
  const removePlan = planMoves(names, { servers }, { servers: servers.slice(1) });
  console.log(`remove a server from ${size}: moved ${(100 * removePlan.moved / removePlan.users).toFixed(2)} %, minimum 1/n = ${(100 / size).toFixed(2)} %`);
}

console.log('\n== memory: bytes per binding at 100,000 bindings (one user, one binding, one flow each)');
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.log('run with node --expose-gc to measure memory');
} else {
  // Strings as a SIP parser hands them over: slices of a ~900-byte REGISTER, which must not be kept.
  const padding = 'x'.repeat(600);
  const request = (index: number): RegisterFacts => {
    const address = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}:${50_000 + (index % 10_000)}`;
    const callId = createHash('md5').update(String(index)).digest('hex');
    const message = `REGISTER sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/TLS ${address};branch=z9hG4bK${index}\r\nTo: <sip:user${index}@contoso.com>\r\nCall-ID: ${callId}\r\nContact: <sip:user${index}@${address};transport=tls;ob>\r\nUser-Agent: UCCAPI/16.0 ${padding}\r\n\r\n`;
    const cut = (name: string, end: string): string => {
      const start = message.indexOf(name) + name.length;
      return message.slice(start, message.indexOf(end, start));
    };
    return { aor: cut('To: <', '>'), callId: cut('Call-ID: ', '\r'), cseq: 1, flowId: `tls:${cut('TLS ', ';')}`, contacts: [{ uri: cut('Contact: <', '>') }] };
  };
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const location = new LocationService({ clock: systemClock });
  for (let index = 0; index < 100_000; index++) location.register(request(index), 'primary');
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  const counts = location.counts();
  console.log(`${counts.bindings} bindings of ${counts.users} users: ${Math.round((after - before) / counts.bindings)} bytes per binding on the heap, everything included (indexes by user and flow, the AOR, Contact, Call-ID and flow id strings)`);
  console.log('\n== location service operations (100,000 users held)');
  const refreshes = Array.from({ length: 1000 }, (_, index) => ({ ...request(index), cseq: 2 }));
  let cseq = 2;
  perSecond('register: refresh of an existing binding', (index) => {
    if (index % 1000 === 0) cseq++;
    return location.register({ ...refreshes[index % 1000]!, cseq }, 'primary');
  });
  perSecond('register: new user, then removed', (index) => {
    const facts = request(200_000 + (index % 1000));
    location.register({ ...facts, cseq: 2 * index + 1 }, 'primary');
    return location.register({ ...facts, cseq: 2 * index + 2, expiresS: 0 }, 'primary');
  });
}
