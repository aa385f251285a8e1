// SipTransport against real sockets on 127.0.3.x: well-behaved peers, slow and hostile senders, many
// idle connections, TLS (certificates made by openssl) and a real SIP peer (sipp).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { ensureCertificate } from '../../src/sip/certificates.ts';
import { SipTransport } from '../../src/sip/transport.ts';
import { createResponse, headerValue, type SipMessage, type SipRequest } from '../../src/sip/message.ts';
import { StreamFramer, type FrameEvent } from '../../src/sip/framer.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { createTestCertificates, type TestCertificates } from '../helpers/tls-certs.ts';
import type { Flow } from '../../src/sip/flow.ts';
import { eventually } from '../helpers/eventually.ts';

const HOST = '127.0.3.1';

function options(n: number, extra = ''): Buffer {
  return Buffer.from(
    [
      'OPTIONS sip:fe1.contoso.com SIP/2.0',
      `Via: SIP/2.0/TCP 127.0.3.2;branch=z9hG4bK-${n}`,
      'Max-Forwards: 70',
      'To: <sip:fe1.contoso.com>',
      `From: <sip:probe@contoso.com>;tag=p${n}`,
      `Call-ID: call-${n}@127.0.3.2`,
      `CSeq: ${n} OPTIONS`,
      extra,
      'Content-Length: 0',
      '',
      '',
    ]
      .filter((l, i, all) => l !== '' || i >= all.length - 2)
      .join('\r\n'),
  );
}

/** A raw client that collects what the server sends back, framed. */
class RawClient {
  readonly events: FrameEvent[] = [];
  closed = false;
  private readonly framer = new StreamFramer({ role: 'client' });
  private waiters: (() => void)[] = [];
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.events.push(...this.framer.push(chunk));
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }
  static async open(port: number, host = HOST): Promise<RawClient> {
    const socket = connect({ host, port, localAddress: '127.0.3.2' });
    await once(socket, 'connect');
    return new RawClient(socket);
  }
  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
  async until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  responses(): SipMessage[] {
    return this.events.flatMap((e) => (e.kind === 'message' ? [e.message] : []));
  }
}

/** A responder built on the transport: 200 to OPTIONS, echoing the request's Call-ID. */
function respond(transport: SipTransport): void {
  transport.on('message', (flow, message) => {
    if (message.kind === 'request' && message.method !== 'ACK') flow.send(createResponse(message, 200, { toTag: 'srv' }));
  });
}

describe('SipTransport over TCP', () => {
  const clock = new FakeClock();
  const transport = new SipTransport({ clock, idleTimeoutMs: 30_000, connectionsMax: 1500 });
  let port = 0;
  const clients: RawClient[] = [];
  const closes: string[] = [];

  before(async () => {
    port = (await transport.listen({ transport: 'tcp', host: HOST, port: 0 })).port;
    respond(transport);
    transport.on('flowClosed', (_flow, info) => closes.push(info.reason));
  });
  after(async () => {
    for (const c of clients) c.socket.destroy();
    await transport.close();
  });

  async function wellBehaved(n: number): Promise<void> {
    const client = await RawClient.open(port);
    clients.push(client);
    client.socket.write(options(n));
    await client.until(() => client.responses().length > 0);
    const response = client.responses()[0];
    assert.ok(response && response.kind === 'response');
    assert.equal(response.status, 200);
    assert.equal(headerValue(response, 'Call-ID'), `call-${n}@127.0.3.2`);
    client.socket.destroy();
  }

  test('answers a well-behaved OPTIONS and a CRLFCRLF ping with a CRLF pong', async () => {
    await wellBehaved(1);
    const client = await RawClient.open(port);
    clients.push(client);
    client.socket.write('\r\n\r\n');
    await client.until(() => client.events.some((e) => e.kind === 'pong'));
    client.socket.destroy();
  });

  test('a slow sender, one byte at a time, gets its answer', async () => {
    const client = await RawClient.open(port);
    clients.push(client);
    const bytes = options(2);
    for (const byte of bytes) {
      client.socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await client.until(() => client.responses().length > 0);
    assert.equal(client.responses()[0]?.kind === 'response' && client.responses()[0]?.kind, 'response');
    client.socket.destroy();
  });

  test('a megabyte header line closes the flow without buffering it', async () => {
    const client = await RawClient.open(port);
    clients.push(client);
    const flowClosed = once(transport, 'flowClosed');
    client.socket.write(Buffer.concat([Buffer.from('OPTIONS sip:a SIP/2.0\r\nX-Big: '), Buffer.alloc(1024 * 1024, 0x61)]));
    const [flow, info] = (await flowClosed) as [Flow, { reason: string }];
    assert.equal(info.reason, 'too-large');
    assert.ok(flow.closed);
    await client.until(() => client.closed);
    await wellBehaved(3);
  });

  test('Content-Length that lies: smaller → the rest is a bad message answered 400; larger → waits, then idle close', async () => {
    const short = await RawClient.open(port);
    clients.push(short);
    const base = options(4).toString().replace('Content-Length: 0', 'Content-Length: 2');
    // Body "hello" with Content-Length 2: "llo" + the next request makes a message whose start line is garbage.
    short.socket.write(base + 'hello' + options(5).toString());
    await short.until(() => short.responses().length >= 1 || short.closed);
    assert.equal(short.responses()[0]?.kind === 'response' && (short.responses()[0] as { status: number }).status, 200);

    const long = await RawClient.open(port);
    clients.push(long);
    long.socket.write(options(6).toString().replace('Content-Length: 0', 'Content-Length: 500') + 'short body');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(long.responses().length, 0);
    assert.equal(long.closed, false);
    clock.advance(30_000);
    await long.until(() => long.closed);
    assert.ok(closes.includes('idle'));
    await wellBehaved(7);
  });

  test('missing Content-Length on a stream: 400 naming it, then the flow closes', async () => {
    const client = await RawClient.open(port);
    clients.push(client);
    client.socket.write(options(8).toString().replace('Content-Length: 0\r\n', ''));
    await client.until(() => client.closed);
    const response = client.responses()[0];
    assert.ok(response && response.kind === 'response');
    assert.equal(response.status, 400);
    assert.equal(response.reason, 'Missing Content-Length header');
  });

  test('random bytes on many connections never crash it; it keeps answering', async () => {
    let seed = 42;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const hostile: RawClient[] = [];
    for (let i = 0; i < 20; i++) {
      const client = await RawClient.open(port);
      clients.push(client);
      hostile.push(client);
      const junk = Buffer.alloc(4096);
      for (let j = 0; j < junk.length; j++) junk[j] = next() & 0xff;
      if (i % 2 === 0) junk.write('INVITE sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\n', 0);
      client.socket.write(junk);
    }
    await wellBehaved(9);
    for (const c of hostile) c.socket.destroy();
  });

  test('2000 idle connections: the cap holds, the idle timeout clears them, service continues', async () => {
    const sockets: Socket[] = [];
    const refusedBefore = transport.stats().connectionsRefused;
    const acceptedAtStart = transport.stats().connectionsAccepted;
    for (let batch = 0; batch < 20; batch++) {
      const opened = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const socket = connect({ host: HOST, port, localAddress: '127.0.3.3' });
          socket.on('error', () => {});
          await once(socket, 'connect');
          return socket;
        }),
      );
      sockets.push(...opened);
    }
    // Wait until the server has seen every connection (accepted or refused at the cap): a
    // condition, not a pause, so a loaded machine only makes it slower.
    const acceptedBefore = acceptedAtStart;
    await eventually(() => {
      const stats = transport.stats();
      const seen = stats.connectionsAccepted - acceptedBefore + stats.connectionsRefused - refusedBefore;
      assert.ok(seen >= 2000, `the server has seen ${seen} of 2000 connections`);
    });
    assert.ok(transport.stats().flowsOpen <= 1500);
    assert.ok(transport.stats().connectionsRefused - refusedBefore >= 500);
    clock.advance(30_000);
    assert.equal(transport.stats().flowsOpen, 0);
    for (const s of sockets) s.destroy();
    await wellBehaved(10);
  });
});

describe('SipTransport over TLS', () => {
  const clock = new FakeClock();
  const transport = new SipTransport({ clock, tlsHandshakeTimeoutMs: 5000 });
  let certs: TestCertificates;
  let port = 0;

  before(async () => {
    certs = await createTestCertificates({ names: ['fe1.contoso.com'], ips: [HOST] });
    port = (await transport.listen({ transport: 'tls', host: HOST, port: 0, tls: { cert: certs.cert, key: certs.key } })).port;
    respond(transport);
  });
  after(async () => {
    await transport.close();
    await certs.cleanup();
  });

  test('exchanges a message over TLS with a client transport that verifies the certificate', async () => {
    const client = new SipTransport();
    try {
      const flow = await client.connect({ transport: 'tls', host: HOST, port, localAddress: '127.0.3.4', tls: { ca: certs.ca, servername: 'fe1.contoso.com' } });
      const answered = once(flow, 'message');
      flow.send(parseRequest(options(20)));
      const [response] = (await answered) as [SipMessage];
      assert.equal(response.kind === 'response' && response.status, 200);
      const pong = once(flow, 'pong');
      flow.ping();
      await pong;
    } finally {
      await client.close();
    }
  });

  test('a client that does not trust the CA is refused', async () => {
    const client = new SipTransport();
    try {
      await assert.rejects(client.connect({ transport: 'tls', host: HOST, port, tls: { servername: 'fe1.contoso.com' } }), { code: 'SIP_CONNECT' });
    } finally {
      await client.close();
    }
  });

  test('a TLS handshake that never finishes is closed after the handshake timeout', async () => {
    const socket = connect({ host: HOST, port, localAddress: '127.0.3.5' });
    socket.on('error', () => {});
    await once(socket, 'connect');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(socket.destroyed, false);
    const closed = once(socket, 'close');
    clock.advance(5000);
    await closed;
    assert.equal(transport.stats().handshakeTimeouts, 1);
  });
});

describe('SipTransport over TLS with optional client certificates (mutual TLS between servers)', () => {
  const transport = new SipTransport();
  let pool: TestCertificates;
  let other: TestCertificates;
  let port = 0;
  const accepted: Flow[] = [];

  before(async () => {
    pool = await createTestCertificates({ names: ['fe1.contoso.com'], ips: [HOST] });
    other = await createTestCertificates({ names: ['fe2.contoso.com'], ips: [] });
    port = (await transport.listen({ transport: 'tls', host: HOST, port: 0, tls: { cert: pool.cert, key: pool.key, ca: pool.ca, clientCertificates: 'optional' } })).port;
    transport.on('flow', (flow) => accepted.push(flow));
  });
  after(async () => {
    await transport.close();
    await pool.cleanup();
    await other.cleanup();
  });

  /** Connects with `credentials` and says what the accepting side's flow proved. */
  async function namesProved(credentials: { cert?: string; key?: string }): Promise<readonly string[] | null> {
    const client = new SipTransport();
    try {
      const before = accepted.length;
      const flow = await client.connect({ transport: 'tls', host: HOST, port, tls: { ca: pool.ca, servername: 'fe1.contoso.com', ...credentials } });
      assert.deepEqual(flow.certificateNames, ['fe1.contoso.com'], "the outbound flow: the server's verified certificate");
      await eventually(() => assert.equal(accepted.length, before + 1));
      return accepted.at(-1)!.certificateNames;
    } finally {
      await client.close();
    }
  }

  test("no client certificate: connected, nothing proved; the pool CA's: its names; another CA's: connected, nothing proved", async () => {
    assert.equal(await namesProved({}), null);
    // The test CA's second certificate: the same CA as the server's (its files sit in pool.dir).
    const issued = await ensureCertificate(pool.dir, 'fe2.contoso.com', { names: ['fe2.contoso.com'], ips: [], days: 1 });
    assert.deepEqual(await namesProved({ cert: await readFile(issued.certFile, 'utf8'), key: await readFile(issued.keyFile, 'utf8') }), ['fe2.contoso.com']);
    assert.equal(await namesProved({ cert: other.cert, key: other.key }), null, 'signed by another CA');
  });
});

function parseRequest(bytes: Buffer): SipRequest {
  const events = new StreamFramer({ role: 'server' }).push(bytes);
  const first = events[0];
  assert.ok(first && first.kind === 'message' && first.message.kind === 'request');
  return first.message;
}

describe('a real SIP peer: sipp', () => {
  const transport = new SipTransport();
  let port = 0;
  let dir = '';
  before(async () => {
    port = (await transport.listen({ transport: 'tcp', host: HOST, port: 0 })).port;
    respond(transport);
    dir = mkdtempSync(join(tmpdir(), 'dnslb-sipp-'));
  });
  after(async () => {
    await transport.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('sipp sends OPTIONS over TCP and gets 200 for each', async () => {
    const scenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="options">
  <send>
    <![CDATA[
OPTIONS sip:fe1.contoso.com SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:fe1.contoso.com>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: [len]

    ]]>
  </send>
  <recv response="200"/>
</scenario>
`;
    writeFileSync(join(dir, 'options.xml'), scenario);
    const child = spawn('sipp', ['-sf', join(dir, 'options.xml'), '-t', 't1', '-i', '127.0.3.6', '-p', '0', '-m', '5', '-r', '50', '-timeout', '20s', '-nostdin', '-trace_err', '-error_file', join(dir, 'err.log'), `${HOST}:${port}`], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0, `sipp failed: ${stderr}`);
      assert.ok(transport.stats().messagesReceived >= 5);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

