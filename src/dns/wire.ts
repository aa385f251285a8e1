// DNS wire format for the hot path: a bounds-checked reader of incoming queries (header, question,
// EDNS OPT) that never throws and never allocates, and the small name/record encoder the answer
// cache uses to prebuild responses (RFC 1035 §4.1, with §4.1.4 name compression).
import { isIP } from 'node:net';
import { assert } from '../shared/assert.ts';

export const HEADER_BYTES = 12;
/** RFC 1035 §2.3.4: a name is at most 255 bytes on the wire, a label at most 63. */
export const NAME_BYTES_MAX = 255;
export const LABEL_BYTES_MAX = 63;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6, YXRRSET: 7, NXRRSET: 8, NOTAUTH: 9, NOTZONE: 10 } as const;
/** RFC 6891 §6.1.3: extended RCODE 16; its upper 8 bits (1) go into the OPT TTL. */
export const RCODE_BADVERS = 16;

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;
export type RecordType = 'A' | 'AAAA' | 'NS' | 'CNAME' | 'SOA' | 'MX' | 'TXT' | 'SRV';
export const CLASS_IN = 1;
/** RFC 2136 §2.4/§2.5: class NONE deletes one RR, class ANY an RRset; RFC 8945 §4.2: TSIG is class ANY. */
export const CLASS_NONE = 254;
export const CLASS_ANY = 255;
export const OPCODE = { QUERY: 0, NOTIFY: 4, UPDATE: 5 } as const;

/** What the reader decided about a packet. */
export const ReadResult = {
  /** A well-formed standard query: `query` holds it. */
  Ok: 0,
  /** Malformed, but a header can be formed: answer FORMERR (with the question when it parsed). */
  FormErr: 1,
  /** Opcode other than QUERY: answer NOTIMP (RFC 1035 §4.1.1). */
  NotImp: 2,
  /** Not worth an answer (shorter than a header, or a response): drop silently. */
  Drop: 3,
} as const;
export type ReadResult = (typeof ReadResult)[keyof typeof ReadResult];

/** Labels of a question name, at most 128 (a 255-byte name of 1-byte labels). */
const LABELS_MAX = 128;

/**
 * One parsed query. The reader fills a preallocated instance in place (no allocation per query);
 * offsets point into the packet it was read from.
 */
export class Query {
  id = 0;
  /** Header byte 2 and 3 as received (opcode, RD; CD). */
  flags2 = 0;
  flags3 = 0;
  opcode = 0;
  /** True once the question parsed; a FORMERR answer echoes it then. */
  questionOk = false;
  /** The question name spans [12, nameEnd); the question [12, questionEnd). */
  nameEnd = 0;
  questionEnd = 0;
  qtype = 0;
  qclass = 0;
  /** FNV-1a over the lower-cased wire name: the key of the answer index. */
  nameHash = 0;
  labelCount = 0;
  /** Start offset of each label, so each suffix (a candidate zone apex) can be hashed. */
  readonly labelOffsets = new Int32Array(LABELS_MAX);
  edns = false;
  ednsPayload = 0;
  ednsVersion = 0;
  dnssecOk = false;
  /** IXFR only (RFC 1995 §3): offset of the client's SOA in the authority section, or 0. */
  authorityStart = 0;
}

/** Lower-cases one ASCII byte (RFC 4343: DNS names compare case-insensitively in ASCII only). */
function lower(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a of the lower-cased bytes [start, end) of `bytes`. */
export function hashName(bytes: Uint8Array, start: number, end: number): number {
  let hash = FNV_OFFSET;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ lower(bytes[i]!), FNV_PRIME);
  return hash >>> 0;
}

/** Case-insensitive comparison of `length` bytes at a and b. */
export function equalNames(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (lower(a[aStart + i]!) !== lower(b[bStart + i]!)) return false;
  return true;
}

/**
 * Skips a name in a section other than the question: compression pointers end it (RFC 1035
 * §4.1.4), so nothing is followed and no loop is possible. Returns the offset after it, or -1.
 */
export function skipName(packet: Uint8Array, offset: number, length: number): number {
  let position = offset;
  let total = 0;
  for (;;) {
    if (position >= length) return -1;
    const byte = packet[position]!;
    if (byte === 0) return position + 1;
    const kind = byte & 0xc0;
    if (kind === 0xc0) return position + 2 <= length ? position + 2 : -1;
    if (kind !== 0) return -1; // 0x40 and 0x80: reserved label types (RFC 6891 §5 retired EDNS0 labels)
    total += byte + 1;
    if (total > NAME_BYTES_MAX) return -1;
    position += byte + 1;
  }
}

/**
 * Reads the query in packet[0, length) into `query`. Never throws, whatever the bytes: every read
 * is bounds-checked against `length`.
 */
export function readQuery(packet: Uint8Array, length: number, query: Query): ReadResult {
  query.questionOk = false;
  query.edns = false;
  query.ednsPayload = 0;
  query.ednsVersion = 0;
  query.dnssecOk = false;
  query.authorityStart = 0;
  if (length < HEADER_BYTES || length > packet.length) return ReadResult.Drop;
  const flags2 = packet[2]!;
  // QR set: this is a response; answering it could start a loop between two servers.
  if ((flags2 & 0x80) !== 0) return ReadResult.Drop;
  query.id = (packet[0]! << 8) | packet[1]!;
  query.flags2 = flags2;
  query.flags3 = packet[3]!;
  query.opcode = (flags2 >> 3) & 0x0f;
  const qdcount = (packet[4]! << 8) | packet[5]!;
  const ancount = (packet[6]! << 8) | packet[7]!;
  const nscount = (packet[8]! << 8) | packet[9]!;
  const arcount = (packet[10]! << 8) | packet[11]!;

  // Question first, so that NOTIMP and FORMERR can echo it when it is sound.
  // RFC 9619: QDCOUNT must be 1 in a QUERY.
  let position = HEADER_BYTES;
  if (qdcount === 1) {
    let labels = 0;
    let hash = FNV_OFFSET;
    let ok = false;
    for (;;) {
      if (position >= length) break;
      const byte = packet[position]!;
      if (byte === 0) {
        hash = Math.imul(hash ^ 0, FNV_PRIME);
        position += 1;
        ok = position - HEADER_BYTES <= NAME_BYTES_MAX;
        break;
      }
      // A compression pointer in the only question can point nowhere useful (there is nothing
      // before it but the header): refuse it, which also rules out pointer loops.
      if ((byte & 0xc0) !== 0) break;
      if (labels >= LABELS_MAX || position + byte + 1 - HEADER_BYTES > NAME_BYTES_MAX - 1) break;
      if (position + 1 + byte > length) break;
      query.labelOffsets[labels++] = position;
      hash = Math.imul(hash ^ byte, FNV_PRIME);
      for (let i = position + 1; i <= position + byte; i++) hash = Math.imul(hash ^ lower(packet[i]!), FNV_PRIME);
      position += byte + 1;
    }
    if (ok && position + 4 <= length) {
      query.nameEnd = position;
      query.labelCount = labels;
      query.nameHash = hash >>> 0;
      query.qtype = (packet[position]! << 8) | packet[position + 1]!;
      query.qclass = (packet[position + 2]! << 8) | packet[position + 3]!;
      position += 4;
      query.questionEnd = position;
      query.questionOk = true;
    }
  }
  if (query.opcode !== 0) return ReadResult.NotImp;
  if (!query.questionOk) return ReadResult.FormErr;
  // A query carries no answer or authority records (RFC 1035 §4.1.1 for QUERY; RFC 2136 differs),
  // except IXFR, whose authority section holds the client's SOA (RFC 1995 §3).
  const ixfrSoa = query.qtype === TYPE.IXFR && nscount === 1;
  if (ancount !== 0 || (nscount !== 0 && !ixfrSoa)) return ReadResult.FormErr;

  // Additional section: at most one OPT (RFC 6891 §6.1.1); other records (TSIG, cookies' peers)
  // are skipped, since nothing here signs or verifies. The IXFR authority record comes first.
  for (let record = 0; record < nscount + arcount; record++) {
    const nameStart = position;
    if (record < nscount) query.authorityStart = nameStart;
    const afterName = skipName(packet, position, length);
    if (afterName < 0 || afterName + 10 > length) return ReadResult.FormErr;
    const type = (packet[afterName]! << 8) | packet[afterName + 1]!;
    const rdlength = (packet[afterName + 8]! << 8) | packet[afterName + 9]!;
    const end = afterName + 10 + rdlength;
    if (end > length) return ReadResult.FormErr;
    if (type === TYPE.OPT && record >= nscount) {
      // RFC 6891 §6.1.1: the OPT owner is the root; a second OPT is a FORMERR.
      if (query.edns || afterName !== nameStart + 1 || packet[nameStart] !== 0) return ReadResult.FormErr;
      query.edns = true;
      query.ednsPayload = (packet[afterName + 2]! << 8) | packet[afterName + 3]!;
      query.ednsVersion = packet[afterName + 5]!;
      query.dnssecOk = (packet[afterName + 6]! & 0x80) !== 0;
      // Options (RFC 6891 §6.1.2) must each fit in the RDATA; unknown ones are ignored (§6.1.2).
      let option = afterName + 10;
      while (option < end) {
        if (option + 4 > end) return ReadResult.FormErr;
        const optionLength = (packet[option + 2]! << 8) | packet[option + 3]!;
        option += 4 + optionLength;
        if (option > end) return ReadResult.FormErr;
      }
    }
    position = end;
  }
  // Bytes beyond the records the header announced: the counts lie.
  if (position !== length) return ReadResult.FormErr;
  return ReadResult.Ok;
}

// ---------------------------------------------------------------------------------------------
// Encoding, used when answers are prebuilt (never per query).

/** "Pool01.Contoso.com." → wire labels, lower-cased (the question's own case is patched in later). */
export function encodeName(name: string): Buffer {
  const trimmed = name.replace(/\.$/, '').toLowerCase();
  if (trimmed === '') return Buffer.from([0]);
  const parts = trimmed.split('.');
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const label = Buffer.from(part, 'ascii');
    assert(label.length >= 1 && label.length <= LABEL_BYTES_MAX, `bad label in ${name}`);
    chunks.push(Buffer.from([label.length]), label);
  }
  chunks.push(Buffer.from([0]));
  const wire = Buffer.concat(chunks);
  assert(wire.length <= NAME_BYTES_MAX, `name too long: ${name}`);
  return wire;
}

/** The record data the zone model holds (presentation form, as a topology states it). */
export type RecordData =
  | { type: 'A'; address: string }
  | { type: 'AAAA'; address: string }
  | { type: 'NS'; target: string }
  | { type: 'CNAME'; target: string }
  | { type: 'MX'; preference: number; exchange: string }
  | { type: 'TXT'; text: string }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { type: 'SOA'; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };

export function typeCode(type: RecordType): number {
  return TYPE[type];
}

function ipv4Bytes(address: string): number[] {
  assert(isIP(address) === 4, `not IPv4: ${address}`);
  return address.split('.').map(Number);
}

function ipv6Bytes(address: string): number[] {
  assert(isIP(address) === 6, `not IPv6: ${address}`);
  let text = address;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const [a, b, c, d] = ipv4Bytes(v4[1]) as [number, number, number, number];
    text = text.slice(0, -v4[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  assert(groups.length === 8, `bad IPv6 ${address}`);
  return groups.flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

/**
 * Writes messages with name compression (RFC 1035 §4.1.4): each name written remembers where its
 * suffixes start, so later names point at them.
 */
export class MessageWriter {
  private chunks: number[] = [];
  private readonly suffixes = new Map<string, number>();

  /** `compression` false: for record bytes that will be spliced in at an offset unknown now. */
  constructor(private readonly compression = true) {}

  get length(): number {
    return this.chunks.length;
  }

  bytes(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.chunks.push(values[i]!);
  }

  u16(value: number): void {
    this.chunks.push((value >> 8) & 0xff, value & 0xff);
  }

  u32(value: number): void {
    this.chunks.push((value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
  }

  /** Declares that the name `name` already sits at `offset` (the question, copied in later). */
  knownName(name: string, offset: number): void {
    const labels = name.replace(/\.$/, '').toLowerCase().split('.').filter((label) => label !== '');
    let at = offset;
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.');
      if (!this.suffixes.has(suffix) && at < 0x3fff) this.suffixes.set(suffix, at);
      at += labels[i]!.length + 1;
    }
  }

  name(name: string, compressThis = true): void {
    const compress = compressThis && this.compression;
    const labels = name.replace(/\.$/, '').toLowerCase().split('.').filter((label) => label !== '');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.');
      const pointer = compress ? this.suffixes.get(suffix) : undefined;
      if (pointer !== undefined) {
        this.u16(0xc000 | pointer);
        return;
      }
      if (compress && this.chunks.length < 0x3fff) this.suffixes.set(suffix, this.chunks.length);
      const label = Buffer.from(labels[i]!, 'ascii');
      assert(label.length >= 1 && label.length <= LABEL_BYTES_MAX, `bad label in ${name}`);
      this.chunks.push(label.length);
      this.bytes(label);
    }
    this.chunks.push(0);
  }

  /** One resource record (RFC 1035 §4.1.3); RDATA names are compressed where RFC 3597 §4 allows. */
  record(owner: string, data: RecordData, ttl: number, recordClass = CLASS_IN): void {
    this.name(owner);
    this.u16(typeCode(data.type));
    this.u16(recordClass);
    this.u32(ttl);
    const lengthAt = this.chunks.length;
    this.u16(0);
    const start = this.chunks.length;
    switch (data.type) {
      case 'A':
        this.bytes(ipv4Bytes(data.address));
        break;
      case 'AAAA':
        this.bytes(ipv6Bytes(data.address));
        break;
      case 'NS':
      case 'CNAME':
        this.name(data.target);
        break;
      case 'MX':
        this.u16(data.preference);
        this.name(data.exchange);
        break;
      case 'TXT': {
        // Character-strings of at most 255 bytes each (RFC 1035 §3.3.14).
        const text = Buffer.from(data.text, 'utf8');
        for (let i = 0; i === 0 || i < text.length; i += 255) {
          const piece = text.subarray(i, i + 255);
          this.chunks.push(piece.length);
          this.bytes(piece);
        }
        break;
      }
      case 'SRV':
        // RFC 2782: the target is not compressed.
        this.u16(data.priority);
        this.u16(data.weight);
        this.u16(data.port);
        this.name(data.target, false);
        break;
      case 'SOA':
        this.name(data.mname);
        this.name(data.rname);
        this.u32(data.serial);
        this.u32(data.refresh);
        this.u32(data.retry);
        this.u32(data.expire);
        this.u32(data.minimum);
        break;
    }
    const rdlength = this.chunks.length - start;
    this.chunks[lengthAt] = rdlength >> 8;
    this.chunks[lengthAt + 1] = rdlength & 0xff;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.chunks);
  }
}

/** The 11-byte OPT record we append to every EDNS answer (RFC 6891 §6.1.2), version 0. */
export function optRecord(payloadBytes: number, extendedRcodeHigh = 0): Buffer {
  return Buffer.from([0, 0, TYPE.OPT, (payloadBytes >> 8) & 0xff, payloadBytes & 0xff, extendedRcodeHigh, 0, 0, 0, 0, 0]);
}
