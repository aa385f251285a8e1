// Server-to-server heartbeat (DESIGN §3): every `intervalMs` each member probes every other member
// (SIP OPTIONS, sent by the caller's `probe`), at most one probe in flight per peer; the results
// feed the hysteresis of member-state.ts. The resulting view is the physical registrar sequence.
import type { Clock, Timer } from '../shared/clock.ts';
import { initialHealth, isAvailable, nextHealth, type MemberHealth, type MemberState, type ProbeResult } from './member-state.ts';

export interface HeartbeatSettings {
  intervalMs: number;
  failAfter: number;
  riseAfter: number;
  /** A probe not answered within this is a miss; the interval by default. */
  probeTimeoutMs?: number;
  /**
   * After a refused probe (the peer's host answered that nothing listens there) of a peer that is not
   * down yet, the next probe of it goes out after this instead of at the next interval: a quarter of
   * the interval by default. The same `failAfter` misses still make it down; only their spacing
   * shrinks, and only on evidence — a silent peer (SIGSTOP, a lost host, a loaded machine) is still
   * probed once per interval, each miss waiting out its timeout.
   */
  refusedRetryMs?: number;
}

/** The default spacing of probes after a refusal: a quarter of the interval. */
export function refusedRetryMsOf(settings: HeartbeatSettings): number {
  return settings.refusedRetryMs ?? Math.max(1, Math.round(settings.intervalMs / 4));
}

/** Sends one probe to `peer`; resolves with what it answered, or a miss. Must not throw. */
export type Probe = (peer: string) => Promise<ProbeResult>;

export interface MemberChange {
  peer: string;
  from: MemberState;
  to: MemberState;
  health: MemberHealth;
}

export class Heartbeat {
  private readonly health = new Map<string, MemberHealth>();
  private readonly inFlight = new Set<string>();
  /** Early probes after a refusal, per peer (at most one each). */
  private readonly retryTimers = new Map<string, Timer>();
  private readonly listeners = new Set<(change: MemberChange) => void>();
  private timer: Timer | undefined;
  private running = false;
  /** Probes skipped because the previous one to that peer had not finished (at most one in flight). */
  skipped = 0;

  constructor(
    private readonly self: string,
    peers: readonly string[],
    private readonly probe: Probe,
    private settings: HeartbeatSettings,
    private readonly clock: Clock,
  ) {
    this.setPeers(peers);
  }

  /** The members to probe (a new topology version may add or remove some); self is left out. */
  setPeers(peers: readonly string[]): void {
    const wanted = new Set(peers.filter((peer) => peer !== this.self));
    for (const peer of this.health.keys()) {
      if (wanted.has(peer)) continue;
      this.health.delete(peer);
      this.cancelRetry(peer);
    }
    for (const peer of wanted) if (!this.health.has(peer)) this.health.set(peer, initialHealth(this.clock.nowMs()));
  }

  setSettings(settings: HeartbeatSettings): void {
    this.settings = settings;
  }

  onChange(listener: (change: MemberChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    for (const peer of [...this.retryTimers.keys()]) this.cancelRetry(peer);
  }

  /**
   * The link to `peer` closed from its side (a reset or FIN, e.g. its process died): probe it now
   * rather than at the next interval. A peer that is still there answers and nothing changes; one
   * that is gone refuses, and the refusals follow each other `refusedRetryMs` apart.
   */
  linkLost(peer: string): void {
    const health = this.health.get(peer);
    if (!this.running || !health || health.state === 'down' || this.inFlight.has(peer)) return;
    this.cancelRetry(peer);
    this.probeOnce(peer);
  }

  /** The view of every peer (self excluded). */
  view(): ReadonlyMap<string, MemberHealth> {
    return this.health;
  }

  stateOf(peer: string): MemberState | undefined {
    return this.health.get(peer)?.state;
  }

  availablePeers(): string[] {
    return [...this.health].filter(([, health]) => isAvailable(health.state)).map(([peer]) => peer);
  }

  private tick(): void {
    if (!this.running) return;
    for (const peer of this.health.keys()) {
      if (this.inFlight.has(peer)) {
        this.skipped++;
        continue;
      }
      this.probeOnce(peer);
    }
    this.timer = this.clock.setTimer(this.settings.intervalMs, () => this.tick());
  }

  private probeOnce(peer: string): void {
    this.inFlight.add(peer);
    let settled = false;
    const settle = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      timeout.cancel();
      this.inFlight.delete(peer);
      this.apply(peer, result);
    };
    const timeoutMs = this.settings.probeTimeoutMs ?? this.settings.intervalMs;
    const timeout = this.clock.setTimer(timeoutMs, () => settle({ ok: false, reason: `no answer in ${timeoutMs} ms` }));
    this.probe(peer).then(settle, (error: unknown) => settle({ ok: false, reason: (error as Error).message }));
  }

  private apply(peer: string, result: ProbeResult): void {
    const before = this.health.get(peer);
    if (!before || !this.running) return;
    const after = nextHealth(before, result, this.settings, this.clock.nowMs());
    this.health.set(peer, after);
    if (!result.ok && result.refused === true && after.state !== 'down') this.retrySoon(peer);
    if (after.state !== before.state) {
      for (const listener of this.listeners) listener({ peer, from: before.state, to: after.state, health: after });
    }
  }

  private retrySoon(peer: string): void {
    this.cancelRetry(peer);
    const timer = this.clock.setTimer(refusedRetryMsOf(this.settings), () => {
      this.retryTimers.delete(peer);
      if (this.running && this.health.has(peer) && !this.inFlight.has(peer)) this.probeOnce(peer);
    });
    this.retryTimers.set(peer, timer);
  }

  private cancelRetry(peer: string): void {
    this.retryTimers.get(peer)?.cancel();
    this.retryTimers.delete(peer);
  }
}
