// Telephone numbers as PSTN routes see them (RFC 3966): the number of a `tel:` URI or of a SIP URI
// with `user=phone`, with visual separators removed, and the route prefixes of the topology.

/** E.164 §6.1: at most 15 digits in an international number, country code included. */
export const E164_DIGITS_MAX = 15;

/** RFC 3966 §3 visual-separator: `-` `.` `(` `)`; they carry no meaning and are ignored when comparing (§5.1.1). */
const VISUAL_SEPARATORS = /[-.()]/g;

/** A number after normalisation: `global` ones are `+` and digits (E.164); `local` ones need their context. */
export type TelephoneNumber =
  | { kind: 'global'; /** `+` and digits, no separators: `+14255550100`. */ number: string }
  | { kind: 'local'; /** Hex digits, `*`, `#`, lower case. */ number: string; /** RFC 3966 §5.1.5 phone-context, as written. */ context: string | null };

export type NumberResult = TelephoneNumber | { error: string };

export function isNumberError(value: NumberResult): value is { error: string } {
  return 'error' in value;
}

/**
 * A telephone-subscriber (RFC 3966 §3) → its number without visual separators. Parameters after the
 * number (`;ext=`, `;isub=`, `;phone-context=`) are read only for `phone-context`; the extension is not
 * part of the number a PSTN route matches.
 */
export function normaliseSubscriber(subscriber: string): NumberResult {
  const [digitsText = '', ...params] = subscriber.split(';');
  const stripped = digitsText.replace(VISUAL_SEPARATORS, '');
  if (stripped.startsWith('+')) {
    const digits = stripped.slice(1);
    if (!/^[0-9]+$/.test(digits)) return { error: `"${digitsText}" is not a global number: after + only digits and the separators - . ( ) (RFC 3966 §3)` };
    if (digits.length > E164_DIGITS_MAX) return { error: `"${digitsText}" has ${digits.length} digits; an E.164 number has at most ${E164_DIGITS_MAX}` };
    return { kind: 'global', number: `+${digits}` };
  }
  if (!/^[0-9a-fA-F*#]+$/.test(stripped)) return { error: `"${digitsText}" is not a telephone number (digits, * and #, with the separators - . ( ); a global one starts with +)` };
  const context = params.find((param) => param.toLowerCase().startsWith('phone-context='));
  return { kind: 'local', number: stripped.toLowerCase(), context: context === undefined ? null : context.slice('phone-context='.length) };
}

function unescapePercent(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/**
 * The number a request is for: `tel:+1-425-555-0100` (RFC 3966), or `sip:+14255550100@contoso.com;user=phone`
 * (RFC 3261 §19.1.1: the user part is a telephone-subscriber only with `user=phone`; without it
 * `sip:+1425…@` names a user, not a number). Angle brackets are accepted and removed.
 */
export function numberOfUri(uri: string): NumberResult | { error: string; notTelephone: true } {
  let text = uri.trim();
  if (text.startsWith('<') && text.endsWith('>')) text = text.slice(1, -1).trim();
  const colon = text.indexOf(':');
  const scheme = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
  const rest = text.slice(colon + 1);
  if (scheme === 'tel') {
    const question = rest.indexOf('?');
    return normaliseSubscriber(question >= 0 ? rest.slice(0, question) : rest);
  }
  if (scheme !== 'sip' && scheme !== 'sips') return { error: `not a tel:, sip: or sips: URI: ${JSON.stringify(uri.slice(0, 100))}`, notTelephone: true };
  const question = rest.indexOf('?');
  const withoutHeaders = question >= 0 ? rest.slice(0, question) : rest;
  const at = withoutHeaders.lastIndexOf('@');
  if (at <= 0) return { error: `${JSON.stringify(uri.slice(0, 100))} has no user part, so no number`, notTelephone: true };
  const uriParams = withoutHeaders.slice(at + 1).split(';').slice(1);
  if (!uriParams.some((param) => param.toLowerCase() === 'user=phone')) {
    return { error: `${JSON.stringify(uri.slice(0, 100))} names a user, not a number (a SIP URI is a telephone number only with user=phone, RFC 3261 §19.1.1)`, notTelephone: true };
  }
  // The user part may carry escapes (%2B for +); a password after ':' is not part of the number.
  const user = unescapePercent(withoutHeaders.slice(0, at).split(':')[0] ?? '');
  if (user === null) return { error: `bad escape in the user part of ${JSON.stringify(uri.slice(0, 100))}` };
  return normaliseSubscriber(user);
}

/**
 * A PSTN route prefix of the topology: `+` and up to 15 digits, separators allowed (`+1 (425)` is not:
 * spaces are not RFC 3966 separators; `+1-425` and `+1(425)` are). `+` alone matches every global number.
 */
export function normalisePrefix(text: string): { prefix: string } | { error: string } {
  const stripped = text.replace(VISUAL_SEPARATORS, '');
  if (!/^\+[0-9]*$/.test(stripped)) return { error: `"${text}" is not a number prefix: + then digits, with the separators - . ( ) (RFC 3966 §3), e.g. +1-425` };
  if (stripped.length - 1 > E164_DIGITS_MAX) return { error: `"${text}" has ${stripped.length - 1} digits; an E.164 number has at most ${E164_DIGITS_MAX}` };
  return { prefix: stripped };
}
