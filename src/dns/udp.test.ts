// The two UDP engines against one contract, on real loopback sockets: every datagram of a burst
// (more than one batch) is answered to its sender, the source is reported the same way by both
// (IPv4 as an integer, IPv6 as text), length 0 means no answer, closing from inside the answerer
// is safe, and binding errors carry the errno name.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { bindUdp, sourceText, udpEngines, type Source, type UdpEngineName, type UdpListener } from './udp.ts';

/**
 * Sends `count` datagrams from one client socket, 100 at a time (a loopback receive buffer holds a
 * few hundred small datagrams; more at once could be dropped by the kernel, not by the engine), and
 * collects the answers; each window ends when its `answered(i)` answers came, or fails after 20 s.
 */
async function exchange(address: string, port: number, count: number, answered: (i: number) => boolean = () => true): Promise<Buffer[]> {
  const client = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => client.bind(0, address, resolve));
  const answers: Buffer[] = [];
  let wanted = 0;
  let wake = (): void => undefined;
  client.on('message', (message) => {
    answers.push(message);
    if (answers.length >= wanted) wake();
  });
  try {
    for (let from = 0; from < count; from += 100) {
      const window = Array.from({ length: Math.min(100, count - from) }, (_, k) => from + k);
      wanted += window.filter(answered).length;
      const arrived = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${wanted - answers.length} of ${wanted} answers missing after 20 s`)), 20_000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        if (answers.length >= wanted) wake();
      });
      for (const i of window) {
        const packet = Buffer.alloc(4);
        packet.writeUInt32BE(i);
        client.send(packet, port, address);
      }
      await arrived;
    }
    return answers;
  } finally {
    client.close();
  }
}

const engines: UdpEngineName[] = ['batch', 'dgram'];
const run = promisify(execFile);

/** Writes `bytes` as the answer (what an Answerer does with its output slot). */
function reply(bytes: Uint8Array, out: Buffer, at: number): number {
  out.set(bytes, at);
  return bytes.length;
}

test('this machine built the batch engine (npm install compiles native/udp-batch)', () => {
  assert.equal(udpEngines.preferred, 'batch', udpEngines.batchProblem);
});

for (const engine of engines) {
  describe(`UDP engine ${engine}`, () => {
    test('answers every datagram of a 1,000-datagram burst to its sender, with the source as an IPv4 integer', async () => {
      const sources = new Set<Source>();
      const listener = await bindUdp({ address: '127.0.8.200', port: 0 }, (packet, source, out, at) => {
        sources.add(source);
        // Echo the number back with one byte more, so that the answer is not the query.
        return reply(Buffer.concat([packet, Buffer.from([0xaa])]), out, at);
      }, { engine });
      try {
        assert.equal(listener.engine, engine);
        const answers = await exchange('127.0.8.200', listener.port, 1000);
        assert.deepEqual(answers.map((a) => a.readUInt32BE(0)).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
        assert.ok(answers.every((a) => a.length === 5 && a[4] === 0xaa));
        assert.deepEqual([...sources], [((127 << 24) | (8 << 8) | 200) >>> 0]);
        assert.equal(sourceText([...sources][0]!), '127.0.8.200');
      } finally {
        await listener.close();
      }
    });

    test('IPv6 sources come as text; no answer when the answerer returns 0', async () => {
      const sources = new Set<Source>();
      const listener = await bindUdp({ address: '::1', port: 0 }, (packet, source, out, at) => {
        sources.add(source);
        return packet.readUInt32BE(0) % 2 === 0 ? reply(packet, out, at) : 0;
      }, { engine });
      try {
        const answers = await exchange('::1', listener.port, 200, (i) => i % 2 === 0);
        assert.equal(answers.length, 100);
        assert.ok(answers.every((a) => a.readUInt32BE(0) % 2 === 0));
        assert.deepEqual([...sources], ['::1']);
      } finally {
        await listener.close();
      }
    });

    test('closing from inside the answerer stops it cleanly', async () => {
      let seen = 0;
      let listener: UdpListener | undefined = undefined;
      listener = await bindUdp({ address: '127.0.8.201', port: 0 }, (packet, _source, out, at) => {
        seen++;
        if (seen === 1) void listener!.close();
        return reply(packet, out, at);
      }, { engine });
      const client = dgram.createSocket('udp4');
      for (let i = 0; i < 50; i++) client.send(Buffer.alloc(4), listener.port, '127.0.8.201');
      // The socket is gone: a later datagram is refused by the kernel (ICMP port unreachable).
      await new Promise((resolve) => setTimeout(resolve, 200));
      const refused = once(client, 'error').catch((error: unknown) => error);
      client.connect(listener.port, '127.0.8.201', () => client.send(Buffer.alloc(4)));
      const [error] = (await refused) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'ECONNREFUSED');
      client.close();
      // Answers after the close are not sent; what was in the same batch may be.
      assert.ok(seen >= 1);
      await listener.close(); // twice is harmless
    });

    test('a port in use is EADDRINUSE, named with the address', async () => {
      const first = await bindUdp({ address: '127.0.8.202', port: 0 }, () => 0, { engine });
      try {
        await assert.rejects(bindUdp({ address: '127.0.8.202', port: first.port }, () => 0, { engine }), (error: NodeJS.ErrnoException) => {
          assert.equal(error.code, 'EADDRINUSE');
          return true;
        });
      } finally {
        await first.close();
      }
    });
  });
}

/** The receive buffer the kernel gave the UDP socket bound to address:port (`ss -m`: its skmem rb, in bytes). */
async function receiveBuffer(address: string, port: number): Promise<number> {
  const { stdout } = await run('ss', ['-u', '-a', '-m', '-n', 'src', `${address}:${port}`]);
  const match = /\brb(\d+)/.exec(stdout);
  assert.ok(match, `no socket at ${address}:${port} in ss -m: ${stdout}`);
  return Number(match[1]);
}

// A sign-in storm's queries arrive in bursts, while the event loop may be busy: the default buffer
// holds a few hundred small datagrams. Each engine asks for 4 MiB (the kernel keeps twice what is
// asked, for its own overhead); the batch engine with CAP_NET_ADMIN past net.core.rmem_max.
test('each engine asks the kernel for a 4 MiB receive buffer (capped by net.core.rmem_max without CAP_NET_ADMIN)', async () => {
  const rmemMax = Number((await readFile('/proc/sys/net/core/rmem_max', 'utf8')).trim());
  const root = process.getuid?.() === 0;
  for (const engine of engines) {
    const listener = await bindUdp({ address: '127.0.8.204', port: 0 }, () => 0, { engine });
    try {
      const expected = 2 * (engine === 'batch' && root ? 4 * 2 ** 20 : Math.min(4 * 2 ** 20, rmemMax));
      assert.equal(await receiveBuffer('127.0.8.204', listener.port), expected, engine);
    } finally {
      await listener.close();
    }
  }
});

describe('UDP engine batch with SO_REUSEPORT', () => {
  test('two sockets share one port and the kernel spreads senders over them', async () => {
    const counts = [0, 0];
    const first = await bindUdp({ address: '127.0.8.203', port: 0 }, (packet, _source, out, at) => {
      counts[0]!++;
      return reply(packet, out, at);
    }, { engine: 'batch', reusePort: true });
    const second = await bindUdp({ address: '127.0.8.203', port: first.port }, (packet, _source, out, at) => {
      counts[1]!++;
      return reply(packet, out, at);
    }, { engine: 'batch', reusePort: true });
    try {
      // Each client socket (its own source port) hashes to one of the two; 40 clients reach both.
      for (let i = 0; i < 40; i++) await exchange('127.0.8.203', first.port, 5);
      assert.equal(counts[0]! + counts[1]!, 200);
      assert.ok(counts[0]! > 0 && counts[1]! > 0, `spread ${counts.join('/')}`);
    } finally {
      await first.close();
      await second.close();
    }
  });

  test('not an IP address is EINVAL, named', async () => {
    await assert.rejects(bindUdp({ address: 'pool01.contoso.com', port: 0 }, () => 0, { engine: 'batch' }), /not an IP address/);
  });
});
