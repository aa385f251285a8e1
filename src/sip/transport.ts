// SipTransport: listens on TCP and TLS, connects out, and holds one Flow per connection, with a
// connection cap, a TLS handshake timeout and an idle timeout (RFC 3261 §18, RFC 5626 flows).
import { EventEmitter } from 'node:events';
import { createServer, isIP, connect as netConnect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { assert } from '../shared/assert.ts';
import { systemClock, systemRandom, type Clock, type Random, type Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { describeListenError } from '../shared/listen-error.ts';
import { limits } from '../shared/limits.ts';
import { Flow, type FlowClose, type FlowTransport } from './flow.ts';
import type { SipMessage } from './message.ts';
import { verifiedNamesOf } from './peer-certificate.ts';
import type { Answer, SipMessageError } from './problem.ts';

export interface TlsServerOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** CA to verify client certificates with (mutual TLS between servers). */
  readonly ca?: string | Buffer;
  /**
   * Client certificates: `none` (default) not asked for; `optional` asked for and verified against
   * `ca` but not required — a client without one (or with one `ca` did not sign) still connects, and
   * its flow's certificateNames is null (the servers' port, where clients and peers both arrive);
   * `required`: a connection without a verified one fails its handshake.
   */
  readonly clientCertificates?: 'none' | 'optional' | 'required';
}

export interface TlsClientOptions {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Name to verify the server certificate against (SNI). Default: the host. */
  readonly servername?: string;
}

export interface ListenOptions {
  readonly transport: FlowTransport;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly tls?: TlsServerOptions;
}

export interface ConnectOptions {
  readonly transport: FlowTransport;
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string;
  readonly tls?: TlsClientOptions;
}

export interface SipTransportOptions {
  readonly clock?: Clock;
  readonly random?: Random;
  /** A flow with no traffic either way for this long is closed. Default 300 000 ms (5 min). */
  readonly idleTimeoutMs?: number;
  /** An accepted TLS connection must finish its handshake within this. Default 10 000 ms. */
  readonly tlsHandshakeTimeoutMs?: number;
  /** Outgoing connect (+ handshake) timeout. Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Simultaneous connections (flows + handshakes in progress). Default 10 000. */
  readonly connectionsMax?: number;
  /** Bytes queued for sending on one flow before it is dropped. Default limits.sipFlowSendBufferBytesMax. */
  readonly sendBufferBytesMax?: number;
}

/**
 * A connection asking in while the transport does not accept (stopAccepting's `except` decides): a
 * TCP one at accept, a TLS one after its handshake, with the names its certificate proved.
 */
export interface AcceptCandidate {
  readonly remoteAddress: string;
  readonly transport: FlowTransport;
  readonly certificateNames: readonly string[] | null;
}

export interface TransportEvents {
  flow: [Flow];
  message: [Flow, SipMessage];
  invalid: [Flow, SipMessageError, Answer];
  flowClosed: [Flow, FlowClose];
}

export interface TransportStats {
  connectionsAccepted: number;
  connectionsRefused: number;
  connectionsOpened: number;
  handshakeTimeouts: number;
  handshakeFailures: number;
  messagesReceived: number;
  invalidMessages: number;
  pingsAnswered: number;
  flowsOpen: number;
  flowsClosed: Record<string, number>;
}

interface Listener {
  server: Server;
  transport: FlowTransport;
  secureContext: SecureContext | null;
  clientCertificates: 'none' | 'optional' | 'required';
}

export class SipTransport extends EventEmitter<TransportEvents> {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly idleTimeoutMs: number;
  private readonly tlsHandshakeTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly connectionsMax: number;
  private readonly sendBufferBytesMax: number;
  private readonly servers: Listener[] = [];
  private readonly openFlows = new Map<string, Flow>();
  private readonly handshakes = new Set<Socket>();
  private flowSequence = 0;
  private accepting = true;
  /** While not accepting, connections this approves are still taken (a draining server's pool peers). */
  private acceptAnyway: ((candidate: AcceptCandidate) => boolean) | null = null;
  private readonly counters: TransportStats = {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    connectionsOpened: 0,
    handshakeTimeouts: 0,
    handshakeFailures: 0,
    messagesReceived: 0,
    invalidMessages: 0,
    pingsAnswered: 0,
    flowsOpen: 0,
    flowsClosed: {},
  };

  constructor(options: SipTransportOptions = {}) {
    super();
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
    this.tlsHandshakeTimeoutMs = options.tlsHandshakeTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.connectionsMax = options.connectionsMax ?? 10_000;
    this.sendBufferBytesMax = options.sendBufferBytesMax ?? limits.sipFlowSendBufferBytesMax;
    assert(this.idleTimeoutMs > 0 && this.idleTimeoutMs <= limits.sipIdleTimeoutMsMax, `idleTimeoutMs must be 1..${limits.sipIdleTimeoutMsMax}`);
    assert(this.tlsHandshakeTimeoutMs > 0 && this.tlsHandshakeTimeoutMs <= limits.sipTlsHandshakeTimeoutMsMax, `tlsHandshakeTimeoutMs must be 1..${limits.sipTlsHandshakeTimeoutMsMax}`);
    assert(this.connectionsMax > 0 && this.connectionsMax <= limits.sipConnectionsMax, `connectionsMax must be 1..${limits.sipConnectionsMax}`);
    assert(this.sendBufferBytesMax >= limits.sipMessageBytesMax && this.sendBufferBytesMax <= limits.sipFlowSendBufferBytesMax, 'sendBufferBytesMax out of range');
  }

  /** Starts listening; resolves with the bound address (useful with port 0). */
  async listen(options: ListenOptions): Promise<{ host: string; port: number }> {
    assert(options.transport === 'tcp' || options.tls !== undefined, 'a TLS listener needs tls options');
    const listener: Listener = {
      server: createServer({ noDelay: true }),
      transport: options.transport,
      secureContext: options.tls ? createSecureContext({ cert: options.tls.cert, key: options.tls.key, ca: options.tls.ca }) : null,
      clientCertificates: options.tls?.clientCertificates ?? 'none',
    };
    assert(listener.clientCertificates === 'none' || options.tls?.ca !== undefined, 'verifying client certificates needs a ca');
    listener.server.on('connection', (socket) => this.accept(listener, socket));
    try {
      await new Promise<void>((resolve, reject) => {
        listener.server.once('error', reject);
        listener.server.listen({ port: options.port, host: options.host, backlog: limits.sipListenBacklog }, () => resolve());
      });
    } catch (error) {
      throw new DnslbError('SIP_LISTEN', `cannot listen on ${await describeListenError(error, 'tcp', options.host, options.port)}`, { cause: error });
    }
    listener.server.on('error', () => {}); // after bind, accept errors (EMFILE) must not crash the process
    this.servers.push(listener);
    const address = listener.server.address();
    assert(address !== null && typeof address === 'object');
    return { host: address.address, port: address.port };
  }

  /** Opens a flow to a peer (client registration or server-to-server). */
  async connect(options: ConnectOptions): Promise<Flow> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      let settled = false;
      const timer: Timer = this.clock.setTimer(this.connectTimeoutMs, () => fail(new Error(`timed out after ${this.connectTimeoutMs} ms`)));
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        socket.destroy();
        reject(new DnslbError('SIP_CONNECT', `cannot connect to ${options.transport}:${options.host}:${options.port}: ${error.message}`, { cause: error }));
      };
      const done = (): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        socket.removeAllListeners('error');
        if (raw !== socket) raw.on('error', () => {}); // the TLS socket reports its transport's errors to the flow
        resolve(socket);
      };
      const raw = netConnect({ host: options.host, port: options.port, localAddress: options.localAddress }, options.transport === 'tcp' ? done : undefined);
      // SNI carries names only (RFC 6066 §3); an IP host is still verified against the certificate's IP SANs.
      const servername = options.tls?.servername ?? (isIP(options.host) ? undefined : options.host);
      const socket: Socket =
        options.transport === 'tls'
          ? tlsConnect({ socket: raw, host: options.host, ca: options.tls?.ca, cert: options.tls?.cert, key: options.tls?.key, servername }, done)
          : raw;
      raw.once('error', fail);
      socket.once('error', fail);
    });
    this.counters.connectionsOpened++;
    return this.adopt(socket, options.transport, 'outbound');
  }

  /**
   * Stops accepting new connections (draining); existing flows continue. `except` still lets some
   * in: a draining Front End keeps taking its pool peers' links (heartbeat, calls in progress that
   * follow its Record-Route), while clients are turned away. A TLS connection is asked after its
   * handshake, so `except` can judge it by its verified certificate (AcceptCandidate).
   */
  stopAccepting(options: { except?: (candidate: AcceptCandidate) => boolean } = {}): void {
    this.accepting = false;
    this.acceptAnyway = options.except ?? null;
  }

  /** Accepts new connections again (a drain was resumed). */
  startAccepting(): void {
    this.accepting = true;
    this.acceptAnyway = null;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  flows(): Flow[] {
    return [...this.openFlows.values()];
  }

  flow(id: string): Flow | undefined {
    return this.openFlows.get(id);
  }

  stats(): TransportStats {
    return { ...this.counters, flowsOpen: this.openFlows.size, flowsClosed: { ...this.counters.flowsClosed } };
  }

  /** Closes every listener and flow. */
  async close(): Promise<void> {
    this.accepting = false;
    this.acceptAnyway = null;
    for (const socket of this.handshakes) socket.destroy();
    this.handshakes.clear();
    for (const flow of this.openFlows.values()) flow.close('shutdown');
    await Promise.all(this.servers.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
    this.servers.length = 0;
  }

  private accept(listener: Listener, socket: Socket): void {
    socket.on('error', () => {}); // a reset before the flow exists is not an error of ours
    const remoteAddress = normalAddress(socket.remoteAddress ?? '');
    const refused = !this.accepting && listener.transport === 'tcp' && !(this.acceptAnyway?.({ remoteAddress, transport: 'tcp', certificateNames: null }) ?? false);
    if (refused || this.openFlows.size + this.handshakes.size >= this.connectionsMax) {
      this.counters.connectionsRefused++;
      socket.destroy();
      return;
    }
    this.counters.connectionsAccepted++;
    if (listener.transport === 'tcp') {
      this.adopt(socket, 'tcp', 'inbound');
      return;
    }
    assert(listener.secureContext !== null);
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: listener.secureContext,
      requestCert: listener.clientCertificates !== 'none',
      rejectUnauthorized: listener.clientCertificates === 'required',
    });
    this.handshakes.add(socket);
    const timer = this.clock.setTimer(this.tlsHandshakeTimeoutMs, () => {
      if (!this.handshakes.delete(socket)) return;
      this.counters.handshakeTimeouts++;
      secure.destroy();
      socket.destroy();
    });
    secure.on('error', () => {
      if (!this.handshakes.delete(socket)) return;
      timer.cancel();
      this.counters.handshakeFailures++;
      secure.destroy();
    });
    // A peer that gives up mid-handshake (it does not trust our certificate, or it was a port scan).
    socket.once('close', () => {
      if (!this.handshakes.delete(socket)) return;
      timer.cancel();
      this.counters.handshakeFailures++;
    });
    secure.once('secure', () => {
      if (!this.handshakes.delete(socket)) return;
      timer.cancel();
      secure.removeAllListeners('error');
      if (listener.clientCertificates !== 'none') settleAuthorization(secure);
      // Not accepting (draining): only what `except` approves, judged by the certificate it proved.
      if (!this.accepting && !(this.acceptAnyway?.({ remoteAddress, transport: 'tls', certificateNames: verifiedNamesOf(secure) }) ?? false)) {
        this.counters.connectionsAccepted--;
        this.counters.connectionsRefused++;
        secure.on('error', () => {});
        secure.destroy();
        return;
      }
      this.adopt(secure, 'tls', 'inbound');
    });
  }

  private adopt(socket: Socket, transport: FlowTransport, direction: 'inbound' | 'outbound'): Flow {
    this.flowSequence++;
    const id = `${transport}-${this.flowSequence.toString(36)}-${Math.floor(this.random() * 2 ** 32).toString(16).padStart(8, '0')}`;
    const flow = new Flow(socket, {
      id,
      transport,
      direction,
      clock: this.clock,
      random: this.random,
      idleTimeoutMs: this.idleTimeoutMs,
      sendBufferBytesMax: this.sendBufferBytesMax,
    });
    this.openFlows.set(id, flow);
    flow.on('message', (message) => {
      this.counters.messagesReceived++;
      this.emit('message', flow, message);
    });
    flow.on('invalid', (error, answer) => {
      this.counters.invalidMessages++;
      this.emit('invalid', flow, error, answer);
    });
    flow.on('ping', () => this.counters.pingsAnswered++);
    flow.once('close', (info) => {
      this.openFlows.delete(id);
      this.counters.flowsClosed[info.reason] = (this.counters.flowsClosed[info.reason] ?? 0) + 1;
      this.emit('flowClosed', flow, info);
    });
    this.emit('flow', flow);
    return flow;
  }
}

/**
 * A TLSSocket made by hand (not by tls.Server) is never told whether the client's certificate
 * verified: tls.Server's own 'secure' handler sets `authorized` from the handshake's verify result,
 * which is what this does (Node's TLSWrap.verifyError: null when the chain verified against our CA).
 * Fails closed: anything unexpected leaves the socket unauthorized (its flow a client's).
 */
function settleAuthorization(secure: TLSSocket): void {
  let error: Error | null | undefined;
  try {
    error = (secure as unknown as { _handle?: { verifyError?: () => Error | null } })._handle?.verifyError?.();
  } catch {
    error = undefined;
  }
  secure.authorized = error === null;
  if (error) secure.authorizationError = error;
}

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) → `127.0.0.1`. */
function normalAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
