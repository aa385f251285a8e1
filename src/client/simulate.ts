// Simulator: many simulated users in one event loop (one UserAgent and one flow each, as real
// devices have), a share of them legacy, calls between random registered users, live counters, a
// summary and a JSON report. The load generator of the failover benchmark.
import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { assert } from '../shared/assert.ts';
import { systemClock, systemRandom, type Clock, type Random, type Timer } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import type { Call } from './call.ts';
import { PoolDiscoverer, type SipTransportName } from './discover.ts';
import { FederationPeer, PEER_PROFILES, type PeerProfile, type PeerRequestResult } from './federation-peer.ts';
import { UserAgent, type Locator, type UserAgentOptions } from './user-agent.ts';

export interface SimulatorOptions {
  /**
   * SIP domain; users are `sip:<prefix><n>@<domain>`. With several, the users take them in turn
   * (user1@first, user2@second, …): with home rules per domain, users of several pools in one run.
   */
  domain: string | readonly string[];
  /** DNS servers ("address:port"). */
  dnsServers: readonly string[];
  users: number;
  /** Share of legacy users, 0..1 (they try only the first address). Default 0. */
  legacyShare?: number;
  /** Calls placed per minute between random registered users. Default 0. */
  callsPerMinute?: number;
  /** How long a call that came up lasts before the caller hangs up. Default 5000 ms. */
  callHoldMs?: number;
  /** Share of the calls placed to a telephone number (through a Mediation pool) rather than to a user, 0..1. Default 0. */
  pstnShare?: number;
  /** The numbers called: `+` and digits, each `x` a random digit. Default +1425555xxxx. */
  pstnNumbers?: string;
  /** Users started per second (a ramp, so that the pool sees a sign-in storm it can answer). Default 200. */
  startRatePerS?: number;
  transport?: SipTransportName;
  /** PEM CAs to trust for TLS. */
  ca?: string;
  /** Send DNS queries and connect from this address (remote users: outside, in the `external` view). */
  localAddress?: string;
  userPrefix?: string;
  /**
   * The first user's number: the users are <prefix><firstUser>…<prefix><firstUser + users − 1>. Default 1.
   * Several simulators (each process holds one connection per user: openFilesLimit()) sign in distinct users.
   */
  firstUser?: number;
  /** Each user's password, to answer the registrar's digest challenge (src/auth/passwords.ts); none: users sign in without. */
  passwordOf?: (aor: string) => string | undefined;
  /** Per-user knobs; the simulator's defaults are short so that failover shows in seconds. */
  userAgent?: Pick<UserAgentOptions, 'expiresS' | 'keepAliveIntervalMs' | 'pongTimeoutMs' | 'backoffBaseMs' | 'backoffMaxMs' | 'transactionTimeoutMs' | 'subscribeRegEvent' | 'answerDelayMs' | 'connect'>;
  /**
   * Federation partners' Access Edges sending IMs (MESSAGE) to the simulated users through our Access
   * Edge, each finding it through `_sipfederationtls._tcp.<domain>` on `dnsServers` (issue 14 §5).
   */
  peers?: PeerOptions;
  /** Replaces DNS discovery (tests). */
  locatorFor?: (aor: string) => Locator;
  clock?: Clock;
  random?: Random;
}

export interface PeerOptions {
  /** How many partner edges of each profile (federation-peer.ts: `federation` walks the addresses, the others use the first only). */
  groups: { profile: PeerProfile; count: number }[];
  /** The partners' SIP domain: their users are `sip:<profile>-<n>@<domain>`. */
  domain: string;
  /** Addresses the partners' connections and DNS questions leave from (outside our internal view), dealt out in turn. */
  localAddresses?: string[];
  /** IMs per minute from all partners together (a Poisson process); 0 (default): only sendPeerMessages() sends. */
  messagesPerMinute?: number;
  /** The partners' Access Edge certificate and key (PEM): our Edge admits a partner only with one naming its Access Edge. */
  certificate?: { cert: string; key: string };
  /** Passed to each FederationPeer. */
  tryTimeoutMs?: number;
  triesMax?: number;
}

/** The report of one peer profile: IMs sent and how they ended, and by the Access Edge address each went to first. */
export interface PeerProfileReport {
  peers: number;
  requests: number;
  ok: number;
  failed: number;
  /** Failed IMs by how they ended ("503 Service Unavailable", "connect refused", "403 <reason>"). */
  failedBy: Record<string, number>;
  /** Per Access Edge "address:port" the IM went to first: requests and failures. "none" when DNS gave none. */
  byFirstAddress: Record<string, { requests: number; failed: number }>;
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
  calls: { attempted: number; up: number; failed: number; dropped: number; byeOk: number; byeFailed: number; inProgress: number; failedBy: Record<string, number>; byeFailedBy: Record<string, number>; toNumbers: number };
  /**
   * How late this process's event loop ran (perf_hooks.monitorEventLoopDelay) since the start: every
   * timeout the simulated clients measure (connect, transaction) is late by as much. A loop that lags
   * by seconds makes the clients, not the pool, the bottleneck: run more simulator processes.
   */
  eventLoopDelayMs: { p99: number; max: number };
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
  /** `deactivated` NOTIFYs followed (hand-overs), and flows that died under the user. */
  deactivations: number;
  flowDeaths: number;
  lastError: string | null;
  /** The user's last few steps (connects, REGISTER answers, NOTIFYs), "+ms step", oldest first. */
  recent: string[];
}

export interface SimulationReport {
  startedAt: string;
  durationMs: number;
  options: { domain: string; dnsServers: string[]; users: number; legacyShare: number; callsPerMinute: number; pstnShare: number; transport: SipTransportName };
  totals: SimulationSummary & {
    /** Sign-in failures by error code, legacy users apart (DESIGN §1: they lose failover). */
    signInFailureReasons: { modern: Record<string, number>; legacy: Record<string, number> };
  };
  users: UserReport[];
  /** Federation peers by profile (only the profiles the run had). */
  peers: Partial<Record<PeerProfile, PeerProfileReport>>;
}

interface SimulatedUser {
  agent: UserAgent;
  legacy: boolean;
  /** The agent's last trace lines (TRACE_KEPT), each with the milliseconds since the run started: where a user that did not arrive was. */
  recent: string[];
}

/** Trace lines kept per user for the report. */
const TRACE_KEPT = 8;

/** The numbers `--pstn-numbers` accepts: + then digits and x (a random digit each). */
export const PSTN_NUMBERS = /^\+[0-9x]{1,15}$/;
const PSTN_NUMBERS_DEFAULT = '+1425555xxxx';

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
  private readonly calls = { attempted: 0, up: 0, failed: 0, dropped: 0, byeOk: 0, byeFailed: 0, toNumbers: 0 };
  private readonly domains: readonly string[];
  private readonly failedBy = new Map<string, number>();
  private readonly byeFailedBy = new Map<string, number>();
  private readonly liveCalls = new Set<Call>();
  private startedAtMs = 0;
  private stopped = false;
  /** This process's event-loop lag since start() (SimulationSummary.eventLoopDelayMs). */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  /** c-ares channels, each with its own UDP socket, shared by RESOLVER_USERS users each. */
  private resolvers: Resolver[] = [];
  private readonly peers: FederationPeer[] = [];
  private readonly peerReports = new Map<PeerProfile, PeerProfileReport>();
  private readonly peerResolvers: Resolver[] = [];

  constructor(options: SimulatorOptions) {
    assert(Number.isInteger(options.users) && options.users >= 1 && options.users <= limits.clientSimulatedUsersMax, `users must be 1..${limits.clientSimulatedUsersMax}`);
    const legacyShare = options.legacyShare ?? 0;
    assert(Number.isInteger(options.firstUser ?? 1) && (options.firstUser ?? 1) >= 1, 'firstUser is a whole number from 1');
    assert(legacyShare >= 0 && legacyShare <= 1, 'legacyShare is 0..1');
    assert((options.callsPerMinute ?? 0) >= 0, 'callsPerMinute is not negative');
    const pstnShare = options.pstnShare ?? 0;
    assert(pstnShare >= 0 && pstnShare <= 1, 'pstnShare is 0..1');
    assert(PSTN_NUMBERS.test(options.pstnNumbers ?? PSTN_NUMBERS_DEFAULT), 'pstnNumbers is + then digits and x');
    this.domains = typeof options.domain === 'string' ? [options.domain] : [...options.domain];
    assert(this.domains.length >= 1, 'at least one domain');
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
  }

  /** Starts the users at the ramp rate, and the calls. Returns at once. */
  start(): void {
    this.startedAtMs = this.clock.nowMs();
    this.loopDelay.enable();
    const legacyCount = Math.round(this.options.users * (this.options.legacyShare ?? 0));
    if (!this.options.locatorFor) {
      // One c-ares channel per RESOLVER_USERS users, one cache per user, as each device keeps its own.
      // Not one channel for all: its one UDP socket's receive buffer (a few hundred answers) overflowed
      // in a sign-in storm while the loop was busy with TLS, and the users' queries timed out
      // (bench:pool12: 42,000 answers dropped at the simulators, 16,000 CLIENT_DISCOVERY failures).
      for (let shard = 0; shard < Math.ceil(this.options.users / RESOLVER_USERS); shard++) {
        const resolver = new Resolver({ timeout: 2000, tries: 2 });
        resolver.setServers([...this.options.dnsServers]);
        if (this.options.localAddress !== undefined) resolver.setLocalAddress(this.options.localAddress);
        this.resolvers.push(resolver);
      }
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
    if (this.options.peers) this.startPeers(this.options.peers);
  }

  /** Stops every user (unregistering them) and every timer. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.loopDelay.disable();
    for (const timer of this.timers) timer.cancel();
    this.timers.clear();
    await Promise.all(this.users.map((user) => (user.agent.state === 'idle' ? undefined : user.agent.stop({ unregisterTimeoutMs: 1000 }))));
    for (const resolver of this.resolvers) resolver.cancel();
    for (const peer of this.peers) peer.close();
    for (const resolver of this.peerResolvers) resolver.cancel();
  }

  /**
   * Every federation peer sends `perPeer` IMs, one after another, to random registered users (the peers
   * at once); resolves when all have ended. A fixed count, so that tests compare counts, not rates.
   */
  async sendPeerMessages(perPeer: number): Promise<void> {
    assert(Number.isInteger(perPeer) && perPeer >= 0, 'perPeer is a whole number');
    await Promise.all(
      this.peers.map(async (peer) => {
        for (let n = 0; n < perPeer && !this.stopped; n++) await this.sendPeerMessage(peer);
      }),
    );
  }

  private startPeers(options: PeerOptions): void {
    const addresses = options.localAddresses ?? [];
    // One resolver (and DNS cache) per partner edge, as each partner organisation has its own.
    const locatorFor = (localAddress: string | undefined): PoolDiscoverer => {
      const resolver = new Resolver({ timeout: 2000, tries: 2 });
      resolver.setServers([...this.options.dnsServers]);
      if (localAddress?.includes(':')) resolver.setLocalAddress(undefined, localAddress);
      else if (localAddress !== undefined) resolver.setLocalAddress(localAddress);
      this.peerResolvers.push(resolver);
      return new PoolDiscoverer({ dnsServers: this.options.dnsServers, service: 'federation', resolver, clock: this.clock, random: this.random });
    };
    let index = 0;
    for (const group of options.groups) {
      assert(Number.isInteger(group.count) && group.count >= 0 && group.count <= limits.clientSimulatedUsersMax, `peers of ${group.profile}: 0..${limits.clientSimulatedUsersMax}`);
      this.peerReports.set(group.profile, { peers: group.count, requests: 0, ok: 0, failed: 0, failedBy: {}, byFirstAddress: {} });
      for (let n = 1; n <= group.count; n++, index++) {
        const localAddress = addresses.length > 0 ? addresses[index % addresses.length] : undefined;
        this.peers.push(
          new FederationPeer({
            profile: group.profile,
            from: `sip:${group.profile}-${n}@${options.domain}`,
            locator: locatorFor(localAddress),
            connect: { ...SIMULATOR_USER_AGENT_DEFAULTS.connect, ...this.options.userAgent?.connect, ...(this.options.ca ? { ca: this.options.ca } : {}), ...(options.certificate ? options.certificate : {}), ...(localAddress !== undefined ? { localAddress } : {}) },
            ...(options.tryTimeoutMs !== undefined ? { tryTimeoutMs: options.tryTimeoutMs } : {}),
            ...(options.triesMax !== undefined ? { triesMax: options.triesMax } : {}),
            clock: this.clock,
            random: this.random,
          }),
        );
      }
    }
    const perMinute = options.messagesPerMinute ?? 0;
    if (perMinute > 0 && this.peers.length > 0) this.scheduleNextPeerMessage(60_000 / perMinute);
  }

  private scheduleNextPeerMessage(meanGapMs: number): void {
    const gapMs = Math.round(-Math.log(1 - this.random()) * meanGapMs);
    this.later(gapMs, () => {
      if (this.stopped) return;
      void this.sendPeerMessage(this.peers[Math.floor(this.random() * this.peers.length)]!);
      this.scheduleNextPeerMessage(meanGapMs);
    });
  }

  private async sendPeerMessage(peer: FederationPeer): Promise<void> {
    const registered = this.users.filter((user) => user.agent.state === 'registered');
    const target = registered.length > 0 ? registered[Math.floor(this.random() * registered.length)]!.agent.aor : (this.users[0]?.agent.aor ?? `sip:user1@${this.options.domain}`);
    const result = await peer.message(target);
    // The run ended while the IM was on its way: not counted (the simulator cut it, not the pool).
    if (this.stopped) return;
    this.countPeerResult(peer.profile, result);
  }

  private countPeerResult(profile: PeerProfile, result: PeerRequestResult): void {
    const report = this.peerReports.get(profile)!;
    report.requests++;
    const first = (report.byFirstAddress[result.first ?? 'none'] ??= { requests: 0, failed: 0 });
    first.requests++;
    if (result.ok) {
      report.ok++;
      return;
    }
    report.failed++;
    first.failed++;
    report.failedBy[result.outcome] = (report.failedBy[result.outcome] ?? 0) + 1;
  }

  /** The peer profiles' counts so far (a copy). */
  peerSummary(): Partial<Record<PeerProfile, PeerProfileReport>> {
    return structuredClone(Object.fromEntries(this.peerReports)) as Partial<Record<PeerProfile, PeerProfileReport>>;
  }

  /** Runs for `durationMs`, then stops and reports. */
  async run(durationMs: number): Promise<SimulationReport> {
    this.start();
    await new Promise<void>((resolve) => this.later(durationMs, resolve));
    const report = this.report();
    await this.stop();
    return report;
  }

  /**
   * Resolves once every user is registered (true), or after `withinMs` (false): a run whose duration
   * should count from a signed-in pool, however long a loaded machine makes the sign-in storm.
   */
  async allRegistered(withinMs: number): Promise<boolean> {
    const deadlineMs = this.clock.nowMs() + withinMs;
    for (;;) {
      if (this.users.length === this.options.users && this.users.every((user) => user.agent.state === 'registered')) return true;
      if (this.stopped || this.clock.nowMs() >= deadlineMs) return false;
      await new Promise<void>((resolve) => this.later(Math.min(100, deadlineMs - this.clock.nowMs()), resolve));
    }
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
      eventLoopDelayMs: { p99: Math.round(this.loopDelay.percentile(99) / 1e6), max: Math.round(this.loopDelay.max / 1e6) },
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
        domain: this.domains.join(','),
        dnsServers: [...this.options.dnsServers],
        users: this.options.users,
        legacyShare: this.options.legacyShare ?? 0,
        callsPerMinute: this.options.callsPerMinute ?? 0,
        pstnShare: this.options.pstnShare ?? 0,
        transport: this.options.transport ?? 'tcp',
      },
      totals: { ...this.summary(), signInFailureReasons: { modern: { ...this.failureReasons.modern }, legacy: { ...this.failureReasons.legacy } } },
      users: this.users.map(({ agent, legacy, recent }) => ({
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
        deactivations: agent.stats.deactivations,
        flowDeaths: agent.stats.flowDeaths,
        lastError: agent.stats.lastError,
        recent: [...recent],
      })),
      peers: this.peerSummary(),
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
    const number = (this.options.firstUser ?? 1) + index;
    const aor = `sip:${this.options.userPrefix ?? 'user'}${number}@${this.domains[(number - 1) % this.domains.length]}`;
    const transport = this.options.transport ?? 'tcp';
    const locator =
      this.options.locatorFor?.(aor) ??
      new PoolDiscoverer({ dnsServers: this.options.dnsServers, transport, clock: this.clock, random: this.random, ...(this.resolvers.length > 0 ? { resolver: this.resolvers[Math.floor(index / RESOLVER_USERS)]! } : {}) });
    const knobs = { ...SIMULATOR_USER_AGENT_DEFAULTS, ...this.options.userAgent };
    const agent = new UserAgent({
      ...knobs,
      aor,
      locator,
      transport,
      mode: legacy ? 'legacy' : 'modern',
      password: this.options.passwordOf?.(aor),
      connect: { ...knobs.connect, ...(this.options.ca ? { ca: this.options.ca } : {}), ...(this.options.localAddress !== undefined ? { localAddress: this.options.localAddress } : {}) },
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
    const recent: string[] = [];
    agent.on('trace', (line) => {
      recent.push(`+${this.clock.nowMs() - this.startedAtMs} ${line}`);
      if (recent.length > TRACE_KEPT) recent.shift();
    });
    return { agent, legacy, recent };
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
    let target: string;
    const pstnShare = this.options.pstnShare ?? 0;
    // No draw without PSTN calls: a seeded run picks the same callers and callees as before.
    if (pstnShare > 0 && this.random() < pstnShare) {
      // RFC 3261 §19.1.6: a telephone number in a SIP URI of the caller's own domain, user=phone.
      const number = (this.options.pstnNumbers ?? PSTN_NUMBERS_DEFAULT).replace(/x/g, () => String(Math.floor(this.random() * 10)));
      target = `sip:${number}@${caller.agent.aor.slice(caller.agent.aor.indexOf('@') + 1)};user=phone`;
      this.calls.toNumbers++;
    } else {
      let callee = registered[Math.floor(this.random() * (registered.length - 1))]!;
      if (callee === caller) callee = registered[registered.length - 1]!;
      target = callee.agent.aor;
    }
    let call: Call;
    try {
      call = caller.agent.call(target);
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

/** Parses "legacy-federation:4,xmpp-gateway:2,federation:4" (a profile alone is one peer) into peer groups; CLI_USAGE-worthy errors as plain Error. */
export function parsePeerGroups(text: string): { profile: PeerProfile; count: number }[] {
  const groups: { profile: PeerProfile; count: number }[] = [];
  for (const part of text.split(',').map((item) => item.trim()).filter((item) => item !== '')) {
    const match = /^([a-z-]+)(?::(\d{1,6}))?$/.exec(part);
    const profile = match?.[1] as PeerProfile | undefined;
    if (!match || profile === undefined || !PEER_PROFILES.includes(profile)) throw new Error(`${part}: a peer profile (${PEER_PROFILES.join(', ')}) with an optional :count`);
    if (groups.some((group) => group.profile === profile)) throw new Error(`${profile} is given twice`);
    groups.push({ profile, count: match[2] === undefined ? 1 : Number(match[2]) });
  }
  if (groups.length === 0) throw new Error('no peer profile given');
  return groups;
}

/** Which simulated users are legacy: `legacyCount` of `users`, spread over the whole list, not all at its end. */
export function isLegacyUser(index: number, users: number, legacyCount: number): boolean {
  return legacyCount > 0 && Math.floor(((index + 1) * legacyCount) / users) > Math.floor((index * legacyCount) / users);
}

/**
 * Files this process may hold open (its RLIMIT_NOFILE soft limit, from /proc/self/limits), or null
 * where that is unknown (not Linux). A simulated user holds one connection once signed in, two while
 * it follows a redirect (make before break), so a process with the limit at N cannot keep N users
 * signed in: the last few fail to connect (EMFILE) again and again, and every failure goes back
 * through DNS to a random server and one more redirect.
 */
export function openFilesLimit(text?: string): number | null {
  let limitsText = text;
  if (limitsText === undefined) {
    try {
      limitsText = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const soft = /^Max open files\s+(\S+)/m.exec(limitsText)?.[1];
  if (soft === undefined) return null;
  return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number.isInteger(Number(soft)) ? Number(soft) : null;
}

/** Users sharing one DNS resolver (one c-ares channel and its UDP socket) in a simulator. */
const RESOLVER_USERS = 250;
/** Files one resolver may hold (filesForUsers). */
const RESOLVER_FILES = 2;

/** Files a simulator keeps for itself beyond one per user (stdio, the event loop, DNS sockets, flows being replaced). */
export const SIMULATOR_SPARE_FILES = 256;

/** The most users one simulator process can keep signed in under an open-files limit (null: no known bound). */
export function usersWithinFiles(limit: number | null): number | null {
  if (limit === null || limit === Number.POSITIVE_INFINITY) return null;
  let users = Math.max(0, Math.floor(((limit - SIMULATOR_SPARE_FILES) * RESOLVER_USERS) / (RESOLVER_USERS + RESOLVER_FILES)));
  while (filesForUsers(users + 1) <= limit) users++;
  while (users > 0 && filesForUsers(users) > limit) users--;
  return users;
}

/**
 * The open files a simulator of `users` may hold: a connection per user, its own spare files, and
 * per DNS resolver its UDP socket and one more (a second DNS server, or TCP after a truncated answer).
 */
export function filesForUsers(users: number): number {
  return users + SIMULATOR_SPARE_FILES + RESOLVER_FILES * Math.ceil(users / RESOLVER_USERS);
}
