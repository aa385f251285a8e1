// The cost of mutual TLS on a server-to-server link (settings.interServer.transport tls vs tcp): the
// product's SipTransport on both ends, as FrontEndServer uses it (the accepting side asks for a client
// certificate and checks it against the pool CA; the connecting side presents its own and verifies the
// server's), on loopback 127.18.0.x. Measures
//   connect — time to open a link (TCP connect, + handshake with both certificates for TLS), median of N;
//   heartbeat — one OPTIONS and its 200 at a time over an open link (what a probe costs), median µs;
//   proxied — OPTIONS/200 pairs per second with 200 in flight on one link (what proxying through a
//             peer costs at load).
// bench:sip does not cross a server link (one server, no peers), hence this one.
// Usage: npx tsx bench/server-links.ts [--connects 200] [--pings 2000] [--seconds 5]. Writes bench/RESULTS.md ("Server links").
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { SipTransport } from '../src/sip/transport.ts';
import type { Flow } from '../src/sip/flow.ts';
import { createResponse, type SipMessage, type SipRequest } from '../src/sip/message.ts';
import { parseMessage } from '../src/sip/parse.ts';
import { serverCertificateFiles } from '../test/helpers/tls-certs.ts';
import { machineLine, writeSection } from './results.ts';

const { values } = parseArgs({ options: { connects: { type: 'string', default: '200' }, pings: { type: 'string', default: '2000' }, seconds: { type: 'string', default: '5' } } });
const CONNECTS = Number(values.connects);
const PINGS = Number(values.pings);
const SECONDS = Number(values.seconds);
const SERVER = '127.18.0.1';
const CLIENT = '127.18.0.2';
const IN_FLIGHT = 200;

const median = (list: number[]): number => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;

function options(n: number): SipRequest {
  const text = [`OPTIONS sip:fe1.bench.test SIP/2.0`, `Via: SIP/2.0/TLS ${CLIENT};branch=z9hG4bK-b${n}`, 'Max-Forwards: 0', `From: <sip:fe2.bench.test>;tag=b${n}`, 'To: <sip:fe1.bench.test>', `Call-ID: b${n}@bench`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

interface Figures {
  connectMs: number;
  pingUs: number;
  perSecond: number;
}

async function measure(mode: 'tcp' | 'tls'): Promise<Figures> {
  const fe1 = await serverCertificateFiles('fe1.bench.test', { ips: [SERVER] });
  const fe2 = await serverCertificateFiles('fe2.bench.test', { ips: [CLIENT] });
  const ca = await readFile(fe1.caFile, 'utf8');
  const server = new SipTransport();
  const tls = mode === 'tls' ? { cert: await readFile(fe1.certFile, 'utf8'), key: await readFile(fe1.keyFile, 'utf8'), ca, clientCertificates: 'optional' as const } : undefined;
  const { port } = await server.listen({ transport: mode, host: SERVER, port: 0, tls });
  let peers = 0;
  server.on('message', (flow: Flow, message: SipMessage) => {
    if (message.kind !== 'request') return;
    if (mode === 'tcp' || flow.certificateNames?.includes('fe2.bench.test')) peers++;
    flow.send(createResponse(message, 200, { toTag: 'x' }));
  });
  const client = new SipTransport();
  const clientTls = mode === 'tls' ? { ca, cert: await readFile(fe2.certFile, 'utf8'), key: await readFile(fe2.keyFile, 'utf8'), servername: 'fe1.bench.test' } : undefined;
  const connect = () => client.connect({ transport: mode, host: SERVER, port, localAddress: CLIENT, tls: clientTls });
  try {
    const connects: number[] = [];
    for (let index = 0; index < CONNECTS; index++) {
      const start = process.hrtime.bigint();
      const flow = await connect();
      connects.push(Number(process.hrtime.bigint() - start) / 1e6);
      flow.close();
    }
    const link = await connect();
    let waiting: (() => void) | null = null;
    let answered = 0;
    link.on('message', (message) => {
      if (message.kind !== 'response') return;
      answered++;
      waiting?.();
    });
    const pings: number[] = [];
    let n = 0;
    for (let index = 0; index < PINGS; index++) {
      const start = process.hrtime.bigint();
      const done = new Promise<void>((resolve) => (waiting = resolve));
      link.send(options(++n));
      await done;
      pings.push(Number(process.hrtime.bigint() - start) / 1e3);
    }
    // Pipelined: keep IN_FLIGHT requests outstanding for SECONDS seconds.
    answered = 0;
    let sent = 0;
    const endAt = Date.now() + SECONDS * 1000;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        if (Date.now() >= endAt) return resolve();
        while (sent - answered < IN_FLIGHT) {
          link.send(options(++n));
          sent++;
        }
      };
      waiting = pump;
      pump();
    });
    const perSecond = answered / SECONDS;
    if (peers === 0) throw new Error(`${mode}: the server never recognised the peer`);
    return { connectMs: median(connects), pingUs: median(pings), perSecond };
  } finally {
    await client.close();
    await server.close();
  }
}

const tcp = await measure('tcp');
const tls = await measure('tls');
const ratio = (a: number, b: number): string => (a / b).toFixed(2);
const table = [
  '| | TCP (interServer tcp) | mutual TLS (default) | TLS / TCP |',
  '|---|---:|---:|---:|',
  `| open a link (connect + handshake, median of ${CONNECTS}) | ${tcp.connectMs.toFixed(2)} ms | ${tls.connectMs.toFixed(2)} ms | ${ratio(tls.connectMs, tcp.connectMs)} |`,
  `| one OPTIONS/200 round trip on an open link (heartbeat probe, median of ${PINGS}) | ${tcp.pingUs.toFixed(0)} µs | ${tls.pingUs.toFixed(0)} µs | ${ratio(tls.pingUs, tcp.pingUs)} |`,
  `| OPTIONS/200 per second, ${IN_FLIGHT} in flight on one link (proxying at load, ${SECONDS} s) | ${tcp.perSecond.toFixed(0)} | ${tls.perSecond.toFixed(0)} | ${ratio(tls.perSecond, tcp.perSecond)} |`,
].join('\n');
console.log(table);
await writeSection(
  'Server links: mutual TLS vs TCP',
  `\`npx tsx bench/server-links.ts --connects ${CONNECTS} --pings ${PINGS} --seconds ${SECONDS}\` — ${machineLine()}

Both ends are the product's SipTransport in one process (no core pinning): the accepting side asks for a
client certificate and verifies it against the pool CA (EC P-256 certificates from src/sip/certificates.ts),
the connecting side presents its own and verifies the server's, as FrontEndServer's links do.

${table}

A link is opened once per pair of servers and kept (src/frontend/s2s.ts), so the handshake is paid at
start and after a failure; a pool of n servers sends n·(n−1) heartbeat OPTIONS per interval (1 s).`,
);
process.exit(0);
