// The SIP bad-input suite, for any listener of a real server process: a slow sender, a megabyte header
// line, lying Content-Lengths, random bytes, a TLS handshake that never finishes, many idle
// connections. Each check sends its garbage and then asks `stillAnswers` whether the server still
// serves everyone else. Over TCP or TLS (an Edge's external interface is TLS only).
// Used by test/integration/frontend-bad-input.test.ts and edge-bad-input.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as connectTcp, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as connectTls } from 'node:tls';
import { waitUntil } from './process.ts';

export interface BadInputTarget {
  address: string;
  port: number;
  transport: 'tcp' | 'tls';
  /** TLS: the CA that signed the server's certificate, and the name to check. */
  ca?: string;
  servername?: string;
}

export interface OpenSocket {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

/** One connection to the target from `localAddress`, once connected (TLS: handshake done). */
export async function openTo(target: BadInputTarget, localAddress: string): Promise<OpenSocket> {
  const socket = connectTo(target, localAddress);
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  // Not events.once: it would reject on the socket's 'error' (a reset before 'close'), unhandled.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await once(socket, target.transport === 'tls' ? 'secureConnect' : 'connect');
  return { socket, received: () => text, closed };
}

/** A TCP or TLS connection from `localAddress` (net's option, which tls.connect passes on to its socket). */
function connectTo(target: BadInputTarget, localAddress: string): Socket {
  if (target.transport === 'tcp') return connectTcp({ host: target.address, port: target.port, localAddress });
  return connectTls({ host: target.address, port: target.port, ca: target.ca, servername: target.servername, ...{ localAddress } });
}

/** An OPTIONS to `requestUri` from `from` (Via), numbered `n` (its Call-ID is bad-n@from). */
export function optionsRequest(n: number, requestUri: string, from: string): string {
  return [
    `OPTIONS ${requestUri} SIP/2.0`,
    `Via: SIP/2.0/TCP ${from};branch=z9hG4bK-bad-${n}`,
    'Max-Forwards: 70',
    `To: <${requestUri}>`,
    `From: <sip:probe@contoso.com>;tag=b${n}`,
    `Call-ID: bad-${n}@${from}`,
    `CSeq: ${n} OPTIONS`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

export interface BadInputSuite {
  target: BadInputTarget;
  /** Where garbage comes from (another address answers `stillAnswers`). */
  from: string;
  /** The Request-URI of the OPTIONS the suite sends (the server itself). */
  requestUri: string;
  /** A fresh connection gets its OPTIONS answered 200; throws otherwise. */
  stillAnswers: () => Promise<void>;
}

let sequence = 0;

export function nextRequestNumber(): number {
  return ++sequence;
}

/** One byte at a time: the answer still comes. */
export async function slowSender(suite: BadInputSuite): Promise<void> {
  const client = await openTo(suite.target, suite.from);
  for (const byte of Buffer.from(optionsRequest(nextRequestNumber(), suite.requestUri, suite.from))) {
    client.socket.write(Buffer.from([byte]));
    if (byte === 0x0a) await sleep(5);
  }
  await waitUntil('slow OPTIONS answered', () => client.received().includes('SIP/2.0 200 OK'));
  client.socket.destroy();
  await suite.stillAnswers();
}

/** A megabyte header line closes that connection only. */
export async function megabyteHeader(suite: BadInputSuite): Promise<void> {
  const client = await openTo(suite.target, suite.from);
  client.socket.write(`OPTIONS ${suite.requestUri} SIP/2.0\r\nX-Long: ${'a'.repeat(1024 * 1024)}\r\n\r\n`);
  await client.closed;
  await suite.stillAnswers();
}

/** Too large a Content-Length is refused with 413 and a close; too small leaves garbage that gets 400 or a close. */
export async function lyingContentLength(suite: BadInputSuite): Promise<void> {
  const big = await openTo(suite.target, suite.from);
  big.socket.write(optionsRequest(nextRequestNumber(), suite.requestUri, suite.from).replace('Content-Length: 0', 'Content-Length: 10000000'));
  await big.closed;
  assert.match(big.received(), /^SIP\/2.0 413/);
  const short = await openTo(suite.target, suite.from);
  short.socket.write(optionsRequest(nextRequestNumber(), suite.requestUri, suite.from).replace('Content-Length: 0', 'Content-Length: 2') + 'this body is longer than it said\r\n\r\n');
  await waitUntil('short Content-Length handled', () => short.received().includes('SIP/2.0 200') && (short.received().includes('SIP/2.0 400') || short.socket.destroyed || short.socket.readableEnded));
  short.socket.destroy();
  await suite.stillAnswers();
}

/** `rounds` connections of random bytes: each answered 400 or closed, never a crash. */
export async function randomGarbage(suite: BadInputSuite, rounds = 50): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const client = await openTo(suite.target, suite.from);
    client.socket.write(randomBytes(2000 + round * 100));
    client.socket.end();
    await client.closed;
  }
  await suite.stillAnswers();
}

/** A TLS handshake that never finishes (a ClientHello header and nothing more) is dropped; others are served meanwhile. */
export async function stalledHandshake(suite: BadInputSuite, tlsPort: number): Promise<void> {
  const stalled = connectTcp({ host: suite.target.address, port: tlsPort, localAddress: suite.from });
  stalled.on('error', () => {});
  await once(stalled, 'connect');
  const closed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
  stalled.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff]));
  await suite.stillAnswers();
  await closed;
}

/**
 * `count` idle connections (over the target's transport: TLS ones finish their handshake) from
 * `sources`; resolves with them open, for the caller to check the server, and `close` to drop them.
 */
export async function idleConnections(target: BadInputTarget, count: number, sources: readonly string[]): Promise<{ sockets: Socket[]; close: () => void }> {
  const sockets: Socket[] = [];
  const pending: Promise<unknown>[] = [];
  for (let index = 0; index < count; index++) {
    const socket = connectTo(target, sources[index % sources.length]!);
    socket.on('error', () => {});
    sockets.push(socket);
    pending.push(once(socket, target.transport === 'tls' ? 'secureConnect' : 'connect').catch(() => undefined));
    if (pending.length >= 200) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return { sockets, close: () => sockets.forEach((socket) => socket.destroy()) };
}
