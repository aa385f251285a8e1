// Client source address → view (split-brain DNS): the first view with a matching CIDR wins, as the
// topology lists them. Decisions are cached per address string, so the hot path does one Map lookup.
import { isIP } from 'node:net';
import { limits } from '../shared/limits.ts';
import type { View } from '../topology/schema.ts';

interface Network {
  family: 4 | 6;
  /** The address as a 32- or 128-bit integer, masked. */
  base: bigint;
  bits: number;
}

function ipv4ToBigInt(address: string): bigint {
  return address.split('.').reduce((value, part) => (value << 8n) | BigInt(Number(part)), 0n);
}

function ipv6ToBigInt(address: string): bigint {
  let text = address.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const value = ipv4ToBigInt(v4[1]);
    text = text.slice(0, -v4[1].length) + `${(value >> 16n).toString(16)}:${(value & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16) || 0), 0n);
}

function maskOf(family: 4 | 6, bits: number): bigint {
  const width = family === 4 ? 32 : 128;
  return bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
}

function parseCidr(text: string): Network {
  const [address = '', bitsText = ''] = text.split('/');
  const family = isIP(address) === 6 ? 6 : 4;
  const bits = Number(bitsText);
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  return { family, base: value & maskOf(family, bits), bits };
}

export class ViewSelector {
  private readonly networks: { view: number; network: Network }[];
  private readonly cache = new Map<string, number>();
  private readonly cacheV4 = new Map<number, number>();

  constructor(views: readonly View[]) {
    this.networks = views.flatMap((view, index) => view.clients.map((cidr) => ({ view: index, network: parseCidr(cidr) })));
  }

  /**
   * The index of the view serving `address` (as a socket reports it, or an IPv4 address as a
   * 32-bit integer, as the UDP engines give it), or -1: no view, REFUSED.
   */
  indexOf(address: string | number): number {
    if (typeof address === 'number') return this.indexOfV4(address);
    const cached = this.cache.get(address);
    if (cached !== undefined) return cached;
    const index = this.decide(address);
    if (this.cache.size >= limits.dnsViewCacheEntriesMax) this.cache.clear();
    this.cache.set(address, index);
    return index;
  }

  private indexOfV4(address: number): number {
    const cached = this.cacheV4.get(address);
    if (cached !== undefined) return cached;
    const index = this.match(4, BigInt(address >>> 0));
    if (this.cacheV4.size >= limits.dnsViewCacheEntriesMax) this.cacheV4.clear();
    this.cacheV4.set(address, index);
    return index;
  }

  private decide(address: string): number {
    let family = isIP(address);
    let text = address;
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; match them against IPv4 networks.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) {
      family = 4;
      text = mapped[1];
    }
    if (family === 0) return -1;
    return this.match(family, family === 4 ? ipv4ToBigInt(text) : ipv6ToBigInt(text));
  }

  private match(family: number, value: bigint): number {
    for (const { view, network } of this.networks) {
      if (network.family === family && (value & maskOf(network.family, network.bits)) === network.base) return view;
    }
    return -1;
  }
}
