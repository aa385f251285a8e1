// The one quote- and angle-aware scanner of header values, shared by list splitting (parse.ts) and
// tag detection (message.ts); and a character count (the CR/LF checks of parse.ts and message.ts).
/**
 * Calls `visit(i)` for each character of `value` outside quoted strings (with their backslash escapes,
 * §25.1) and outside <…>: where a comma separates list items and a `;` starts a parameter.
 */
export function forEachOutsideQuotesAndAngles(value: string, visit: (index: number) => void): void {
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (inQuote) {
      if (c === '\\') i++;
      else if (c === '"') inQuote = false;
    } else if (inAngle) {
      if (c === '>') inAngle = false;
    } else if (c === '"') inQuote = true;
    else if (c === '<') inAngle = true;
    else visit(i);
  }
}

/** How many times `char` (one UTF-16 code unit) occurs in `text`. */
export function countOf(text: string, char: string): number {
  let count = 0;
  for (let at = text.indexOf(char); at >= 0; at = text.indexOf(char, at + 1)) count++;
  return count;
}
