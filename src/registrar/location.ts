// The location service (RFC 3261 §10.3): compact bindings per user, their expiry on an injected
// Clock, lookups by user and by flow, counts; and the home decision a Front End takes for a REGISTER.
import { assert } from '../shared/assert.ts';
import type { Clock, Timer } from '../shared/clock.ts';
import { isDnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { canonicalUser, homeInSequence, redirectContactsInSequence } from './sequence.ts';
import type { Availability, Home, RedirectContact, RegistrarMode, Sequencer } from './sequence.ts';

// ---------------------------------------------------------------------------------------------
// Config

export interface RegistrarConfig {
  /** Granted when neither the Contact's `expires` nor an `Expires` header says (RFC 3261 §10.2.1.1). Seconds. */
  expiresDefaultS: number;
  /** Shorter requests (other than 0) are refused with 423 and this as Min-Expires (RFC 3261 §10.3 step 7). Seconds. */
  expiresMinS: number;
  /** Longer requests are granted this much (the registrar may shorten, RFC 3261 §10.3 step 7). Seconds. */
  expiresMaxS: number;
  /** Bindings one user may hold on this server; more is refused (a runaway client must not eat memory). */
  bindingsPerUserMax: number;
  /** How often expired bindings are swept (they are hidden from lookups as soon as they expire). Milliseconds. */
  sweepIntervalMs: number;
}

export const REGISTRAR_DEFAULTS: Readonly<RegistrarConfig> = Object.freeze({
  expiresDefaultS: 3600, // 1 h, RFC 3261's suggested default
  expiresMinS: 60, // 1 min
  expiresMaxS: 7200, // 2 h
  bindingsPerUserMax: 16,
  sweepIntervalMs: 5000, // 5 s
});

/** Validates a registrar config (defaults for what is left out); a bad one is a programmer error. */
export function parseRegistrarConfig(input: Partial<RegistrarConfig> = {}): RegistrarConfig {
  const config = { ...REGISTRAR_DEFAULTS, ...input };
  assert(Number.isInteger(config.expiresMinS) && config.expiresMinS >= 1, 'expiresMinS must be an integer ≥ 1');
  assert(Number.isInteger(config.expiresMaxS) && config.expiresMaxS >= config.expiresMinS, 'expiresMaxS must be ≥ expiresMinS');
  assert(config.expiresMaxS <= limits.registrarExpiresMaxS, `expiresMaxS must be ≤ ${limits.registrarExpiresMaxS}`);
  assert(config.expiresDefaultS >= config.expiresMinS && config.expiresDefaultS <= config.expiresMaxS, 'expiresDefaultS must lie in [expiresMinS, expiresMaxS]');
  assert(Number.isInteger(config.bindingsPerUserMax) && config.bindingsPerUserMax >= 1 && config.bindingsPerUserMax <= limits.registrarBindingsPerUserMax, 'bindingsPerUserMax out of range');
  assert(config.sweepIntervalMs >= 10, 'sweepIntervalMs must be ≥ 10');
  return Object.freeze(config);
}

// ---------------------------------------------------------------------------------------------
// Request facts and outcomes (the SIP layer fills the facts and turns outcomes into responses)

export interface ContactFacts {
  /** The Contact URI as the SIP layer normalised it; bindings without an instance match on it exactly. `*` is the wildcard. */
  uri: string;
  /** The Contact's `expires` parameter, seconds. */
  expiresS?: number;
  /** `+sip.instance` (RFC 5626 §4.1); with `regId` it names the binding instead of the URI. */
  instance?: string;
  /** `reg-id` (RFC 5626 §4.2). */
  regId?: number;
  /** The Contact's q (0–1). */
  q?: number;
}

export interface RegisterFacts {
  /** The To URI: the address-of-record (any sip/sips form; it is made canonical). */
  aor: string;
  callId: string;
  cseq: number;
  /** The `Expires` header, seconds. */
  expiresS?: number;
  /** The Contacts; empty for a query (RFC 3261 §10.2.3). */
  contacts: readonly ContactFacts[];
  /** The connection the REGISTER came on (opaque; see sip/flow): the flow's own id string, stored as it is. */
  flowId: string;
}

/** What the SIP layer answers. `accept` → store the bindings (`LocationService.register`). */
export type RegisterDecision =
  | { kind: 'accept'; mode: RegistrarMode; home: Home }
  /** 301 Redirect request to Home Server, one Contact each, home first. */
  | { kind: 'redirect'; contacts: RedirectContact[]; home: Home }
  /** 423 Interval Too Brief with Min-Expires. */
  | { kind: 'interval-too-brief'; minExpiresS: number }
  /** No server of the user's sequence is available: 480/503 with Retry-After. */
  | { kind: 'unavailable' }
  /** 400 with the reason phrase. */
  | { kind: 'bad-request'; reason: string };

export type RegisterOutcome =
  /** 200 OK: every current binding of the user (with its remaining seconds), and what changed. */
  | { kind: 'ok'; user: string; bindings: BindingView[]; changes: BindingChange[] }
  | { kind: 'interval-too-brief'; minExpiresS: number }
  | { kind: 'bad-request'; reason: string }
  /** RFC 3261 §10.3 step 7: same Call-ID, CSeq not higher than the stored one; the update is aborted (500). */
  | { kind: 'out-of-order'; contact: string }
  /** More bindings than `bindingsPerUserMax` (403 or 503; nothing was stored). */
  | { kind: 'too-many-bindings'; max: number };

/** RFC 3680 §5.1 events the location service itself causes. */
export type BindingEvent = 'created' | 'refreshed' | 'unregistered' | 'expired' | 'deactivated';

export interface BindingChange {
  event: BindingEvent;
  binding: BindingView;
}

/** A binding as callers see it (a copy: the stored form is compact and private). */
export interface BindingView {
  /** Unique per binding while this process lives; the `id` of an RFC 3680 `<contact>`. */
  id: string;
  user: string;
  contact: string;
  instance?: string;
  regId?: number;
  q?: number;
  flowId: string;
  mode: RegistrarMode;
  callId: string;
  cseq: number;
  registeredAtMs: number;
  expiresAtMs: number;
  /** Whole seconds left (never more than granted), the `expires` of the 200 OK's Contact. */
  expiresInS: number;
}

// ---------------------------------------------------------------------------------------------
// The home decision

export interface RegistrarView {
  /** This server's FQDN. */
  self: string;
  /** The pool (from the published topology). */
  sequencer: Sequencer;
  /** The physical registrar sequence: which servers are up and accepting. */
  available: Availability;
  config: RegistrarConfig;
}

/**
 * The pure decision for a REGISTER reaching `view.self`: accept it here (primary or backup), redirect
 * it to the user's home, or refuse it. Redirect comes before the expiry check: the home decides.
 */
export function decideRegister(view: RegistrarView, facts: RegisterFacts): RegisterDecision {
  let user: string;
  try {
    user = canonicalUser(facts.aor);
  } catch (error) {
    if (isDnslbError(error, 'REGISTRAR_BAD_URI')) return { kind: 'bad-request', reason: error.message };
    throw error;
  }
  const home = homeInSequence(view.sequencer.sequenceOfCanonical(user), view.available);
  if (home === null) return { kind: 'unavailable' };
  if (home.server !== view.self) return { kind: 'redirect', contacts: redirectContactsInSequence(home.sequence, view.available), home };
  const checked = grantedExpiries(facts, view.config);
  if (checked.kind !== 'ok') return checked;
  return { kind: 'accept', mode: home.mode, home };
}

type Expiries = { kind: 'ok'; seconds: number[] } | { kind: 'interval-too-brief'; minExpiresS: number } | { kind: 'bad-request'; reason: string };

/** RFC 3261 §10.3 steps 6–7: the wildcard rule and each Contact's granted expiry (or why none is). */
function grantedExpiries(facts: RegisterFacts, config: RegistrarConfig): Expiries {
  if (facts.contacts.length > limits.registrarContactsPerRequestMax) return { kind: 'bad-request', reason: `more than ${limits.registrarContactsPerRequestMax} Contacts` };
  if (facts.expiresS !== undefined && !validSeconds(facts.expiresS)) return { kind: 'bad-request', reason: 'bad Expires' };
  const wildcard = facts.contacts.some((contact) => contact.uri === '*');
  if (wildcard) {
    // §10.3 step 6: "*" only alone and only with Expires: 0.
    if (facts.contacts.length !== 1) return { kind: 'bad-request', reason: 'Contact * must be alone' };
    if (facts.expiresS !== 0) return { kind: 'bad-request', reason: 'Contact * needs Expires: 0' };
    return { kind: 'ok', seconds: [0] };
  }
  const seconds: number[] = [];
  for (const contact of facts.contacts) {
    if (contact.expiresS !== undefined && !validSeconds(contact.expiresS)) return { kind: 'bad-request', reason: 'bad expires parameter' };
    const asked = contact.expiresS ?? facts.expiresS ?? config.expiresDefaultS;
    if (asked !== 0 && asked < config.expiresMinS) return { kind: 'interval-too-brief', minExpiresS: config.expiresMinS };
    seconds.push(Math.min(asked, config.expiresMaxS));
  }
  return { kind: 'ok', seconds };
}

function validSeconds(value: number): boolean {
  // RFC 3261 §20.19: delta-seconds; bigger than 2^32−1 is read as 2^32−1 by the SIP layer already.
  return Number.isInteger(value) && value >= 0;
}

// ---------------------------------------------------------------------------------------------
// Stored bindings

const MODE_PRIMARY = 0;
const MODE_BACKUP = 1;
const NONE = -1;

/**
 * One binding, kept small: the user and flow strings are shared with the index maps, times are
 * whole seconds on the service's own timeline (small integers V8 stores unboxed), the mode and
 * q are small integers. Strings only where the wire gives strings (Contact, Call-ID, instance).
 */
class Binding {
  constructor(
    readonly id: number,
    readonly user: string,
    public contact: string,
    readonly instance: string | null,
    readonly regId: number, // NONE when absent
    public qMilli: number, // NONE when absent
    public flowId: string,
    public mode: number,
    public callId: string,
    public cseq: number,
    public registeredAtS: number,
    public expiresAtS: number,
  ) {}
}

/** One value or several under one key: most users hold one binding and most flows carry one. */
type OneOrMany = Binding | Binding[];

function listOf(value: OneOrMany | undefined): readonly Binding[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function withAdded(value: OneOrMany | undefined, binding: Binding): OneOrMany {
  if (value === undefined) return binding;
  if (Array.isArray(value)) {
    value.push(binding);
    return value;
  }
  return [value, binding];
}

function withRemoved(value: OneOrMany | undefined, binding: Binding): OneOrMany | undefined {
  if (value === undefined || value === binding) return undefined;
  if (!Array.isArray(value)) return value;
  const rest = value.filter((other) => other !== binding);
  return rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : rest;
}

export interface LocationCounts {
  users: number;
  bindings: number;
  bindingsPrimary: number;
  bindingsBackup: number;
}

export interface LocationOptions {
  clock: Clock;
  config?: Partial<RegistrarConfig>;
  /** Told of bindings removed by the sweep (RFC 3680 event `expired`), e.g. to NOTIFY subscribers. */
  onExpired?: (bindings: BindingView[]) => void;
}

/** The bindings this server holds. Not thread-shared: one per Front End process. */
export class LocationService {
  readonly config: RegistrarConfig;
  private readonly clock: Clock;
  private readonly baseMs: number;
  private readonly byUser = new Map<string, OneOrMany>();
  private readonly byFlow = new Map<string, OneOrMany>();
  private readonly onExpired: ((bindings: BindingView[]) => void) | undefined;
  private nextId = 1;
  private bindingsPrimary = 0;
  private bindingsBackup = 0;
  private sweepTimer: Timer | undefined;

  constructor(options: LocationOptions) {
    this.clock = options.clock;
    this.config = parseRegistrarConfig(options.config);
    this.onExpired = options.onExpired;
    // The timeline starts a second before now so that stored seconds are positive small integers.
    this.baseMs = options.clock.nowMs() - 1000;
  }

  /** Starts sweeping expired bindings every `sweepIntervalMs`. Lookups never return expired ones either way. */
  start(): void {
    if (this.sweepTimer) return;
    const tick = (): void => {
      this.sweepTimer = this.clock.setTimer(this.config.sweepIntervalMs, tick);
      const expired = this.purgeExpired();
      if (expired.length > 0) this.onExpired?.(expired);
    };
    this.sweepTimer = this.clock.setTimer(this.config.sweepIntervalMs, tick);
  }

  stop(): void {
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
  }

  private nowS(): number {
    return (this.clock.nowMs() - this.baseMs) / 1000;
  }

  /**
   * Applies a REGISTER accepted by `decideRegister` (RFC 3261 §10.3 steps 6–8), all or nothing:
   * a Contact with an instance and reg-id names its binding by them (RFC 5626 §6), any other by its
   * URI; an existing binding changes only for another Call-ID or a higher CSeq (step 7).
   */
  register(facts: RegisterFacts, mode: RegistrarMode): RegisterOutcome {
    let user: string;
    try {
      user = canonicalUser(facts.aor);
    } catch (error) {
      if (isDnslbError(error, 'REGISTRAR_BAD_URI')) return { kind: 'bad-request', reason: error.message };
      throw error;
    }
    assert(Number.isInteger(facts.cseq) && facts.cseq >= 0, 'cseq must be a non-negative integer');
    const checked = grantedExpiries(facts, this.config);
    if (checked.kind !== 'ok') return checked;
    const nowS = this.nowS();
    // Expired but not yet swept bindings go first, so that a Contact coming back starts afresh.
    for (const binding of listOf(this.byUser.get(user))) if (binding.expiresAtS <= nowS) this.detach(binding);
    const current = this.liveBindings(user, nowS);
    const changes: BindingChange[] = [];

    if (facts.contacts.length === 1 && facts.contacts[0]!.uri === '*') {
      // §10.3 step 6: remove every binding, unless one has this Call-ID with a CSeq not lower.
      const stale = current.find((binding) => binding.callId === facts.callId && facts.cseq <= binding.cseq);
      if (stale) return { kind: 'out-of-order', contact: stale.contact };
      for (const binding of current) {
        this.detach(binding);
        changes.push({ event: 'unregistered', binding: this.view(binding, nowS) });
      }
      return { kind: 'ok', user, bindings: [], changes };
    }

    // Plan every Contact first (step 7 is all-or-nothing), then apply.
    type Step = { contact: ContactFacts; seconds: number; existing: Binding | undefined };
    const steps: Step[] = [];
    for (let index = 0; index < facts.contacts.length; index++) {
      const contact = facts.contacts[index]!;
      const existing = current.find((binding) => matches(binding, contact));
      if (existing && existing.callId === facts.callId && facts.cseq <= existing.cseq) return { kind: 'out-of-order', contact: existing.contact };
      steps.push({ contact, seconds: checked.seconds[index]!, existing });
    }
    const removed = steps.filter((step) => step.existing && step.seconds === 0).length;
    const added = steps.filter((step) => !step.existing && step.seconds > 0).length;
    if (added > 0 && current.length - removed + added > this.config.bindingsPerUserMax) return { kind: 'too-many-bindings', max: this.config.bindingsPerUserMax };

    const modeCode = mode === 'primary' ? MODE_PRIMARY : MODE_BACKUP;
    const startS = Math.ceil(nowS);
    let userKey = current[0]?.user;
    for (const { contact, seconds, existing } of steps) {
      if (existing) {
        if (seconds === 0) {
          this.detach(existing);
          changes.push({ event: 'unregistered', binding: this.view(existing, nowS) });
          continue;
        }
        if (existing.flowId !== facts.flowId) {
          // The client came back on another connection: the binding follows it.
          this.unindexFlow(existing);
          existing.flowId = facts.flowId; // the flow's own id string (not cut from a message): shared by all its bindings
          this.byFlow.set(facts.flowId, withAdded(this.byFlow.get(facts.flowId), existing));
        }
        this.countMode(existing.mode, -1);
        existing.mode = modeCode;
        this.countMode(modeCode, +1);
        if (existing.contact !== contact.uri) existing.contact = ownCopy(contact.uri);
        existing.qMilli = qMilliOf(contact.q);
        if (existing.callId !== facts.callId) existing.callId = ownCopy(facts.callId);
        existing.cseq = facts.cseq;
        existing.expiresAtS = startS + seconds;
        changes.push({ event: 'refreshed', binding: this.view(existing, nowS) });
        continue;
      }
      if (seconds === 0) continue; // removing what is not there is fine (RFC 3261 §10.3 step 7)
      assert(this.nextId < Number.MAX_SAFE_INTEGER);
      // One copy of the user key, shared by the map and every binding of the user.
      userKey ??= ownCopy(user);
      const binding = new Binding(
        this.nextId++,
        userKey,
        ownCopy(contact.uri),
        contact.instance === undefined ? null : ownCopy(contact.instance),
        contact.regId ?? NONE,
        qMilliOf(contact.q),
        facts.flowId,
        modeCode,
        ownCopy(facts.callId),
        facts.cseq,
        startS,
        startS + seconds,
      );
      this.attach(binding);
      changes.push({ event: 'created', binding: this.view(binding, nowS) });
    }
    return { kind: 'ok', user, bindings: this.liveBindings(user, nowS).map((binding) => this.view(binding, nowS)), changes };
  }

  /** The user's live bindings (any sip/sips form of the URI). */
  bindingsOf(userUri: string): BindingView[] {
    const nowS = this.nowS();
    return this.liveBindings(canonicalUser(userUri), nowS).map((binding) => this.view(binding, nowS));
  }

  /** The live bindings registered over one flow. */
  bindingsOnFlow(flowId: string): BindingView[] {
    const nowS = this.nowS();
    return listOf(this.byFlow.get(flowId))
      .filter((binding) => binding.expiresAtS > nowS)
      .map((binding) => this.view(binding, nowS));
  }

  /** A flow died (RFC 5626 §5.2: its bindings are no longer reachable): removes and returns them. */
  dropFlow(flowId: string): BindingView[] {
    const nowS = this.nowS();
    const bindings = [...listOf(this.byFlow.get(flowId))];
    for (const binding of bindings) this.detach(binding);
    return bindings.map((binding) => this.view(binding, nowS));
  }

  /** Ends every binding of a user here (re-home, drain): the caller NOTIFYs `deactivated` (RFC 3680 §5.1). */
  deactivateUser(userUri: string): BindingView[] {
    const nowS = this.nowS();
    const bindings = [...listOf(this.byUser.get(canonicalUser(userUri)))];
    for (const binding of bindings) this.detach(binding);
    return bindings.filter((binding) => binding.expiresAtS > nowS).map((binding) => this.view(binding, nowS));
  }

  /** Removes every expired binding now and returns them (the timer calls this; tests may too). */
  purgeExpired(): BindingView[] {
    const nowS = this.nowS();
    const expired: Binding[] = [];
    for (const value of this.byUser.values()) {
      for (const binding of listOf(value)) if (binding.expiresAtS <= nowS) expired.push(binding);
    }
    for (const binding of expired) this.detach(binding);
    return expired.map((binding) => this.view(binding, nowS));
  }

  counts(): LocationCounts {
    return {
      users: this.byUser.size,
      bindings: this.bindingsPrimary + this.bindingsBackup,
      bindingsPrimary: this.bindingsPrimary,
      bindingsBackup: this.bindingsBackup,
    };
  }

  /** Whether a user (canonical URI) holds a binding here, expired ones not yet swept included. */
  has(user: string): boolean {
    return this.byUser.has(user);
  }

  /** Every user holding a binding here (canonical URIs), expired ones not yet swept included. */
  users(): IterableIterator<string> {
    return this.byUser.keys();
  }

  /** The users held here whose home, by the given pool and live state, is `server`. */
  usersHomedAt(server: string, sequencer: Sequencer, available: Availability): string[] {
    return [...this.byUser.keys()].filter((user) => homeInSequence(sequencer.sequenceOfCanonical(user), available)?.server === server);
  }

  /**
   * The users held here whose home is now another server (a recovered primary, a commissioned
   * server) or who have no home at all: the re-home queue's input. Each with its new home.
   */
  usersHomedElsewhere(self: string, sequencer: Sequencer, available: Availability): { user: string; home: string | null }[] {
    const moves: { user: string; home: string | null }[] = [];
    for (const user of this.byUser.keys()) {
      const home = homeInSequence(sequencer.sequenceOfCanonical(user), available)?.server ?? null;
      if (home !== self) moves.push({ user, home });
    }
    return moves;
  }

  private liveBindings(user: string, nowS: number): Binding[] {
    return listOf(this.byUser.get(user)).filter((binding) => binding.expiresAtS > nowS);
  }

  private attach(binding: Binding): void {
    this.byUser.set(binding.user, withAdded(this.byUser.get(binding.user), binding));
    this.byFlow.set(binding.flowId, withAdded(this.byFlow.get(binding.flowId), binding));
    this.countMode(binding.mode, +1);
  }

  private detach(binding: Binding): void {
    const userRest = withRemoved(this.byUser.get(binding.user), binding);
    if (userRest === undefined) this.byUser.delete(binding.user);
    else this.byUser.set(binding.user, userRest);
    this.unindexFlow(binding);
    this.countMode(binding.mode, -1);
  }

  private unindexFlow(binding: Binding): void {
    const flowRest = withRemoved(this.byFlow.get(binding.flowId), binding);
    if (flowRest === undefined) this.byFlow.delete(binding.flowId);
    else this.byFlow.set(binding.flowId, flowRest);
  }

  private countMode(mode: number, delta: number): void {
    if (mode === MODE_PRIMARY) this.bindingsPrimary += delta;
    else this.bindingsBackup += delta;
    assert(this.bindingsPrimary >= 0 && this.bindingsBackup >= 0, 'binding counts went negative');
  }

  private view(binding: Binding, nowS: number): BindingView {
    const view: BindingView = {
      id: String(binding.id),
      user: binding.user,
      contact: binding.contact,
      flowId: binding.flowId,
      mode: binding.mode === MODE_PRIMARY ? 'primary' : 'backup',
      callId: binding.callId,
      cseq: binding.cseq,
      registeredAtMs: this.baseMs + binding.registeredAtS * 1000,
      expiresAtMs: this.baseMs + binding.expiresAtS * 1000,
      expiresInS: Math.max(0, Math.floor(binding.expiresAtS - nowS)),
    };
    if (binding.instance !== null) view.instance = binding.instance;
    if (binding.regId !== NONE) view.regId = binding.regId;
    if (binding.qMilli !== NONE) view.q = binding.qMilli / 1000;
    return view;
  }
}

/**
 * A flat string of its own. Strings cut out of a SIP message are V8 slices that keep the whole
 * message alive (measured: ~940 bytes retained per binding for a 900-byte REGISTER, ~55 with a
 * copy); concatenations are trees. A stored string is copied once, when it is stored.
 */
export function ownCopy(value: string): string {
  return JSON.parse(JSON.stringify(value)) as string;
}

function matches(binding: Binding, contact: ContactFacts): boolean {
  if (contact.instance !== undefined) return binding.instance === contact.instance && binding.regId === (contact.regId ?? NONE);
  return binding.instance === null && binding.contact === contact.uri;
}

function qMilliOf(q: number | undefined): number {
  if (q === undefined) return NONE;
  assert(q >= 0 && q <= 1, `q out of range: ${q}`);
  return Math.round(q * 1000);
}
