// Connecting to a pool with failover (DESIGN §1): walk the addresses DNS returned, in order.
// Modern clients try each with a connect timeout (optionally staggered, RFC 8305 style);
// legacy (pre-2010) clients try only the first address, which is why they lose failover.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { systemClock, type Clock, type Timer } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';

export type ClientMode = 'modern' | 'legacy';

export interface Endpoint {
  address: string;
  port: number;
  transport: 'tcp' | 'tls';
  /** The name the certificate must carry (TLS); the address when absent. */
  host?: string;
}

export type AttemptOutcome = 'connected' | 'refused' | 'timeout' | 'error' | 'abandoned';

export interface Attempt {
  endpoint: Endpoint;
  outcome: AttemptOutcome;
  startedAtMs: number;
  elapsedMs: number;
  detail?: string;
}

export interface ConnectOptions {
  mode?: ClientMode;
  /** Per address. Lync clients waited much longer; 2 s keeps sign-in quick when a server is gone. */
  connectTimeoutMs?: number;
  /** Start the next attempt this long after the previous one while it is still pending (RFC 8305 §5: 250 ms). */
  staggered?: boolean;
  staggerDelayMs?: number;
  /** Certificate authorities to trust for TLS (PEM). */
  ca?: string | Buffer | (string | Buffer)[];
  /** A client certificate and its key to present (PEM): a federation partner's Access Edge presents its own. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Connect from this address (a client outside, e.g. 127.0.1.x, reaching the Access Edge). */
  localAddress?: string;
  clock?: Clock;
}

export interface Connected {
  socket: Socket | TLSSocket;
  endpoint: Endpoint;
  attempts: Attempt[];
}

export const CONNECT_TIMEOUT_MS_DEFAULT = 2000; // 2 s
export const STAGGER_DELAY_MS_DEFAULT = 250; // RFC 8305 §5 "Connection Attempt Delay"

function classify(error: NodeJS.ErrnoException): AttemptOutcome {
  return error.code === 'ECONNREFUSED' ? 'refused' : 'error';
}

/**
 * Connects to the first endpoint that answers. Resolves with the socket and every attempt made;
 * rejects with CLIENT_CONNECT (listing the attempts) when none connects.
 */
export function connectWithFailover(endpoints: readonly Endpoint[], options: ConnectOptions = {}): Promise<Connected> {
  const clock = options.clock ?? systemClock;
  const mode = options.mode ?? 'modern';
  const timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT;
  const staggerMs = options.staggerDelayMs ?? STAGGER_DELAY_MS_DEFAULT;
  const candidates = mode === 'legacy' ? endpoints.slice(0, 1) : [...endpoints];
  const attempts: Attempt[] = [];

  return new Promise<Connected>((resolve, reject) => {
    if (candidates.length === 0) {
      reject(new DnslbError('CLIENT_CONNECT', 'no address to connect to'));
      return;
    }
    let next = 0;
    let pending = 0;
    let done = false;
    let staggerTimer: Timer | undefined;
    const live = new Map<Socket, { attempt: Attempt; timer: Timer }>();

    const finishAttempt = (socket: Socket, outcome: AttemptOutcome, detail?: string) => {
      const entry = live.get(socket);
      if (!entry) return;
      live.delete(socket);
      entry.timer.cancel();
      entry.attempt.outcome = outcome;
      entry.attempt.elapsedMs = clock.nowMs() - entry.attempt.startedAtMs;
      if (detail !== undefined) entry.attempt.detail = detail;
      pending--;
    };

    const failIfExhausted = () => {
      if (done || pending > 0 || next < candidates.length) return;
      done = true;
      const summary = attempts.map((attempt) => `${attempt.endpoint.address}:${attempt.endpoint.port} ${attempt.outcome}`).join(', ');
      const error = new DnslbError('CLIENT_CONNECT', `could not connect (${mode}): ${summary}`);
      Object.assign(error, { attempts });
      reject(error);
    };

    const launch = () => {
      if (done || next >= candidates.length) return;
      const endpoint = candidates[next++]!;
      const attempt: Attempt = { endpoint, outcome: 'abandoned', startedAtMs: clock.nowMs(), elapsedMs: 0 };
      attempts.push(attempt);
      pending++;
      const socket =
        endpoint.transport === 'tls'
          ? connectTls({ host: endpoint.address, port: endpoint.port, servername: endpoint.host, ca: options.ca, ...(options.cert !== undefined && options.key !== undefined ? { cert: options.cert, key: options.key } : {}), ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}) })
          : connectTcp({ host: endpoint.address, port: endpoint.port, ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}) });
      const timer = clock.setTimer(timeoutMs, () => {
        // After the I/O of this turn of the event loop: on a loop that lagged past the timeout (a
        // simulator holding thousands of users), the connect that completed in time waits behind
        // this timer in the same turn, and would be counted a timeout — then the client walks on
        // to another server and is redirected back, and every such walk costs the pool more work.
        setImmediate(() => {
          if (!live.has(socket)) return;
          finishAttempt(socket, 'timeout', `no answer in ${timeoutMs} ms`);
          socket.destroy();
          launchNextNow();
        });
      });
      live.set(socket, { attempt, timer });
      socket.once(endpoint.transport === 'tls' ? 'secureConnect' : 'connect', () => {
        if (done) {
          socket.destroy();
          return;
        }
        finishAttempt(socket, 'connected');
        done = true;
        staggerTimer?.cancel();
        // The losers of a staggered race are abandoned: RFC 8305 §6 cancels them.
        for (const [other, entry] of live) {
          entry.timer.cancel();
          entry.attempt.elapsedMs = clock.nowMs() - entry.attempt.startedAtMs;
          other.destroy();
        }
        live.clear();
        socket.removeAllListeners('error');
        resolve({ socket, endpoint, attempts });
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        finishAttempt(socket, classify(error), error.code ?? error.message);
        socket.destroy();
        launchNextNow();
      });
      if (options.staggered && mode === 'modern') {
        staggerTimer?.cancel();
        staggerTimer = clock.setTimer(staggerMs, launch);
      }
    };

    const launchNextNow = () => {
      if (done) return;
      staggerTimer?.cancel();
      if (next < candidates.length) launch();
      else failIfExhausted();
    };

    launch();
  });
}
