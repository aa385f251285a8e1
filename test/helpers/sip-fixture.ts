// Loads SIP test messages written in RFC 4475 §2 notation: LF line ends become CRLF, <allOneLine>
// blocks join their lines, <hex>..</hex> become raw bytes, <repeat count=N>x</repeat> repeats x.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../fixtures/sip/', import.meta.url));

export function expandRfc4475Notation(text: string): Buffer {
  let expanded = text.replace(/<allOneLine>\n([\s\S]*?)\n<\/allOneLine>/g, (_m, inner: string) => inner.replace(/\n/g, ''));
  expanded = expanded.replace(/<repeat count=(\d+)>([\s\S]*?)<\/repeat>/g, (_m, count: string, inner: string) => inner.repeat(Number(count)));
  expanded = expanded.replace(/\n/g, '\r\n');
  // <hex> may carry any byte (NUL, DEL, UTF-8 sequences): assemble the bytes piecewise.
  const pieces: Buffer[] = [];
  let last = 0;
  for (const match of expanded.matchAll(/<hex>([0-9A-Fa-f]+)<\/hex>/g)) {
    pieces.push(Buffer.from(expanded.slice(last, match.index), 'utf8'), Buffer.from(match[1] ?? '', 'hex'));
    last = (match.index ?? 0) + match[0].length;
  }
  pieces.push(Buffer.from(expanded.slice(last), 'utf8'));
  return Buffer.concat(pieces);
}

/** Reads test/fixtures/sip/<set>/<name>.sip as wire bytes. */
export function sipFixture(set: 'rfc4475' | 'rfc5118', name: string): Buffer {
  return expandRfc4475Notation(readFileSync(`${ROOT}${set}/${name}.sip`, 'utf8'));
}
