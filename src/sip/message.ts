// SIP message types (RFC 3261 §7), header-name rules (compact forms, canonical spelling, list headers),
// serialization, and building a response from a request (§8.2.6).
import { assert } from '../shared/assert.ts';
import { countOf, forEachOutsideQuotesAndAngles } from './scan.ts';
import { formatUri, type Uri } from './uri.ts';

/**
 * One header field value. Multi-valued list headers (Via, Contact, Route, ...) are split at their
 * commas into one Header each, in order (§7.3.1 says the two forms are equivalent). `name` is the
 * canonical spelling for known headers (compact forms expanded) and the received spelling otherwise;
 * `value` is the unfolded value with surrounding whitespace removed.
 */
export interface Header {
  readonly name: string;
  readonly value: string;
}

export interface SipRequest {
  readonly kind: 'request';
  /** Case-sensitive (§7.1): `INVITE` and `invite` are different methods. */
  readonly method: string;
  readonly uri: Uri;
  readonly headers: readonly Header[];
  readonly body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly Header[];
  readonly body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

/** RFC 3261 §7.3.3, RFC 3265, RFC 3515, RFC 3841, RFC 4028, RFC 4474: compact form → full name. */
export const COMPACT_HEADER_NAMES: Readonly<Record<string, string>> = {
  a: 'Accept-Contact',
  b: 'Referred-By',
  c: 'Content-Type',
  d: 'Request-Disposition',
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  j: 'Reject-Contact',
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  n: 'Identity-Info',
  o: 'Event',
  r: 'Refer-To',
  s: 'Subject',
  t: 'To',
  u: 'Allow-Events',
  v: 'Via',
  x: 'Session-Expires',
  y: 'Identity',
};

const KNOWN_HEADER_NAMES = [
  'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow', 'Allow-Events',
  'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact', 'Content-Disposition',
  'Content-Encoding', 'Content-Language', 'Content-Length', 'Content-Type', 'CSeq', 'Date', 'Error-Info',
  'Event', 'Expires', 'From', 'Identity', 'Identity-Info', 'In-Reply-To', 'Max-Forwards', 'MIME-Version',
  'Min-Expires', 'Organization', 'Path', 'Priority', 'Proxy-Authenticate', 'Proxy-Authorization',
  'Proxy-Require', 'Record-Route', 'Refer-To', 'Referred-By', 'Reject-Contact', 'Reply-To',
  'Request-Disposition', 'Require', 'Retry-After', 'Route', 'Server', 'Service-Route', 'Session-Expires',
  'Subject', 'Subscription-State', 'Supported', 'Timestamp', 'To', 'Unsupported', 'User-Agent', 'Via',
  'Warning', 'WWW-Authenticate',
];
const CANONICAL_BY_LOWER = new Map(KNOWN_HEADER_NAMES.map((n) => [n.toLowerCase(), n]));

/**
 * Headers whose grammar is `#element` and may be comma-split (§7.3.1). Only these are split: a header
 * we do not know is never split, because commas may be part of its value (Date, User-Agent, ...), and
 * the authentication headers are `challenge`/`credentials` with commas between their parameters.
 */
const LIST_HEADERS = new Set([
  'accept', 'accept-encoding', 'accept-language', 'alert-info', 'allow', 'allow-events', 'call-info',
  'contact', 'content-encoding', 'content-language', 'error-info', 'in-reply-to', 'path', 'proxy-require',
  'record-route', 'require', 'route', 'service-route', 'supported', 'unsupported', 'via', 'warning',
  'accept-contact', 'reject-contact',
]);

/** Headers that may appear once only (§20; RFC 4475 §3.1.2.x multi01, mcl01). */
export const SINGLE_VALUE_HEADERS = new Set(['call-id', 'content-length', 'content-type', 'cseq', 'expires', 'from', 'max-forwards', 'to']);

/**
 * The usual spellings of the known names (as in the RFCs, all lower case, compact forms in either
 * case) straight to their canonical name: most messages spell their headers so, and this spares a
 * toLowerCase (a new string) per header per lookup on the request path.
 */
const CANONICAL_BY_SPELLING = new Map<string, string>([
  ...KNOWN_HEADER_NAMES.flatMap((n) => [[n, n], [n.toLowerCase(), n]] as const),
  ...Object.entries(COMPACT_HEADER_NAMES).flatMap(([c, n]) => [[c, n], [c.toUpperCase(), n]] as const),
]);

/** LIST_HEADERS by canonical name (every one of them is a known name). */
const LIST_HEADERS_CANONICAL = new Set(KNOWN_HEADER_NAMES.filter((n) => LIST_HEADERS.has(n.toLowerCase())));

/** The canonical name of a header: compact forms expanded, known names spelled as in the RFCs. */
export function canonicalHeaderName(name: string): string {
  const known = CANONICAL_BY_SPELLING.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  // Own keys only: a header named `constructor` or `__proto__` must not find Object.prototype's.
  const compact = Object.hasOwn(COMPACT_HEADER_NAMES, lower) ? COMPACT_HEADER_NAMES[lower] : undefined;
  if (compact) return compact;
  return CANONICAL_BY_LOWER.get(lower) ?? name;
}

export function isListHeader(name: string): boolean {
  return LIST_HEADERS_CANONICAL.has(canonicalHeaderName(name));
}

/** isListHeader of a name canonicalHeaderName already gave (one lookup less per header on the parse path). */
export function isCanonicalListHeader(canonical: string): boolean {
  return LIST_HEADERS_CANONICAL.has(canonical);
}

/** Is `name` spelled as a known header is usually written (canonical, lower case, compact in either case)? */
export function isKnownSpelling(name: string): boolean {
  return CANONICAL_BY_SPELLING.has(name);
}

/** The canonical name of `name` when it is spelled as a known header usually is (isKnownSpelling), else undefined. */
export function canonicalOfKnownSpelling(name: string): string | undefined {
  return CANONICAL_BY_SPELLING.get(name);
}

/**
 * Does a stored header name (canonical when parsed, as written when built) match `canonical`
 * (a canonicalHeaderName result) case-insensitively? Lowercases only a name of the same length.
 */
function sameHeaderName(stored: string, canonical: string): boolean {
  return stored === canonical || (stored.length === canonical.length && stored.toLowerCase() === canonical.toLowerCase());
}

/** All values of a header, in order (names compare case-insensitively, compact forms included). */
export function headerValues(message: { readonly headers: readonly Header[] }, name: string): string[] {
  const canonical = canonicalHeaderName(name);
  const values: string[] = [];
  for (const header of message.headers) if (sameHeaderName(header.name, canonical)) values.push(header.value);
  return values;
}

/** The first value of a header, or undefined. */
export function headerValue(message: { readonly headers: readonly Header[] }, name: string): string | undefined {
  const canonical = canonicalHeaderName(name);
  for (const header of message.headers) if (sameHeaderName(header.name, canonical)) return header.value;
  return undefined;
}

/** Default reason phrases (§21) for the statuses dnslb sends. */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  200: 'OK',
  202: 'Accepted',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  486: 'Busy Here',
  487: 'Request Terminated',
  489: 'Bad Event',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? (status < 200 ? 'Provisional' : status < 300 ? 'Success' : 'Error');
}

/** Is this string a valid header value to put on the wire (no CR/LF that would inject a line)? */
function assertSafeText(text: string, what: string): void {
  assert(!/[\r\n]/.test(text), `${what} must not contain CR or LF`);
}

/**
 * Writes a message in wire form: start line, one line per Header (in order), a Content-Length that
 * always matches the body (any Content-Length in `headers` is ignored: the body decides, §18.3), the
 * blank line and the body. Header names are written as stored; compact forms are never produced.
 */
export function serializeMessage(message: SipMessage): Buffer {
  let startLine: string;
  if (message.kind === 'request') {
    assert(/^[A-Za-z0-9\-.!%*_+`'~]+$/.test(message.method), `bad method ${message.method}`);
    startLine = `${message.method} ${formatUri(message.uri)} SIP/2.0`;
  } else {
    assert(Number.isInteger(message.status) && message.status >= 100 && message.status <= 699, `bad status ${message.status}`);
    assertSafeText(message.reason, 'reason phrase');
    startLine = `SIP/2.0 ${message.status} ${message.reason}`;
  }
  let headerLines = '';
  let lines = 0;
  for (const header of message.headers) {
    if (header.name.length === 14 && header.name.toLowerCase() === 'content-length') continue;
    headerLines += `${header.name}: ${header.value}\r\n`;
    lines++;
  }
  // No name or value may hold a CR or LF: then the lines hold exactly one CR and one LF each, their
  // ends (one count of each over the whole text instead of a test per name and per value).
  if (countOf(headerLines, '\r') !== lines || countOf(headerLines, '\n') !== lines) {
    for (const header of message.headers) {
      if (header.name.length === 14 && header.name.toLowerCase() === 'content-length') continue;
      assertSafeText(header.name, 'header name');
      assertSafeText(header.value, `${header.name} value`);
    }
  }
  const head = Buffer.from(`${startLine}\r\n${headerLines}Content-Length: ${message.body.length}\r\n\r\n`, 'utf8');
  return message.body.length === 0 ? head : Buffer.concat([head, message.body]);
}

export interface ResponseOptions {
  /** Reason phrase; defaults to the standard one for the status. */
  reason?: string;
  /** Tag to add to To when the request's To has none (§8.2.6.2); required for statuses above 100 then. */
  toTag?: string;
  /** Extra headers, appended after the copied ones. */
  headers?: readonly Header[];
  body?: Buffer;
}

const TAG_PARAM_RE = /;\s*tag\s*=/i;

/** Does a raw From/To value carry a tag parameter (outside its quoted display name and <URI>)? */
export function rawHasTag(value: string): boolean {
  return TAG_PARAM_RE.test(stripQuotedAndBracketed(value));
}

function stripQuotedAndBracketed(value: string): string {
  let out = '';
  forEachOutsideQuotesAndAngles(value, (i) => (out += value[i]));
  // An addr-spec without <> keeps its URI up to the first ';': strip it so a URI parameter is not taken for a tag.
  return value.includes('<') ? out : out.slice(out.indexOf(';') < 0 ? out.length : out.indexOf(';'));
}

/**
 * Builds a response to `request` per §8.2.6: the Via headers in order, From, To (with `toTag` added
 * when the request's To has no tag and the status is not 100), Call-ID and CSeq, copied as received.
 */
export function createResponse(request: SipRequest, status: number, options: ResponseOptions = {}): SipResponse {
  return responseFromHeaders(request.headers, status, options);
}

/**
 * The same as createResponse, from the raw headers of a request that may not have parsed completely
 * (problem.ts answers malformed requests with it). Headers missing from `headers` are left out.
 */
export function responseFromHeaders(headers: readonly Header[], status: number, options: ResponseOptions = {}): SipResponse {
  // One pass over the headers: every Via, then the first From, To, Call-ID and CSeq.
  const copied: Header[] = [];
  let from: Header | undefined;
  let to: Header | undefined;
  let callId: Header | undefined;
  let cseq: Header | undefined;
  for (const h of headers) {
    const name = copiedNameOf(h.name);
    if (name === undefined) continue;
    if (name === 'Via') copied.push({ name, value: h.value });
    else if (name === 'From') from ??= { name, value: h.value };
    else if (name === 'Call-ID') callId ??= { name, value: h.value };
    else if (name === 'CSeq') cseq ??= { name, value: h.value };
    else if (to === undefined) {
      to = status > 100 && options.toTag !== undefined && !rawHasTag(h.value) ? { name, value: `${h.value};tag=${options.toTag}` } : { name, value: h.value };
    }
  }
  if (from) copied.push(from);
  if (to) copied.push(to);
  if (callId) copied.push(callId);
  if (cseq) copied.push(cseq);
  if (options.headers) for (const header of options.headers) copied.push(header);
  return {
    kind: 'response',
    status,
    reason: options.reason ?? reasonPhrase(status),
    headers: copied,
    body: options.body ?? NO_BODY,
  };
}

/** The body of a response without one: zero bytes, so nothing can be written into it. */
const NO_BODY = Buffer.alloc(0);

const COPIED_BY_LOWER = new Map(['Via', 'From', 'To', 'Call-ID', 'CSeq'].map((name) => [name.toLowerCase(), name]));

/**
 * Which header a response copies (§8.2.6) `name` is, in its canonical spelling; undefined for the
 * others. Parsed names are canonical: most compare equal or differ in length, without a lower-cased copy.
 */
function copiedNameOf(name: string): string | undefined {
  switch (name) {
    case 'Via':
    case 'From':
    case 'To':
    case 'Call-ID':
    case 'CSeq':
      return name;
  }
  const length = name.length;
  if (length !== 2 && length !== 3 && length !== 4 && length !== 7) return undefined;
  return COPIED_BY_LOWER.get(name.toLowerCase());
}
