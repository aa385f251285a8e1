// Zone transfers to the allowed secondaries: AXFR (RFC 5936) and IXFR (RFC 1995) from the per-zone
// history that live.ts keeps. Not the hot path: built per request, streamed as several messages.
import { isIP } from 'node:net';
import { limits } from '../shared/limits.ts';
import type { AnswerIndex } from './answer-cache.ts';
import { recordKey } from './export.ts';
import { CLASS_IN, HEADER_BYTES, MessageWriter, RCODE, skipName, TYPE, type Query } from './wire.ts';
import { serialGreater, soaOf, viewRecords, type ZoneRecord, type ZoneVersion } from './zone.ts';

/** What a transfer reads: the served answers (for the view selector), each zone's history, the ACL. */
export interface TransferSource {
  readonly current: AnswerIndex;
  /** Versions of the zone, oldest first; the last one is the one served. */
  history(origin: string): readonly ZoneVersion[];
  /** Source addresses allowed to transfer (the topology's `dns.secondaries`). */
  readonly secondaries: readonly { address: string }[];
}

/** A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d. */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? (isIP(address) === 6 ? address.toLowerCase() : address);
}

export function transferAllowed(source: TransferSource, address: string): boolean {
  const plain = plainAddress(address);
  return source.secondaries.some((secondary) => plainAddress(secondary.address) === plain);
}

/** The question name of a parsed query, lower-case, no trailing dot. */
function questionName(packet: Uint8Array, query: Query): string {
  const labels: string[] = [];
  for (let i = 0; i < query.labelCount; i++) {
    const at = query.labelOffsets[i]!;
    labels.push(Buffer.from(packet.subarray(at + 1, at + 1 + packet[at]!)).toString('latin1').toLowerCase());
  }
  return labels.join('.');
}

/** RFC 1995 §3: the serial of the SOA the client put in the authority section, or undefined if malformed. */
export function clientSerial(packet: Uint8Array, query: Query): number | undefined {
  const length = packet.length;
  const afterOwner = skipName(packet, query.authorityStart, length);
  if (query.authorityStart === 0 || afterOwner < 0 || afterOwner + 10 > length) return undefined;
  if (((packet[afterOwner]! << 8) | packet[afterOwner + 1]!) !== TYPE.SOA) return undefined;
  const rdataEnd = afterOwner + 10 + ((packet[afterOwner + 8]! << 8) | packet[afterOwner + 9]!);
  const afterMname = skipName(packet, afterOwner + 10, rdataEnd);
  const afterRname = afterMname < 0 ? -1 : skipName(packet, afterMname, rdataEnd);
  if (afterRname < 0 || afterRname + 20 > rdataEnd || rdataEnd > length) return undefined;
  return ((packet[afterRname]! << 24) | (packet[afterRname + 1]! << 16) | (packet[afterRname + 2]! << 8) | packet[afterRname + 3]!) >>> 0;
}

/**
 * The records as a stream of messages (RFC 5936 §2.2): the question in the first one only, each
 * message at most `limits.dnsTransferMessageBytes` (a record larger than that gets its own).
 */
export function encodeStream(packet: Uint8Array, query: Query, records: readonly ZoneRecord[], origin: string): Buffer[] {
  const messages: Buffer[] = [];
  const question = packet.subarray(HEADER_BYTES, query.questionEnd);
  let writer: MessageWriter | undefined;
  let count = 0;
  const finish = (): void => {
    if (!writer) return;
    const message = writer.toBuffer();
    message.writeUInt16BE(count, 6);
    messages.push(message);
    writer = undefined;
    count = 0;
  };
  const begin = (): MessageWriter => {
    const next = new MessageWriter();
    // ID, QR + opcode QUERY + AA (+ RD copied), rcode 0; QDCOUNT 1 in the first message only.
    next.u16(query.id);
    next.bytes([0x84 | (query.flags2 & 0x01), 0]);
    next.u16(messages.length === 0 ? 1 : 0);
    next.bytes([0, 0, 0, 0, 0, 0]);
    if (messages.length === 0) {
      next.knownName(origin, HEADER_BYTES);
      next.bytes(question);
    }
    return next;
  };
  for (const record of records) {
    // The size of the record uncompressed bounds what it adds to the message.
    const alone = new MessageWriter(false);
    alone.record(record.name, record.data, record.ttl);
    if (writer && count > 0 && writer.length + alone.length > limits.dnsTransferMessageBytes) finish();
    writer ??= begin();
    writer.record(record.name, record.data, record.ttl);
    count++;
  }
  finish();
  return messages;
}

/** A header-only answer (REFUSED, NOTAUTH, FORMERR) echoing the question. */
function refusal(packet: Uint8Array, query: Query, rcode: number): Buffer {
  const question = packet.subarray(HEADER_BYTES, query.questionEnd);
  const out = Buffer.alloc(HEADER_BYTES + question.length);
  out.writeUInt16BE(query.id, 0);
  out[2] = 0x80 | (query.flags2 & 0x01);
  out[3] = rcode;
  out[5] = 1;
  out.set(question, HEADER_BYTES);
  return out;
}

/** RFC 1995 §4: the condensed difference from `from` to `to` in `view`, as one delete/add sequence. */
export function ixfrRecords(from: ZoneVersion, to: ZoneVersion, view: string): ZoneRecord[] {
  const before = new Map(viewRecords(from, view).map((record) => [recordKey(record), record]));
  const after = new Map(viewRecords(to, view).map((record) => [recordKey(record), record]));
  const deleted = [...before].filter(([key]) => !after.has(key)).map(([, record]) => record);
  const added = [...after].filter(([key]) => !before.has(key)).map(([, record]) => record);
  const newSoa = soaOf(to);
  return [newSoa, soaOf(from), ...deleted, newSoa, ...added, newSoa];
}

/**
 * The response messages to an AXFR or IXFR query (readQuery returned Ok) from `address`.
 * REFUSED for anyone but a secondary; NOTAUTH for a name that is not one of our zone apexes.
 * Over UDP (RFC 1995 §2) an IXFR gets the current SOA alone, which tells the client to use TCP
 * when it is behind; AXFR over UDP is refused (RFC 5936 §4.2).
 */
export function transferResponse(source: TransferSource, packet: Uint8Array, query: Query, address: string, udp: boolean): Buffer[] {
  const ixfr = query.qtype === TYPE.IXFR;
  if (!transferAllowed(source, address) || query.qclass !== CLASS_IN || (udp && !ixfr)) return [refusal(packet, query, RCODE.REFUSED)];
  const index = source.current;
  const view = index.views[index.selector.indexOf(address)];
  if (view === undefined) return [refusal(packet, query, RCODE.REFUSED)];
  const origin = questionName(packet, query);
  const history = source.history(origin);
  const current = history.at(-1);
  if (current === undefined) return [refusal(packet, query, RCODE.NOTAUTH)];
  const full = (): ZoneRecord[] => [soaOf(current), ...viewRecords(current, view.name), soaOf(current)];
  if (!ixfr) return encodeStream(packet, query, full(), origin);
  const serial = clientSerial(packet, query);
  if (serial === undefined) return [refusal(packet, query, RCODE.FORMERR)];
  // RFC 1995 §2: a client that is current (or ahead) gets the SOA alone; so does any UDP client.
  if (udp || serial === current.serial || serialGreater(serial, current.serial)) return encodeStream(packet, query, [soaOf(current)], origin);
  const known = history.find((version) => version.serial === serial);
  // RFC 1995 §4: when the history does not reach the client's serial, the whole zone (AXFR form).
  return encodeStream(packet, query, known ? ixfrRecords(known, current, view.name) : full(), origin);
}
