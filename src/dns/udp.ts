// The DNS server's UDP sockets. Two engines behind one shape:
//   batch  native/udp-batch (recvmmsg/sendmmsg): one readable event answers up to 64 datagrams
//          with one JS call and two system calls. The default wherever the addon was built.
//   dgram  Node's own node:dgram, one datagram per event: the fallback when the addon is missing
//          (no compiler at `npm install`), and a second implementation the tests compare against.
// Both hand the answerer the datagram and its source: an IPv4 address as one 32-bit integer (no
// string per packet), anything else as the address text, as Node's sockets print it.
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import { isIP, SocketAddress } from 'node:net';
import type { Endpoint } from '../topology/schema.ts';

/** A query's source: IPv4 as an unsigned 32-bit integer, IPv6 as text ("::1", "fd00::a"). */
export type Source = number | string;

/**
 * Answers one datagram by writing the response into `out` at `at` (room for 64 KiB); returns its
 * length, 0 to drop it. Must not keep `packet` or `out`: both are reused for the next datagram.
 */
export type Answerer = (packet: Buffer, source: Source, out: Buffer, at: number) => number;

export type UdpEngineName = 'batch' | 'dgram';

export interface UdpListener {
  readonly engine: UdpEngineName;
  readonly port: number;
  close(): Promise<void>;
}

interface NativeSocket {
  readonly brand: unique symbol;
}

interface NativeModule {
  BATCH: number;
  SLOT: number;
  open(address: string, port: number, reusePort: boolean, input: Buffer, output: Buffer, meta: Buffer, onBatch: (count: number) => void): NativeSocket;
  port(socket: NativeSocket): number;
  close(socket: NativeSocket): void;
}

const META_INTS = 8;
/** SO_RCVBUF asked for each DNS UDP socket (both engines). */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

function loadNative(): { module?: NativeModule; problem?: string } {
  try {
    return { module: createRequire(import.meta.url)('../../build/Release/udp_batch.node') as NativeModule };
  } catch (error) {
    return { problem: (error as Error).message.split('\n')[0] };
  }
}

const native = loadNative();

/** The engine sockets get by default, and why the batch engine is missing when it is. */
export const udpEngines: { readonly preferred: UdpEngineName; readonly batchProblem?: string } = native.module
  ? { preferred: 'batch' }
  : { preferred: 'dgram', batchProblem: `native/udp-batch is not built (${native.problem}); run \`npm rebuild\` with a C compiler` };

export function sourceText(source: Source): string {
  return typeof source === 'number' ? `${source >>> 24}.${(source >>> 16) & 0xff}.${(source >>> 8) & 0xff}.${source & 0xff}` : source;
}

/** The IPv6 source in meta slot `at`, or the IPv4 inside an IPv4-mapped address (::ffff:a.b.c.d). */
function ipv6Source(bytes: Buffer, at: number): Source {
  let mapped = bytes[at + 10] === 0xff && bytes[at + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = bytes[at + i] === 0;
  if (mapped) return bytes.readUInt32BE(at + 12);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(at + i).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** IPv4 text as the integer the batch engine reports, so both engines give the same Source. */
function dgramSource(address: string): Source {
  const plain = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(address);
  if (!plain) return address;
  return ((Number(plain[1]) << 24) | (Number(plain[2]) << 16) | (Number(plain[3]) << 8) | Number(plain[4])) >>> 0;
}

function bindBatch(module: NativeModule, endpoint: Endpoint, reusePort: boolean, answer: Answerer): UdpListener {
  const { BATCH, SLOT } = module;
  const input = Buffer.alloc(BATCH * SLOT);
  const output = Buffer.alloc(BATCH * SLOT);
  const metaBytes = Buffer.alloc(BATCH * META_INTS * 4);
  const meta = new Int32Array(metaBytes.buffer, metaBytes.byteOffset, BATCH * META_INTS);
  const onBatch = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const at = i * META_INTS;
      const length = meta[at]!;
      // Longer than a slot (cut by the kernel): no DNS query is; dropped (the module counts it).
      if (length < 0) continue;
      const source = meta[at + 2] === 4 ? meta[at + 4]! >>> 0 : ipv6Source(metaBytes, (at + 4) * 4);
      meta[at + 1] = answer(input.subarray(i * SLOT, i * SLOT + length), source, output, i * SLOT);
    }
  };
  const socket = module.open(endpoint.address, endpoint.port, reusePort, input, output, metaBytes, onBatch);
  let closed = false;
  return {
    engine: 'batch',
    port: module.port(socket),
    close: () => {
      if (!closed) module.close(socket);
      closed = true;
      return Promise.resolve();
    },
  };
}

function bindDgram(endpoint: Endpoint, answer: Answerer, onError: (error: Error) => void): Promise<UdpListener> {
  return new Promise((resolve, reject) => {
    const family = isIP(endpoint.address) === 6 ? 6 : 4;
    // Replies go to the address a query came from, always an IP literal: answer the socket's
    // lookup at once instead of through dns.lookup, which defers every send by a tick.
    const lookup = (address: string, _family: unknown, callback: (error: Error | null, address: string, family: number) => void) => callback(null, address, family);
    const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', lookup: lookup as unknown as dgram.SocketOptions['lookup'] });
    socket.once('error', reject);
    let closing: Promise<void> | undefined;
    const out = Buffer.allocUnsafe(65_536);
    socket.on('message', (packet, remote) => {
      const length = answer(packet, dgramSource(remote.address), out, 0);
      // The answerer may have closed the socket (the server stopping): nothing more goes out. The
      // answer is copied out of `out`: a send can complete after the next datagram is answered.
      if (length > 0 && closing === undefined) socket.send(Buffer.from(out.subarray(0, length)), remote.port, remote.address);
    });
    socket.bind(endpoint.port, endpoint.address, () => {
      // As the batch engine (native/udp-batch): room for a burst of queries; Linux caps it at net.core.rmem_max.
      try {
        socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
      } catch {
        // Best effort: the system's default buffer still works.
      }
      socket.off('error', reject);
      socket.on('error', onError);
      resolve({
        engine: 'dgram',
        port: socket.address().port,
        close: () => (closing ??= new Promise<void>((done) => socket.close(() => done()))),
      });
    });
  });
}

export interface BindOptions {
  engine?: UdpEngineName;
  /** SO_REUSEPORT (batch engine): several worker processes bind the same address and port. */
  reusePort?: boolean;
  onError?: (error: Error) => void;
}

/** Binds `endpoint` (port 0: a free port) and answers every datagram through `answer`. */
export async function bindUdp(endpoint: Endpoint, answer: Answerer, options: BindOptions = {}): Promise<UdpListener> {
  const engine = options.engine ?? udpEngines.preferred;
  if (engine === 'batch') {
    if (!native.module) throw new Error(udpEngines.batchProblem);
    return bindBatch(native.module, endpoint, options.reusePort ?? false, answer);
  }
  return bindDgram(endpoint, answer, options.onError ?? (() => undefined));
}
