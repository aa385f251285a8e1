// The authoritative DNS server's sockets: UDP and TCP (RFC 7766) on each listen address, feeding
// each packet through readQuery → answerFor. The one place where errors become an RCODE.
import net from 'node:net';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { describeListenError, type ListenProtocol } from '../shared/listen-error.ts';
import { limits } from '../shared/limits.ts';
import type { Endpoint } from '../topology/schema.ts';
import { answerFor, answerInto, errorFor, errorInto, udpLimitOf, type AnswerIndex } from './answer-cache.ts';
import { transferResponse, type TransferSource } from './transfer.ts';
import { checkRequest, ResponseSigner, tsigErrorResponse, type TsigKey } from './tsig.ts';
import { ResponseRateLimiter, RRL_DROP, RRL_SLIP, truncateInto, type RateLimitSettings } from './rrl.ts';
import { bindUdp, sourceText, udpEngines, type Answerer, type Source, type UdpEngineName, type UdpListener } from './udp.ts';
import { Query, RCODE, readQuery, ReadResult, TYPE } from './wire.ts';

export interface DnsServerOptions {
  listen: readonly Endpoint[];
  /** The answers to serve, read once per query (LiveZones swaps them on each change). */
  answers: { readonly current: AnswerIndex };
  /** Zone history and ACL for AXFR/IXFR; without it transfers are REFUSED. */
  transfers?: TransferSource;
  clock: Clock;
  logger?: Logger;
  tcpIdleTimeoutMs?: number;
  tcpConnectionsMax?: number;
  /** UDP engine (default: batch when native/udp-batch is built, see udp.ts). */
  udpEngine?: UdpEngineName;
  /** Let other processes bind the same UDP address and port (`--workers`: one socket each). */
  udpReusePort?: boolean;
  /**
   * TSIG keys (by lower-case name) a zone transfer must be signed with (RFC 8945), on top of the
   * address ACL; absent or empty: the address ACL alone.
   */
  transferKeys?: ReadonlyMap<string, TsigKey>;
}

export interface DnsServerStats {
  queries: number;
  dropped: number;
  formErrors: number;
  serverFailures: number;
  tcpConnections: number;
  tcpRejected: number;
  tcpIdleClosed: number;
  /** UDP responses not sent: over the response rate limit (rrl.ts). */
  rateLimitDropped: number;
  /** UDP responses sent truncated (TC=1) instead: over the rate limit, slipped. */
  rateLimitSlipped: number;
}

export interface BoundAddresses {
  udp: Endpoint[];
  tcp: Endpoint[];
  /** The UDP engine the sockets use. */
  udpEngine: UdpEngineName;
}

/** How many times a port-0 listen retries to get the same free port for UDP and TCP. */
const SAME_PORT_ATTEMPTS = 8;

const isTransfer = (query: Query): boolean => query.qtype === TYPE.AXFR || query.qtype === TYPE.IXFR;

export class DnsServer {
  readonly stats: DnsServerStats = { queries: 0, dropped: 0, formErrors: 0, serverFailures: 0, tcpConnections: 0, tcpRejected: 0, tcpIdleClosed: 0, rateLimitDropped: 0, rateLimitSlipped: 0 };
  private readonly udpSockets: UdpListener[] = [];
  private readonly tcpServers: net.Server[] = [];
  private readonly connections = new Set<net.Socket>();
  /** One parsed-query scratch object: handling is synchronous, so it is never shared. */
  private readonly query = new Query();
  private readonly idleTimeoutMs: number;
  private readonly connectionsMax: number;
  /** Response rate limiting on UDP; undefined (the default) costs one comparison per datagram. */
  private limiter: ResponseRateLimiter | undefined;
  /** Every UDP datagram goes through here (both engines, every listen address). */
  private readonly udpAnswer: Answerer = (packet, source, out, at) => {
    const limiter = this.limiter;
    return limiter === undefined ? this.handleInto(packet, source, out, at) : this.limitedInto(limiter, packet, source, out, at);
  };

  constructor(private readonly options: DnsServerOptions) {
    this.idleTimeoutMs = options.tcpIdleTimeoutMs ?? limits.dnsTcpIdleTimeoutMs;
    this.connectionsMax = options.tcpConnectionsMax ?? limits.dnsTcpConnectionsMax;
  }

  /** Binds every listen address (UDP and TCP on the same port, also for port 0). */
  async start(): Promise<BoundAddresses> {
    const bound: BoundAddresses = { udp: [], tcp: [], udpEngine: this.options.udpEngine ?? udpEngines.preferred };
    for (const endpoint of this.options.listen) {
      let lastError: unknown;
      let failedProtocol: ListenProtocol = 'udp';
      for (let attempt = 0; attempt < SAME_PORT_ATTEMPTS; attempt++) {
        let udp: UdpListener;
        try {
          udp = await bindUdp(endpoint, this.udpAnswer, {
            engine: this.options.udpEngine,
            reusePort: this.options.udpReusePort,
            onError: (error) => this.options.logger?.warn({ err: error }, 'dns: udp socket error'),
          });
        } catch (error) {
          lastError = error;
          failedProtocol = 'udp';
          break;
        }
        bound.udpEngine = udp.engine;
        const port = udp.port;
        try {
          const tcp = await this.listenTcp({ address: endpoint.address, port });
          this.udpSockets.push(udp);
          this.tcpServers.push(tcp);
          bound.udp.push({ address: endpoint.address, port });
          bound.tcp.push({ address: endpoint.address, port });
          lastError = undefined;
          break;
        } catch (error) {
          await udp.close();
          lastError = error;
          failedProtocol = 'tcp';
          // With a fixed port there is nothing to retry; with port 0 another free port may work.
          if (endpoint.port !== 0) break;
        }
      }
      if (lastError !== undefined) {
        await this.close();
        throw new DnslbError('DNS_LISTEN', `cannot listen on ${await describeListenError(lastError, failedProtocol, endpoint.address, endpoint.port)}`, { cause: lastError });
      }
    }
    return bound;
  }

  private listenTcp(endpoint: Endpoint): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.accept(socket));
      server.once('error', reject);
      server.listen({ port: endpoint.port, host: endpoint.address, exclusive: false }, () => {
        server.off('error', reject);
        server.on('error', (error) => this.options.logger?.warn({ err: error }, 'dns: tcp server error'));
        resolve(server);
      });
    });
  }

  /** RFC 7766 §8: each message is preceded by its 2-byte length; several per connection, pipelined. */
  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.connectionsMax) {
      // RFC 7766 §6.2.2: over the cap, new connections are closed at once; UDP goes on unaffected.
      this.stats.tcpRejected++;
      socket.destroy();
      return;
    }
    this.stats.tcpConnections++;
    this.connections.add(socket);
    socket.setNoDelay(true);
    const address = socket.remoteAddress ?? '';
    let pending: Buffer | undefined;
    let idle: Timer | undefined;
    // The idle timer restarts on each complete query only: a client trickling bytes is closed too.
    const arm = (): void => {
      idle?.cancel();
      idle = this.options.clock.setTimer(this.idleTimeoutMs, () => {
        this.stats.tcpIdleClosed++;
        socket.destroy();
      });
    };
    arm();
    socket.on('data', (chunk: Buffer) => {
      const data = pending ? Buffer.concat([pending, chunk]) : chunk;
      let offset = 0;
      while (data.length - offset >= 2) {
        const length = data.readUInt16BE(offset);
        // A zero-length frame cannot hold a header: the stream is broken, close it.
        if (length === 0) {
          this.stats.dropped++;
          socket.destroy();
          return;
        }
        if (data.length - offset - 2 < length) break;
        const message = data.subarray(offset + 2, offset + 2 + length);
        offset += 2 + length;
        arm();
        // A client that sends but never reads would make us buffer without end. Checked before
        // answering, so that one zone transfer (many messages) may be queued whole.
        if (socket.writableLength > limits.dnsTcpPendingWriteBytesMax) {
          socket.destroy();
          return;
        }
        const response = this.handle(message, address, false);
        if (response === undefined) continue;
        socket.cork();
        for (const one of Array.isArray(response) ? response : [response]) {
          const prefix = Buffer.allocUnsafe(2);
          prefix.writeUInt16BE(one.length, 0);
          socket.write(prefix);
          socket.write(one);
        }
        socket.uncork();
      }
      pending = offset < data.length ? Buffer.from(data.subarray(offset)) : undefined;
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      idle?.cancel();
      this.connections.delete(socket);
    });
  }

  /**
   * Turns response rate limiting on UDP on (settings) or off (undefined); `share` is this process's
   * part of the rate (1 / the number of workers). New settings start with fresh buckets.
   */
  setRateLimit(settings: RateLimitSettings | undefined, share = 1): void {
    if (settings === undefined) this.limiter = undefined;
    else if (!this.limiter || JSON.stringify(this.limiter.settings) !== JSON.stringify(settings) || this.limiter.share !== share) this.limiter = new ResponseRateLimiter(settings, share);
  }

  /** A datagram under rate limiting: dropped before any work, or answered (truncated when slipped). */
  private limitedInto(limiter: ResponseRateLimiter, packet: Buffer, source: Source, out: Buffer, at: number): number {
    const verdict = limiter.decide(source, this.options.clock.nowMs());
    if (verdict === RRL_DROP) {
      this.stats.queries++;
      this.stats.rateLimitDropped++;
      return 0;
    }
    const length = this.handleInto(packet, source, out, at);
    if (verdict !== RRL_SLIP || length === 0) return length;
    this.stats.rateLimitSlipped++;
    return truncateInto(out, at, length);
  }

  /**
   * A UDP datagram in, its response written into `out` at `at` (the engine's output slot) and its
   * length returned (0: drop). The common case, an answer from the index, allocates nothing; the
   * rest (malformed queries, transfers) goes through handle(), which reads the packet again.
   */
  handleInto(packet: Buffer, source: Source, out: Buffer, at: number): number {
    const query = this.query;
    if (readQuery(packet, packet.length, query) === ReadResult.Ok && !(isTransfer(query) && this.options.transfers)) {
      this.stats.queries++;
      try {
        const index = this.options.answers.current;
        return answerInto(out, at, index, index.selector.indexOf(source), packet, query, udpLimitOf(query));
      } catch (error) {
        this.failed(error);
        return errorInto(out, at, packet, query, RCODE.SERVFAIL);
      }
    }
    const response = this.handle(packet, source, true) as Buffer | undefined;
    if (response === undefined) return 0;
    out.set(response, at);
    return response.length;
  }

  /**
   * One packet in, the response (or undefined: drop). A zone transfer over TCP is several
   * messages (an array); over UDP there is always one. Errors become SERVFAIL here and only here.
   */
  handle(packet: Buffer, source: Source, udp: boolean): Buffer | readonly Buffer[] | undefined {
    const query = this.query;
    const result = readQuery(packet, packet.length, query);
    this.stats.queries++;
    try {
      switch (result) {
        case ReadResult.Ok: {
          if (isTransfer(query) && this.options.transfers) {
            const messages = this.transfer(this.options.transfers, packet, query, source, udp);
            return udp ? messages[0] : messages;
          }
          const index = this.options.answers.current;
          return answerFor(index, index.selector.indexOf(source), packet, query, udp ? udpLimitOf(query) : 0);
        }
        case ReadResult.FormErr:
          this.stats.formErrors++;
          return errorFor(packet, query, RCODE.FORMERR);
        case ReadResult.NotImp:
          return errorFor(packet, query, RCODE.NOTIMP);
        default:
          this.stats.dropped++;
          return undefined;
      }
    } catch (error) {
      this.failed(error);
      return errorFor(packet, query, RCODE.SERVFAIL);
    }
  }

  /**
   * AXFR/IXFR: the address ACL (transfer.ts), and with transfer keys a valid TSIG too (RFC 8945):
   * unsigned → REFUSED; unknown key or bad MAC → NOTAUTH with BADKEY/BADSIG (unsigned, §5.2);
   * a time outside the fudge → NOTAUTH with BADTIME (signed); else every message signed (§5.3).
   */
  private transfer(transfers: TransferSource, packet: Buffer, query: Query, source: Source, udp: boolean): Buffer[] {
    const keys = this.options.transferKeys;
    if (!keys || keys.size === 0) return transferResponse(transfers, packet, query, sourceText(source), udp);
    const nowS = Math.floor(this.options.clock.nowMs() / 1000);
    const check = checkRequest(packet, keys, nowS);
    if (check.kind === 'unsigned') return [errorFor(packet, query, RCODE.REFUSED)];
    if (check.kind === 'bad') return [tsigErrorResponse(errorFor(packet, query, RCODE.NOTAUTH), check, nowS)];
    const signer = new ResponseSigner(check.key, check.tsig.mac, () => nowS);
    return transferResponse(transfers, packet, query, sourceText(source), udp).map((message) => signer.sign(message));
  }

  private failed(error: unknown): void {
    this.stats.serverFailures++;
    this.options.logger?.error({ err: error }, 'dns: answering failed');
  }

  get openConnections(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
    await Promise.all([
      ...this.udpSockets.map((socket) => socket.close()),
      ...this.tcpServers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    ]);
    this.udpSockets.length = 0;
    this.tcpServers.length = 0;
  }
}
