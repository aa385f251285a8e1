// Typed views of SIP header values (RFC 3261 §20, §25): name-addr/addr-spec with display names and
// parameters, Via, CSeq, Contact, and the accessors the registrar and proxy read messages with.
import { headerValue, headerValues, type SipMessage } from './message.ts';
import { checkHost, isSipIpv6, parseUri, UriSyntaxError, type Uri } from './uri.ts';

/** Thrown by the value parsers here; parse.ts wraps it into a SipMessageError naming the header. */
export class HeaderSyntaxError extends Error {
  override name = 'HeaderSyntaxError';
}

/** A header parameter (`;tag=abc`, `;lr`). `value` is as written, quoted strings keep their quotes. */
export interface HeaderParam {
  readonly name: string;
  readonly value: string | null;
}

export interface NameAddr {
  /** Display name with quotes removed and quoted-pairs unescaped; null when absent. */
  readonly displayName: string | null;
  readonly uri: Uri;
  readonly params: readonly HeaderParam[];
}

export interface FromTo extends NameAddr {
  readonly tag: string | null;
}

export interface Via {
  /** `UDP`, `TCP`, `TLS`, `SCTP`, or any other token, upper-cased. */
  readonly transport: string;
  readonly host: string;
  readonly port: number | null;
  readonly params: readonly HeaderParam[];
  readonly branch: string | null;
  /** `received` without brackets (RFC 5118 §4.5 allows either form on input). */
  readonly received: string | null;
  /** `true` for a bare `;rport` (RFC 3581), the number when filled in, null when absent. */
  readonly rport: number | true | null;
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

export interface Contact extends NameAddr {
  /** The `expires` parameter in seconds; null when absent or beyond 2^32-1 (caller applies its default, RFC 4475 §3.1.2.4). */
  readonly expires: number | null;
  /** The `q` parameter (0..1); null when absent. */
  readonly q: number | null;
}

const TOKEN_CHARS = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/**
 * An ASCII character class as a table indexed by char code (1: in the class), for Cursor.take: a
 * regular expression tested on each one-character string was the parsers' hot spot. Every class
 * given here is ASCII only, so a code ≥ 128 is never in it.
 */
function asciiClass(pattern: RegExp): Uint8Array {
  const table = new Uint8Array(128);
  for (let code = 0; code < 128; code++) if (pattern.test(String.fromCharCode(code))) table[code] = 1;
  return table;
}

const TOKEN_CHAR = asciiClass(/[A-Za-z0-9\-.!%*_+`'~]/);
// gen-value = token / host / quoted-string; ':' '[' ']' admit IPv6 hosts (RFC 5118 §4.5 received).
const PARAM_VALUE_CHAR = asciiClass(/[A-Za-z0-9\-.!%*_+`'~:[\]]/);
const HOST_CHAR = asciiClass(/[A-Za-z0-9.-]/);
const DIGIT = asciiClass(/[0-9]/);
const UINT32_MAX = 4294967295;

export function isToken(text: string): boolean {
  return TOKEN_CHARS.test(text);
}

/** A cursor over one header value. */
class Cursor {
  position = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.position >= this.text.length;
  }
  peek(): string {
    return this.text[this.position] ?? '';
  }
  skipWhitespace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.position++;
  }
  /** Reads while the characters are in `chars` (a RegExp tested on each, or an asciiClass table). */
  take(chars: RegExp | Uint8Array): string {
    const start = this.position;
    if (chars instanceof Uint8Array) {
      const text = this.text;
      let position = start;
      for (let code = text.charCodeAt(position); code < 128 && chars[code] === 1; code = text.charCodeAt(++position));
      this.position = position;
    } else {
      while (!this.done && chars.test(this.peek())) this.position++;
    }
    return this.text.slice(start, this.position);
  }
  /** Reads a quoted-string at the cursor (§25.1), returns it unescaped. */
  quoted(): string {
    if (this.peek() !== '"') throw new HeaderSyntaxError('expected a quoted string');
    this.position++;
    let out = '';
    for (;;) {
      if (this.done) throw new HeaderSyntaxError('unterminated quoted string');
      const c = this.text.charCodeAt(this.position);
      if (c === 0x22) {
        this.position++;
        return out;
      }
      if (c === 0x5c) {
        // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
        const next = this.text.charCodeAt(this.position + 1);
        if (Number.isNaN(next) || next === 0x0a || next === 0x0d || next > 0x7f) throw new HeaderSyntaxError('bad escape in quoted string');
        out += String.fromCharCode(next);
        this.position += 2;
        continue;
      }
      // qdtext: LWS, %x21, %x23-5B, %x5D-7E, UTF8-NONASCII; other controls are not allowed raw.
      if (c < 0x20 && c !== 0x09) throw new HeaderSyntaxError('control character in quoted string');
      if (c === 0x7f) throw new HeaderSyntaxError('DEL in quoted string');
      out += this.text[this.position];
      this.position++;
    }
  }
}

/** Reads `*( SWS ";" SWS name [SWS "=" SWS value] )` up to the end of the value. */
function parseParamsAt(cursor: Cursor): HeaderParam[] {
  const params: HeaderParam[] = [];
  for (;;) {
    cursor.skipWhitespace();
    if (cursor.done) return params;
    if (cursor.peek() !== ';') throw new HeaderSyntaxError(`unexpected ${JSON.stringify(cursor.text.slice(cursor.position, cursor.position + 16))}`);
    cursor.position++;
    cursor.skipWhitespace();
    const name = cursor.take(TOKEN_CHAR);
    if (name === '') throw new HeaderSyntaxError('empty parameter');
    cursor.skipWhitespace();
    let value: string | null = null;
    if (cursor.peek() === '=') {
      cursor.position++;
      cursor.skipWhitespace();
      if (cursor.peek() === '"') {
        const start = cursor.position;
        cursor.quoted();
        value = cursor.text.slice(start, cursor.position);
      } else {
        value = cursor.take(PARAM_VALUE_CHAR);
        if (value === '') throw new HeaderSyntaxError(`parameter ${name} has an empty value`);
      }
    }
    params.push({ name, value });
  }
}

/** Finds a header parameter by name (case-insensitive); returns its value unquoted, '' for a valueless one. */
export function paramValue(params: readonly HeaderParam[], name: string): string | undefined {
  let found: HeaderParam | undefined;
  let wanted: string | undefined;
  for (const param of params) {
    // Most names differ in length or are spelled as asked: only a same-length other spelling is lower-cased.
    if (param.name.length !== name.length) continue;
    if (param.name === name || param.name.toLowerCase() === (wanted ??= name.toLowerCase())) {
      found = param;
      break;
    }
  }
  if (!found) return undefined;
  if (found.value === null) return '';
  return found.value.startsWith('"') ? new Cursor(found.value).quoted() : found.value;
}

function uriOf(text: string): Uri {
  try {
    return parseUri(text);
  } catch (error) {
    if (error instanceof UriSyntaxError) throw new HeaderSyntaxError(error.message);
    throw error;
  }
}

/**
 * Parses `name-addr / addr-spec` followed by header parameters (From, To, Contact, Route, ...).
 * Without <>, the URI ends at the first ';' and may not contain ',', '?' or ';' (§20.10, RFC 4475 regbadct).
 */
export function parseNameAddr(value: string, options: { requireBrackets?: boolean } = {}): NameAddr {
  const cursor = new Cursor(value);
  cursor.skipWhitespace();
  let displayName: string | null = null;
  if (cursor.peek() === '"') {
    displayName = cursor.quoted();
    cursor.skipWhitespace();
    if (cursor.peek() !== '<') throw new HeaderSyntaxError('a quoted display name must be followed by <URI>');
  } else {
    // *(token LWS) then '<', or an addr-spec. Look for '<' first: it decides which.
    const angle = value.indexOf('<', cursor.position);
    if (angle >= 0) {
      const words = value.slice(cursor.position, angle).trim();
      if (words !== '' && !words.split(/[ \t]+/).every(isToken)) throw new HeaderSyntaxError('display name must be a quoted string or tokens');
      displayName = words === '' ? null : words;
      cursor.position = angle;
    }
  }
  let uri: Uri;
  if (cursor.peek() === '<') {
    cursor.position++;
    const close = value.indexOf('>', cursor.position);
    if (close < 0) throw new HeaderSyntaxError('missing >');
    const uriText = value.slice(cursor.position, close);
    // LAQUOT/RAQUOT are "<" and ">" with no whitespace inside (RFC 4475 badaspec).
    if (uriText !== uriText.trim() || uriText === '') throw new HeaderSyntaxError('whitespace inside <>');
    uri = uriOf(uriText);
    cursor.position = close + 1;
  } else {
    if (options.requireBrackets) throw new HeaderSyntaxError('URI must be enclosed in <>');
    const start = cursor.position;
    cursor.take(/[^;\s]/);
    const uriText = value.slice(start, cursor.position);
    if (uriText === '') throw new HeaderSyntaxError('missing URI');
    if (/[,?]/.test(uriText)) throw new HeaderSyntaxError('a URI with , or ? must be enclosed in <>');
    uri = uriOf(uriText);
  }
  return { displayName, uri, params: parseParamsAt(cursor) };
}

/**
 * The last few values of one header kind parsed, with their results: a request's From, To, Via, CSeq
 * and Contact are parsed when the message is checked (parse.ts interpretMessage) and again by every
 * step that reads them (to(), from(), contacts() …). The same string gives the same result, which is
 * read-only, so a repeat is answered from here. Failures are not kept (they throw every time).
 */
class RecentParses<T> {
  private readonly keys: Array<string | undefined>;
  private readonly values: Array<T | undefined>;
  private next = 0;

  constructor(size: number, private readonly parse: (value: string) => T) {
    this.keys = new Array<string | undefined>(size).fill(undefined);
    this.values = new Array<T | undefined>(size).fill(undefined);
  }

  of(value: string): T {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] === value) return this.values[i] as T;
    const result = this.parse(value);
    this.keys[this.next] = value;
    this.values[this.next] = result;
    this.next = (this.next + 1) % this.keys.length;
    return result;
  }
}

const recentFromTo = new RecentParses(4, parseFromToOnce);

export function parseFromTo(value: string): FromTo {
  return recentFromTo.of(value);
}

function parseFromToOnce(value: string): FromTo {
  const nameAddr = parseNameAddr(value);
  const tag = paramValue(nameAddr.params, 'tag');
  if (tag === '') throw new HeaderSyntaxError('empty tag');
  return { displayName: nameAddr.displayName, uri: nameAddr.uri, params: nameAddr.params, tag: tag ?? null };
}

/** Parses one Via value (`SIP/2.0/TCP host:port;params`, §20.42), tolerating LWS around '/' (RFC 4475 wsinv). */
export function parseVia(value: string): Via {
  return recentVias.of(value);
}

const recentVias = new RecentParses(4, parseViaOnce);

function parseViaOnce(value: string): Via {
  const match = /^[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*\/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*\/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(.*)$/s.exec(value);
  if (!match) throw new HeaderSyntaxError('bad sent-protocol');
  const [, name = '', version = '', transport = '', rest = ''] = match;
  if (name.toUpperCase() !== 'SIP' || version !== '2.0') throw new HeaderSyntaxError(`unsupported protocol ${name}/${version}`);
  const cursor = new Cursor(rest);
  const start = cursor.position;
  if (cursor.peek() === '[') {
    cursor.take(/[^\]]/);
    cursor.position++;
  } else {
    cursor.take(HOST_CHAR);
  }
  const host = rest.slice(start, cursor.position);
  let port: number | null = null;
  cursor.skipWhitespace();
  if (cursor.peek() === ':') {
    cursor.position++;
    cursor.skipWhitespace();
    const digits = cursor.take(DIGIT);
    if (digits === '' || digits.length > 5 || Number(digits) > 65535) throw new HeaderSyntaxError('bad Via port');
    port = Number(digits);
  }
  try {
    checkHost(host);
  } catch (error) {
    throw new HeaderSyntaxError(error instanceof Error ? error.message : String(error));
  }
  const params = parseParamsAt(cursor);
  const branch = paramValue(params, 'branch');
  if (branch === '') throw new HeaderSyntaxError('empty branch');
  let received = paramValue(params, 'received') ?? null;
  if (received !== null) {
    if (received.startsWith('[') && received.endsWith(']')) received = received.slice(1, -1);
    if (!isSipIpv6(received) && !/^\d{1,3}(\.\d{1,3}){3}$/.test(received)) throw new HeaderSyntaxError('received is not an IP address');
  }
  const rportText = paramValue(params, 'rport');
  let rport: number | true | null = null;
  if (rportText === '') rport = true;
  else if (rportText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(rportText) || Number(rportText) > 65535) throw new HeaderSyntaxError('bad rport');
    rport = Number(rportText);
  }
  return { transport: transport.toUpperCase(), host, port, params, branch: branch ?? null, received, rport };
}

/** §8.1.1.5: the sequence number is a 32-bit unsigned integer less than 2^31. */
export function parseCSeq(value: string): CSeq {
  return recentCSeqs.of(value);
}

const recentCSeqs = new RecentParses(4, parseCSeqOnce);

function parseCSeqOnce(value: string): CSeq {
  const match = /^[ \t]*([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*$/.exec(value);
  if (!match) throw new HeaderSyntaxError('CSeq must be a number and a method');
  const digits = (match[1] ?? '').replace(/^0+(?=\d)/, '');
  if (digits.length > 10 || Number(digits) >= 2 ** 31) throw new HeaderSyntaxError('CSeq number out of range');
  return { seq: Number(digits), method: match[2] ?? '' };
}

function deltaSeconds(text: string): number | null {
  // Values beyond 2^32-1 are out of range: null lets the caller fall back to its default (RFC 4475 scalar02).
  const digits = text.replace(/^0+(?=\d)/, '');
  if (digits.length > 10 || Number(digits) > UINT32_MAX) return null;
  return Number(digits);
}

export function parseContact(value: string): Contact {
  return recentContacts.of(value);
}

const recentContacts = new RecentParses(4, parseContactOnce);

function parseContactOnce(value: string): Contact {
  const nameAddr = parseNameAddr(value);
  const expiresText = paramValue(nameAddr.params, 'expires');
  if (expiresText !== undefined && !/^[0-9]+$/.test(expiresText)) throw new HeaderSyntaxError('bad expires parameter');
  const qText = paramValue(nameAddr.params, 'q');
  if (qText !== undefined && !/^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$/.test(qText)) throw new HeaderSyntaxError('bad q parameter');
  return {
    displayName: nameAddr.displayName,
    uri: nameAddr.uri,
    params: nameAddr.params,
    expires: expiresText === undefined ? null : deltaSeconds(expiresText),
    q: qText === undefined ? null : Number(qText),
  };
}

/** Comma-free token list headers (Require, Supported, Proxy-Require, Unsupported, Allow). */
export function parseTokenValue(value: string): string {
  const trimmed = value.trim();
  if (!isToken(trimmed)) throw new HeaderSyntaxError(`not a token: ${JSON.stringify(trimmed.slice(0, 32))}`);
  return trimmed;
}

// §25.1 rfc1123-date: the zone is always GMT (RFC 4475 baddate uses EST).
const DATE_RE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (0[1-9]|[12][0-9]|3[01]) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] GMT$/;

export function checkDate(value: string): void {
  if (!DATE_RE.test(value.trim())) throw new HeaderSyntaxError('Date must be an RFC 1123 date in GMT');
}

// --- accessors over a parsed message (parseMessage has already validated these headers) ---

export function vias(message: SipMessage): Via[] {
  return headerValues(message, 'Via').map(parseVia);
}

/** The top Via, the one a response is matched by (§17.1.3). */
export function topVia(message: SipMessage): Via | null {
  const value = headerValue(message, 'Via');
  return value === undefined ? null : parseVia(value);
}

export function cseq(message: SipMessage): CSeq {
  const value = headerValue(message, 'CSeq');
  if (value === undefined) throw new HeaderSyntaxError('no CSeq');
  return parseCSeq(value);
}

export function from(message: SipMessage): FromTo {
  const value = headerValue(message, 'From');
  if (value === undefined) throw new HeaderSyntaxError('no From');
  return parseFromTo(value);
}

export function to(message: SipMessage): FromTo {
  const value = headerValue(message, 'To');
  if (value === undefined) throw new HeaderSyntaxError('no To');
  return parseFromTo(value);
}

export function callId(message: SipMessage): string {
  const value = headerValue(message, 'Call-ID');
  if (value === undefined) throw new HeaderSyntaxError('no Call-ID');
  return value;
}

/** Max-Forwards, or null when absent (RFC 2543 peers may omit it, RFC 4475 inv2543). */
export function maxForwards(message: SipMessage): number | null {
  const value = headerValue(message, 'Max-Forwards');
  return value === undefined ? null : Number(value);
}

/** The Expires header in seconds; null when absent or beyond 2^32-1. */
export function expires(message: SipMessage): number | null {
  const value = headerValue(message, 'Expires');
  return value === undefined ? null : deltaSeconds(value.trim());
}

/** Contact list; `'*'` for the wildcard of a REGISTER that removes all bindings (§10.2.2). */
export function contacts(message: SipMessage): Contact[] | '*' {
  const values = headerValues(message, 'Contact');
  if (values.length === 1 && values[0]?.trim() === '*') return '*';
  return values.map(parseContact);
}

export function routes(message: SipMessage): NameAddr[] {
  return headerValues(message, 'Route').map((v) => parseNameAddr(v, { requireBrackets: true }));
}

export function recordRoutes(message: SipMessage): NameAddr[] {
  return headerValues(message, 'Record-Route').map((v) => parseNameAddr(v, { requireBrackets: true }));
}

function tokenList(message: SipMessage, name: string): string[] {
  return headerValues(message, name).map((v) => v.trim()).filter((v) => v !== '');
}

export function requireOptions(message: SipMessage): string[] {
  return tokenList(message, 'Require');
}

export function proxyRequire(message: SipMessage): string[] {
  return tokenList(message, 'Proxy-Require');
}

export function supported(message: SipMessage): string[] {
  return tokenList(message, 'Supported');
}

/**
 * The servers a client could not reach since it was last registered (a connection refused or timed out,
 * a request left unanswered, a flow that died), as `host:port`, on its REGISTER: a registrar that has
 * its own doubt about one of them (its heartbeat missed a probe) takes the user in backup mode rather
 * than redirect it there (src/frontend/registrar-service.ts). A hint, never trusted alone.
 */
export const UNANSWERED_HEADER = 'X-Dnslb-Unanswered';
/** At most this many servers are named (and read): a pool has at most 12 Front Ends. */
export const UNANSWERED_MAX = 16;

/** The hosts (address or name, no port) an `X-Dnslb-Unanswered` header names; malformed entries are skipped. */
export function unansweredHosts(message: SipMessage): string[] {
  const hosts: string[] = [];
  for (const value of headerValues(message, UNANSWERED_HEADER)) {
    for (const entry of value.split(',')) {
      if (hosts.length >= UNANSWERED_MAX) return hosts;
      const text = entry.trim();
      const bracketed = /^\[([0-9a-fA-F:.]+)\](?::\d{1,5})?$/.exec(text);
      const plain = /^([A-Za-z0-9.-]+)(?::\d{1,5})?$/.exec(text);
      const host = bracketed?.[1] ?? plain?.[1];
      if (host !== undefined) hosts.push(host.toLowerCase());
    }
  }
  return hosts;
}
