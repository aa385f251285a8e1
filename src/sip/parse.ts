// The SIP message parser (RFC 3261 §7, §20, §25): start line, header unfolding and splitting,
// validation of the headers dnslb relies on, and Content-Length framing of a datagram-like buffer.
import { limits } from '../shared/limits.ts';
import { canonicalHeaderName, canonicalOfKnownSpelling, isCanonicalListHeader, SINGLE_VALUE_HEADERS, type Header, type SipMessage } from './message.ts';
import { checkDate, HeaderSyntaxError, isToken, parseContact, parseCSeq, parseFromTo, parseNameAddr, parseTokenValue, parseVia } from './headers.ts';
import { SipMessageError, type PartialMessage } from './problem.ts';
import { countOf, forEachOutsideQuotesAndAngles } from './scan.ts';
import { isSipUri, isTelUri, parseUri, UriSyntaxError, type Uri } from './uri.ts';

export interface ParseOptions {
  /**
   * True for a message cut from a stream (TCP/TLS): Content-Length is then mandatory (§18.3) and
   * already used by the framer. False (the default) treats `bytes` as one datagram: a missing
   * Content-Length means "to the end", a larger one is an error (RFC 4475 clerr), a smaller one
   * truncates the body (RFC 4475 dblreq).
   */
  stream?: boolean;
}

/** The header section split into its start line and headers, before any header is interpreted. */
export interface MessageHead {
  readonly startLine: string;
  readonly headers: readonly Header[];
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Trims SP and HTAB only: String.trim would also eat U+FEFF and other Unicode spaces that are part of a value. */
export function trimWs(text: string): string {
  // Most values have nothing to trim: spare them the regular expression (the request path's hot spot).
  if (text === '') return text;
  const first = text.charCodeAt(0);
  const last = text.charCodeAt(text.length - 1);
  if (first !== 0x20 && first !== 0x09 && last !== 0x20 && last !== 0x09) return text;
  return text.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Splits a list header's value at commas outside quoted strings and <> (§7.3.1). */
export function splitListValue(value: string): string[] {
  // Most list values are one item (a Via, a Contact): no comma anywhere, nothing to split.
  if (!value.includes(',')) return [trimWs(value)];
  const parts: string[] = [];
  let start = 0;
  forEachOutsideQuotesAndAngles(value, (i) => {
    if (value[i] !== ',') return;
    parts.push(trimWs(value.slice(start, i)));
    start = i + 1;
  });
  parts.push(trimWs(value.slice(start)));
  return parts;
}

function isRequestLine(startLine: string): boolean {
  return !/^SIP\//i.test(startLine);
}

/**
 * Splits a header section (everything before the blank line, without it) into the start line and
 * headers: continuation lines are unfolded into one SP (§7.3.1), compact names are expanded, list
 * headers are comma-split. Header names must be tokens followed by optional whitespace and ':'.
 */
export function splitHead(text: string): MessageHead {
  const lines = text.split('\r\n');
  const startLine = lines[0] ?? '';
  const isRequest = isRequestLine(startLine);
  const headers: Header[] = [];
  const fail = (reason: string): never => {
    throw new SipMessageError('syntax', reason, { partial: { isRequest, method: methodOf(startLine), headers } });
  };
  // Each header's name as received, its canonical name, and its value.
  const raw: { name: string; canonical: string; value: string }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      const last = raw[raw.length - 1];
      if (!last) fail('Continuation line before any header');
      else last.value = trimWs(`${trimWs(last.value)} ${trimWs(line)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) fail(`Malformed header line ${JSON.stringify(line.slice(0, 32))}`);
    const rawName = line.slice(0, colon);
    const beforeColon = rawName.charCodeAt(rawName.length - 1);
    const name = beforeColon === 0x20 || beforeColon === 0x09 ? rawName.replace(/[ \t]+$/, '') : rawName;
    // A name spelled as a known header's is a token: the test is for the others.
    const known = canonicalOfKnownSpelling(name);
    if (known === undefined && !isToken(name)) fail('Malformed header name');
    raw.push({ name, canonical: known ?? canonicalHeaderName(name), value: valueAfter(line, colon + 1) });
  }
  // Bare CR or LF inside a line is not LWS; neither may reach a value. Only a head with one outside
  // the CRLF line ends can have such a value — a head with more CRs or LFs than line ends: that one
  // count over the whole text spares a test per value.
  const bareCrOrLf = countOf(text, '\r') !== lines.length - 1 || countOf(text, '\n') !== lines.length - 1;
  for (const { name, canonical, value } of raw) {
    if (bareCrOrLf && /[\r\n]/.test(value)) fail(`Bare CR or LF in ${name}`);
    if (isCanonicalListHeader(canonical) && value !== '') {
      for (const part of splitListValue(value)) headers.push({ name: canonical, value: part });
    } else {
      headers.push({ name: canonical, value });
    }
    if (headers.length > limits.sipHeaderCountMax) {
      throw new SipMessageError('too-large', 'Too many headers', { partial: { isRequest, method: methodOf(startLine), headers }, framingLost: false });
    }
  }
  return { startLine, headers };
}

/** trimWs(line.slice(from)) with one slice: the value of a header line after its colon. */
function valueAfter(line: string, from: number): string {
  let start = from;
  let end = line.length;
  for (let code = line.charCodeAt(start); code === 0x20 || code === 0x09; code = line.charCodeAt(++start));
  if (start === end) return '';
  for (let code = line.charCodeAt(end - 1); code === 0x20 || code === 0x09; code = line.charCodeAt(--end - 1));
  return line.slice(start, end);
}

function methodOf(startLine: string): string | null {
  if (!isRequestLine(startLine)) return null;
  const space = startLine.indexOf(' ');
  return space > 0 ? startLine.slice(0, space) : null;
}

/** The Content-Length of a head: null when absent; an error when repeated, negative or not a number. */
export function contentLengthOf(head: MessageHead, partial: PartialMessage): number | null {
  const values = head.headers.filter((h) => h.name === 'Content-Length').map((h) => h.value);
  if (values.length === 0) return null;
  if (values.length > 1) throw new SipMessageError('framing', 'Multiple Content-Length headers', { partial });
  const value = values[0] ?? '';
  if (!/^[0-9]+$/.test(value)) throw new SipMessageError('framing', 'Malformed Content-Length header', { partial });
  const length = Number(value.replace(/^0+(?=\d)/, ''));
  if (value.replace(/^0+(?=\d)/, '').length > 9 || length > limits.sipBodyBytesMax) {
    throw new SipMessageError('body-too-large', 'Body too large', { partial });
  }
  return length;
}

function partialOf(head: MessageHead): PartialMessage {
  return { isRequest: isRequestLine(head.startLine), method: methodOf(head.startLine), headers: head.headers };
}

interface Checker {
  (value: string): unknown;
}

// Headers interpreted strictly because a registrar or proxy acts on them; all others pass as text.
// A Map, not an object: a header named `constructor`, `__proto__` or `toString` (a token, so a valid
// name) must find no checker rather than Object.prototype's members.
const CHECKS = new Map<string, Checker>(Object.entries({
  via: parseVia,
  from: parseFromTo,
  to: parseFromTo,
  cseq: parseCSeq,
  contact: (v) => (v.trim() === '*' ? '*' : parseContact(v)),
  route: (v) => parseNameAddr(v, { requireBrackets: true }),
  'record-route': (v) => parseNameAddr(v, { requireBrackets: true }),
  path: (v) => parseNameAddr(v, { requireBrackets: true }),
  'call-id': (v) => {
    // callid = word [ "@" word ]; word admits most printable characters (RFC 4475 intmeth).
    if (!/^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+(@[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+)?$/.test(v)) throw new HeaderSyntaxError('bad Call-ID');
  },
  'max-forwards': (v) => {
    // A value above 255 is refused rather than ignored (RFC 4475 scalar02 allows either).
    if (!/^[0-9]+$/.test(v) || Number(v) > 255) throw new HeaderSyntaxError('Max-Forwards must be 0..255');
  },
  expires: (v) => {
    if (!/^[0-9]+$/.test(v)) throw new HeaderSyntaxError('Expires must be delta-seconds');
  },
  require: parseTokenValue,
  'proxy-require': parseTokenValue,
  supported: (v) => (v === '' ? '' : parseTokenValue(v)),
  'content-type': (v) => {
    if (!/^[A-Za-z0-9\-.!%*_+`'~]+[ \t]*\/[ \t]*[A-Za-z0-9\-.!%*_+`'~]+([ \t]*;.*)?$/s.test(v)) throw new HeaderSyntaxError('bad media type');
  },
  date: checkDate,
} satisfies Record<string, Checker>));

const MANDATORY = ['Via', 'From', 'To', 'Call-ID', 'CSeq'];
const MANDATORY_LOWER = MANDATORY.map((name) => [name, name.toLowerCase()] as const);
const COUNTED = [...new Set([...SINGLE_VALUE_HEADERS, ...MANDATORY_LOWER.map(([, lower]) => lower)])];

/** What interpretMessage does with a header: its slot among the counted ones (-1: not counted), its checker. */
interface HeaderRule {
  readonly slot: number;
  readonly check: Checker | undefined;
}

/**
 * The rule of each header name that has one, under its lower-case and its canonical spelling (the
 * name splitHead stores): one lookup per header, without a lower-cased copy of a known name.
 */
const RULES = new Map<string, HeaderRule>();
for (const lower of new Set([...CHECKS.keys(), ...COUNTED])) {
  const rule = { slot: COUNTED.indexOf(lower), check: CHECKS.get(lower) };
  RULES.set(lower, rule);
  RULES.set(canonicalHeaderName(lower), rule);
}
const SINGLE_SLOTS = [...SINGLE_VALUE_HEADERS].map((lower) => [COUNTED.indexOf(lower), lower] as const);
const MANDATORY_SLOTS = MANDATORY_LOWER.map(([name, lower]) => [name, COUNTED.indexOf(lower)] as const);
/** The counts of one message (interpretMessage runs to its end before it is called again). */
const counts = new Uint32Array(COUNTED.length);

/**
 * Interprets a split head and its body: start line, version, the strictly-checked headers,
 * single-valued headers, mandatory headers, CSeq method, and Request-URI. Throws SipMessageError.
 */
export function interpretMessage(head: MessageHead, body: Buffer): SipMessage {
  const partial = partialOf(head);
  const fail = (reason: string, cause?: unknown): never => {
    throw new SipMessageError('syntax', reason, { partial, cause });
  };
  const startLine = head.startLine;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(startLine)) fail('Control character in start line');

  let request: { method: string; uriText: string } | null = null;
  let status: { status: number; reason: string } | null = null;
  if (partial.isRequest) {
    // Request-Line = Method SP Request-URI SP SIP-Version (§7.1): exactly two single spaces.
    const parts = startLine.split(' ');
    if (parts.length !== 3 || parts.some((p) => p === '')) {
      if (/[ \t]$/.test(startLine)) fail('Trailing whitespace in Request-Line');
      fail('Malformed Request-Line');
    }
    const [method = '', uriText = '', version = ''] = parts;
    if (!isToken(method)) fail('Malformed method');
    checkVersion(version, partial);
    request = { method, uriText };
  } else {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2).
    const match = /^([^ ]+) ([0-9]{3}) (.*)$/s.exec(startLine);
    if (!match) fail('Malformed Status-Line');
    const [, version = '', code = '', reason = ''] = match ?? [];
    checkVersion(version, partial);
    const value = Number(code);
    if (value < 100 || value > 699) fail('Status code out of range');
    status = { status: value, reason };
  }

  // How many of each header that must be there or may be there once (the only counts read below).
  counts.fill(0);
  for (const header of head.headers) {
    // Parsed names of known headers are canonical; another spelling is lower-cased to be sure.
    const rule = RULES.get(header.name) ?? RULES.get(header.name.toLowerCase());
    if (rule === undefined) continue;
    if (rule.slot >= 0) counts[rule.slot]!++;
    const check = rule.check;
    if (!check) continue;
    try {
      check(header.value);
    } catch (error) {
      if (error instanceof HeaderSyntaxError || error instanceof UriSyntaxError) fail(`Malformed ${header.name} header`, error);
      throw error;
    }
  }
  for (const [slot, lower] of SINGLE_SLOTS) {
    if (counts[slot]! > 1) fail(`Multiple ${canonicalHeaderName(lower)} headers`);
  }
  for (const [name, slot] of MANDATORY_SLOTS) {
    if (counts[slot] === 0) fail(`Missing ${name} header`);
  }
  const cseqHeader = head.headers.find((h) => h.name === 'CSeq');
  const cseqMethod = cseqHeader ? parseCSeq(cseqHeader.value).method : '';

  if (request) {
    // §8.2.? / RFC 4475 mismatch01/02: the CSeq method must be the request's method.
    if (cseqMethod !== request.method) fail('CSeq method does not match the request method');
    let uri: Uri;
    try {
      uri = parseUri(request.uriText);
    } catch (error) {
      return fail('Malformed Request-URI', error);
    }
    // §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri).
    if (isSipUri(uri) && uri.headers.length > 0) fail('Headers not allowed in Request-URI');
    if (!isSipUri(uri) && !isTelUri(uri)) {
      throw new SipMessageError('uri-scheme', `Unsupported URI scheme ${uri.scheme}`, { partial });
    }
    return { kind: 'request', method: request.method, uri, headers: head.headers, body };
  }
  const line = status ?? { status: 0, reason: '' };
  return { kind: 'response', status: line.status, reason: line.reason, headers: head.headers, body };
}

function checkVersion(version: string, partial: PartialMessage): void {
  // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, "SIP" case-insensitive (§7.1, §25).
  const match = /^SIP\/([0-9]+)\.([0-9]+)$/i.exec(version);
  if (!match) throw new SipMessageError('syntax', 'Malformed SIP-Version', { partial });
  if (Number(match[1]) !== 2 || Number(match[2]) !== 0) {
    throw new SipMessageError('version', `SIP version ${version} not supported`, { partial });
  }
}

/** Decodes a header section (bytes before the blank line) as UTF-8, the charset of SIP text (§7). */
export function decodeHead(bytes: Buffer): string {
  return bytes.toString('utf8');
}

/**
 * Parses one whole message. With `stream: false` (default) `bytes` is a datagram: see ParseOptions.
 * Throws SipMessageError for every malformed input, never anything else.
 */
export function parseMessage(bytes: Buffer, options: ParseOptions = {}): SipMessage {
  const end = bytes.indexOf(CRLFCRLF);
  const headEnd = end < 0 ? bytes.length : end;
  if (headEnd > limits.sipHeaderSectionBytesMax) throw new SipMessageError('too-large', 'Header section too large');
  if (bytes.length > limits.sipMessageBytesMax) throw new SipMessageError('too-large', 'Message too large');
  const head = splitHead(decodeHead(bytes.subarray(0, headEnd)));
  const partial = partialOf(head);
  if (end < 0) throw new SipMessageError('syntax', 'Header section not terminated by an empty line', { partial });
  const available = bytes.subarray(end + 4);
  const contentLength = contentLengthOf(head, partial);
  let body: Buffer;
  if (contentLength === null) {
    if (options.stream) throw new SipMessageError('framing', 'Missing Content-Length header', { partial });
    body = available;
  } else {
    if (contentLength > available.length) {
      throw new SipMessageError('syntax', 'Content-Length larger than the message body', { partial, framingLost: options.stream ?? false });
    }
    body = available.subarray(0, contentLength);
  }
  return interpretMessage(head, Buffer.from(body));
}
