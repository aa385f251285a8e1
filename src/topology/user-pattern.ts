// The pattern language of home pool rules: a glob over a user's canonical URI (`sip:*@dublin.contoso.com`),
// its parser, its matcher, and the check that one pattern covers another (for unreachable rules).
//
// Why a glob and not a regular expression: the matcher runs for a user on the request path, and a
// glob with only `*` and `?` matches in O(pattern × URI) time whatever its shape, where a backtracking
// regular expression can take exponential time on a crafted URI (ReDoS). A glob is also what operators
// read at a glance, and whether one glob covers another can be decided symbol by symbol, so that a
// rule an earlier rule hides is an error at validation rather than a surprise in production.

/** Longest pattern accepted (the whole text, `sip:` included). */
export const USER_PATTERN_CHARS_MAX = 256;

/** A parsed pattern: one glob for the user part, one for the host. */
export interface UserPattern {
  /** Case-sensitive, as the user part of a SIP URI (RFC 3261 §19.1.4). */
  user: string;
  /** Lower case, as canonical hosts are. */
  host: string;
}

// User part: anything a canonical user part may hold except the characters that end or delimit a URI.
const USER_GLOB = /^[^\s@<>"%]+$/;
// Host: the characters of a host name, plus the two wildcards.
const HOST_GLOB = /^[a-z0-9.*?-]+$/;

/**
 * Parses `sip:USER@HOST` with `*` (any run of characters, possibly none) and `?` (one character) in
 * either part. Returns the parsed pattern, or why the text is not one (a sentence for the operator).
 */
export function parseUserPattern(text: string): UserPattern | { error: string } {
  if (text.length > USER_PATTERN_CHARS_MAX) return { error: `a user pattern is at most ${USER_PATTERN_CHARS_MAX} characters, not ${text.length}` };
  const colon = text.indexOf(':');
  const scheme = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
  if (scheme === 'sips') return { error: 'write the pattern with sip:, a user has one home whichever scheme its client uses (URIs are compared in canonical sip: form)' };
  if (scheme !== 'sip') return { error: 'a user pattern starts with sip: (a glob over the canonical URI, e.g. sip:*@contoso.com)' };
  const rest = text.slice(colon + 1);
  const at = rest.indexOf('@');
  if (at < 0 || rest.indexOf('@', at + 1) >= 0) return { error: 'a user pattern has one @ between the user and the host (e.g. sip:*@contoso.com)' };
  const user = rest.slice(0, at);
  const host = rest.slice(at + 1).toLowerCase();
  if (!USER_GLOB.test(user)) return { error: `the user part "${user}" is empty or holds a space, <, >, " or %; write characters as themselves, ? matches any one` };
  if (!HOST_GLOB.test(host)) return { error: `the host part "${host}" may hold only a-z, 0-9, ".", "-" and the wildcards * and ?` };
  return { user, host };
}

export function isUserPatternError(value: UserPattern | { error: string }): value is { error: string } {
  return 'error' in value;
}

/**
 * Whether `text` matches the glob. Iterative, remembering only the last `*`: O(glob × text) at worst,
 * no recursion and no backtracking stack, whatever the input.
 */
export function globMatches(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let starGlob = -1;
  let starText = 0;
  while (t < text.length) {
    const symbol = glob[g];
    if (symbol === '*') {
      starGlob = g++;
      starText = t;
    } else if (symbol !== undefined && (symbol === '?' || symbol === text[t])) {
      g++;
      t++;
    } else if (starGlob >= 0) {
      // Let the last * swallow one more character and retry from just after it.
      g = starGlob + 1;
      t = ++starText;
    } else {
      return false;
    }
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}

/** Whether a canonical user URI (`sip:user@host`) matches the pattern. */
export function userPatternMatches(pattern: UserPattern, canonicalUri: string): boolean {
  if (!canonicalUri.startsWith('sip:')) return false;
  const at = canonicalUri.lastIndexOf('@');
  if (at < 4) return false;
  return globMatches(pattern.host, canonicalUri.slice(at + 1)) && globMatches(pattern.user, canonicalUri.slice(4, at));
}

/**
 * Whether every text `inner` matches is also matched by `outer` — proved by matching `inner` as a
 * string of symbols: a `*` of `outer` may stand for any run of `inner`'s symbols (wildcards included),
 * a `?` for one literal or `?`, a literal only for itself. Sound (never claims a cover that is not
 * one); it may miss covers that need case analysis, so a hidden rule can go unreported, a visible
 * one is never reported. Dynamic programming over (outer, inner) positions: O(|outer| × |inner|).
 */
export function globCovers(outer: string, inner: string): boolean {
  // row[j]: outer[0..i) can stand for inner[0..j).
  let row = new Array<boolean>(inner.length + 1).fill(false);
  row[0] = true;
  for (let i = 0; i < outer.length; i++) {
    const symbol = outer[i];
    const next = new Array<boolean>(inner.length + 1).fill(false);
    for (let j = 0; j <= inner.length; j++) {
      if (symbol === '*') {
        // Nothing, or one more symbol of inner.
        next[j] = row[j] === true || (j > 0 && next[j - 1] === true);
      } else if (j > 0 && row[j - 1] === true) {
        const other = inner[j - 1];
        next[j] = symbol === '?' ? other !== '*' : other === symbol;
      }
    }
    row = next;
  }
  return row[inner.length] === true;
}
