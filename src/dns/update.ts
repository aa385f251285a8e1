// `dns push`: brings an existing server's zone in line with the topology through RFC 2136 dynamic
// updates signed with TSIG (RFC 8945). Reads the server's zone by AXFR (signed with the same key),
// computes the difference with what dnslb would serve, and sends it as UPDATE messages over TCP.
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Clock, Random } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { limits } from '../shared/limits.ts';
import { recordKey } from './export.ts';
import { findTsig, ResponseVerifier, sign, TSIG_ERRORS, type TsigKey } from './tsig.ts';
import { CLASS_IN, CLASS_NONE, encodeName, MessageWriter, OPCODE, RCODE, TYPE, type RecordData } from './wire.ts';
import type { ZoneRecord } from './zone.ts';

const RCODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(RCODE).map(([name, code]) => [code, name]));

export interface PushTarget {
  address: string;
  port: number;
  zone: string;
  key: TsigKey;
  clock: Clock;
  random: Random;
  timeoutMs?: number;
}

/** One TCP connection exchanging length-prefixed messages (RFC 1035 §4.2.2). */
class Connection {
  private buffered = Buffer.alloc(0);
  private readonly queue: Buffer[] = [];
  private waiter: ((message: Buffer | Error) => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket, private readonly what: string, private readonly timeoutMs: number) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 2 && this.buffered.length - 2 >= this.buffered.readUInt16BE(0)) {
        const length = this.buffered.readUInt16BE(0);
        this.deliver(Buffer.from(this.buffered.subarray(2, 2 + length)));
        this.buffered = this.buffered.subarray(2 + length);
      }
    });
    const fail = (error: Error): void => {
      this.failure ??= error;
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.(this.failure);
    };
    socket.on('error', (error) => fail(new DnslbError('DNS_PUSH', `${what}: ${error.message}`, { cause: error })));
    socket.on('close', () => fail(new DnslbError('DNS_PUSH', `${what}: the server closed the connection`)));
  }

  static open(address: string, port: number, timeoutMs: number): Promise<Connection> {
    const what = `${address}:${port}`;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: address, port });
      const timer = setTimeout(() => socket.destroy(new Error(`no connection after ${timeoutMs} ms`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new Connection(socket, what, timeoutMs));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new DnslbError('DNS_PUSH', `cannot connect to ${what}: ${error.message}`, { cause: error }));
      });
    });
  }

  private deliver(message: Buffer): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(message);
    else this.queue.push(message);
  }

  send(message: Buffer): void {
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(message.length);
    this.socket.write(Buffer.concat([prefix, message]));
  }

  next(): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new DnslbError('DNS_PUSH', `${this.what}: no response after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = (message) => {
        clearTimeout(timer);
        if (message instanceof Error) reject(message);
        else resolve(message);
      };
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

const nowS = (clock: Clock): number => Math.floor(clock.nowMs() / 1000);

/**
 * An error answer (often unsigned: RFC 8945 §5.3.2 leaves BADKEY/BADSIG answers without a MAC):
 * throws naming the RCODE and, when a TSIG record says why, the TSIG error (NOTAUTH/BADSIG).
 */
function refused(message: Buffer, what: string, hint: string): never {
  const rcode = message[3]! & 0x0f;
  const tsigError = findTsig(message)?.error ?? 0;
  const name = RCODE_NAMES[rcode] ?? String(rcode);
  if (tsigError !== 0) throw new DnslbError('DNS_TSIG', `${what}: ${name}/${TSIG_ERRORS[tsigError] ?? `TSIG error ${tsigError}`}: the server does not accept our key ${hint.includes('key') ? '(check the key name and secret)' : ''}`.trim());
  throw new DnslbError('DNS_PUSH', `${what}: ${name} (${hint})`);
}

/** A dns-packet record as our model, or undefined for the types dnslb does not manage (left alone). */
function toZoneRecord(answer: dnsPacket.Answer): ZoneRecord | undefined {
  const name = answer.name.toLowerCase().replace(/\.$/, '');
  const ttl = (answer as { ttl?: number }).ttl ?? 0;
  const lower = (value: string): string => value.toLowerCase().replace(/\.$/, '');
  let data: RecordData;
  switch (answer.type) {
    case 'A':
    case 'AAAA':
      data = { type: answer.type, address: answer.data };
      break;
    case 'NS':
    case 'CNAME':
      data = { type: answer.type, target: lower(answer.data) };
      break;
    case 'MX':
      data = { type: 'MX', preference: answer.data.preference ?? 0, exchange: lower(answer.data.exchange) };
      break;
    case 'SRV':
      data = { type: 'SRV', priority: answer.data.priority ?? 0, weight: answer.data.weight ?? 0, port: answer.data.port, target: lower(answer.data.target) };
      break;
    case 'TXT': {
      const parts = Array.isArray(answer.data) ? answer.data : [answer.data];
      data = { type: 'TXT', text: Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part))).toString('utf8') };
      break;
    }
    case 'SOA':
      data = { type: 'SOA', mname: lower(answer.data.mname), rname: lower(answer.data.rname), serial: answer.data.serial ?? 0, refresh: answer.data.refresh ?? 0, retry: answer.data.retry ?? 0, expire: answer.data.expire ?? 0, minimum: answer.data.minimum ?? 0 };
      break;
    default:
      return undefined;
  }
  return { name, ttl, data };
}

/** Reads the server's zone by AXFR over TCP, signed with the key (RFC 5936; RFC 8945 §5.3.1). */
export async function readZone(target: PushTarget): Promise<ZoneRecord[]> {
  const timeoutMs = target.timeoutMs ?? limits.dnsPushTimeoutMs;
  const connection = await Connection.open(target.address, target.port, timeoutMs);
  try {
    const id = Math.floor(target.random() * 0x10000) & 0xffff;
    const request = sign(dnsPacket.encode({ id, type: 'query', questions: [{ name: target.zone, type: 'AXFR' }] }), target.key, nowS(target.clock));
    connection.send(request.message);
    const verifier = new ResponseVerifier(target.key, request.mac, () => nowS(target.clock));
    const records: ZoneRecord[] = [];
    let soas = 0;
    for (let messages = 0; soas < 2; messages++) {
      const message = await connection.next();
      if (message.length < 12 || message.readUInt16BE(0) !== id) throw new DnslbError('DNS_PUSH', `AXFR of ${target.zone}: a response with the wrong ID`);
      const rcode = message[3]! & 0x0f;
      if (rcode !== 0) refused(message, `the server refused the zone transfer of ${target.zone}`, `does it allow-transfer with key ${target.key.name}?`);
      verifier.verify(message, messages > 0);
      let decoded: dnsPacket.DecodedPacket;
      try {
        decoded = dnsPacket.decode(message);
      } catch (error) {
        throw new DnslbError('DNS_PUSH', `AXFR of ${target.zone}: a malformed message`, { cause: error });
      }
      for (const answer of decoded.answers ?? []) {
        if (answer.type === 'SOA') soas++;
        if (answer.type === 'SOA' && soas === 2) break;
        const record = toZoneRecord(answer);
        if (record) records.push(record);
      }
      if (records.length === 0 && soas === 0) throw new DnslbError('DNS_PUSH', `AXFR of ${target.zone}: the first record is not the SOA`);
    }
    verifier.finish();
    return records;
  } finally {
    connection.close();
  }
}

export interface Difference {
  deletes: ZoneRecord[];
  adds: ZoneRecord[];
}

/**
 * What to change on the server so that its zone matches `desired`. The apex SOA and NS belong to
 * the server (its own name servers and serial) and are left alone; so are record types dnslb
 * does not model (DNSSEC and others, dropped by readZone). Everything else is managed.
 */
export function difference(current: readonly ZoneRecord[], desired: readonly ZoneRecord[], origin: string): Difference {
  const managed = (record: ZoneRecord): boolean => !(record.name === origin && (record.data.type === 'SOA' || record.data.type === 'NS'));
  const have = new Map(current.filter(managed).map((record) => [recordKey(record), record]));
  const want = new Map(desired.filter(managed).map((record) => [recordKey(record), record]));
  return {
    deletes: [...have].filter(([key]) => !want.has(key)).map(([, record]) => record),
    adds: [...want].filter(([key]) => !have.has(key)).map(([, record]) => record),
  };
}

/**
 * RFC 2136 §2: UPDATE messages (no prerequisites) holding the difference, deletes first (§3.4.2:
 * processed in order, so a CNAME can replace an address). Split so each stays well under 64 KiB.
 */
export function updateMessages(origin: string, change: Difference, nextId: () => number): Buffer[] {
  const items = [...change.deletes.map((record) => ({ record, remove: true })), ...change.adds.map((record) => ({ record, remove: false }))];
  const messages: Buffer[] = [];
  let writer: MessageWriter | undefined;
  let count = 0;
  const finish = (): void => {
    if (!writer) return;
    const message = writer.toBuffer();
    message.writeUInt16BE(count, 8); // UPCOUNT (the NSCOUNT position)
    messages.push(message);
    writer = undefined;
    count = 0;
  };
  for (const { record, remove } of items) {
    if (!writer) {
      writer = new MessageWriter();
      writer.u16(nextId());
      writer.bytes([OPCODE.UPDATE << 3, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // ZOCOUNT 1
      writer.knownName(origin, writer.length);
      writer.bytes(encodeName(origin));
      writer.u16(TYPE.SOA);
      writer.u16(CLASS_IN);
    }
    // §2.5.4: delete one RR = class NONE, TTL 0; §2.5.1: add = class IN with its TTL.
    writer.record(record.name, record.data, remove ? 0 : record.ttl, remove ? CLASS_NONE : CLASS_IN);
    count++;
    if (writer.length > 32 * 1024) finish();
  }
  finish();
  return messages;
}

/** Sends the UPDATE messages signed, checking each signed response; throws DNS_PUSH/DNS_TSIG on refusal. */
export async function sendUpdates(target: PushTarget, messages: readonly Buffer[]): Promise<void> {
  if (messages.length === 0) return;
  const connection = await Connection.open(target.address, target.port, target.timeoutMs ?? limits.dnsPushTimeoutMs);
  try {
    for (const message of messages) {
      const request = sign(message, target.key, nowS(target.clock));
      connection.send(request.message);
      const response = await connection.next();
      if (response.length < 12 || response.readUInt16BE(0) !== message.readUInt16BE(0)) throw new DnslbError('DNS_PUSH', 'an UPDATE response with the wrong ID');
      if ((response[3]! & 0x0f) !== 0) refused(response, `the server refused the UPDATE of ${target.zone}`, `does it allow-update with key ${target.key.name}?`);
      new ResponseVerifier(target.key, request.mac, () => nowS(target.clock)).verify(response);
    }
  } finally {
    connection.close();
  }
}

/** Reads, compares, updates. Returns the difference that was sent (empty: already in line). */
export async function push(target: PushTarget, desired: readonly ZoneRecord[]): Promise<Difference> {
  const current = await readZone(target);
  const change = difference(current, desired, target.zone);
  await sendUpdates(target, updateMessages(target.zone, change, () => Math.floor(target.random() * 0x10000) & 0xffff));
  return change;
}
