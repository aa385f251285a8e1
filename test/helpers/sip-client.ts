// A minimal SIP peer for tests: a TCP (or TLS) connection that sends raw messages and collects what comes
// back, framed by the project's own StreamFramer, with waits for a matching message.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { StreamFramer } from '../../src/sip/framer.ts';
import { headerValue, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.ts';

export class TestSipClient {
  readonly messages: SipMessage[] = [];
  private readonly framer = new StreamFramer({ role: 'client' });
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.framer.push(chunk)) if (event.kind === 'message') this.messages.push(event.message);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(host: string, port: number, localAddress: string): Promise<TestSipClient> {
    const socket = connect({ host, port, localAddress });
    await once(socket, 'connect');
    return new TestSipClient(socket);
  }

  /**
   * Over TLS, presenting `cert`/`key` when given (a server's certificate: mutual TLS between servers),
   * verifying the server with `ca` against `servername`.
   */
  static async openTls(host: string, port: number, localAddress: string, tls: { ca: string; servername: string; cert?: string; key?: string }): Promise<TestSipClient> {
    const raw = connect({ host, port, localAddress });
    const socket = tlsConnect({ socket: raw, ...tls });
    await once(socket, 'secureConnect');
    return new TestSipClient(socket);
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  send(lines: string[], body = ''): void {
    const head = lines.filter((line) => !/^content-length:/i.test(line));
    this.socket.write(`${head.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Waits for (and removes) the first message matching `predicate`. */
  async next<T extends SipMessage>(predicate: (message: SipMessage) => message is T, timeoutMs?: number): Promise<T>;
  async next(predicate: (message: SipMessage) => boolean, timeoutMs?: number): Promise<SipMessage>;
  async next(predicate: (message: SipMessage) => boolean, timeoutMs = 5000): Promise<SipMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex(predicate);
      if (index >= 0) return this.messages.splice(index, 1)[0]!;
      if (this.closed) throw new Error('connection closed while waiting');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got: ${this.messages.map(describe).join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  response(callId: string, status?: number, method?: string, timeoutMs?: number): Promise<SipResponse> {
    return this.next((m): m is SipResponse => m.kind === 'response' && headerValue(m, 'Call-ID') === callId && (status === undefined || m.status === status) && (method === undefined || (headerValue(m, 'CSeq') ?? '').endsWith(` ${method}`)), timeoutMs);
  }

  request(method: string, callId?: string): Promise<SipRequest> {
    return this.next((m): m is SipRequest => m.kind === 'request' && m.method === method && (callId === undefined || headerValue(m, 'Call-ID') === callId));
  }

  close(): void {
    this.socket.destroy();
  }
}

function describe(message: SipMessage): string {
  return message.kind === 'request' ? message.method : `${message.status} ${headerValue(message, 'CSeq')}`;
}
