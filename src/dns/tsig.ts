// TSIG (RFC 8945) with HMAC-SHA256: signing requests and verifying responses (`dns push`: RFC 2136
// updates + AXFR), and the server side: checking signed transfer requests and signing every
// message of the answer, including the multi-message form of a zone transfer (§5.3.1).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { CLASS_ANY, encodeName, HEADER_BYTES, skipName, TYPE } from './wire.ts';

export interface TsigKey {
  /** Lower-case, no trailing dot. */
  name: string;
  /** Only hmac-sha256 (RFC 8945 §6: mandatory to implement; the others are legacy or optional). */
  algorithm: 'hmac-sha256';
  secret: Buffer;
}

/** RFC 8945 §5.2: TSIG error codes, named for messages. */
export const TSIG_ERRORS: Readonly<Record<number, string>> = { 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };

/** Parses NAME:ALG:SECRET (the secret in base64, as `tsig-keygen` prints it). */
export function parseTsigKey(text: string): TsigKey {
  const [name, algorithm, ...rest] = text.split(':');
  const secret = rest.join(':');
  if (!name || !algorithm || !secret) throw new DnslbError('DNS_TSIG', `--tsig ${text.split(':')[0]}:…: expected NAME:ALGORITHM:BASE64SECRET`);
  if (algorithm.toLowerCase() !== 'hmac-sha256') throw new DnslbError('DNS_TSIG', `--tsig: algorithm ${algorithm} is not supported; use hmac-sha256`);
  const bytes = Buffer.from(secret, 'base64');
  if (bytes.length === 0 || bytes.toString('base64').replace(/=+$/, '') !== secret.replace(/=+$/, '')) throw new DnslbError('DNS_TSIG', '--tsig: the secret is not base64');
  return { name: name.toLowerCase().replace(/\.$/, ''), algorithm: 'hmac-sha256', secret: bytes };
}

function u48(seconds: number): Buffer {
  const out = Buffer.alloc(6);
  out.writeUIntBE(seconds, 0, 6);
  return out;
}

function u16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

/** RFC 8945 §4.3.3: the TSIG variables (names in canonical form: lower case, uncompressed). */
function variables(key: TsigKey, timeSignedS: number, fudgeS: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([encodeName(key.name), u16(CLASS_ANY), Buffer.alloc(4), encodeName(key.algorithm), u48(timeSignedS), u16(fudgeS), u16(error), u16(other.length), other]);
}

function hmac(key: TsigKey, parts: readonly Buffer[]): Buffer {
  const mac = createHmac('sha256', key.secret);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** A signed request and its MAC (the response's MAC covers it, RFC 8945 §4.3.1). */
export interface Signed {
  message: Buffer;
  mac: Buffer;
}

/** RFC 8945 §4.2–§4.3.1: appends a TSIG record to `message` (whose ARCOUNT does not count it yet). */
export function sign(message: Buffer, key: TsigKey, timeSignedS: number, fudgeS = limits.dnsTsigFudgeS): Signed {
  const mac = hmac(key, [message, variables(key, timeSignedS, fudgeS, 0, Buffer.alloc(0))]);
  return { message: appendTsig(message, key, timeSignedS, fudgeS, mac, 0, Buffer.alloc(0)), mac };
}

/** A TSIG record found at the end of a message. */
export interface TsigRecord {
  keyName: string;
  algorithm: string;
  timeSignedS: number;
  fudgeS: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
  /** The message as it was before signing: TSIG removed, ARCOUNT one less, the original ID. */
  unsigned: Buffer;
}

function readName(packet: Buffer, offset: number): string {
  const labels: string[] = [];
  let at = offset;
  for (let hops = 0; hops < 128; hops++) {
    const length = packet[at]!;
    if (length === 0) return labels.join('.').toLowerCase();
    if ((length & 0xc0) === 0xc0) {
      at = ((length & 0x3f) << 8) | packet[at + 1]!;
      continue;
    }
    labels.push(packet.toString('latin1', at + 1, at + 1 + length));
    at += length + 1;
  }
  throw new DnslbError('DNS_TSIG', 'a name in the TSIG record loops');
}

/** The TSIG record of `packet` (RFC 8945 §5.1: it must be the last additional record), or undefined. */
export function findTsig(packet: Buffer): TsigRecord | undefined {
  if (packet.length < HEADER_BYTES) return undefined;
  const counts = [packet.readUInt16BE(4), packet.readUInt16BE(6), packet.readUInt16BE(8), packet.readUInt16BE(10)] as const;
  if (counts[3] === 0) return undefined;
  let at = HEADER_BYTES;
  for (let i = 0; i < counts[0]; i++) {
    at = skipName(packet, at, packet.length);
    if (at < 0 || at + 4 > packet.length) return undefined;
    at += 4;
  }
  const records = counts[1] + counts[2] + counts[3];
  for (let i = 0; i < records; i++) {
    const start = at;
    const afterName = skipName(packet, at, packet.length);
    if (afterName < 0 || afterName + 10 > packet.length) return undefined;
    const end = afterName + 10 + packet.readUInt16BE(afterName + 8);
    if (end > packet.length) return undefined;
    if (i === records - 1) {
      if (packet.readUInt16BE(afterName) !== TYPE.TSIG || end !== packet.length) return undefined;
      let r = afterName + 10;
      const algorithmEnd = skipName(packet, r, end);
      if (algorithmEnd < 0 || algorithmEnd + 10 > end) return undefined;
      const algorithm = readName(packet, r);
      r = algorithmEnd;
      const timeSignedS = packet.readUIntBE(r, 6);
      const fudgeS = packet.readUInt16BE(r + 6);
      const macLength = packet.readUInt16BE(r + 8);
      r += 10;
      if (r + macLength + 6 > end) return undefined;
      const mac = packet.subarray(r, r + macLength);
      r += macLength;
      const originalId = packet.readUInt16BE(r);
      const error = packet.readUInt16BE(r + 2);
      const otherLength = packet.readUInt16BE(r + 4);
      if (r + 6 + otherLength !== end) return undefined;
      const unsigned = Buffer.from(packet.subarray(0, start));
      unsigned.writeUInt16BE(originalId, 0);
      unsigned.writeUInt16BE(counts[3] - 1, 10);
      return { keyName: readName(packet, start), algorithm, timeSignedS, fudgeS, mac, originalId, error, other: packet.subarray(r + 6, end), unsigned };
    }
    at = end;
  }
  return undefined;
}

/**
 * Verifies the responses to one signed request, in order (RFC 8945 §5.3): the first MAC covers
 * the request's MAC; each later signed message covers the previous MAC, the unsigned messages in
 * between, and its timers only (§5.3.1). Throws DNS_TSIG naming the TSIG error on failure.
 */
export class ResponseVerifier {
  private previousMac: Buffer;
  private first = true;
  private readonly unsignedSince: Buffer[] = [];

  constructor(private readonly key: TsigKey, requestMac: Buffer, private readonly nowS: () => number) {
    this.previousMac = requestMac;
  }

  /** Checks one message; `mayBeUnsigned` for the messages of a transfer after the first (§5.3.1: up to 99). */
  verify(packet: Buffer, mayBeUnsigned = false): void {
    const tsig = findTsig(packet);
    if (!tsig) {
      if (this.first || !mayBeUnsigned || this.unsignedSince.length >= 99) throw new DnslbError('DNS_TSIG', 'the server\'s response is not signed (RFC 8945 §5.3: a signed request gets a signed response)');
      this.unsignedSince.push(packet);
      return;
    }
    if (tsig.error !== 0) throw new DnslbError('DNS_TSIG', `the server rejected our TSIG signature: ${TSIG_ERRORS[tsig.error] ?? `TSIG error ${tsig.error}`} (key ${this.key.name}: check the key name and secret${tsig.error === 18 ? ', and the clocks' : ''})`);
    if (tsig.keyName !== this.key.name || tsig.algorithm !== this.key.algorithm) throw new DnslbError('DNS_TSIG', `the response is signed with key ${tsig.keyName} (${tsig.algorithm}), not ours`);
    const prior = Buffer.concat([u16(this.previousMac.length), this.previousMac]);
    const expected = this.first
      ? hmac(this.key, [prior, tsig.unsigned, variables(this.key, tsig.timeSignedS, tsig.fudgeS, tsig.error, tsig.other)])
      : hmac(this.key, [prior, ...this.unsignedSince, tsig.unsigned, u48(tsig.timeSignedS), u16(tsig.fudgeS)]);
    if (tsig.mac.length !== expected.length || !timingSafeEqual(tsig.mac, expected)) throw new DnslbError('DNS_TSIG', 'the response\'s TSIG MAC does not verify (BADSIG): wrong secret, or the message was altered');
    // RFC 8945 §5.2.3: the time signed must be within the fudge of our clock.
    if (Math.abs(this.nowS() - tsig.timeSignedS) > tsig.fudgeS) throw new DnslbError('DNS_TSIG', `the response's TSIG time is ${tsig.timeSignedS}, more than ${tsig.fudgeS} s from ours (BADTIME)`);
    this.previousMac = Buffer.from(tsig.mac);
    this.first = false;
    this.unsignedSince.length = 0;
  }

  /** A transfer must end on a signed message (§5.3.1). */
  finish(): void {
    if (this.unsignedSince.length > 0) throw new DnslbError('DNS_TSIG', 'the transfer\'s last message is not signed');
  }
}

// ---- the server side: transfers requested with TSIG (RFC 8945 §5.2–§5.3) ----------------------

/** RFC 8945 §5.2: how a signed request fared against our keys. */
export type RequestCheck =
  | { kind: 'unsigned' }
  | { kind: 'ok'; key: TsigKey; tsig: TsigRecord }
  /** BADKEY (17) and BADSIG (16) are answered unsigned; BADTIME (18) signed, with our time (§5.2.3). */
  | { kind: 'bad'; error: 16 | 17 | 18; tsig: TsigRecord; key?: TsigKey };

/** Checks the TSIG of a request (the last additional record) against `keys` (by lower-case name). */
export function checkRequest(packet: Buffer, keys: ReadonlyMap<string, TsigKey>, nowS: number): RequestCheck {
  const tsig = findTsig(packet);
  if (!tsig) return { kind: 'unsigned' };
  const key = keys.get(tsig.keyName);
  if (!key || tsig.algorithm !== key.algorithm) return { kind: 'bad', error: 17, tsig };
  const expected = hmac(key, [tsig.unsigned, variables(key, tsig.timeSignedS, tsig.fudgeS, tsig.error, tsig.other)]);
  // §5.2.2: a MAC of another length is a truncation we do not accept (§5.2.2.1 allows it only by policy).
  if (tsig.mac.length !== expected.length || !timingSafeEqual(tsig.mac, expected)) return { kind: 'bad', error: 16, tsig, key };
  if (Math.abs(nowS - tsig.timeSignedS) > tsig.fudgeS) return { kind: 'bad', error: 18, tsig, key };
  return { kind: 'ok', key, tsig };
}

/** Appends a TSIG record with `mac` (possibly empty) to `message`. */
function appendTsig(message: Buffer, key: { name: string; algorithm: string }, timeSignedS: number, fudgeS: number, mac: Buffer, error: number, other: Buffer): Buffer {
  const rdata = Buffer.concat([encodeName(key.algorithm), u48(timeSignedS), u16(fudgeS), u16(mac.length), mac, message.subarray(0, 2), u16(error), u16(other.length), other]);
  const record = Buffer.concat([encodeName(key.name), u16(TYPE.TSIG), u16(CLASS_ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
  const signed = Buffer.concat([message, record]);
  signed.writeUInt16BE(signed.readUInt16BE(10) + 1, 10);
  return signed;
}

/**
 * Signs every message of one response to a signed request (RFC 8945 §5.3): the first MAC covers
 * the request's MAC, the message and the TSIG variables; each later one the previous MAC, the
 * message and the timers only (§5.3.1). Every message of a transfer is signed (allowed: "at least
 * every 100th").
 */
export class ResponseSigner {
  private previousMac: Buffer;
  private first = true;

  constructor(private readonly key: TsigKey, requestMac: Buffer, private readonly nowS: () => number, private readonly fudgeS: number = limits.dnsTsigFudgeS) {
    this.previousMac = requestMac;
  }

  sign(message: Buffer, error = 0, other: Buffer = Buffer.alloc(0)): Buffer {
    const timeSignedS = this.nowS();
    const prior = Buffer.concat([u16(this.previousMac.length), this.previousMac]);
    const mac = this.first
      ? hmac(this.key, [prior, message, variables(this.key, timeSignedS, this.fudgeS, error, other)])
      : hmac(this.key, [prior, message, u48(timeSignedS), u16(this.fudgeS)]);
    this.previousMac = mac;
    this.first = false;
    return appendTsig(message, this.key, timeSignedS, this.fudgeS, mac, error, other);
  }
}

/**
 * The answer to a request whose TSIG failed (RFC 8945 §5.2): `response` (already NOTAUTH) with a
 * TSIG record carrying the error. BADKEY and BADSIG go unsigned (an empty MAC: we cannot or must
 * not sign); BADTIME is signed and carries our time in the other data (§5.2.3).
 */
export function tsigErrorResponse(response: Buffer, check: Extract<RequestCheck, { kind: 'bad' }>, nowS: number): Buffer {
  if (check.error === 18 && check.key) {
    return new ResponseSigner(check.key, check.tsig.mac, () => nowS, check.tsig.fudgeS).sign(response, 18, u48(nowS));
  }
  return appendTsig(response, { name: check.tsig.keyName, algorithm: check.tsig.algorithm }, check.tsig.timeSignedS, check.tsig.fudgeS, Buffer.alloc(0), check.error, Buffer.alloc(0));
}

/** Reads a key file: one NAME:hmac-sha256:BASE64SECRET per line; blank lines and # comments skipped. */
export function parseTsigKeyFile(text: string, file: string): Map<string, TsigKey> {
  const keys = new Map<string, TsigKey>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    let key: TsigKey;
    try {
      key = parseTsigKey(line);
    } catch (error) {
      throw new DnslbError('DNS_TSIG', `${file}:${index + 1}: ${(error as Error).message.replace(/^--tsig:? ?/, '')}`);
    }
    if (keys.has(key.name)) throw new DnslbError('DNS_TSIG', `${file}:${index + 1}: key ${key.name} is defined twice`);
    keys.set(key.name, key);
  });
  return keys;
}
