// Response rate limiting on UDP (RRL, in the style of BIND's `rate-limit` and Knot's `rrl` module):
// a DNS server answering spoofed queries is an amplifier aimed at the spoofed address. Responses to
// one source prefix (IPv4 /24, IPv6 /56 by default) are limited to `responsesPerSecond`; past it,
// every `slip`-th response is sent truncated (TC=1, no records: a real client retries over TCP,
// which cannot be spoofed) and the others are dropped. TCP is never limited.
//
// Accounting is by source prefix only (BIND and Knot also split by name and response kind): simpler,
// and stricter for a flood aimed at many names. Each prefix has a token bucket holding at most one
// second of responses; the table is direct-mapped (`tableSize` slots, no allocation per query), and
// prefixes that land in one slot share its bucket: a prefix taking a slot over inherits the credit
// left there, never a full bucket. Otherwise spoofed queries alternating between the victim's prefix
// and one that collides with it (the slot function is public) would refill the bucket at every
// switch and never be limited; sharing can only limit an innocent prefix that collides with a
// flooded one, never let a flood through.
//
// Under `dns serve --workers N` each worker has its own limiter at responsesPerSecond / N (the
// kernel spreads datagrams over the workers by source address and port, so a flood from many source
// ports is limited at about the configured rate in all; one from a single port at rate / N).
import type { Source } from './udp.ts';
import { skipName } from './wire.ts';

export interface RateLimitSettings {
  responsesPerSecond: number;
  /** Every slip-th limited response goes out truncated (TC=1); 0: all dropped; 1: all truncated. */
  slip: number;
  ipv4PrefixLength: number;
  ipv6PrefixLength: number;
}

/** What to do with one response. */
export const RRL_ANSWER = 0;
export const RRL_SLIP = 1;
export const RRL_DROP = 2;
export type RateLimitVerdict = typeof RRL_ANSWER | typeof RRL_SLIP | typeof RRL_DROP;

/** Slots of the prefix table (a power of two). */
export const RRL_TABLE_SIZE_DEFAULT = 1 << 16;
const EMPTY = -1;
/** IPv6 keys live above the IPv4 range, so the two never meet in a slot. */
const IPV6_KEYS = 2 ** 32;

/** A 32-bit hash of the first `bits` bits of an IPv6 address in text form ("fd00::1", "::1"). */
export function ipv6PrefixHash(text: string, bits: number): number {
  const zone = text.indexOf('%');
  const address = zone < 0 ? text : text.slice(0, zone);
  const gap = address.indexOf('::');
  const head = gap < 0 ? address.split(':') : address.slice(0, gap).split(':').filter((part) => part !== '');
  const tail = gap < 0 ? [] : address.slice(gap + 2).split(':').filter((part) => part !== '');
  const groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  let hash = 0x811c9dc5;
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    const group = keep === 0 ? 0 : (parseInt(groups[i] ?? '0', 16) & 0xffff) & (0xffff << (16 - keep));
    hash = Math.imul(hash ^ (group >>> 8), 0x01000193);
    hash = Math.imul(hash ^ (group & 0xff), 0x01000193);
  }
  return hash >>> 0;
}

export class ResponseRateLimiter {
  private readonly keys: Float64Array;
  private readonly credits: Float64Array;
  private readonly lastMs: Float64Array;
  private readonly mask: number;
  private readonly shift: number;
  private readonly ipv4Mask: number;
  /** Responses per millisecond, and the bucket's size (one second of them, at least one response). */
  private readonly perMs: number;
  private readonly burst: number;
  private limitedCount = 0;

  /** `share`: this process's part of the rate (1 / the number of workers). */
  constructor(
    readonly settings: RateLimitSettings,
    readonly share = 1,
    tableSize = RRL_TABLE_SIZE_DEFAULT,
  ) {
    if (!Number.isInteger(Math.log2(tableSize))) throw new RangeError('tableSize must be a power of two');
    this.keys = new Float64Array(tableSize).fill(EMPTY);
    this.credits = new Float64Array(tableSize);
    this.lastMs = new Float64Array(tableSize);
    this.mask = tableSize - 1;
    this.shift = 32 - Math.log2(tableSize);
    this.ipv4Mask = settings.ipv4PrefixLength === 0 ? 0 : (0xffffffff << (32 - settings.ipv4PrefixLength)) >>> 0;
    const rate = settings.responsesPerSecond * share;
    this.perMs = rate / 1000;
    this.burst = Math.max(1, rate);
  }

  /** The verdict for one response to `source` at `nowMs`. */
  decide(source: Source, nowMs: number): RateLimitVerdict {
    const key = typeof source === 'number' ? (source & this.ipv4Mask) >>> 0 : IPV6_KEYS + ipv6PrefixHash(source, this.settings.ipv6PrefixLength);
    // Fibonacci hashing of the low 32 bits (the IPv6 tag bit is above them).
    const slot = (Math.imul(key >>> 0, 0x9e3779b1) >>> this.shift) & this.mask;
    // A slot never used starts full; one used by any prefix (this one or another) refills from what is left.
    const credit = this.keys[slot] === EMPTY ? this.burst : Math.min(this.burst, this.credits[slot]! + (nowMs - this.lastMs[slot]!) * this.perMs);
    this.keys[slot] = key;
    this.lastMs[slot] = nowMs;
    if (credit >= 1) {
      this.credits[slot] = credit - 1;
      return RRL_ANSWER;
    }
    this.credits[slot] = credit;
    const slip = this.settings.slip;
    return slip > 0 && ++this.limitedCount % slip === 0 ? RRL_SLIP : RRL_DROP;
  }
}

/**
 * Turns the response at `out[at, at + length)` into its truncated form in place: TC=1, header and
 * question only (no records, no OPT). Returns the new length.
 */
export function truncateInto(out: Buffer, at: number, length: number): number {
  if (length < 12) return length;
  out[at + 2] = out[at + 2]! | 0x02;
  out.fill(0, at + 6, at + 12);
  if (out.readUInt16BE(at + 4) !== 1) {
    out.writeUInt16BE(0, at + 4);
    return 12;
  }
  const end = skipName(out, at + 12, at + length);
  if (end < 0 || end + 4 > at + length) {
    out.writeUInt16BE(0, at + 4);
    return 12;
  }
  return end + 4 - at;
}
