// Prebuilt wire-format answers for every (name, type) of every zone in every view, and `answerFor`,
// which turns a parsed query into response bytes by copying a prebuilt answer and patching the ID,
// the flags the client set, the question's own case, and (for EDNS) the OPT record.
import { assert } from '../shared/assert.ts';
import type { Random } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import { policyFor, type AnswerPolicy } from './policy.ts';
import { CLASS_IN, encodeName, equalNames, hashName, HEADER_BYTES, MessageWriter, RCODE, RCODE_BADVERS, typeCode, TYPE, type Query, type RecordData } from './wire.ts';
import type { View } from '../topology/schema.ts';
import { ViewSelector } from './views.ts';
import type { RRset, ZoneVersion } from './zone.ts';

/** A positive answer: one full response per prebuilt order of its records. */
interface AnswerSet {
  /** Header (ID 0, QR AA, QD=1, AN=n) + lower-case question + answers, one per order. */
  readonly orders: readonly Buffer[];
  readonly policy: AnswerPolicy;
  /** Queries answered so far: `rotate` starts each answer one record later. */
  counter: number;
}

interface ZoneNode {
  readonly origin: string;
  readonly wire: Buffer;
  readonly serial: number;
  /** The SOA record, owner uncompressed, for the authority section of negative answers (RFC 2308 §3). */
  readonly soaRecord: Buffer;
  next: ZoneNode | undefined;
}

interface NameNode {
  readonly wire: Buffer;
  readonly zone: ZoneNode;
  /** qtype → answer; an empty map for an empty non-terminal (NODATA, RFC 8020 §2). */
  readonly types: Map<number, AnswerSet>;
  /** The answer section holding the CNAME, owner pointing at the question (RFC 1034 §3.6.2). */
  cname: Buffer | undefined;
  /** RFC 8482 §4.2: ANY gets one RRset; this one. */
  anyAnswer: AnswerSet | undefined;
  next: NameNode | undefined;
}

/** The answers of one view. */
interface ViewAnswers {
  readonly name: string;
  readonly names: Map<number, NameNode>;
  readonly zones: Map<number, ZoneNode>;
}

/** Everything the server answers from, swapped whole when a zone changes. */
export interface AnswerIndex {
  readonly views: readonly ViewAnswers[];
  /** Client address → index into `views`. */
  readonly selector: ViewSelector;
  /** Serial of each zone, by origin (for logs and the tests). */
  readonly serials: ReadonlyMap<string, number>;
}

const OPT_BYTES = 11;

function insertName(map: Map<number, NameNode>, node: NameNode): void {
  const hash = hashName(node.wire, 0, node.wire.length);
  node.next = map.get(hash);
  map.set(hash, node);
}

function insertZone(map: Map<number, ZoneNode>, node: ZoneNode): void {
  const hash = hashName(node.wire, 0, node.wire.length);
  node.next = map.get(hash);
  map.set(hash, node);
}

/** Header + lower-case question, written through `writer` so later names compress against it. */
function startResponse(writer: MessageWriter, name: string, qtype: number, answerCount: number): void {
  writer.bytes([0, 0, 0x84, 0, 0, 1, answerCount >> 8, answerCount & 0xff, 0, 0, 0, 0]);
  writer.knownName(name, HEADER_BYTES);
  writer.bytes(encodeName(name));
  writer.u16(qtype);
  writer.u16(CLASS_IN);
}

function buildAnswerSet(rrset: RRset, random: Random): AnswerSet {
  const policy = policyFor(rrset.policy, random);
  const qtype = typeCode(rrset.type);
  const orders = policy.orders(rrset.records.length, rrset.maxRecords).map((order) => {
    const writer = new MessageWriter();
    startResponse(writer, rrset.name, qtype, order.length);
    for (const index of order) writer.record(rrset.name, rrset.records[index]!, rrset.ttl);
    return writer.toBuffer();
  });
  assert(orders.length > 0);
  return { orders, policy, counter: 0 };
}

/** Builds the answer index of the given zone versions for the given views. */
export function buildAnswers(zones: readonly ZoneVersion[], viewList: readonly View[], random: Random): AnswerIndex {
  const views: ViewAnswers[] = viewList.map(({ name: viewName }) => {
    const names = new Map<number, NameNode>();
    const zoneMap = new Map<number, ZoneNode>();
    for (const { serial, content } of zones) {
      const soaData: RecordData = { type: 'SOA', serial, ...content.soa };
      // RFC 2308 §3: the SOA TTL in a negative answer is min(SOA TTL, MINIMUM); ours are equal.
      const soaWriter = new MessageWriter(false);
      soaWriter.record(content.origin, soaData, content.soa.minimum);
      const zoneNode: ZoneNode = { origin: content.origin, wire: encodeName(content.origin), serial, soaRecord: soaWriter.toBuffer(), next: undefined };
      insertZone(zoneMap, zoneNode);
      const rrsets: RRset[] = [{ name: content.origin, type: 'SOA', ttl: content.soa.minimum, records: [soaData], policy: 'fixed', maxRecords: 0 }, ...(content.views.get(viewName) ?? [])];
      const nodes = new Map<string, NameNode>();
      const nodeFor = (name: string): NameNode => {
        let node = nodes.get(name);
        if (!node) {
          node = { wire: encodeName(name), zone: zoneNode, types: new Map(), cname: undefined, anyAnswer: undefined, next: undefined };
          nodes.set(name, node);
          insertName(names, node);
          // Every name between this one and the apex exists too (empty non-terminals).
          if (name !== content.origin) nodeFor(name.slice(name.indexOf('.') + 1));
        }
        return node;
      };
      for (const rrset of rrsets) {
        const node = nodeFor(rrset.name);
        const answer = buildAnswerSet(rrset, random);
        node.types.set(typeCode(rrset.type), answer);
        if (rrset.type === 'CNAME' && rrset.records[0]) {
          const writer = new MessageWriter();
          writer.u16(0xc000 | HEADER_BYTES); // owner = the question name
          writer.u16(TYPE.CNAME);
          writer.u16(CLASS_IN);
          writer.u32(rrset.ttl);
          const target = encodeName((rrset.records[0] as { target: string }).target);
          writer.u16(target.length);
          writer.bytes(target);
          node.cname = writer.toBuffer();
        }
        // ANY: addresses first, as the most useful single RRset for a client that asks for ANY.
        if (node.anyAnswer === undefined || rrset.type === 'A') node.anyAnswer = answer;
      }
    }
    return { name: viewName, names, zones: zoneMap };
  });
  return { views, selector: new ViewSelector(viewList), serials: new Map(zones.map((zone) => [zone.content.origin, zone.serial])) };
}

// ---------------------------------------------------------------------------------------------
// The hot path.

function findName(view: ViewAnswers, packet: Uint8Array, query: Query): NameNode | undefined {
  const length = query.nameEnd - HEADER_BYTES;
  for (let node = view.names.get(query.nameHash); node !== undefined; node = node.next) {
    if (node.wire.length === length && equalNames(node.wire, 0, packet, HEADER_BYTES, length)) return node;
  }
  return undefined;
}

/** The deepest of our zones that holds the question name, or undefined (not ours: REFUSED). */
function findZone(view: ViewAnswers, packet: Uint8Array, query: Query): ZoneNode | undefined {
  for (let label = 0; label <= query.labelCount; label++) {
    const start = label < query.labelCount ? query.labelOffsets[label]! : query.nameEnd - 1;
    const length = query.nameEnd - start;
    const hash = hashName(packet, start, query.nameEnd);
    for (let zone = view.zones.get(hash); zone !== undefined; zone = zone.next) {
      if (zone.wire.length === length && equalNames(zone.wire, 0, packet, start, length)) return zone;
    }
  }
  return undefined;
}

function writeOpt(out: Buffer, at: number, query: Query, extendedRcodeHigh: number): void {
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = TYPE.OPT;
  out[at + 3] = (limits.dnsUdpPayloadBytes >> 8) & 0xff;
  out[at + 4] = limits.dnsUdpPayloadBytes & 0xff;
  out[at + 5] = extendedRcodeHigh;
  out[at + 6] = 0; // version 0 (RFC 6891 §6.1.3)
  out[at + 7] = query.dnssecOk ? 0x80 : 0; // RFC 3225 §3: DO copied into the response
  out[at + 8] = 0;
  out[at + 9] = 0;
  out[at + 10] = 0;
}

/** Flags of our answers: QR, the query's opcode and RD (RFC 1035 §4.1.1), CD (RFC 4035 §3.1.6). */
function writeHeader(out: Buffer, at: number, query: Query, authoritative: boolean, truncated: boolean, rcode: number): void {
  out[at] = query.id >> 8;
  out[at + 1] = query.id & 0xff;
  out[at + 2] = 0x80 | (query.flags2 & 0x79) | (authoritative ? 0x04 : 0) | (truncated ? 0x02 : 0);
  out[at + 3] = (query.flags3 & 0x10) | (rcode & 0x0f);
}

/**
 * A response assembled from the query's own question and a prebuilt body (negative answers,
 * errors, CNAME, TC), written into `out` at `at`; returns its length. `body` holds `answerCount`
 * answer then `authorityCount` authority records.
 */
function assembleInto(out: Buffer, at: number, packet: Uint8Array, query: Query, rcode: number, authoritative: boolean, truncated: boolean, answerCount: number, authorityCount: number, body: Buffer | undefined): number {
  const question = query.questionOk ? query.questionEnd - HEADER_BYTES : 0;
  const bodyLength = body?.length ?? 0;
  const withOpt = query.edns;
  writeHeader(out, at, query, authoritative, truncated, rcode);
  out[at + 4] = 0;
  out[at + 5] = question > 0 ? 1 : 0;
  out[at + 6] = answerCount >> 8;
  out[at + 7] = answerCount & 0xff;
  out[at + 8] = authorityCount >> 8;
  out[at + 9] = authorityCount & 0xff;
  out[at + 10] = 0;
  out[at + 11] = withOpt ? 1 : 0;
  if (question > 0) out.set(packet.subarray(HEADER_BYTES, query.questionEnd), at + HEADER_BYTES);
  if (body) body.copy(out, at + HEADER_BYTES + question);
  // RFC 6891 §6.1.3: BADVERS is 16, the upper 8 bits (1) in the OPT, the lower 4 (0) in the header.
  if (withOpt) writeOpt(out, at + HEADER_BYTES + question + bodyLength, query, rcode === RCODE_BADVERS ? 1 : 0);
  return HEADER_BYTES + question + bodyLength + (withOpt ? OPT_BYTES : 0);
}

/** assembleInto, as a Buffer of its own (zone transfers' REFUSED/NOTAUTH answers). */
export function assemble(packet: Uint8Array, query: Query, rcode: number, authoritative: boolean, truncated: boolean, answerCount: number, authorityCount: number, body: Buffer | undefined): Buffer {
  const question = query.questionOk ? query.questionEnd - HEADER_BYTES : 0;
  const out = Buffer.allocUnsafe(HEADER_BYTES + question + (body?.length ?? 0) + (query.edns ? OPT_BYTES : 0));
  assembleInto(out, 0, packet, query, rcode, authoritative, truncated, answerCount, authorityCount, body);
  return out;
}

/** Transport limit for a UDP answer (RFC 6891 §6.2.3–§6.2.5), or 0 for TCP (RFC 7766: no limit but 64 KiB). */
export function udpLimitOf(query: Query): number {
  if (!query.edns) return limits.dnsUdpClassicBytes;
  const asked = Math.max(query.ednsPayload, limits.dnsUdpClassicBytes);
  return Math.min(asked, limits.dnsUdpPayloadBytes);
}

/**
 * The response to a well-formed QUERY (readQuery returned Ok) from `view`, or a TC answer when it
 * does not fit `udpLimit` bytes (0 = TCP: no limit), written into `out` at `at` (room for 64 KiB
 * from `at`); returns its length. Never throws on any query; allocates nothing.
 */
export function answerInto(out: Buffer, at: number, index: AnswerIndex, viewIndex: number, packet: Uint8Array, query: Query, udpLimit: number): number {
  // RFC 6891 §6.1.3: we speak EDNS version 0 only.
  if (query.edns && query.ednsVersion > 0) return assembleInto(out, at, packet, query, RCODE_BADVERS, false, false, 0, 0, undefined);
  if (query.qtype === TYPE.OPT || query.qtype === 0) return assembleInto(out, at, packet, query, RCODE.FORMERR, false, false, 0, 0, undefined);
  const view = index.views[viewIndex];
  // Only class IN is served; zone transfers are not offered (yet): both are refused.
  if (view === undefined || query.qclass !== CLASS_IN || query.qtype === TYPE.AXFR || query.qtype === TYPE.IXFR) {
    return assembleInto(out, at, packet, query, RCODE.REFUSED, false, false, 0, 0, undefined);
  }
  const node = findName(view, packet, query);
  if (node === undefined) {
    const zone = findZone(view, packet, query);
    if (zone === undefined) return assembleInto(out, at, packet, query, RCODE.REFUSED, false, false, 0, 0, undefined);
    // RFC 2308 §2.1: NXDOMAIN, the zone's SOA in the authority section.
    return fit(out, at, assembleInto(out, at, packet, query, RCODE.NXDOMAIN, true, false, 0, 1, zone.soaRecord), packet, query, udpLimit);
  }
  let answer = node.types.get(query.qtype);
  if (answer === undefined && query.qtype === TYPE.ANY) answer = node.anyAnswer;
  if (answer === undefined) {
    if (node.cname !== undefined) return fit(out, at, assembleInto(out, at, packet, query, RCODE.NOERROR, true, false, 1, 0, node.cname), packet, query, udpLimit);
    // RFC 2308 §2.2: NODATA, NOERROR with the SOA in the authority section.
    return fit(out, at, assembleInto(out, at, packet, query, RCODE.NOERROR, true, false, 0, 1, node.zone.soaRecord), packet, query, udpLimit);
  }
  const orders = answer.orders;
  const prebuilt = orders[orders.length === 1 ? 0 : answer.policy.choose(orders.length, answer.counter++)]!;
  const length = prebuilt.length + (query.edns ? OPT_BYTES : 0);
  if (udpLimit > 0 && length > udpLimit) return assembleInto(out, at, packet, query, RCODE.NOERROR, true, true, 0, 0, undefined);
  prebuilt.copy(out, at);
  writeHeader(out, at, query, true, false, RCODE.NOERROR);
  // The question as asked: its case (RFC 4343 §4.1), and ANY when that was the type asked.
  out.set(packet.subarray(HEADER_BYTES, query.questionEnd), at + HEADER_BYTES);
  if (query.edns) {
    out[at + 11] = 1;
    writeOpt(out, at + prebuilt.length, query, 0);
  }
  return length;
}

/** A negative or CNAME answer that outgrew the UDP limit (a long name plus a long SOA) goes TC. */
function fit(out: Buffer, at: number, length: number, packet: Uint8Array, query: Query, udpLimit: number): number {
  return udpLimit > 0 && length > udpLimit ? assembleInto(out, at, packet, query, out[at + 3]! & 0x0f, true, true, 0, 0, undefined) : length;
}

/** Room for any answer: a DNS message is at most 64 KiB (RFC 1035 §4.2.2's 16-bit length). */
const scratch = Buffer.allocUnsafe(2 * 65_536);

/** answerInto, as a Buffer of its own (TCP, tests). */
export function answerFor(index: AnswerIndex, viewIndex: number, packet: Uint8Array, query: Query, udpLimit: number): Buffer {
  return Buffer.from(scratch.subarray(0, answerInto(scratch, 0, index, viewIndex, packet, query, udpLimit)));
}

/** FORMERR / NOTIMP / SERVFAIL for packets the reader refused or answering failed, into `out` at `at`. */
export function errorInto(out: Buffer, at: number, packet: Uint8Array, query: Query, rcode: number): number {
  return assembleInto(out, at, packet, query, rcode, false, false, 0, 0, undefined);
}

/** errorInto, as a Buffer of its own. */
export function errorFor(packet: Uint8Array, query: Query, rcode: number): Buffer {
  return assemble(packet, query, rcode, false, false, 0, 0, undefined);
}
