// StreamFramer: cuts a TCP/TLS byte stream into SIP messages by Content-Length (RFC 3261 §18.3),
// reports CRLF keep-alives (RFC 5626 §3.5.1), and enforces the size limits without buffering past them.
import { assert } from '../shared/assert.ts';
import { limits } from '../shared/limits.ts';
import type { SipMessage } from './message.ts';
import { contentLengthOf, decodeHead, interpretMessage, splitHead, type MessageHead } from './parse.ts';
import { SipMessageError } from './problem.ts';

/**
 * One thing found in the stream:
 * - `message`: a whole message that parsed;
 * - `invalid`: a whole message that did not parse; the stream is still in step (answer it and go on);
 * - `fatal`: the stream can no longer be delimited (or a limit was hit); nothing more will be produced;
 * - `ping`: a double CRLF between messages (RFC 5626 §3.5.1): answer with a single CRLF;
 * - `pong`: a single CRLF between messages (the answer to our ping, or a plain keep-alive).
 */
export type FrameEvent =
  | { readonly kind: 'message'; readonly message: SipMessage; readonly bytes: number }
  | { readonly kind: 'invalid'; readonly error: SipMessageError }
  | { readonly kind: 'fatal'; readonly error: SipMessageError }
  | { readonly kind: 'ping' }
  | { readonly kind: 'pong' };

export interface FramerOptions {
  /**
   * `server` (accepted flows): CRLFCRLF is a ping; a lone CRLF followed by a message is a keep-alive
   * reported as `pong`. `client` (flows we opened): every CRLF is a pong, reported at once, since
   * the server answers our ping with exactly one CRLF and nothing may follow it for a while.
   */
  role: 'server' | 'client';
  lineBytesMax?: number;
  headerSectionBytesMax?: number;
  bodyBytesMax?: number;
}

const CR = 0x0d;
const LF = 0x0a;
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** The body of every message without one (most): nobody writes into a message's body. */
const NO_BODY = Buffer.alloc(0);

type State = 'boundary' | 'head' | 'body' | 'dead';

export class StreamFramer {
  private readonly role: 'server' | 'client';
  private readonly lineBytesMax: number;
  private readonly headerSectionBytesMax: number;
  private readonly bodyBytesMax: number;

  private state: State = 'boundary';
  // boundary state: CR seen / CRLFs counted since the last message
  private boundaryCr = false;
  private boundaryCrlfs = 0;
  // head state: the bytes so far (chunks), the current line length, the last 3 bytes to spot CRLFCRLF
  private headChunks: Buffer[] = [];
  private headBytes = 0;
  private lineBytes = 0;
  private tail = 0;
  // body state
  private head: MessageHead | null = null;
  private bodyChunks: Buffer[] = [];
  private bodyRemaining = 0;
  private bodyExpected = 0;
  private headLength = 0;

  constructor(options: FramerOptions) {
    this.role = options.role;
    this.lineBytesMax = options.lineBytesMax ?? limits.sipLineBytesMax;
    this.headerSectionBytesMax = options.headerSectionBytesMax ?? limits.sipHeaderSectionBytesMax;
    this.bodyBytesMax = options.bodyBytesMax ?? limits.sipBodyBytesMax;
    assert(this.lineBytesMax <= this.headerSectionBytesMax, 'a line must fit in a header section');
  }

  /** Bytes held for the message in progress (never more than the limits allow). */
  get bufferedBytes(): number {
    return this.headBytes + (this.bodyExpected - this.bodyRemaining);
  }

  /** True once a fatal event was produced: the flow must close. */
  get dead(): boolean {
    return this.state === 'dead';
  }

  /** Feeds a chunk; returns what it completed, in order. */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let i = 0;
    while (i < chunk.length && this.state !== 'dead') {
      if (this.state === 'boundary') i = this.boundary(chunk, i, events);
      else if (this.state === 'head') i = this.headScan(chunk, i, events);
      else i = this.bodyTake(chunk, i, events);
    }
    return events;
  }

  private boundary(chunk: Buffer, start: number, events: FrameEvent[]): number {
    let i = start;
    while (i < chunk.length) {
      const byte = chunk[i];
      if (byte === CR && !this.boundaryCr) {
        this.boundaryCr = true;
        i++;
        continue;
      }
      if (byte === LF && this.boundaryCr) {
        this.boundaryCr = false;
        i++;
        if (this.role === 'client') {
          events.push({ kind: 'pong' });
          continue;
        }
        this.boundaryCrlfs++;
        if (this.boundaryCrlfs === 2) {
          this.boundaryCrlfs = 0;
          events.push({ kind: 'ping' });
        }
        continue;
      }
      // Anything else starts a message. A lone CRLF before it was a keep-alive.
      if (this.boundaryCrlfs === 1) events.push({ kind: 'pong' });
      this.boundaryCrlfs = 0;
      if (this.boundaryCr) {
        // A CR not followed by LF: it belongs to the (malformed) start line.
        this.boundaryCr = false;
        this.headChunks.push(Buffer.from([CR]));
        this.headBytes = 1;
        this.lineBytes = 1;
        this.tail = CR;
      }
      this.state = 'head';
      return i;
    }
    return i;
  }

  private headScan(chunk: Buffer, start: number, events: FrameEvent[]): number {
    // A whole header section in this chunk, shorter than a line may be (the common case: a request
    // in one segment): found with one indexOf instead of a byte at a time. No line or section limit
    // can be passed by so few bytes, and the first CRLFCRLF is where the loop below would stop.
    if (this.headBytes === 0) {
      const end = chunk.indexOf(CRLFCRLF, start);
      if (end >= 0 && end + 4 - start <= this.lineBytesMax) {
        // Decoded straight from the chunk: no Buffer view made for it.
        this.headBytes = end + 4 - start;
        this.headComplete(events, chunk.toString('utf8', start, end));
        return end + 4;
      }
    }
    let i = start;
    for (; i < chunk.length; i++) {
      const byte = chunk[i] ?? 0;
      this.tail = ((this.tail << 8) | byte) >>> 0;
      this.headBytes++;
      if (byte === LF) this.lineBytes = 0;
      else if (byte !== CR) this.lineBytes++;
      if (this.lineBytes > this.lineBytesMax) {
        this.kill(events, new SipMessageError('too-large', 'Header line too long'));
        return chunk.length;
      }
      if (this.headBytes > this.headerSectionBytesMax) {
        this.kill(events, new SipMessageError('too-large', 'Header section too large'));
        return chunk.length;
      }
      if (this.tail === 0x0d0a0d0a) {
        this.headChunks.push(chunk.subarray(start, i + 1));
        this.headComplete(events);
        return i + 1;
      }
    }
    this.headChunks.push(Buffer.from(chunk.subarray(start, i)));
    return i;
  }

  /** `text`: the header section already decoded (without its blank line); else it is in headChunks. */
  private headComplete(events: FrameEvent[], text?: string): void {
    const headLength = this.headBytes;
    if (text === undefined) {
      const bytes = this.headChunks.length === 1 ? this.headChunks[0]! : Buffer.concat(this.headChunks);
      text = decodeHead(bytes.subarray(0, headLength - 4));
    }
    if (this.headChunks.length > 0) this.headChunks = [];
    this.headLength = headLength;
    this.headBytes = 0;
    this.lineBytes = 0;
    this.tail = 0;
    let head: MessageHead;
    try {
      head = splitHead(text);
    } catch (error) {
      // Without the headers we cannot find Content-Length: the stream is out of step.
      if (error instanceof SipMessageError) return this.kill(events, new SipMessageError(error.problem === 'too-large' ? 'too-large' : 'framing', error.reason, { partial: error.partial, framingLost: true, cause: error }));
      throw error;
    }
    const partial = { isRequest: !/^SIP\//i.test(head.startLine), method: head.startLine.split(' ')[0] ?? null, headers: head.headers };
    let length: number | null;
    try {
      length = contentLengthOf(head, partial);
    } catch (error) {
      if (error instanceof SipMessageError) return this.kill(events, error);
      throw error;
    }
    // §18.3: on a stream, Content-Length MUST be present; without it the message cannot be delimited.
    if (length === null) return this.kill(events, new SipMessageError('framing', 'Missing Content-Length header', { partial }));
    if (length > this.bodyBytesMax) return this.kill(events, new SipMessageError('body-too-large', 'Body too large', { partial }));
    this.head = head;
    this.bodyExpected = length;
    this.bodyRemaining = length;
    this.state = 'body';
    if (length === 0) this.bodyDone(events);
  }

  private bodyTake(chunk: Buffer, start: number, events: FrameEvent[]): number {
    const take = Math.min(this.bodyRemaining, chunk.length - start);
    this.bodyChunks.push(Buffer.from(chunk.subarray(start, start + take)));
    this.bodyRemaining -= take;
    if (this.bodyRemaining === 0) this.bodyDone(events);
    return start + take;
  }

  private bodyDone(events: FrameEvent[]): void {
    const head = this.head;
    assert(head !== null, 'body without head');
    const body = this.bodyChunks.length === 0 ? NO_BODY : Buffer.concat(this.bodyChunks);
    const bytes = this.headLength + this.bodyExpected;
    this.head = null;
    if (this.bodyChunks.length > 0) this.bodyChunks = [];
    this.bodyExpected = 0;
    this.bodyRemaining = 0;
    this.state = 'boundary';
    try {
      const message = interpretMessage(head, body);
      events.push({ kind: 'message', message, bytes });
    } catch (error) {
      if (!(error instanceof SipMessageError)) throw error;
      // The message was delimited by its Content-Length, so the stream is still in step.
      events.push({ kind: 'invalid', error: new SipMessageError(error.problem, error.reason, { partial: error.partial, framingLost: false, cause: error }) });
    }
  }

  private kill(events: FrameEvent[], error: SipMessageError): void {
    this.state = 'dead';
    this.headChunks = [];
    this.bodyChunks = [];
    this.headBytes = 0;
    events.push({ kind: 'fatal', error });
  }
}
