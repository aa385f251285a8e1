// The logical registrar sequence (DESIGN §1): a pool's servers ordered, per user, by rendezvous
// (highest-random-weight) hashing, and the pure decisions built on it: home, next server, redirect
// Contacts, and the plan of who moves where when the pool or its live state changes.
import { assert } from '../shared/assert.ts';
import { DnslbError } from '../shared/errors.ts';

/** Which servers are up (the physical registrar sequence): a set of FQDNs or a predicate. */
export type Availability = ReadonlySet<string> | ((serverFqdn: string) => boolean);

export type RegistrarMode = 'primary' | 'backup';

export interface Home {
  /** The first available server of the user's sequence. */
  server: string;
  /** `primary` when that server is the first of the sequence, else `backup`. */
  mode: RegistrarMode;
  /** The whole logical sequence, best first. */
  sequence: readonly string[];
}

export interface RedirectContact {
  server: string;
  /** RFC 3261 §20.10 qvalue, at most three decimals. */
  q: number;
}

// ---------------------------------------------------------------------------------------------
// Canonical user URI

// RFC 3261 §25.1: characters a user part may carry unescaped (unreserved + user-unreserved).
const USER_UNESCAPED = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/]$/;

/**
 * The canonical form of a user's address-of-record, the key of its sequence and its bindings.
 *
 * - the scheme `sip` or `sips` (any case) becomes `sip`: a user has one home whichever transport
 *   security its client asked for;
 * - the user part stays case-sensitive (RFC 3261 §19.1.4), but escapes are normalised: an escaped
 *   character that may appear unescaped is unescaped, other escapes get upper-case hex, so
 *   `sip:%61lice@x` and `sip:alice@x` are the same user;
 * - the password, port, URI parameters and headers are dropped (they do not name the user);
 * - the host is lower-cased and loses a trailing dot.
 *
 * Angle brackets around the URI (`<sip:…>`) are accepted and removed. Anything else that is not
 * a sip/sips URI with a host is an operating error (`REGISTRAR_BAD_URI`): it comes from the wire.
 */
export function canonicalUser(uri: string): string {
  // A REGISTER asks for the same user's form three times (PoolView.userOf, the sequence, the
  // location service): the last few answers are kept (a pure function of the text; errors are not kept).
  for (let i = 0; i < RECENT_USERS; i++) if (recentUserKeys[i] === uri) return recentUserValues[i]!;
  const user = canonicalUserOnce(uri);
  recentUserKeys[recentUserNext] = uri;
  recentUserValues[recentUserNext] = user;
  recentUserNext = (recentUserNext + 1) % RECENT_USERS;
  return user;
}

const RECENT_USERS = 4;
const recentUserKeys: Array<string | undefined> = new Array<string | undefined>(RECENT_USERS).fill(undefined);
const recentUserValues: Array<string | undefined> = new Array<string | undefined>(RECENT_USERS).fill(undefined);
let recentUserNext = 0;

function canonicalUserOnce(uri: string): string {
  let text = uri.trim();
  if (text.startsWith('<') && text.endsWith('>')) text = text.slice(1, -1).trim();
  const colon = text.indexOf(':');
  const scheme = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
  if (scheme !== 'sip' && scheme !== 'sips') {
    throw new DnslbError('REGISTRAR_BAD_URI', `not a sip or sips URI: ${JSON.stringify(uri.slice(0, 200))}`);
  }
  let rest = text.slice(colon + 1);
  // Headers (?…) end the URI; parameters (;…) end the host part but may appear inside the user part.
  const question = rest.indexOf('?');
  if (question >= 0) rest = rest.slice(0, question);
  const at = rest.lastIndexOf('@');
  let user = '';
  let hostPort = rest;
  if (at >= 0) {
    user = rest.slice(0, at);
    hostPort = rest.slice(at + 1);
    const passwordColon = user.indexOf(':');
    if (passwordColon >= 0) user = user.slice(0, passwordColon);
    user = normaliseEscapes(user, uri);
    if (user === '') throw new DnslbError('REGISTRAR_BAD_URI', `empty user part in ${JSON.stringify(uri.slice(0, 200))}`);
  }
  const semicolon = hostPort.indexOf(';');
  if (semicolon >= 0) hostPort = hostPort.slice(0, semicolon);
  let host: string;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) throw new DnslbError('REGISTRAR_BAD_URI', `unterminated IPv6 reference in ${JSON.stringify(uri.slice(0, 200))}`);
    host = hostPort.slice(0, close + 1);
  } else {
    const portColon = hostPort.indexOf(':');
    host = portColon >= 0 ? hostPort.slice(0, portColon) : hostPort;
  }
  host = host.toLowerCase().replace(/\.$/, '');
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/.test(host)) {
    throw new DnslbError('REGISTRAR_BAD_URI', `bad host in ${JSON.stringify(uri.slice(0, 200))}`);
  }
  return user === '' ? `sip:${host}` : `sip:${user}@${host}`;
}

function normaliseEscapes(user: string, original: string): string {
  if (!user.includes('%')) return user;
  return user.replace(/%(..)?/g, (match: string, hex: string | undefined) => {
    if (hex === undefined || !/^[0-9A-Fa-f]{2}$/.test(hex)) {
      throw new DnslbError('REGISTRAR_BAD_URI', `bad escape in user part of ${JSON.stringify(original.slice(0, 200))}`);
    }
    const character = String.fromCharCode(parseInt(hex, 16));
    return USER_UNESCAPED.test(character) ? character : match.toUpperCase();
  });
}

/** A server FQDN as the hash sees it: lower case, no trailing dot (the topology already stores it so). */
export function canonicalServer(fqdn: string): string {
  return fqdn.toLowerCase().replace(/\.$/, '');
}

// ---------------------------------------------------------------------------------------------
// The weight: hrw64

// The weight of (user, server) is a 64-bit hash of UTF-8(canonical user) ‖ 0x00 ‖ UTF-8(server
// FQDN), compared as an unsigned (high, low) pair; equal weights (never seen) fall back to the FQDN.
// Two 32-bit lanes absorb each byte: lane 1 is FNV-1a; lane 2 multiplies by murmur2's constant
// and folds its high bits down, so both low and high input bits reach every state bit. The lanes
// are cross-mixed and finished with murmur3's fmix32 avalanche. The constants are fixed: every
// server of every pool computes the same sequence in every run (no per-process seed), and another
// implementation can reproduce it from this paragraph. Measured against SHA-256 in
// bench/registrar-sequence.ts: same spread, several times faster (README "The hash").
const LANE1_START = 0x811c9dc5;
const LANE2_START = 0x9e3779b9;

/** Absorbs one string's UTF-8 bytes into the two lanes; returns them packed in `out`. */
function absorb(text: string, lane1: number, lane2: number, out: Int32Array): void {
  for (let index = 0; index < text.length; index++) {
    let code = text.charCodeAt(index);
    if (code < 0x80) {
      lane1 = Math.imul(lane1 ^ code, 0x01000193);
      lane2 = Math.imul(lane2 ^ code, 0x5bd1e995);
      lane2 ^= lane2 >>> 15;
      continue;
    }
    if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
      const low = text.charCodeAt(index + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        index++;
      }
    }
    let bytes: number[];
    if (code < 0x800) bytes = [0xc0 | (code >> 6), 0x80 | (code & 0x3f)];
    else if (code < 0x10000) bytes = [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)];
    else bytes = [0xf0 | (code >> 18), 0x80 | ((code >> 12) & 0x3f), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)];
    for (const byte of bytes) {
      lane1 = Math.imul(lane1 ^ byte, 0x01000193);
      lane2 = Math.imul(lane2 ^ byte, 0x5bd1e995);
      lane2 ^= lane2 >>> 15;
    }
  }
  out[0] = lane1;
  out[1] = lane2;
}

function fmix32(value: number): number {
  value ^= value >>> 16;
  value = Math.imul(value, 0x85ebca6b);
  value ^= value >>> 13;
  value = Math.imul(value, 0xc2b2ae35);
  value ^= value >>> 16;
  return value >>> 0;
}

const lanes = new Int32Array(2);

/** The user's lanes after its bytes and the 0x00 separator; the server's bytes follow. */
function userState(user: string, out: Int32Array): void {
  absorb(user, LANE1_START, LANE2_START, out);
  out[0] = Math.imul(out[0]! ^ 0, 0x01000193);
  const lane2 = Math.imul(out[1]! ^ 0, 0x5bd1e995);
  out[1] = lane2 ^ (lane2 >>> 15);
}

function finish(lane1: number, lane2: number, out: Uint32Array, at: number): void {
  const high = fmix32(lane1 ^ Math.imul(lane2, 0x27d4eb2f));
  const low = fmix32(lane2 ^ Math.imul(high, 0x165667b1));
  out[at] = high;
  out[at + 1] = low;
}

/** The 64-bit weight of (canonical user, server FQDN) as [high, low] unsigned 32-bit halves. */
export function weightOf(canonicalUserUri: string, serverFqdn: string): [number, number] {
  const state = new Int32Array(2);
  userState(canonicalUserUri, state);
  absorb(serverFqdn, state[0]!, state[1]!, state);
  const out = new Uint32Array(2);
  finish(state[0]!, state[1]!, out, 0);
  return [out[0]!, out[1]!];
}

// ---------------------------------------------------------------------------------------------
// Sequences

/**
 * The sequencer of one pool: the server list is normalised once, then `sequenceOf` costs one pass
 * over the user's bytes plus one pass over each server's FQDN. Build one per published topology.
 */
export class Sequencer {
  readonly servers: readonly string[];
  private readonly weights: Uint32Array;
  private readonly order: Int32Array;

  constructor(serverFqdns: readonly string[]) {
    const servers = serverFqdns.map(canonicalServer);
    assert(new Set(servers).size === servers.length, `duplicate server in ${servers.join(', ')}`);
    // Sorted so that the tie-break by FQDN is the stable order of the insertion sort below.
    this.servers = Object.freeze([...servers].sort());
    this.weights = new Uint32Array(2 * servers.length);
    this.order = new Int32Array(servers.length);
  }

  /** The servers of the pool ordered by descending weight for `user` (any sip/sips URI form). */
  sequenceOf(user: string): string[] {
    return this.sequenceOfCanonical(canonicalUser(user));
  }

  /** As `sequenceOf`, for a URI already made canonical by `canonicalUser`. */
  sequenceOfCanonical(user: string): string[] {
    const count = this.servers.length;
    userState(user, lanes);
    const start1 = lanes[0]!;
    const start2 = lanes[1]!;
    const weights = this.weights;
    const order = this.order;
    for (let index = 0; index < count; index++) {
      absorb(this.servers[index]!, start1, start2, lanes);
      finish(lanes[0]!, lanes[1]!, weights, 2 * index);
      // Insertion sort by descending (high, low); equal weights keep FQDN order (servers are sorted).
      let slot = index;
      while (slot > 0) {
        const other = order[slot - 1]!;
        const otherHigh = weights[2 * other]!;
        const high = weights[2 * index]!;
        if (otherHigh > high || (otherHigh === high && weights[2 * other + 1]! >= weights[2 * index + 1]!)) break;
        order[slot] = other;
        slot--;
      }
      order[slot] = index;
    }
    const sequence = new Array<string>(count);
    for (let index = 0; index < count; index++) sequence[index] = this.servers[order[index]!]!;
    return sequence;
  }
}

// One-entry cache: callers usually pass the same server list (the published pool) again and again.
let cachedList: readonly string[] | undefined;
let cachedSequencer: Sequencer | undefined;

function sequencerFor(serverFqdns: readonly string[]): Sequencer {
  if (serverFqdns !== cachedList || cachedSequencer === undefined) {
    cachedSequencer = new Sequencer(serverFqdns);
    cachedList = serverFqdns;
  }
  return cachedSequencer;
}

/**
 * The logical registrar sequence of `userUri` in a pool of `serverFqdns`: every server, by
 * descending hrw64 weight of (canonical user, FQDN), ties by FQDN. Independent of the input order.
 * The array passed is remembered (by identity) with its prepared form, so do not mutate it afterwards.
 */
export function sequenceOf(userUri: string, serverFqdns: readonly string[]): string[] {
  return sequencerFor(serverFqdns).sequenceOf(userUri);
}

function isAvailable(available: Availability, server: string): boolean {
  return typeof available === 'function' ? available(server) : available.has(server);
}

/** The user's home: the first available server of its sequence; null when none is available. */
export function homeOf(userUri: string, serverFqdns: readonly string[], available: Availability): Home | null {
  return homeInSequence(sequenceOf(userUri, serverFqdns), available);
}

/** `homeOf` for a sequence already computed. */
export function homeInSequence(sequence: readonly string[], available: Availability): Home | null {
  for (let index = 0; index < sequence.length; index++) {
    const server = sequence[index]!;
    if (isAvailable(available, server)) return { server, mode: index === 0 ? 'primary' : 'backup', sequence };
  }
  return null;
}

/**
 * Where a draining (or otherwise leaving) server `current` sends the user: the first available
 * server of the user's sequence other than `current` — its home as if `current` were gone, which is
 * the next server after `current` when `current` was its home, and its primary when that came back.
 * Null when no other server is available.
 */
export function nextAvailableAfter(userUri: string, serverFqdns: readonly string[], available: Availability, current: string): string | null {
  const skip = canonicalServer(current);
  for (const server of sequenceOf(userUri, serverFqdns)) {
    if (server !== skip && isAvailable(available, server)) return server;
  }
  return null;
}

/** The home's q-value in a redirect, and the next server's (as Lync sends them). */
export const REDIRECT_Q_HOME = 0.7;
export const REDIRECT_Q_NEXT = 0.3;

/**
 * The q-values of a `301 Redirect request to Home Server` with `count` Contacts: the home gets 0.7,
 * the next 0.3 (as Lync does), and the k-th after those falls linearly towards 0.3/(count−1):
 * q_k = round3(0.3 · (count − k) / (count − 1)) for k = 1 … count−1. Strictly falling and above 0 for
 * up to 301 Contacts, so a client that sorts by q (RFC 3261 §8.1.3.4) tries them in sequence order.
 */
export function redirectQValues(count: number): number[] {
  assert(Number.isInteger(count) && count >= 0 && count <= 301, `redirect contact count out of range: ${count}`);
  const values: number[] = [];
  for (let k = 0; k < count; k++) {
    values.push(k === 0 ? REDIRECT_Q_HOME : Math.round((1000 * REDIRECT_Q_NEXT * (count - k)) / (count - 1)) / 1000);
  }
  return values;
}

/** The Contacts of a redirect to home: one per available server of the user's sequence, home first. */
export function redirectContacts(userUri: string, serverFqdns: readonly string[], available: Availability): RedirectContact[] {
  return redirectContactsInSequence(sequenceOf(userUri, serverFqdns), available);
}

/** `redirectContacts` for a sequence already computed. */
export function redirectContactsInSequence(sequence: readonly string[], available: Availability): RedirectContact[] {
  const servers = sequence.filter((server) => isAvailable(available, server));
  const q = redirectQValues(servers.length);
  return servers.map((server, index) => ({ server, q: q[index]! }));
}

/** The qvalue as RFC 3261 §25.1 writes it: "0.7", "0.273", never more than three decimals. */
export function formatQ(q: number): string {
  assert(q >= 0 && q <= 1, `q out of range: ${q}`);
  return q === 1 ? '1' : q === 0 ? '0' : (Math.round(q * 1000) / 1000).toFixed(3).replace(/0+$/, '');
}

/**
 * One Contact header value of a redirect (RFC 3261 §20.10): `<sip:fe1.contoso.com:5061;transport=tls>;q=0.7`.
 * Lync clients reach servers over TLS on 5061; the port is left out when not given.
 */
export function formatRedirectContact(contact: RedirectContact, options: { port?: number; transport?: 'tls' | 'tcp' } = {}): string {
  const transport = options.transport ?? 'tls';
  const port = options.port === undefined ? '' : `:${options.port}`;
  return `<sip:${contact.server}${port};transport=${transport}>;q=${formatQ(contact.q)}`;
}

// ---------------------------------------------------------------------------------------------
// Plans: who moves where

/** A pool as a plan sees it: its servers and which of them are available (all when left out). */
export interface PoolState {
  servers: readonly string[];
  available?: Availability;
}

export interface Move {
  user: string;
  /** Home before; null when the user had none (no server available). */
  from: string | null;
  /** Home after; null when the user has none. */
  to: string | null;
}

export interface Plan {
  users: number;
  moved: number;
  /** Moved users per (from → to), largest first. */
  flows: { from: string | null; to: string | null; count: number }[];
  /** Each moved user, in input order (left out unless asked for). */
  moves?: Move[];
}

/**
 * Who moves where between two states of a pool — a new topology (servers added or removed) or new
 * live state (a server failed, drained, blocked or back). Pure; `dnslb plan` prints it and the
 * re-home queue takes its `moves`.
 */
export function planMoves(users: Iterable<string>, before: PoolState, after: PoolState, options: { listMoves?: boolean } = {}): Plan {
  const sequencerBefore = new Sequencer(before.servers);
  const sequencerAfter = new Sequencer(after.servers);
  const availableBefore = before.available ?? (() => true);
  const availableAfter = after.available ?? (() => true);
  const counts = new Map<string, { from: string | null; to: string | null; count: number }>();
  const moves: Move[] = [];
  let total = 0;
  let moved = 0;
  for (const userUri of users) {
    total++;
    const user = canonicalUser(userUri);
    const from = homeInSequence(sequencerBefore.sequenceOfCanonical(user), availableBefore)?.server ?? null;
    const to = homeInSequence(sequencerAfter.sequenceOfCanonical(user), availableAfter)?.server ?? null;
    if (from === to) continue;
    moved++;
    const key = `${from ?? ''}\u0000${to ?? ''}`;
    const flow = counts.get(key);
    if (flow) flow.count++;
    else counts.set(key, { from, to, count: 1 });
    if (options.listMoves) moves.push({ user, from, to });
  }
  const flows = [...counts.values()].sort((a, b) => b.count - a.count || String(a.from).localeCompare(String(b.from)) || String(a.to).localeCompare(String(b.to)));
  return options.listMoves ? { users: total, moved, flows, moves } : { users: total, moved, flows };
}
