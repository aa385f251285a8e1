// RFC 3966 numbers: tel: and user=phone SIP URIs, visual separators, local numbers, route prefixes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { normalisePrefix, numberOfUri } from './phone-number.ts';

describe('numberOfUri', () => {
  const cases: [string, string | RegExp][] = [
    ['tel:+14255550100', '+14255550100'],
    // RFC 3966 §5.1.1: visual separators are not part of the number.
    ['tel:+1-425-555-0100', '+14255550100'],
    ['tel:+1.425.555.0100', '+14255550100'],
    ['tel:+1(425)555-0100', '+14255550100'],
    ['TEL:+1-425-555-0100;ext=22', '+14255550100'],
    ['<tel:+14255550100>', '+14255550100'],
    ['sip:+14255550100@contoso.com;user=phone', '+14255550100'],
    ['sip:+1-425-555-0100@contoso.com;transport=tls;USER=PHONE', '+14255550100'],
    ['sips:+1-425-555-0100;ext=7@contoso.com;user=phone', '+14255550100'],
    ['sip:%2B14255550100@contoso.com;user=phone', '+14255550100'],
    ['sip:+14255550100@contoso.com;user=phone?subject=hi', '+14255550100'],
    ['sip:+14255550100@contoso.com', /names a user, not a number/],
    ['sip:alice@contoso.com;user=phone', /not a telephone number/],
    ['sip:contoso.com;user=phone', /no user part/],
    ['mailto:alice@contoso.com', /not a tel:, sip: or sips: URI/],
    ['tel:+', /not a global number/],
    ['tel:+1-425-CALL-NOW', /not a global number/],
    ['tel:+1234567890123456', /16 digits; an E.164 number has at most 15/],
    ['sip:%ZZ14255550100@contoso.com;user=phone', /bad escape/],
  ];
  for (const [uri, expected] of cases) {
    test(uri, () => {
      const result = numberOfUri(uri);
      if (typeof expected === 'string') {
        assert.ok(!('error' in result), JSON.stringify(result));
        assert.deepEqual(result, { kind: 'global', number: expected });
      } else {
        assert.ok('error' in result, `expected an error for ${uri}`);
        assert.match(result.error, expected);
      }
    });
  }

  test('a local number keeps its phone-context (RFC 3966 §5.1.5)', () => {
    assert.deepEqual(numberOfUri('tel:555-0100;phone-context=+1-425'), { kind: 'local', number: '5550100', context: '+1-425' });
    assert.deepEqual(numberOfUri('tel:*86#'), { kind: 'local', number: '*86#', context: null });
    assert.deepEqual(numberOfUri('sip:7042@contoso.com;user=phone'), { kind: 'local', number: '7042', context: null });
  });

  test('property: separators anywhere after the + leave the number unchanged', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{1,15}$/), fc.array(fc.constantFrom('', '-', '.', '(', ')'), { minLength: 15, maxLength: 15 }), (digits, separators) => {
        const written = [...digits].map((digit, index) => `${separators[index] ?? ''}${digit}`).join('');
        assert.deepEqual(numberOfUri(`tel:+${written}`), { kind: 'global', number: `+${digits}` });
        assert.deepEqual(numberOfUri(`sip:+${written}@contoso.com;user=phone`), { kind: 'global', number: `+${digits}` });
      }),
    );
  });
});

describe('normalisePrefix', () => {
  const cases: [string, string | RegExp][] = [
    ['+1425', '+1425'],
    ['+1-425', '+1425'],
    ['+1(425)', '+1425'],
    ['+', '+'],
    ['1425', /not a number prefix/],
    ['+1 425', /not a number prefix/],
    ['+1425x', /not a number prefix/],
    ['+1234567890123456', /16 digits/],
  ];
  for (const [text, expected] of cases) {
    test(text, () => {
      const result = normalisePrefix(text);
      if (typeof expected === 'string') assert.deepEqual(result, { prefix: expected });
      else assert.ok('error' in result && expected.test(result.error), JSON.stringify(result));
    });
  }
});
