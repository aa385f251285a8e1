// Rough in-process figure of the DNS hot path: readQuery + answerFor for the pool name, no sockets.
// Run: node --import tsx bench/dns-inprocess.ts   (not a test; numbers depend on the machine)
import dnsPacket from 'dns-packet';
import { LiveZones } from '../src/dns/live.ts';
import { DnsServer } from '../src/dns/server.ts';
import { systemClock, systemRandom } from '../src/shared/clock.ts';
import { parseFile } from '../src/topology/parse.ts';

const topology = await parseFile(new URL('../examples/contoso.yaml', import.meta.url).pathname);
const zones = new LiveZones({ topology, clock: systemClock, random: systemRandom });
await zones.start();
const server = new DnsServer({ listen: [], answers: zones, clock: systemClock });
const packet = dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'pool01.contoso.com', type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as dnsPacket.Answer] });
const durationMs = 2000;
const start = performance.now();
let count = 0;
while (performance.now() - start < durationMs) {
  for (let i = 0; i < 1000; i++) server.handle(packet, '127.0.0.1', true);
  count += 1000;
}
console.log(`in-process: ${Math.round(count / (durationMs / 1000))} queries/s (readQuery + answerFor, pool01 A with EDNS)`);
await zones.close();
