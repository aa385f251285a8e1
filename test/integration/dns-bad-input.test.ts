// Bad input against the real server process: 100,000+ random and mutated packets over UDP and TCP,
// then a normal query must still be answered correctly and the process must still be running.
// Also: slow TCP clients closed after the idle timeout, and the connection cap holding while UDP
// keeps answering (neither depends on timing).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { seededRandom } from '../helpers/seeded-random.ts';
import { dig, startDns, type RunningDns } from '../helpers/dns-process.ts';

const random = seededRandom(20240601);
const byte = (): number => Math.floor(random() * 256);

function validQuery(name: string, edns: boolean): Buffer {
  const additionals = edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as dnsPacket.Answer] : [];
  return dnsPacket.encode({ id: byte() * 256 + byte(), type: 'query', questions: [{ name, type: 'A' }], additionals });
}

const header = (qd: number, an = 0, ns = 0, ar = 0): number[] => [byte(), byte(), 0, 0, 0, qd, 0, an, 0, ns, 0, ar];

/** The malformations the issue names, then random bytes and random mutations of valid queries. */
function badPacket(i: number): Buffer {
  const seed = validQuery(['pool01.contoso.com', 'Fe1.Contoso.Com', 'nope.contoso.com', 'example.org'][i % 4]!, i % 2 === 0);
  switch (i % 12) {
    case 0: return seed.subarray(0, Math.floor(random() * 12)); // truncated header
    case 1: { const p = Buffer.from(seed); p[5] = byte(); p[7] = byte(); p[11] = byte(); return p; } // counts that lie
    case 2: return Buffer.from([...header(1), 0xc0, 12, 0, 1, 0, 1]); // pointer to itself
    case 3: return Buffer.from([...header(1), 1, 0x61, 0xc0, 12, 0, 1, 0, 1]); // pointer loop
    case 4: return Buffer.from([...header(1), 64 + (i % 128), ...Buffer.alloc(80, 0x61), 0, 0, 1, 0, 1]); // label over 63
    case 5: return Buffer.from([...header(1), ...Array.from({ length: 5 }, () => [63, ...Buffer.alloc(63, 0x62)]).flat(), 0, 0, 1, 0, 1]); // name over 255
    case 6: return Buffer.from([...header(i % 3 === 0 ? 0 : 2), ...seed.subarray(12)]); // QDCOUNT 0 or 2
    case 7: { // huge OPT: an option claiming more than the packet holds
      const p = Buffer.concat([seed.subarray(0, seed.length), Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 10, 0xff, 0xf0])]);
      p[11] = (p[11]! + 1) & 0xff;
      return p;
    }
    case 8: return Buffer.concat([seed, Buffer.from(Array.from({ length: 1 + (i % 40) }, byte))]); // garbage after the question
    case 9: return Buffer.from(Array.from({ length: Math.floor(random() * 600) }, byte)); // random bytes
    default: { // random mutations of a valid query
      const p = Buffer.from(seed);
      const edits = 1 + Math.floor(random() * 6);
      for (let k = 0; k < edits; k++) p[Math.floor(random() * p.length)] = byte();
      return p.subarray(0, random() < 0.3 ? Math.floor(random() * p.length) : p.length);
    }
  }
}

describe('bad input over UDP and TCP', () => {
  let dns: RunningDns;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', '127.0.4.3:0']);
  });
  after(async () => {
    await dns?.stop();
  });

  test('80,000 bad UDP packets, then a normal query is answered and the server runs', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.4.4', resolve));
    let answered = 0;
    let sentinelSeen: ((id: number) => void) | undefined;
    socket.on('message', (message: Buffer) => {
      answered++;
      // A sentinel (a valid query with the 0xA5 marker in its ID's high byte) closes each batch.
      if (message.length >= 2 && message[0] === 0xa5) sentinelSeen?.(message[1]!);
    });
    const BATCH = 200;
    for (let sent = 0, batch = 0; sent < 80_000; sent += BATCH, batch++) {
      for (let k = 0; k < BATCH; k++) socket.send(badPacket(sent + k), dns.port, dns.address);
      // Wait for the sentinel's answer: the batch before it has been read (one socket, in order),
      // so the server really parsed every packet rather than the kernel dropping them.
      const id = 0xa500 | (batch & 0xff);
      const sentinel = dnsPacket.encode({ id, type: 'query', questions: [{ name: 'pool01.contoso.com', type: 'A' }] });
      await new Promise<void>((resolve) => {
        const retry = setInterval(() => socket.send(sentinel, dns.port, dns.address), 500);
        sentinelSeen = (low) => {
          if (low !== (batch & 0xff)) return;
          clearInterval(retry);
          resolve();
        };
        socket.send(sentinel, dns.port, dns.address);
      });
    }
    socket.close();
    assert.ok(answered > 40_000, `FORMERRs and answers came back (${answered})`);
    assert.equal(dns.child.exitCode, null);
    const result = await dig(dns, ['pool01.contoso.com', 'A']);
    assert.equal(result.status, 'NOERROR');
    assert.equal(result.answer.length, 3);
  });

  test('25,000 bad TCP frames (zero-length frames, lengths past the end, pipelined garbage), then a normal query', async () => {
    let frames = 0;
    let connections = 0;
    while (frames < 25_000) {
      connections++;
      const socket = net.connect(dns.port, dns.address);
      socket.on('error', () => {});
      socket.resume();
      await once(socket, 'connect');
      const chunks: Buffer[] = [];
      for (let k = 0; k < 250; k++, frames++) {
        const packet = badPacket(frames);
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(packet.length);
        chunks.push(prefix, packet);
      }
      // Every fourth connection ends with a zero-length frame, every fourth with a length larger than what follows.
      if (connections % 4 === 0) chunks.push(Buffer.from([0, 0]));
      if (connections % 4 === 1) chunks.push(Buffer.from([0xff, 0xff, 1, 2, 3]));
      socket.end(Buffer.concat(chunks));
      await once(socket, 'close');
    }
    assert.equal(dns.child.exitCode, null);
    const result = await dig(dns, ['+tcp', 'pool01.contoso.com', 'A']);
    assert.equal(result.status, 'NOERROR');
    assert.equal(result.answer.length, 3);
  });

  test('TCP pipelining: several queries in one write come back in order, each length-prefixed', async () => {
    const socket = net.connect(dns.port, dns.address);
    await once(socket, 'connect');
    const names = ['pool01.contoso.com', 'fe1.contoso.com', 'nope.contoso.com', 'dirpool.contoso.com'];
    socket.write(Buffer.concat(names.map((name, id) => {
      const packet = dnsPacket.encode({ id, type: 'query', questions: [{ name, type: 'A' }] });
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(packet.length);
      return Buffer.concat([prefix, packet]);
    })));
    const responses = await new Promise<dnsPacket.DecodedPacket[]>((resolve) => {
      let data = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const out: dnsPacket.DecodedPacket[] = [];
        let offset = 0;
        while (data.length - offset >= 2 && data.length - offset - 2 >= data.readUInt16BE(offset)) {
          out.push(dnsPacket.decode(data.subarray(offset + 2, offset + 2 + data.readUInt16BE(offset))));
          offset += 2 + data.readUInt16BE(offset);
        }
        if (out.length === names.length) resolve(out);
      });
    });
    socket.destroy();
    assert.deepEqual(responses.map((response) => response.id), [0, 1, 2, 3]);
    assert.deepEqual(responses.map((response) => (response as { rcode?: string }).rcode), ['NOERROR', 'NOERROR', 'NXDOMAIN', 'NOERROR']);
  });
});

/** One complete length-prefixed query over an open connection; resolves with the response's ID. */
async function queryOver(socket: net.Socket, id: number): Promise<number> {
  const packet = dnsPacket.encode({ id, type: 'query', questions: [{ name: 'pool01.contoso.com', type: 'A' }] });
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(packet.length);
  return new Promise<number>((resolve, reject) => {
    let data = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 2 && data.length - 2 >= data.readUInt16BE(0)) {
        socket.off('data', onData);
        resolve(data.readUInt16BE(2));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before answering')));
    socket.write(Buffer.concat([prefix, packet]));
  });
}

// Regression: this used to be one test with a 300 ms idle timeout, asserting that the first four
// connections were still open when the three over the cap had been closed; under full-suite load
// the idle timer could fire first. Now the cap is checked with an idle timeout far beyond the
// test's life (and the held connections prove they are open by answering), and the idle timeout
// on its own server, by waiting for the close: nothing depends on how fast the machine is.
describe('the TCP connection cap', () => {
  let dns: RunningDns;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', '127.0.4.5:0', '--tcp-idle-timeout-ms', '3600000', '--tcp-connections-max', '4']);
  });
  after(async () => {
    await dns?.stop();
  });

  test('over the cap, new connections are closed at once while UDP keeps answering; the held ones still answer', async () => {
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 7; i++) {
        const socket = net.connect(dns.port, dns.address);
        socket.on('error', () => {});
        await once(socket, 'connect');
        sockets.push(socket);
        // A slow client: one byte of a frame, never the rest.
        if (i >= 4) socket.write(Buffer.from([0]));
      }
      // UDP answers while TCP is full.
      const udp = await dig(dns, ['pool01.contoso.com', 'A']);
      assert.equal(udp.status, 'NOERROR');
      // The three over the cap are closed by the server (the idle timeout is an hour away).
      await Promise.all(sockets.slice(4).map((socket) => (socket.closed ? undefined : once(socket, 'close'))));
      // The four under the cap are still open: each answers a query.
      assert.deepEqual(await Promise.all(sockets.slice(0, 4).map((socket, i) => queryOver(socket, 100 + i))), [100, 101, 102, 103]);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    // Once they are gone, TCP works again for everyone (the server frees slots on close).
    const tcp = await dig(dns, ['+tcp', 'pool01.contoso.com', 'A']);
    assert.equal(tcp.status, 'NOERROR');
  });
});

describe('slow TCP clients', () => {
  let dns: RunningDns;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', '127.0.4.7:0', '--tcp-idle-timeout-ms', '300']);
  });
  after(async () => {
    await dns?.stop();
  });

  test('a client that trickles part of a frame is closed by the idle timeout', async () => {
    const socket = net.connect(dns.port, dns.address);
    socket.on('error', () => {});
    await once(socket, 'connect');
    const closed = once(socket, 'close');
    socket.write(Buffer.from([0]));
    await closed;
    assert.equal(socket.closed, true);
    assert.equal(dns.child.exitCode, null);
    const tcp = await dig(dns, ['+tcp', 'pool01.contoso.com', 'A']);
    assert.equal(tcp.status, 'NOERROR');
  });
});
