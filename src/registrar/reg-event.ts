// RFC 3680 registration event documents (application/reginfo+xml): the model, a writer for full
// and partial state with per-subscription version numbers, and a reader for the client side.
import { assert } from '../shared/assert.ts';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import type { BindingChange, BindingEvent, BindingView } from './location.ts';

export const REGINFO_NAMESPACE = 'urn:ietf:params:xml:ns:reginfo';
export const REGINFO_CONTENT_TYPE = 'application/reginfo+xml';

/** RFC 3680 §5.3 (the `event` attribute of `<contact>`). */
export const CONTACT_EVENTS = ['registered', 'created', 'refreshed', 'shortened', 'expired', 'deactivated', 'probation', 'unregistered', 'rejected'] as const;
export type ContactEvent = (typeof CONTACT_EVENTS)[number];
export type ContactState = 'active' | 'terminated';
export type RegistrationState = 'init' | 'active' | 'terminated';

export interface RegContact {
  id: string;
  state: ContactState;
  event: ContactEvent;
  uri: string;
  displayName?: string;
  durationRegisteredS?: number;
  expiresS?: number;
  /** Seconds; with event `probation` (RFC 3680 §5.3). */
  retryAfterS?: number;
  q?: number;
  callId?: string;
  cseq?: number;
  unknownParams?: { name: string; value: string }[];
}

export interface Registration {
  aor: string;
  id: string;
  state: RegistrationState;
  contacts: RegContact[];
}

export interface RegInfo {
  version: number;
  state: 'full' | 'partial';
  registrations: Registration[];
}

// ---------------------------------------------------------------------------------------------
// Building documents from bindings

/** RFC 3680 §5.2: the events after which a contact is active; the rest terminate it. */
const ACTIVE_EVENTS: ReadonlySet<ContactEvent> = new Set(['registered', 'created', 'refreshed', 'shortened']);

export function contactStateAfter(event: ContactEvent): ContactState {
  return ACTIVE_EVENTS.has(event) ? 'active' : 'terminated';
}

function contactOf(binding: BindingView, event: ContactEvent, nowMs: number): RegContact {
  const state = contactStateAfter(event);
  const contact: RegContact = {
    id: binding.id,
    state,
    event,
    uri: binding.contact,
    durationRegisteredS: Math.max(0, Math.floor((nowMs - binding.registeredAtMs) / 1000)),
    callId: binding.callId,
    cseq: binding.cseq,
  };
  if (state === 'active') contact.expiresS = binding.expiresInS;
  if (binding.q !== undefined) contact.q = binding.q;
  return contact;
}

/** A registration's id: stable for the user, so that partial documents refer to the same one. */
export function registrationIdOf(user: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < user.length; index++) hash = Math.imul(hash ^ user.charCodeAt(index), 0x01000193);
  return `r${(hash >>> 0).toString(16)}`;
}

/** Full state of one user (RFC 3680 §5.1: the first NOTIFY of a subscription and any re-sync). */
export function fullState(user: string, bindings: readonly BindingView[], nowMs: number): Omit<RegInfo, 'version'> {
  return {
    state: 'full',
    registrations: [
      {
        aor: user,
        id: registrationIdOf(user),
        state: bindings.length > 0 ? 'active' : 'init',
        contacts: bindings.map((binding) => contactOf(binding, 'registered', nowMs)),
      },
    ],
  };
}

/**
 * Partial state carrying what changed (created, refreshed, unregistered, expired, deactivated…).
 * `remaining` is how many bindings the user still has here: none makes the registration terminated.
 */
export function partialState(user: string, changes: readonly BindingChange[], remaining: number, nowMs: number): Omit<RegInfo, 'version'> {
  return {
    state: 'partial',
    registrations: [
      {
        aor: user,
        id: registrationIdOf(user),
        state: remaining > 0 ? 'active' : 'terminated',
        contacts: changes.map((change) => contactOf(change.binding, change.event satisfies BindingEvent, nowMs)),
      },
    ],
  };
}

/**
 * The document that moves a user (re-home, drain): every binding ended with event `deactivated`,
 * which tells the client to re-register at once (RFC 3680 §5.2) — it then follows the redirect home.
 */
export function deactivatedState(user: string, bindings: readonly BindingView[], nowMs: number): Omit<RegInfo, 'version'> {
  return partialState(
    user,
    bindings.map((binding) => ({ event: 'deactivated', binding })),
    0,
    nowMs,
  );
}

/**
 * One subscription's numbering (RFC 3680 §5.3: `version` starts at 0 and grows by one with each
 * document sent on the subscription, so the subscriber can spot a lost or reordered NOTIFY).
 */
export class RegEventSubscription {
  private nextVersion = 0;

  /** Numbers the document and writes it; call once per NOTIFY body sent. */
  render(document: Omit<RegInfo, 'version'>): string {
    return serializeRegInfo({ ...document, version: this.nextVersion++ });
  }

  get versionsSent(): number {
    return this.nextVersion;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

// XML 1.0 §2.2: characters a document may not hold at all are written as U+FFFD.
// eslint-disable-next-line no-control-regex
const XML_ILLEGAL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function escapeXmlText(value: string): string {
  // A raw CR would be read back as LF (XML 1.0 §2.11), so it is written as a reference.
  return value.replace(XML_ILLEGAL, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

export function escapeXmlAttribute(value: string): string {
  // Tabs and line ends are escaped too: attribute-value normalisation would turn them into spaces.
  return escapeXmlText(value).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;');
}

function attributes(pairs: [string, string | number | undefined][]): string {
  return pairs
    .filter((pair): pair is [string, string | number] => pair[1] !== undefined)
    .map(([name, value]) => ` ${name}="${escapeXmlAttribute(String(value))}"`)
    .join('');
}

/** Writes a reginfo document (RFC 3680 §5.4), UTF-8, with the reginfo namespace as the default. */
export function serializeRegInfo(document: RegInfo): string {
  assert(Number.isInteger(document.version) && document.version >= 0, 'reginfo version must be a non-negative integer');
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<reginfo xmlns="${REGINFO_NAMESPACE}"${attributes([['version', document.version], ['state', document.state]])}>`];
  for (const registration of document.registrations) {
    lines.push(`  <registration${attributes([['aor', registration.aor], ['id', registration.id], ['state', registration.state]])}>`);
    for (const contact of registration.contacts) {
      lines.push(
        `    <contact${attributes([
          ['id', contact.id],
          ['state', contact.state],
          ['event', contact.event],
          ['duration-registered', contact.durationRegisteredS],
          ['expires', contact.expiresS],
          ['retry-after', contact.retryAfterS],
          ['q', contact.q === undefined ? undefined : formatQValue(contact.q)],
          ['callid', contact.callId],
          ['cseq', contact.cseq],
        ])}>`,
      );
      lines.push(`      <uri>${escapeXmlText(contact.uri)}</uri>`);
      if (contact.displayName !== undefined) lines.push(`      <display-name>${escapeXmlText(contact.displayName)}</display-name>`);
      for (const parameter of contact.unknownParams ?? []) {
        lines.push(`      <unknown-param${attributes([['name', parameter.name]])}>${escapeXmlText(parameter.value)}</unknown-param>`);
      }
      lines.push('    </contact>');
    }
    lines.push('  </registration>');
  }
  lines.push('</reginfo>');
  return lines.join('\n') + '\n';
}

function formatQValue(q: number): string {
  assert(q >= 0 && q <= 1, `q out of range: ${q}`);
  return String(Math.round(q * 1000) / 1000);
}

// ---------------------------------------------------------------------------------------------
// Reading

interface XmlElement {
  namespace: string;
  name: string;
  attributes: Map<string, string>;
  children: XmlElement[];
  text: string;
}

function fail(message: string, cause?: unknown): never {
  throw new DnslbError('REGISTRAR_REGINFO_PARSE', `reginfo: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * A small, strict XML reader for reginfo bodies: elements, attributes, namespaces, character and
 * entity references, CDATA, comments and processing instructions. A DOCTYPE is refused (no entity
 * expansion from the wire), and so is anything not well-formed.
 */
class XmlReader {
  private at = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  document(): XmlElement {
    if (this.text.charCodeAt(0) === 0xfeff) this.at = 1;
    this.misc();
    if (this.text.startsWith('<!DOCTYPE', this.at)) fail('DOCTYPE is not allowed');
    if (this.text[this.at] !== '<') fail(`expected the root element at offset ${this.at}`);
    const root = this.element(new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]));
    this.misc();
    if (this.at !== this.text.length) fail(`content after the root element at offset ${this.at}`);
    return root;
  }

  /** Whitespace, comments and processing instructions (the XML declaration among them). */
  private misc(): void {
    for (;;) {
      this.skipSpace();
      if (this.text.startsWith('<?', this.at)) {
        const end = this.text.indexOf('?>', this.at + 2);
        if (end < 0) fail('unterminated processing instruction');
        this.at = end + 2;
      } else if (this.text.startsWith('<!--', this.at)) {
        const end = this.text.indexOf('-->', this.at + 4);
        if (end < 0) fail('unterminated comment');
        this.at = end + 3;
      } else return;
    }
  }

  private skipSpace(): void {
    while (this.at < this.text.length && ' \t\r\n'.includes(this.text[this.at]!)) this.at++;
  }

  private name(): string {
    const match = /^[A-Za-z_][\w.:-]*/.exec(this.text.slice(this.at, this.at + 256));
    if (!match) fail(`expected a name at offset ${this.at}`);
    this.at += match[0].length;
    return match[0];
  }

  private element(scope: Map<string, string>): XmlElement {
    if (++this.depth > 32) fail('elements nested too deep');
    this.at++; // '<'
    const qualified = this.name();
    const raw = new Map<string, string>();
    for (;;) {
      const before = this.at;
      this.skipSpace();
      const next = this.text[this.at];
      if (next === '>' || next === '/') break;
      if (next === undefined) fail('unterminated start tag');
      if (this.at === before) fail(`expected whitespace before an attribute at offset ${this.at}`);
      const attribute = this.name();
      this.skipSpace();
      if (this.text[this.at] !== '=') fail(`expected = after ${attribute}`);
      this.at++;
      this.skipSpace();
      const quote = this.text[this.at];
      if (quote !== '"' && quote !== "'") fail(`expected a quoted value for ${attribute}`);
      const end = this.text.indexOf(quote, this.at + 1);
      if (end < 0) fail(`unterminated value of ${attribute}`);
      const value = this.text.slice(this.at + 1, end);
      if (value.includes('<')) fail(`< in the value of ${attribute}`);
      if (raw.has(attribute)) fail(`attribute ${attribute} twice`);
      raw.set(attribute, decodeReferences(value.replace(/[\t\n\r]/g, ' ')));
      this.at = end + 1;
    }
    // Namespace declarations of this element apply to it and its descendants.
    let inner = scope;
    for (const [attribute, value] of raw) {
      if (attribute === 'xmlns' || attribute.startsWith('xmlns:')) {
        if (inner === scope) inner = new Map(scope);
        inner.set(attribute === 'xmlns' ? '' : attribute.slice(6), value);
      }
    }
    const [prefix, local] = splitName(qualified);
    const namespace = inner.get(prefix);
    if (namespace === undefined && prefix !== '') fail(`undeclared prefix ${prefix}`);
    const attributesOut = new Map<string, string>();
    for (const [attribute, value] of raw) {
      if (attribute === 'xmlns' || attribute.startsWith('xmlns:')) continue;
      // Unprefixed attributes belong to no namespace; reginfo's are all unprefixed.
      if (!attribute.includes(':')) attributesOut.set(attribute, value);
    }
    const element: XmlElement = { namespace: namespace ?? '', name: local, attributes: attributesOut, children: [], text: '' };
    if (this.text[this.at] === '/') {
      if (this.text[this.at + 1] !== '>') fail(`expected /> at offset ${this.at}`);
      this.at += 2;
      this.depth--;
      return element;
    }
    this.at++; // '>'
    const text: string[] = [];
    for (;;) {
      const open = this.text.indexOf('<', this.at);
      if (open < 0) fail(`unterminated element ${qualified}`);
      const chunk = this.text.slice(this.at, open);
      if (chunk.includes(']]>')) fail(']]> in text');
      text.push(decodeReferences(chunk));
      this.at = open;
      if (this.text.startsWith('</', this.at)) {
        this.at += 2;
        const closing = this.name();
        if (closing !== qualified) fail(`</${closing}> closes <${qualified}>`);
        this.skipSpace();
        if (this.text[this.at] !== '>') fail(`expected > after </${closing}`);
        this.at++;
        break;
      }
      if (this.text.startsWith('<!--', this.at)) {
        const end = this.text.indexOf('-->', this.at + 4);
        if (end < 0) fail('unterminated comment');
        this.at = end + 3;
      } else if (this.text.startsWith('<![CDATA[', this.at)) {
        const end = this.text.indexOf(']]>', this.at + 9);
        if (end < 0) fail('unterminated CDATA section');
        text.push(this.text.slice(this.at + 9, end));
        this.at = end + 3;
      } else if (this.text.startsWith('<?', this.at)) {
        const end = this.text.indexOf('?>', this.at + 2);
        if (end < 0) fail('unterminated processing instruction');
        this.at = end + 2;
      } else if (this.text.startsWith('<!', this.at)) {
        fail(`markup declaration inside ${qualified}`);
      } else {
        element.children.push(this.element(inner));
      }
    }
    element.text = text.join('');
    this.depth--;
    return element;
  }
}

function splitName(qualified: string): [string, string] {
  const colon = qualified.indexOf(':');
  return colon < 0 ? ['', qualified] : [qualified.slice(0, colon), qualified.slice(colon + 1)];
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeReferences(value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(/&([^;]{0,10});?/g, (match: string, body: string) => {
    if (!match.endsWith(';')) fail(`bad reference ${JSON.stringify(match)}`);
    const named = PREDEFINED[body];
    if (named !== undefined) return named;
    const numeric = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
    if (!numeric) fail(`unknown entity &${body};`);
    const code = numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2]!, 10);
    if (code > 0x10ffff || code === 0 || (code >= 0xd800 && code <= 0xdfff)) fail(`bad character reference &${body};`);
    return String.fromCodePoint(code);
  });
}

function required(element: XmlElement, attribute: string): string {
  const value = element.attributes.get(attribute);
  if (value === undefined) fail(`<${element.name}> lacks ${attribute}`);
  return value;
}

function oneOf<T extends string>(element: XmlElement, attribute: string, allowed: readonly T[]): T {
  const value = required(element, attribute);
  if (!(allowed as readonly string[]).includes(value)) fail(`<${element.name}> ${attribute}="${value}" is not one of ${allowed.join(', ')}`);
  return value as T;
}

function integer(element: XmlElement, attribute: string): number | undefined {
  const value = element.attributes.get(attribute);
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value.trim())) fail(`<${element.name}> ${attribute}="${value}" is not a non-negative integer`);
  return Number(value.trim());
}

function reginfoChildren(element: XmlElement, name: string): XmlElement[] {
  // Elements of other namespaces are extensions (RFC 3680 §5.4 allows them): skipped.
  return element.children.filter((child) => child.namespace === REGINFO_NAMESPACE && child.name === name);
}

/** Reads an application/reginfo+xml body (RFC 3680 §5.4); REGISTRAR_REGINFO_PARSE when it cannot. */
export function parseRegInfo(body: string | Uint8Array): RegInfo {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  if (size > limits.reginfoBytesMax) fail(`document of ${size} bytes is over the ${limits.reginfoBytesMax}-byte limit`);
  let text: string;
  try {
    text = typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch (error) {
    fail('not UTF-8', error);
  }
  // XML 1.0 §2.11: line ends are read as LF before anything else.
  const root = new XmlReader(text.replace(/\r\n?/g, '\n')).document();
  if (root.namespace !== REGINFO_NAMESPACE || root.name !== 'reginfo') fail(`root is {${root.namespace}}${root.name}, not {${REGINFO_NAMESPACE}}reginfo`);
  const version = integer(root, 'version');
  if (version === undefined) fail('<reginfo> lacks version');
  return {
    version,
    state: oneOf(root, 'state', ['full', 'partial'] as const),
    registrations: reginfoChildren(root, 'registration').map((registration) => ({
      aor: required(registration, 'aor'),
      id: required(registration, 'id'),
      state: oneOf(registration, 'state', ['init', 'active', 'terminated'] as const),
      contacts: reginfoChildren(registration, 'contact').map(readContact),
    })),
  };
}

function readContact(element: XmlElement): RegContact {
  const uris = reginfoChildren(element, 'uri');
  if (uris.length !== 1) fail(`<contact> needs exactly one <uri>, has ${uris.length}`);
  const contact: RegContact = {
    id: required(element, 'id'),
    state: oneOf(element, 'state', ['active', 'terminated'] as const),
    event: oneOf(element, 'event', CONTACT_EVENTS),
    uri: uris[0]!.text.trim(),
  };
  const durationRegisteredS = integer(element, 'duration-registered');
  if (durationRegisteredS !== undefined) contact.durationRegisteredS = durationRegisteredS;
  const expiresS = integer(element, 'expires');
  if (expiresS !== undefined) contact.expiresS = expiresS;
  const retryAfterS = integer(element, 'retry-after');
  if (retryAfterS !== undefined) contact.retryAfterS = retryAfterS;
  const cseq = integer(element, 'cseq');
  if (cseq !== undefined) contact.cseq = cseq;
  const callId = element.attributes.get('callid');
  if (callId !== undefined) contact.callId = callId;
  const q = element.attributes.get('q');
  if (q !== undefined) {
    if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(q.trim())) fail(`q="${q}" is not a qvalue`);
    contact.q = Number(q);
  }
  const displayName = reginfoChildren(element, 'display-name')[0];
  if (displayName !== undefined) contact.displayName = displayName.text;
  const unknown = reginfoChildren(element, 'unknown-param');
  if (unknown.length > 0) contact.unknownParams = unknown.map((parameter) => ({ name: required(parameter, 'name'), value: parameter.text }));
  return contact;
}
