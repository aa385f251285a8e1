// SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966): parse, format, and compare per §19.1.4.
import { isIPv4, isIPv6 } from 'node:net';

/** A URI parameter or header: the name and value exactly as on the wire (escapes kept); value null for `;lr`. */
export interface UriParam {
  readonly name: string;
  readonly value: string | null;
}

/**
 * A sip: or sips: URI. Every text field is kept in wire form (percent-escapes untouched) so that a
 * parsed URI serializes back to the same bytes; use `unescapeUri` to read a decoded value.
 */
export interface SipUri {
  readonly scheme: 'sip' | 'sips';
  readonly user: string | null;
  readonly password: string | null;
  /** Hostname, IPv4 address, or IPv6 reference with its brackets (`[2001:db8::1]`). */
  readonly host: string;
  readonly port: number | null;
  readonly params: readonly UriParam[];
  readonly headers: readonly UriParam[];
}

/** A tel: URI (RFC 3966), recognised so that it can be routed or refused by the application. */
export interface TelUri {
  readonly scheme: 'tel';
  readonly number: string;
  readonly params: readonly UriParam[];
}

/** Any other absoluteURI (http:, isbn:, ...): legal in To/From/Contact, unsupported as a Request-URI (416). */
export interface OtherUri {
  readonly scheme: string;
  /** Everything after `scheme:`. */
  readonly opaque: string;
}

export type Uri = SipUri | TelUri | OtherUri;

export function isSipUri(uri: Uri): uri is SipUri {
  return uri.scheme === 'sip' || uri.scheme === 'sips';
}

export function isTelUri(uri: Uri): uri is TelUri {
  return uri.scheme === 'tel';
}

/** Thrown by parseUri; parse.ts turns it into a SipParseError naming the header it came from. */
export class UriSyntaxError extends Error {
  override name = 'UriSyntaxError';
}

// RFC 3261 §25.1 character classes.
const ALPHANUM = 'A-Za-z0-9';
const MARK = "\\-_.!~*'()";
const ESCAPED = '%[0-9A-Fa-f]{2}';
const UNRESERVED = `[${ALPHANUM}${MARK}]`;
const USER_RE = new RegExp(`^(?:${UNRESERVED}|${ESCAPED}|[&=+$,;?/])+$`);
const PASSWORD_RE = new RegExp(`^(?:${UNRESERVED}|${ESCAPED}|[&=+$,])*$`);
const PARAMCHAR_RE = new RegExp(`^(?:${UNRESERVED}|${ESCAPED}|[\\[\\]/:&+$])+$`);
const HNAME_RE = new RegExp(`^(?:${UNRESERVED}|${ESCAPED}|[\\[\\]/?:+$])+$`);
const HVALUE_RE = new RegExp(`^(?:${UNRESERVED}|${ESCAPED}|[\\[\\]/?:+$])*$`);
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+\-.]*$/;
const HOSTNAME_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$/;
const IPV4_LIKE_RE = /^[0-9.]+$/;
const TEL_NUMBER_RE = /^\+?[0-9A-Fa-f*#\-.()]+$/;
const OPAQUE_RE = /^[^\s<>"]+$/;

/**
 * Is `text` an IPv6 address as SIP accepts it? RFC 5118 §4.10 asks parsers to be robust to the
 * RFC 3261 ABNF slip that allows three colons before an embedded IPv4 address (`2001:db8:::192.0.2.1`).
 */
export function isSipIpv6(text: string): boolean {
  if (isIPv6(text)) return true;
  return text.includes(':::') && isIPv6(text.replace(':::', '::'));
}

/** Is a parsed URI's host an address rather than a name (checkHost validated it): dotted IPv4, or a bracketed IPv6 reference? */
export function isAddressHost(host: string): boolean {
  return host.startsWith('[') || IPV4_LIKE_RE.test(host);
}

/** Validates a host (hostname, IPv4, or bracketed IPv6 reference); returns it unchanged. */
export function checkHost(host: string): string {
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || !isSipIpv6(host.slice(1, -1))) throw new UriSyntaxError(`bad IPv6 reference ${host}`);
    return host;
  }
  if (IPV4_LIKE_RE.test(host)) {
    if (!isIPv4(host)) throw new UriSyntaxError(`bad IPv4 address ${host}`);
    return host;
  }
  if (!HOSTNAME_RE.test(host)) throw new UriSyntaxError(`bad host ${JSON.stringify(host)}`);
  return host;
}

/** Parses `host[:port]` where host may be an IPv6 reference (RFC 5118 §4.3/4.4: the port is outside the brackets). */
export function parseHostPort(text: string): { host: string; port: number | null } {
  let host: string;
  let rest: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new UriSyntaxError('unterminated IPv6 reference');
    host = text.slice(0, close + 1);
    rest = text.slice(close + 1);
  } else {
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    rest = colon < 0 ? '' : text.slice(colon);
  }
  checkHost(host);
  if (rest === '') return { host, port: null };
  if (!/^:[0-9]{1,5}$/.test(rest)) throw new UriSyntaxError(`bad port in ${JSON.stringify(text)}`);
  const port = Number(rest.slice(1));
  if (port > 65535) throw new UriSyntaxError(`port ${port} out of range`);
  return { host, port };
}

function parseParams(text: string, what: string): UriParam[] {
  // `text` starts after the first ';'. Empty parameters (`;;`) are not in the grammar.
  return text.split(';').map((piece) => {
    const eq = piece.indexOf('=');
    const name = eq < 0 ? piece : piece.slice(0, eq);
    const value = eq < 0 ? null : piece.slice(eq + 1);
    if (!PARAMCHAR_RE.test(name)) throw new UriSyntaxError(`bad ${what} parameter ${JSON.stringify(piece)}`);
    if (value !== null && !PARAMCHAR_RE.test(value)) throw new UriSyntaxError(`bad ${what} parameter value ${JSON.stringify(piece)}`);
    return { name, value };
  });
}

function parseUriHeaders(text: string): UriParam[] {
  return text.split('&').map((piece) => {
    const eq = piece.indexOf('=');
    if (eq < 0) throw new UriSyntaxError(`URI header without '=': ${JSON.stringify(piece)}`);
    const name = piece.slice(0, eq);
    const value = piece.slice(eq + 1);
    if (!HNAME_RE.test(name) || !HVALUE_RE.test(value)) throw new UriSyntaxError(`bad URI header ${JSON.stringify(piece)}`);
    return { name, value };
  });
}

function parseSipUri(scheme: 'sip' | 'sips', rest: string): SipUri {
  // '@' cannot appear unescaped outside userinfo (§25.1: not in paramchar nor hvalue), so the first one ends it.
  const at = rest.indexOf('@');
  let user: string | null = null;
  let password: string | null = null;
  let hostPart = rest;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    hostPart = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    password = colon < 0 ? null : userinfo.slice(colon + 1);
    if (!USER_RE.test(user)) throw new UriSyntaxError(`bad user part ${JSON.stringify(user)}`);
    if (password !== null && !PASSWORD_RE.test(password)) throw new UriSyntaxError('bad password part');
  }
  let headersText: string | null = null;
  const question = hostPart.indexOf('?');
  if (question >= 0) {
    headersText = hostPart.slice(question + 1);
    hostPart = hostPart.slice(0, question);
  }
  let paramsText: string | null = null;
  const semi = hostPart.indexOf(';');
  if (semi >= 0) {
    paramsText = hostPart.slice(semi + 1);
    hostPart = hostPart.slice(0, semi);
  }
  const { host, port } = parseHostPort(hostPart);
  return {
    scheme,
    user,
    password,
    host,
    port,
    params: paramsText === null ? [] : parseParams(paramsText, 'URI'),
    headers: headersText === null ? [] : parseUriHeaders(headersText),
  };
}

/** Parses an absolute URI. sip/sips/tel are parsed fully; any other scheme becomes an OtherUri. */
export function parseUri(text: string): Uri {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UriSyntaxError(`not a URI: ${JSON.stringify(text.slice(0, 64))}`);
  const schemeText = text.slice(0, colon);
  if (!SCHEME_RE.test(schemeText)) throw new UriSyntaxError(`bad URI scheme ${JSON.stringify(schemeText)}`);
  const scheme = schemeText.toLowerCase();
  const rest = text.slice(colon + 1);
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(scheme, rest);
  if (scheme === 'tel') {
    const semi = rest.indexOf(';');
    const number = semi < 0 ? rest : rest.slice(0, semi);
    if (!TEL_NUMBER_RE.test(number)) throw new UriSyntaxError(`bad tel number ${JSON.stringify(number)}`);
    return { scheme: 'tel', number, params: semi < 0 ? [] : parseParams(rest.slice(semi + 1), 'tel') };
  }
  if (!OPAQUE_RE.test(rest)) throw new UriSyntaxError(`bad ${scheme}: URI`);
  return { scheme, opaque: rest };
}

function formatParams(params: readonly UriParam[]): string {
  return params.map((p) => (p.value === null ? `;${p.name}` : `;${p.name}=${p.value}`)).join('');
}

/** Writes a URI back in wire form. */
export function formatUri(uri: Uri): string {
  if (isSipUri(uri)) {
    let text = `${uri.scheme}:`;
    if (uri.user !== null) text += uri.password === null ? `${uri.user}@` : `${uri.user}:${uri.password}@`;
    text += uri.host;
    if (uri.port !== null) text += `:${uri.port}`;
    text += formatParams(uri.params);
    if (uri.headers.length > 0) text += '?' + uri.headers.map((h) => `${h.name}=${h.value ?? ''}`).join('&');
    return text;
  }
  if (isTelUri(uri)) return `tel:${uri.number}${formatParams(uri.params)}`;
  const other = uri as OtherUri;
  return `${other.scheme}:${other.opaque}`;
}

/** Decodes %XX escapes (bytes, then UTF-8). An invalid escape is left as it is (RFC 4475 esc02: `%Z` is not an escape). */
export function unescapeUri(text: string): string {
  if (!text.includes('%')) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Finds a parameter by name, case-insensitively (names are case-insensitive, §19.1.4). */
export function uriParam(params: readonly UriParam[], name: string): UriParam | undefined {
  const wanted = name.toLowerCase();
  return params.find((p) => unescapeUri(p.name).toLowerCase() === wanted);
}

function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  if (!lower.startsWith('[')) return lower.endsWith('.') ? lower.slice(0, -1) : lower;
  // Compare IPv6 references by value (RFC 5118 §4.3 note): let the WHATWG URL parser canonicalise.
  try {
    return new URL(`http://${lower.replace(':::', '::')}/`).hostname;
  } catch {
    return lower;
  }
}

// §19.1.4: these parameters, if present in either URI, must be present in both and match.
const MUST_MATCH_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport'];

/**
 * URI equality per RFC 3261 §19.1.4: scheme must match; userinfo compares case-sensitively after
 * unescaping; host case-insensitively; a port present in one only makes them differ; user, ttl,
 * method, maddr and transport must match if either has them; other parameters are compared only
 * when both have them; URI headers must all match. tel: URIs compare number and parameters;
 * other schemes compare their text exactly.
 */
export function uriEquals(a: Uri, b: Uri): boolean {
  if (a.scheme !== b.scheme) return false;
  if (isSipUri(a) && isSipUri(b)) {
    if (a.user === null !== (b.user === null)) return false;
    if (a.user !== null && unescapeUri(a.user) !== unescapeUri(b.user ?? '')) return false;
    if ((a.password === null ? null : unescapeUri(a.password)) !== (b.password === null ? null : unescapeUri(b.password))) return false;
    if (canonicalHost(a.host) !== canonicalHost(b.host)) return false;
    if (a.port !== b.port) return false;
    const names = new Set([...a.params, ...b.params].map((p) => unescapeUri(p.name).toLowerCase()));
    for (const name of names) {
      const pa = uriParam(a.params, name);
      const pb = uriParam(b.params, name);
      if (!pa || !pb) {
        if (MUST_MATCH_PARAMS.includes(name)) return false;
        continue;
      }
      const va = pa.value === null ? null : unescapeUri(pa.value).toLowerCase();
      const vb = pb.value === null ? null : unescapeUri(pb.value).toLowerCase();
      if (va !== vb) return false;
    }
    if (a.headers.length !== b.headers.length) return false;
    for (const ha of a.headers) {
      const hb = uriParam(b.headers, unescapeUri(ha.name).toLowerCase());
      if (!hb || unescapeUri(hb.value ?? '') !== unescapeUri(ha.value ?? '')) return false;
    }
    return true;
  }
  if (isTelUri(a) && isTelUri(b)) {
    const strip = (n: string): string => n.replace(/[-.()]/g, '').toLowerCase();
    if (strip(a.number) !== strip(b.number)) return false;
    if (a.params.length !== b.params.length) return false;
    return a.params.every((pa) => {
      const pb = uriParam(b.params, pa.name);
      return pb !== undefined && (pb.value ?? '').toLowerCase() === (pa.value ?? '').toLowerCase();
    });
  }
  return formatUri(a) === formatUri(b);
}
