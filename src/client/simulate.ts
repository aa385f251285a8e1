// Simulator: many simulated users in one event loop (one UserAgent and one flow each, as real
// devices have), a share of them legacy, calls between random registered users, live counters, a
// summary and a JSON report. The load generator of the failover benchmark.
import { Resolver } from 'node:dns/promises';
import { assert } from '../shared/assert.ts';
import { systemClock, systemRandom, type Clock, type Random, type Timer } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import type { Call } from './call.ts';
import { PoolDiscoverer, type SipTransportName } from './discover.ts';
import { UserAgent, type Locator, type UserAgentOptions } from './user-agent.ts';

export interface SimulatorOptions {
  /** SIP domain; users are `sip:<prefix><n>@<domain>`. */
  domain: string;
  /** DNS servers ("address:port"). */
  dnsServers: readonly string[];
  users: number;
  /** Share of legacy users, 0..1 (they try only the first address). Default 0. */
  legacyShare?: number;
  /** Calls placed per minute between random registered users. Default 0. */
  callsPerMinute?: number;
  /** How long a call that came up lasts before the caller hangs up. Default 5000 ms. */
  callHoldMs?: number;
  /** Users started per second (a ramp, so that the pool sees a sign-in storm it can answer). Default 200. */
  startRatePerS?: number;
  transport?: SipTransportName;
  /** PEM CAs to trust for TLS. */
  ca?: string;
  userPrefix?: string;
  /** Each user's password, to answer the registrar's digest challenge (src/auth/passwords.ts); none: users sign in without. */
  passwordOf?: (aor: string) => string | undefined;
  /** Per-user knobs; the simulator's defaults are short so that failover shows in seconds. */
  userAgent?: Pick<UserAgentOptions, 'expiresS' | 'keepAliveIntervalMs' | 'pongTimeoutMs' | 'backoffBaseMs' | 'backoffMaxMs' | 'transactionTimeoutMs' | 'subscribeRegEvent' | 'answerDelayMs' | 'connect'>;
  /** Replaces DNS discovery (tests). */
  locatorFor?: (aor: string) => Locator;
  clock?: Clock;
  random?: Random;
}

/** The simulator's short defaults (a benchmark wants failover in seconds, not RFC 5626's minutes). */
export const SIMULATOR_USER_AGENT_DEFAULTS = {
  backoffBaseMs: 1000, // 1 s
  backoffMaxMs: 30_000, // 30 s
  keepAliveIntervalMs: 30_000, // 30 s
  pongTimeoutMs: 10_000, // 10 s
  connect: { connectTimeoutMs: 2000 }, // 2 s
} as const;

export interface SimulationSummary {
  elapsedMs: number;
  users: number;
  started: number;
  registered: number;
  registering: number;
  /** Users whose last sign-in failed (waiting for their back-off). */
  failed: number;
  /** Registered users per registrar ("address:port"). */
  registeredPerServer: Record<string, number>;
  primary: number;
  backup: number;
  /** Registered, but the 200 said no X-Registrar-Mode. */
  unknownMode: number;
  failovers: number;
  redirects: number;
  deactivations: number;
  flowDeaths: number;
  signInFailures: { modern: number; legacy: number };
  /** Sign-ins given up because the servers redirected more than limits.clientRedirectsMax times (DESIGN §3: must stay 0). */
  redirectLoops: number;
  /**
   * attempted: placed; up: answered; failed: ended before it was answered (not counting calls cut by the
   * end of the run); dropped: ended after it was up other than by a BYE; byeOk / byeFailed: our BYEs
   * answered 2xx / otherwise (or not at all). failedBy: the failed setups by how they ended, final
   * status and reason phrase (e.g. "rejected 480 User not registered", "timeout"), with their count;
   * byeFailedBy: the failed BYEs by final status ("no answer" when none came).
   */
  calls: { attempted: number; up: number; failed: number; dropped: number; byeOk: number; byeFailed: number; inProgress: number; failedBy: Record<string, number>; byeFailedBy: Record<string, number> };
}

export interface UserReport {
  aor: string;
  legacy: boolean;
  state: string;
  server: string | null;
  mode: string | null;
  registrations: number;
  refreshes: number;
  failures: number;
  failovers: number;
  redirects: number;
  lastError: string | null;
}

export interface SimulationReport {
  startedAt: string;
  durationMs: number;
  options: { domain: string; dnsServers: string[]; users: number; legacyShare: number; callsPerMinute: number; transport: SipTransportName };
  totals: SimulationSummary & {
    /** Sign-in failures by error code, legacy users apart (DESIGN §1: they lose failover). */
    signInFailureReasons: { modern: Record<string, number>; legacy: Record<string, number> };
  };
  users: UserReport[];
}

interface SimulatedUser {
  agent: UserAgent;
  legacy: boolean;
}

/** Parses "20%", "0.2" or "20" (a percentage when above 1) into a share 0..1. */
export function parseShare(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(text);
  assert(match !== null, `not a share: ${text}`);
  const value = Number(match[1]);
  const share = match[2] === '%' || value > 1 ? value / 100 : value;
  assert(share >= 0 && share <= 1, `share out of 0..100 %: ${text}`);
  return share;
}

export class Simulator {
  private readonly options: SimulatorOptions;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly users: SimulatedUser[] = [];
  private readonly timers = new Set<Timer>();
  private readonly failureReasons = { modern: {} as Record<string, number>, legacy: {} as Record<string, number> };
  private readonly signInFailures = { modern: 0, legacy: 0 };
  private redirectLoops = 0;
  private readonly calls = { attempted: 0, up: 0, failed: 0, dropped: 0, byeOk: 0, byeFailed: 0 };
  private readonly failedBy = new Map<string, number>();
  private readonly byeFailedBy = new Map<string, number>();
  private readonly liveCalls = new Set<Call>();
  private startedAtMs = 0;
  private stopped = false;
  private resolver: Resolver | null = null;

  constructor(options: SimulatorOptions) {
    assert(Number.isInteger(options.users) && options.users >= 1 && options.users <= limits.clientSimulatedUsersMax, `users must be 1..${limits.clientSimulatedUsersMax}`);
    const legacyShare = options.legacyShare ?? 0;
    assert(legacyShare >= 0 && legacyShare <= 1, 'legacyShare is 0..1');
    assert((options.callsPerMinute ?? 0) >= 0, 'callsPerMinute is not negative');
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
  }

  /** Starts the users at the ramp rate, and the calls. Returns at once. */
  start(): void {
    this.startedAtMs = this.clock.nowMs();
    const legacyCount = Math.round(this.options.users * (this.options.legacyShare ?? 0));
    if (!this.options.locatorFor) {
      // One resolver shared by all (one c-ares channel), one cache per user, as each device keeps its own.
      this.resolver = new Resolver({ timeout: 2000, tries: 2 });
      this.resolver.setServers([...this.options.dnsServers]);
    }
    const ratePerS = this.options.startRatePerS ?? 200;
    for (let index = 0; index < this.options.users; index++) {
      const legacy = isLegacyUser(index, this.options.users, legacyCount);
      const user = this.createUser(index, legacy);
      this.users.push(user);
      this.later(Math.floor((index * 1000) / ratePerS), () => void user.agent.start());
    }
    const perMinute = this.options.callsPerMinute ?? 0;
    if (perMinute > 0) this.scheduleNextCall(60_000 / perMinute);
  }

  /** Stops every user (unregistering them) and every timer. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) timer.cancel();
    this.timers.clear();
    await Promise.all(this.users.map((user) => (user.agent.state === 'idle' ? undefined : user.agent.stop({ unregisterTimeoutMs: 1000 }))));
    this.resolver?.cancel();
  }

  /** Runs for `durationMs`, then stops and reports. */
  async run(durationMs: number): Promise<SimulationReport> {
    this.start();
    await new Promise<void>((resolve) => this.later(durationMs, resolve));
    const report = this.report();
    await this.stop();
    return report;
  }

  /** Have all users been started, and has each one either registered or failed at least once? */
  get settled(): boolean {
    return this.users.length === this.options.users && this.users.every((user) => user.agent.state === 'registered' || user.agent.stats.failures > 0);
  }

  summary(): SimulationSummary {
    const summary: SimulationSummary = {
      elapsedMs: this.clock.nowMs() - this.startedAtMs,
      users: this.options.users,
      started: 0,
      registered: 0,
      registering: 0,
      failed: 0,
      registeredPerServer: {},
      primary: 0,
      backup: 0,
      unknownMode: 0,
      failovers: 0,
      redirects: 0,
      deactivations: 0,
      flowDeaths: 0,
      signInFailures: { ...this.signInFailures },
      redirectLoops: this.redirectLoops,
      calls: { ...this.calls, inProgress: this.liveCalls.size, failedBy: Object.fromEntries(this.failedBy), byeFailedBy: Object.fromEntries(this.byeFailedBy) },
    };
    for (const { agent } of this.users) {
      if (agent.state !== 'idle') summary.started++;
      if (agent.state === 'registering') summary.registering++;
      if (agent.state === 'failed') summary.failed++;
      if (agent.state === 'registered' && agent.server) {
        summary.registered++;
        summary.registeredPerServer[agent.server] = (summary.registeredPerServer[agent.server] ?? 0) + 1;
        if (agent.registrarMode === 'primary') summary.primary++;
        else if (agent.registrarMode === 'backup') summary.backup++;
        else summary.unknownMode++;
      }
      summary.failovers += agent.stats.failovers;
      summary.redirects += agent.stats.redirects;
      summary.deactivations += agent.stats.deactivations;
      summary.flowDeaths += agent.stats.flowDeaths;
    }
    return summary;
  }

  report(): SimulationReport {
    return {
      startedAt: new Date(this.startedAtMs).toISOString(),
      durationMs: this.clock.nowMs() - this.startedAtMs,
      options: {
        domain: this.options.domain,
        dnsServers: [...this.options.dnsServers],
        users: this.options.users,
        legacyShare: this.options.legacyShare ?? 0,
        callsPerMinute: this.options.callsPerMinute ?? 0,
        transport: this.options.transport ?? 'tcp',
      },
      totals: { ...this.summary(), signInFailureReasons: { modern: { ...this.failureReasons.modern }, legacy: { ...this.failureReasons.legacy } } },
      users: this.users.map(({ agent, legacy }) => ({
        aor: agent.aor,
        legacy,
        state: agent.state,
        server: agent.server,
        mode: agent.registrarMode,
        registrations: agent.stats.registrations,
        refreshes: agent.stats.refreshes,
        failures: agent.stats.failures,
        failovers: agent.stats.failovers,
        redirects: agent.stats.redirects,
        lastError: agent.stats.lastError,
      })),
    };
  }

  private later(delayMs: number, callback: () => void): void {
    const timer = this.clock.setTimer(delayMs, () => {
      this.timers.delete(timer);
      callback();
    });
    this.timers.add(timer);
  }

  private createUser(index: number, legacy: boolean): SimulatedUser {
    const aor = `sip:${this.options.userPrefix ?? 'user'}${index + 1}@${this.options.domain}`;
    const transport = this.options.transport ?? 'tcp';
    const locator =
      this.options.locatorFor?.(aor) ??
      new PoolDiscoverer({ dnsServers: this.options.dnsServers, transport, clock: this.clock, random: this.random, ...(this.resolver ? { resolver: this.resolver } : {}) });
    const knobs = { ...SIMULATOR_USER_AGENT_DEFAULTS, ...this.options.userAgent };
    const agent = new UserAgent({
      ...knobs,
      aor,
      locator,
      transport,
      mode: legacy ? 'legacy' : 'modern',
      password: this.options.passwordOf?.(aor),
      connect: { ...knobs.connect, ...(this.options.ca ? { ca: this.options.ca } : {}) },
      clock: this.clock,
      random: this.random,
    });
    agent.on('registrationFailed', ({ error }) => {
      const kind = legacy ? 'legacy' : 'modern';
      this.signInFailures[kind]++;
      if (/redirected the registration a \d+th time/.test(error.message)) this.redirectLoops++;
      // CLIENT_CONNECT says how the addresses failed (refused: server down; timeout: host gone).
      const attempts = (error as { attempts?: { outcome: string }[] }).attempts;
      const reason = attempts ? `${error.code} (${[...new Set(attempts.map((attempt) => attempt.outcome))].join(', ')})` : error.code;
      this.failureReasons[kind][reason] = (this.failureReasons[kind][reason] ?? 0) + 1;
    });
    return { agent, legacy };
  }

  /** Calls arrive as a Poisson process (exponential gaps with the given mean). */
  private scheduleNextCall(meanGapMs: number): void {
    const gapMs = Math.round(-Math.log(1 - this.random()) * meanGapMs);
    this.later(gapMs, () => {
      if (this.stopped) return;
      this.placeCall();
      this.scheduleNextCall(meanGapMs);
    });
  }

  /** A call setup that failed, counted by how it ended (status and reason). */
  private setupFailed(why: string): void {
    this.calls.failed++;
    this.failedBy.set(why, (this.failedBy.get(why) ?? 0) + 1);
  }

  private placeCall(): void {
    const registered = this.users.filter((user) => user.agent.state === 'registered');
    // With fewer than two users signed in there is no call to place: not an attempt, not a failure.
    if (registered.length < 2) return;
    this.calls.attempted++;
    const caller = registered[Math.floor(this.random() * registered.length)]!;
    let callee = registered[Math.floor(this.random() * (registered.length - 1))]!;
    if (callee === caller) callee = registered[registered.length - 1]!;
    let call: Call;
    try {
      call = caller.agent.call(callee.agent.aor);
    } catch (error) {
      this.setupFailed(`not placed: ${(error as Error).message}`);
      return;
    }
    this.liveCalls.add(call);
    let up = false;
    call.once('up', () => {
      up = true;
      this.calls.up++;
      this.later(this.options.callHoldMs ?? 5000, () => call.hangUp());
    });
    call.once('byeAnswered', (status) => {
      if (status !== null && status >= 200 && status < 300) this.calls.byeOk++;
      else {
        this.calls.byeFailed++;
        const why = status === null ? 'no answer' : String(status);
        this.byeFailedBy.set(why, (this.byeFailedBy.get(why) ?? 0) + 1);
      }
    });
    call.once('ended', ({ how, status, detail }) => {
      this.liveCalls.delete(call);
      // A call still ringing when the run ends is cut by the simulator, not failed by the pool.
      if (!up && !this.stopped) this.setupFailed([how, status, detail].filter((part) => part !== undefined && part !== '').join(' '));
      if (up && !this.stopped && how !== 'bye-sent' && how !== 'bye-received') this.calls.dropped++;
    });
  }
}

/** Which simulated users are legacy: `legacyCount` of `users`, spread over the whole list, not all at its end. */
export function isLegacyUser(index: number, users: number, legacyCount: number): boolean {
  return legacyCount > 0 && Math.floor(((index + 1) * legacyCount) / users) > Math.floor((index * legacyCount) / users);
}
