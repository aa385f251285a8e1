// Flow: one TCP or TLS connection carrying SIP (RFC 5626 §3: a flow), with framing, automatic answers
// to malformed messages, CRLF keep-alive, idle timeout through the injected Clock, and bounded sends.
import type { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import { StreamFramer, type FrameEvent } from './framer.ts';
import { presentedChainOf, verifiedNamesOf } from './peer-certificate.ts';
import { serializeMessage, type SipMessage } from './message.ts';
import { answerFor, type Answer, type SipMessageError } from './problem.ts';

export type FlowTransport = 'tcp' | 'tls';

/** Why a flow closed. */
export type FlowCloseReason =
  | 'remote-closed' // the peer closed or reset the connection
  | 'idle' // nothing received or sent for idleTimeoutMs
  | 'framing' // the stream could not be delimited (bad/missing Content-Length)
  | 'too-large' // a line, header section or body over its limit
  | 'send-buffer-full' // the peer does not read: more than sendBufferBytesMax queued
  | 'socket-error' // an error on the socket
  | 'local' // close() was called
  | 'shutdown'; // the transport closed

export interface FlowClose {
  readonly reason: FlowCloseReason;
  readonly detail?: string;
}

export interface FlowEvents {
  /** A whole, valid message. */
  message: [SipMessage];
  /** A message that failed to parse; `answer` says what the flow already sent and whether it closes. */
  invalid: [SipMessageError, Answer];
  /** A double-CRLF ping arrived (the flow has already answered the pong). */
  ping: [];
  /** A single CRLF arrived (the pong to our ping, or a plain keep-alive). */
  pong: [];
  close: [FlowClose];
}

export interface FlowOptions {
  readonly id: string;
  readonly transport: FlowTransport;
  /** `inbound` for accepted connections (they answer pings), `outbound` for ones we opened. */
  readonly direction: 'inbound' | 'outbound';
  readonly clock: Clock;
  readonly random: Random;
  readonly idleTimeoutMs: number;
  readonly sendBufferBytesMax: number;
}

const PONG = Buffer.from('\r\n');
const PING = Buffer.from('\r\n\r\n');

export class Flow extends EventEmitter<FlowEvents> {
  readonly id: string;
  readonly transport: FlowTransport;
  readonly direction: 'inbound' | 'outbound';
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * The DNS names of the certificate the other end presented and that verified against our CA
   * (peer-certificate.ts); null for TCP, for a TLS client without a certificate or with one our CA
   * did not sign. Mutual TLS between servers recognises a peer by these, never by remoteAddress.
   */
  readonly certificateNames: readonly string[] | null;

  private readonly socket: Socket;
  private readonly framer: StreamFramer;
  private readonly options: FlowOptions;
  private lastActivityMs: number;
  private idleTimer: Timer | null = null;
  private closeInfo: FlowClose | null = null;

  constructor(socket: Socket, options: FlowOptions) {
    super();
    this.socket = socket;
    this.options = options;
    this.id = options.id;
    this.transport = options.transport;
    this.direction = options.direction;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.certificateNames = verifiedNamesOf(socket);
    this.framer = new StreamFramer({ role: options.direction === 'inbound' ? 'server' : 'client' });
    this.lastActivityMs = options.clock.nowMs();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.finish({ reason: 'remote-closed' }));
    socket.on('close', () => this.finish({ reason: 'remote-closed' }));
    socket.on('error', (error) => this.finish({ reason: 'socket-error', detail: error.message }));
    this.armIdleTimer(options.idleTimeoutMs);
  }

  /** The certificates the other end presented (leaf first), verified or not; empty for TCP or none presented. */
  presentedCertificates(): X509Certificate[] {
    return presentedChainOf(this.socket);
  }

  get closed(): boolean {
    return this.closeInfo !== null;
  }

  /** Why the flow closed, once it has. */
  get closeReason(): FlowClose | null {
    return this.closeInfo;
  }

  /** Bytes queued in the socket, not yet taken by the kernel. */
  get sendBufferedBytes(): number {
    return this.socket.writableLength;
  }

  /**
   * Sends a message. Returns false (and sends nothing) when the flow is closed. Never buffers more
   * than sendBufferBytesMax: a peer that does not read is disconnected ('send-buffer-full').
   */
  send(message: SipMessage): boolean {
    return this.write(serializeMessage(message));
  }

  /** Sends a CRLFCRLF keep-alive ping (RFC 5626 §3.5.1); the answer arrives as a 'pong' event. */
  ping(): boolean {
    return this.write(PING);
  }

  close(reason: FlowCloseReason = 'local', detail?: string): void {
    if (this.closed) return;
    this.finish(detail === undefined ? { reason } : { reason, detail });
  }

  private write(bytes: Buffer): boolean {
    if (this.closed) return false;
    if (this.socket.writableLength + bytes.length > this.options.sendBufferBytesMax) {
      this.finish({ reason: 'send-buffer-full', detail: `${this.socket.writableLength} bytes queued` }, true);
      return false;
    }
    this.lastActivityMs = this.options.clock.nowMs();
    this.socket.write(bytes);
    return true;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivityMs = this.options.clock.nowMs();
    const events = this.framer.push(chunk);
    // One message in the chunk (a client with one request in flight): its answer is one write anyway.
    if (events.length === 1) {
      this.handleEvent(events[0]!);
      return;
    }
    // Answers written while this chunk's messages are handled leave in one writev at the end (a
    // client with many requests in flight sends many per chunk), not one write syscall each.
    this.socket.cork();
    try {
      for (const event of events) {
        if (this.closed) return;
        this.handleEvent(event);
      }
    } finally {
      this.socket.uncork();
    }
  }

  private handleEvent(event: FrameEvent): void {
    switch (event.kind) {
      case 'message':
        this.emit('message', event.message);
        break;
      case 'ping':
        this.write(PONG);
        this.emit('ping');
        break;
      case 'pong':
        this.emit('pong');
        break;
      case 'invalid':
      case 'fatal': {
        const answer = answerFor(event.error, { toTag: this.newTag() });
        if (answer.response) this.write(serializeMessage(answer.response));
        this.emit('invalid', event.error, answer);
        if (!answer.keepConnection) {
          this.finish({ reason: event.error.problem === 'framing' ? 'framing' : 'too-large', detail: event.error.reason }, false, true);
        }
        break;
      }
    }
  }

  private newTag(): string {
    return Math.floor(this.options.random() * 2 ** 48).toString(36);
  }

  private armIdleTimer(delayMs: number): void {
    this.idleTimer = this.options.clock.setTimer(delayMs, () => {
      if (this.closed) return;
      const idleMs = this.options.clock.nowMs() - this.lastActivityMs;
      if (idleMs >= this.options.idleTimeoutMs) this.finish({ reason: 'idle', detail: `idle ${idleMs} ms` });
      else this.armIdleTimer(this.options.idleTimeoutMs - idleMs);
    });
  }

  /** Closes once: `abort` resets at once; `flush` lets queued bytes (a final 400) go out first. */
  private finish(info: FlowClose, abort = false, flush = false): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    this.idleTimer?.cancel();
    this.socket.removeAllListeners('data');
    this.socket.on('error', () => {}); // late errors after close are expected (EPIPE, ECONNRESET)
    if (flush && !abort) {
      this.socket.end();
      this.socket.resume();
      // A peer that never reads must not hold the socket: destroy when the end cannot complete soon.
      const timer = this.options.clock.setTimer(1000, () => this.socket.destroy());
      this.socket.once('close', () => timer.cancel());
    } else {
      this.socket.destroy();
    }
    this.emit('close', info);
  }
}
