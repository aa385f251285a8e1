// Zone → RFC 1035 master file (§5.1), for administrators who keep their own DNS server, and the
// presentation form of record data that the master file, the IXFR difference and dns push share.
import { isIP } from 'node:net';
import { assert } from '../shared/assert.ts';
import type { RecordData } from './wire.ts';
import { soaOf, viewRecords, type ZoneRecord, type ZoneVersion } from './zone.ts';

/** RFC 5952 §4: the canonical text of an IPv6 address (lower case, longest zero run as ::). */
export function canonicalIpv6(address: string): string {
  assert(isIP(address) === 6, `not IPv6: ${address}`);
  let text = address.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const [a, b, c, d] = v4[1].split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -v4[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups].map((group) => parseInt(group, 16).toString(16));
  // The longest run of two or more zero groups (the first when tied) becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}

/**
 * RFC 1035 §5.1: a <character-string> in quotes; `"` and `\` escaped, bytes outside printable
 * ASCII as \DDD. Text longer than 255 bytes becomes several strings, as the wire form splits it.
 */
export function quoteText(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  const strings: string[] = [];
  for (let i = 0; i === 0 || i < bytes.length; i += 255) {
    let out = '"';
    for (const byte of bytes.subarray(i, i + 255)) {
      if (byte === 0x22 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
      else if (byte < 0x20 || byte > 0x7e) out += `\\${String(byte).padStart(3, '0')}`;
      else out += String.fromCharCode(byte);
    }
    strings.push(`${out}"`);
  }
  return strings.join(' ');
}

/** The RDATA in presentation form, names absolute (trailing dot). */
export function presentData(data: RecordData): string {
  switch (data.type) {
    case 'A':
      return data.address;
    case 'AAAA':
      return canonicalIpv6(data.address);
    case 'NS':
    case 'CNAME':
      return `${data.target}.`;
    case 'MX':
      return `${data.preference} ${data.exchange}.`;
    case 'TXT':
      return quoteText(data.text);
    case 'SRV':
      return `${data.priority} ${data.weight} ${data.port} ${data.target}.`;
    case 'SOA':
      return `${data.mname}. ${data.rname}. ${data.serial} ${data.refresh} ${data.retry} ${data.expire} ${data.minimum}`;
  }
}

/** A record's identity for differences: owner, TTL and data in presentation form. */
export function recordKey(record: ZoneRecord): string {
  return `${record.name.toLowerCase()} ${record.ttl} ${record.data.type} ${presentData(record.data)}`;
}

/** One master-file line: owner relative to the origin ("@" at the apex), TTL, class, type, data. */
function line(record: ZoneRecord, origin: string): string {
  const owner = record.name === origin ? '@' : record.name.endsWith(`.${origin}`) ? record.name.slice(0, -origin.length - 1) : `${record.name}.`;
  return `${owner.padEnd(24)} ${String(record.ttl).padStart(6)} IN ${record.data.type.padEnd(5)} ${presentData(record.data)}`;
}

/**
 * The master file of `version` as `view` serves it: $ORIGIN and $TTL (RFC 2308 §4), the SOA first
 * (RFC 1035 §5.2), then every RRset in name/type order. Names are written relative to the origin.
 */
export function exportZone(version: ZoneVersion, view: string): string {
  const origin = version.content.origin;
  const soa = soaOf(version);
  const lines = [
    `; zone ${origin}, view ${view}, serial ${version.serial}, written by dnslb dns export`,
    `$ORIGIN ${origin}.`,
    `$TTL ${soa.ttl}`,
    line(soa, origin),
    // The apex records (NS) right after the SOA, as people write zone files; the rest in order.
    ...viewRecords(version, view)
      .sort((a, b) => Number(b.name === origin) - Number(a.name === origin))
      .map((record) => line(record, origin)),
  ];
  return `${lines.join('\n')}\n`;
}
