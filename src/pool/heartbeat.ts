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
    for (const peer of this.health.keys()) if (!wanted.has(peer)) this.health.delete(peer);
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
    if (after.state !== before.state) {
      for (const listener of this.listeners) listener({ peer, from: before.state, to: after.state, health: after });
    }
  }
}
