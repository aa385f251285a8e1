// Tests of RFC 3680 reginfo documents: round trips (property), the RFC's own example, documents
// built from bindings, version numbering, escaping, and what the reader refuses.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { isDnslbError } from '../shared/errors.ts';
import { LocationService } from './location.ts';
import { CONTACT_EVENTS, RegEventSubscription, deactivatedState, escapeXmlAttribute, fullState, parseRegInfo, partialState, serializeRegInfo } from './reg-event.ts';
import type { RegContact, RegInfo } from './reg-event.ts';

// Any text XML may carry (no C0 controls but tab/LF/CR, no lone surrogates, no U+FFFE/FFFF).
const xmlText = fc.string({ unit: 'grapheme', maxLength: 30 }).map((value) => value.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, ''));
const uriText = xmlText.map((value) => `sip:${value.trim()}@h`);
const optional = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arbitrary, { nil: undefined });

const contactArbitrary: fc.Arbitrary<RegContact> = fc
  .record({
    id: xmlText,
    state: fc.constantFrom('active' as const, 'terminated' as const),
    event: fc.constantFrom(...CONTACT_EVENTS),
    uri: uriText,
    displayName: optional(xmlText),
    durationRegisteredS: optional(fc.nat()),
    expiresS: optional(fc.nat()),
    retryAfterS: optional(fc.nat()),
    q: optional(fc.integer({ min: 0, max: 1000 }).map((milli) => milli / 1000)),
    callId: optional(xmlText),
    cseq: optional(fc.nat()),
    unknownParams: optional(fc.array(fc.record({ name: xmlText, value: xmlText }, { noNullPrototype: true }), { minLength: 1, maxLength: 3 })),
  })
  .map((contact) => Object.fromEntries(Object.entries(contact).filter(([, value]) => value !== undefined)) as unknown as RegContact);

const regInfoArbitrary: fc.Arbitrary<RegInfo> = fc.record({
  version: fc.nat(),
  state: fc.constantFrom('full' as const, 'partial' as const),
  registrations: fc.array(
    fc.record({ aor: xmlText, id: xmlText, state: fc.constantFrom('init' as const, 'active' as const, 'terminated' as const), contacts: fc.array(contactArbitrary, { maxLength: 4 }) }, { noNullPrototype: true }),
    { maxLength: 3 },
  ),
}, { noNullPrototype: true });

describe('reginfo round trips', () => {
  test('property: parse(serialize(document)) is the document', () => {
    fc.assert(fc.property(regInfoArbitrary, (document) => assert.deepEqual(parseRegInfo(serializeRegInfo(document)), document)));
  });

  test('property: serialize(parse(serialize(document))) is stable, also read from UTF-8 bytes', () => {
    fc.assert(
      fc.property(regInfoArbitrary, (document) => {
        const text = serializeRegInfo(document);
        assert.equal(serializeRegInfo(parseRegInfo(Buffer.from(text, 'utf8'))), text);
      }),
    );
  });

  test('markup in values is escaped, never interpreted', () => {
    const nasty = '"/><contact id="x" state="active" event="created"><uri>sip:evil@h</uri></contact><x a=\'&amp;';
    const document: RegInfo = { version: 3, state: 'full', registrations: [{ aor: nasty, id: '<&>', state: 'active', contacts: [{ id: '1', state: 'active', event: 'registered', uri: 'sip:a@h;x=<&>', callId: nasty }] }] };
    const text = serializeRegInfo(document);
    assert.ok(!text.includes('<x '));
    assert.equal(parseRegInfo(text).registrations[0]?.contacts.length, 1);
    assert.deepEqual(parseRegInfo(text), document);
    assert.equal(escapeXmlAttribute('a"b<c>&\td\ne'), 'a&quot;b&lt;c&gt;&amp;&#9;d&#10;e');
  });
});

describe('reading documents written by others', () => {
  test('the RFC 3680 §6 example, with a prefixed namespace, comments and CDATA', () => {
    const body = `<?xml version="1.0"?>
<!-- from a registrar -->
<ri:reginfo xmlns:ri="urn:ietf:params:xml:ns:reginfo" xmlns:gr="urn:ietf:params:xml:ns:gruuinfo" version='1' state="partial">
  <ri:registration aor="sip:joe@example.com" id="a7" state="active">
    <ri:contact id="76" state="active" event="registered" duration-registered="7322" q="0.8">
      <ri:uri><![CDATA[sip:joe@pc887.example.com]]></ri:uri>
      <gr:pub-gruu uri="sip:joe@example.com;gr=urn:uuid:1"/>
    </ri:contact>
    <ri:contact id="77" state="terminated" event="expired" duration-registered="3600">
      <ri:uri>sip:joe@university.example.edu</ri:uri>
      <ri:unknown-param name="x-a">b &amp; c &#x263A;</ri:unknown-param>
    </ri:contact>
  </ri:registration>
</ri:reginfo>
`;
    assert.deepEqual(parseRegInfo(body), {
      version: 1,
      state: 'partial',
      registrations: [
        {
          aor: 'sip:joe@example.com',
          id: 'a7',
          state: 'active',
          contacts: [
            { id: '76', state: 'active', event: 'registered', uri: 'sip:joe@pc887.example.com', durationRegisteredS: 7322, q: 0.8 },
            { id: '77', state: 'terminated', event: 'expired', uri: 'sip:joe@university.example.edu', durationRegisteredS: 3600, unknownParams: [{ name: 'x-a', value: 'b & c \u263a' }] },
          ],
        },
      ],
    });
  });

  test('refuses what is not a well-formed reginfo document', () => {
    const valid = serializeRegInfo({ version: 0, state: 'full', registrations: [{ aor: 'sip:a@h', id: 'r', state: 'init', contacts: [] }] });
    const bad = [
      '',
      'not xml',
      valid.replace('</reginfo>', ''),
      valid.replace('urn:ietf:params:xml:ns:reginfo', 'urn:example'),
      valid.replace(' version="0"', ''),
      valid.replace('state="full"', 'state="some"'),
      valid.replace('state="init"', 'state="gone"'),
      valid.replace('</reginfo>', '</reginfo><extra/>'),
      '<!DOCTYPE r [<!ENTITY x "y">]>' + valid.replace(/^<\?xml[^>]*>/, ''),
      valid.replace('aor="sip:a@h"', 'aor="a &bogus; b"'),
      valid.replace('aor="sip:a@h"', 'aor="a & b"'),
      valid.replace('aor="sip:a@h"', 'aor="sip:a@h" aor="sip:b@h"'),
      valid.replace('<registration', '<x:registration'),
      valid.replace('</registration>', '<contact id="1" state="active" event="registered"></contact></registration>'),
      valid.replace('</registration>', '<contact id="1" state="active" event="bogus"><uri>sip:x@h</uri></contact></registration>'),
      valid.replace('</registration>', '<contact id="1" state="active" event="created" expires="-1"><uri>sip:x@h</uri></contact></registration>'),
      valid.replace('</registration>', '<contact id="1" state="active" event="created" q="2"><uri>sip:x@h</uri></contact></registration>'),
      '<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">' + '<a>'.repeat(40) + '</a>'.repeat(40) + '</reginfo>',
      'x'.repeat(300 * 1024),
    ];
    for (const body of bad) {
      assert.throws(() => parseRegInfo(body), (error: unknown) => isDnslbError(error, 'REGISTRAR_REGINFO_PARSE'), body.slice(0, 120));
    }
    assert.throws(() => parseRegInfo(new Uint8Array([0x3c, 0xff, 0xfe])), (error: unknown) => isDnslbError(error, 'REGISTRAR_REGINFO_PARSE'));
  });
});

describe('documents from bindings', () => {
  const clock = new FakeClock();
  const location = new LocationService({ clock });
  location.register({ aor: 'sip:alice@contoso.com', callId: 'c1', cseq: 7, flowId: 'f', contacts: [{ uri: 'sip:alice@10.0.0.5;transport=tls', q: 0.5 }, { uri: 'sip:alice@10.0.0.6' }] }, 'primary');
  clock.advance(100_000);
  const bindings = location.bindingsOf('sip:alice@contoso.com');

  test('full state lists every binding as active/registered with seconds left and time registered', () => {
    const document = parseRegInfo(new RegEventSubscription().render(fullState('sip:alice@contoso.com', bindings, clock.nowMs())));
    const registration = document.registrations[0]!;
    assert.equal(document.state, 'full');
    assert.equal(registration.state, 'active');
    assert.deepEqual(
      registration.contacts.map((c) => [c.uri, c.state, c.event, c.expiresS, c.durationRegisteredS, c.callId, c.cseq, c.q]),
      [
        ['sip:alice@10.0.0.5;transport=tls', 'active', 'registered', 3500, 100, 'c1', 7, 0.5],
        ['sip:alice@10.0.0.6', 'active', 'registered', 3500, 100, 'c1', 7, undefined],
      ],
    );
    assert.equal(parseRegInfo(serializeRegInfo({ version: 0, ...fullState('sip:bob@contoso.com', [], clock.nowMs()) })).registrations[0]?.state, 'init');
  });

  test('deactivated: every contact terminated with event deactivated, registration terminated', () => {
    const document = parseRegInfo(serializeRegInfo({ version: 4, ...deactivatedState('sip:alice@contoso.com', bindings, clock.nowMs()) }));
    const registration = document.registrations[0]!;
    assert.equal(document.state, 'partial');
    assert.equal(registration.state, 'terminated');
    assert.ok(registration.contacts.every((c) => c.state === 'terminated' && c.event === 'deactivated' && c.expiresS === undefined));
    assert.deepEqual(registration.contacts.map((c) => c.id), bindings.map((b) => b.id));
    assert.equal(registration.id, parseRegInfo(serializeRegInfo({ version: 0, ...fullState('sip:alice@contoso.com', bindings, clock.nowMs()) })).registrations[0]?.id);
  });

  test('partial state from changes keeps the registration active while bindings remain', () => {
    const changes = [{ event: 'unregistered' as const, binding: bindings[0]! }];
    const registration = parseRegInfo(serializeRegInfo({ version: 1, ...partialState('sip:alice@contoso.com', changes, 1, clock.nowMs()) })).registrations[0]!;
    assert.equal(registration.state, 'active');
    assert.deepEqual(registration.contacts.map((c) => [c.state, c.event]), [['terminated', 'unregistered']]);
  });

  test('each subscription numbers its documents 0, 1, 2…', () => {
    const one = new RegEventSubscription();
    const two = new RegEventSubscription();
    const state = fullState('sip:alice@contoso.com', bindings, clock.nowMs());
    assert.deepEqual([one.render(state), one.render(state), two.render(state), one.render(state)].map((text) => parseRegInfo(text).version), [0, 1, 0, 2]);
    assert.equal(one.versionsSent, 3);
  });
});
