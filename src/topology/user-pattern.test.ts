// The glob of home pool rules: parsing (table), matching (table + a property against a reference
// regular expression), and the cover check (table + a property that it never claims a false cover).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { globCovers, globMatches, parseUserPattern, userPatternMatches, USER_PATTERN_CHARS_MAX } from './user-pattern.ts';

describe('parseUserPattern', () => {
  const cases: [string, { user: string; host: string } | RegExp][] = [
    ['sip:*@contoso.com', { user: '*', host: 'contoso.com' }],
    ['SIP:Alice@Contoso.COM', { user: 'Alice', host: 'contoso.com' }],
    ['sip:dub-?*@*.contoso.com', { user: 'dub-?*', host: '*.contoso.com' }],
    ['sip:*@*', { user: '*', host: '*' }],
    ['sips:*@contoso.com', /with sip:/],
    ['tel:+1425*', /starts with sip:/],
    ['*@contoso.com', /starts with sip:/],
    ['sip:contoso.com', /one @/],
    ['sip:a@b@contoso.com', /one @/],
    ['sip:@contoso.com', /user part "" is empty/],
    ['sip:al ice@contoso.com', /space/],
    ['sip:%61lice@contoso.com', /%/],
    ['sip:alice@contoso_com', /host part/],
    ['sip:alice@', /host part/],
    [`sip:${'a'.repeat(USER_PATTERN_CHARS_MAX)}@contoso.com`, /at most 256/],
  ];
  for (const [text, expected] of cases) {
    test(text.length > 60 ? `${text.slice(0, 40)}… (too long)` : text, () => {
      const parsed = parseUserPattern(text);
      if (expected instanceof RegExp) {
        assert.ok('error' in parsed, `expected an error for ${text}`);
        assert.match(parsed.error, expected);
      } else {
        assert.deepEqual(parsed, expected);
      }
    });
  }
});

describe('globMatches', () => {
  const cases: [string, string, boolean][] = [
    ['*', '', true],
    ['*', 'anything', true],
    ['', '', true],
    ['', 'a', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['a*c', 'ac', true],
    ['a*c', 'abbbc', true],
    ['a*c', 'abbbd', false],
    ['*a*b*', 'xxaxxbxx', true],
    ['*a*b*', 'xxbxxaxx', false],
    ['dub-*', 'dub-alice', true],
    ['dub-*', 'Dub-alice', false],
    ['*.contoso.com', 'dublin.contoso.com', true],
    ['*.contoso.com', 'contoso.com', false],
  ];
  for (const [glob, text, expected] of cases) {
    test(`"${glob}" ${expected ? 'matches' : 'does not match'} "${text}"`, () => assert.equal(globMatches(glob, text), expected));
  }

  test('a long adversarial text is answered (no exponential backtracking)', () => {
    // `a*a*a*…b` against `aaaa…`: the worst case of naive recursive matchers.
    const glob = `${'a*'.repeat(100)}b`;
    assert.equal(globMatches(glob, 'a'.repeat(5000)), false);
    assert.equal(globMatches(glob, `${'a'.repeat(5000)}b`), true);
  });

  test('property: agrees with the equivalent anchored regular expression', () => {
    const symbols = fc.constantFrom('a', 'b', '.', '*', '?');
    const texts = fc.constantFrom('a', 'b', '.', '*', '?');
    fc.assert(
      fc.property(fc.array(symbols, { maxLength: 8 }), fc.array(texts, { maxLength: 10 }), (globSymbols, textSymbols) => {
        const glob = globSymbols.join('');
        const text = textSymbols.join('');
        const source = globSymbols.map((symbol) => (symbol === '*' ? '.*' : symbol === '?' ? '.' : symbol.replace(/[.*?]/, '\\$&'))).join('');
        assert.equal(globMatches(glob, text), new RegExp(`^${source}$`, 's').test(text), `${glob} vs ${text}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('userPatternMatches', () => {
  const pattern = { user: 'dub-*', host: 'contoso.com' };
  test('user and host are matched separately', () => {
    assert.equal(userPatternMatches(pattern, 'sip:dub-alice@contoso.com'), true);
    assert.equal(userPatternMatches(pattern, 'sip:alice@contoso.com'), false);
    assert.equal(userPatternMatches(pattern, 'sip:dub-alice@fabrikam.com'), false);
    // A * in the user glob does not reach across the @.
    assert.equal(userPatternMatches({ user: '*', host: 'com' }, 'sip:a@contoso.com'), false);
  });
  test('only canonical sip: URIs match', () => {
    assert.equal(userPatternMatches(pattern, 'sips:dub-alice@contoso.com'), false);
    assert.equal(userPatternMatches(pattern, 'sip:contoso.com'), false);
  });
});

describe('globCovers', () => {
  const cases: [string, string, boolean][] = [
    ['*', '*', true],
    ['*', 'alice', true],
    ['*', '?*', true],
    ['dub-*', 'dub-a*', true],
    ['dub-*', 'dub-?', true],
    ['dub-?', 'dub-*', false],
    ['dub-*', 'dub*', false],
    ['?', 'a', true],
    ['?', '?', true],
    ['?', '*', false],
    ['a*b', 'a?*?b', true],
    ['*a*', '*b*', false],
    ['alice', 'alice', true],
    ['alice', 'bob', false],
  ];
  for (const [outer, inner, expected] of cases) {
    test(`"${outer}" ${expected ? 'covers' : 'does not cover'} "${inner}"`, () => assert.equal(globCovers(outer, inner), expected));
  }

  test('property: every glob covers itself, and a claimed cover holds for every instance of the inner glob', () => {
    const symbol = fc.constantFrom('a', 'b', '*', '?');
    const filler = fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 3 });
    fc.assert(
      fc.property(fc.array(symbol, { maxLength: 6 }), fc.array(symbol, { maxLength: 6 }), fc.array(filler, { minLength: 6, maxLength: 6 }), (outerSymbols, innerSymbols, fills) => {
        const outer = outerSymbols.join('');
        const inner = innerSymbols.join('');
        assert.ok(globCovers(inner, inner));
        if (!globCovers(outer, inner)) return;
        // An instance of inner: each * becomes some text, each ? one character.
        const instance = innerSymbols.map((s, index) => (s === '*' ? (fills[index] ?? []).join('') : s === '?' ? 'c' : s)).join('');
        assert.ok(globMatches(inner, instance));
        assert.ok(globMatches(outer, instance), `${outer} was said to cover ${inner} but does not match ${instance}`);
      }),
      { numRuns: 3000 },
    );
  });
});
