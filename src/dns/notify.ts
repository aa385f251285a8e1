// NOTIFY (RFC 1996) to the secondaries on every serial change: one UDP message per zone and
// secondary, retried with a doubling interval until the secondary answers or the attempts run out.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { systemRandom, type Clock, type Random, type Timer } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import type { Endpoint } from '../topology/schema.ts';
import { CLASS_IN, encodeName, MessageWriter, OPCODE, skipName, TYPE } from './wire.ts';
import { findTsig, ResponseVerifier, sign, TSIG_ERRORS, type TsigKey } from './tsig.ts';
import { soaOf, type ZoneVersion } from './zone.ts';

export interface NotifierOptions {
  /** The current targets (read at each change, so a new topology's secondaries count at once). */
  secondaries: () => readonly Endpoint[];
  /** Source address: secondaries accept NOTIFY from their primary's address only (Knot's acl, BIND's masters). */
  sourceAddress?: string;
  clock: Clock;
  random: Random;
  logger?: Logger;
  retryMs?: number;
  attemptsMax?: number;
  /**
   * Sign every NOTIFY with this key (RFC 8945 §5.1; the transfer key of `dns serve --tsig-key-file`),
   * for secondaries that accept NOTIFY only signed (Knot's acl with `key`, BIND's allow-notify { key … }).
   * A response must then verify against it; one that does not is ignored (a forged response cannot end the retries).
   */
  tsigKey?: TsigKey;
}

export interface NotifyStats {
  sent: number;
  retried: number;
  acknowledged: number;
  failed: number;
}

interface Pending {
  id: number;
  origin: string;
  serial: number;
  target: Endpoint;
  message: Buffer;
  attempts: number;
  timer: Timer | undefined;
  /** The MAC of the last signed attempt: its response's MAC covers it (RFC 8945 §5.3). */
  requestMac: Buffer | undefined;
}

/** RFC 1996 §3.7: opcode NOTIFY, AA, the zone's SOA as the question and (a hint) in the answer. */
export function notifyMessage(id: number, version: ZoneVersion): Buffer {
  const writer = new MessageWriter();
  writer.u16(id);
  writer.bytes([(OPCODE.NOTIFY << 3) | 0x04, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
  const origin = version.content.origin;
  writer.knownName(origin, writer.length);
  writer.bytes(encodeName(origin));
  writer.u16(TYPE.SOA);
  writer.u16(CLASS_IN);
  const soa = soaOf(version);
  writer.record(soa.name, soa.data, soa.ttl);
  return writer.toBuffer();
}

export class Notifier {
  readonly stats: NotifyStats = { sent: 0, retried: 0, acknowledged: 0, failed: 0 };
  private socket: dgram.Socket | undefined;
  /** By zone + target: a newer serial replaces an older NOTIFY still being retried. */
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly options: NotifierOptions) {}

  async start(): Promise<void> {
    const address = this.options.sourceAddress;
    const socket = dgram.createSocket(address !== undefined && isIP(address) === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (error) => this.options.logger?.warn({ err: error }, 'dns: notify socket error'));
    socket.on('message', (message, remote) => this.response(message, remote.address, remote.port));
    this.socket = socket;
  }

  /** Sends NOTIFY for each zone version to every secondary (a LiveZones change listener). */
  notify(versions: readonly ZoneVersion[]): void {
    if (!this.socket) return;
    for (const version of versions) {
      for (const target of this.options.secondaries()) {
        const key = `${version.content.origin}\n${target.address}\n${target.port}`;
        this.pending.get(key)?.timer?.cancel();
        const id = Math.floor(this.options.random() * 0x10000) & 0xffff;
        const entry: Pending = { id, origin: version.content.origin, serial: version.serial, target, message: notifyMessage(id, version), attempts: 0, timer: undefined, requestMac: undefined };
        this.pending.set(key, entry);
        this.send(key, entry);
      }
    }
  }

  private send(key: string, entry: Pending): void {
    entry.attempts++;
    if (entry.attempts > 1) this.stats.retried++;
    this.stats.sent++;
    let message = entry.message;
    const tsigKey = this.options.tsigKey;
    if (tsigKey) {
      // Signed afresh on each attempt: the time signed must be within the fudge when it arrives.
      const signed = sign(entry.message, tsigKey, Math.floor(this.options.clock.nowMs() / 1000));
      message = signed.message;
      entry.requestMac = signed.mac;
    }
    this.socket?.send(message, entry.target.port, entry.target.address);
    const retryMs = (this.options.retryMs ?? limits.dnsNotifyRetryMs) * 2 ** (entry.attempts - 1);
    entry.timer = this.options.clock.setTimer(retryMs, () => {
      if (this.pending.get(key) !== entry) return;
      if (entry.attempts >= (this.options.attemptsMax ?? limits.dnsNotifyAttemptsMax)) {
        this.pending.delete(key);
        this.stats.failed++;
        this.options.logger?.warn({ zone: entry.origin, serial: entry.serial, secondary: entry.target }, 'dns: NOTIFY not acknowledged; giving up');
        return;
      }
      this.send(key, entry);
    });
  }

  /** RFC 1996 §4.7: the secondary's response has QR, opcode NOTIFY and our ID; it ends the retries. */
  private response(message: Buffer, address: string, port: number): void {
    if (message.length < 12 || (message[2]! & 0x80) === 0 || ((message[2]! >> 3) & 0x0f) !== OPCODE.NOTIFY) return;
    const id = message.readUInt16BE(0);
    for (const [pendingKey, entry] of this.pending) {
      if (entry.id !== id || entry.target.port !== port || entry.target.address !== address) continue;
      const key = this.options.tsigKey;
      if (key && entry.requestMac) {
        const tsig = findTsig(message);
        if (tsig && tsig.error !== 0) {
          // The secondary refused our signature (unsigned answer, RFC 8945 §5.2): retrying will not help.
          entry.timer?.cancel();
          this.pending.delete(pendingKey);
          this.stats.failed++;
          this.options.logger?.warn({ zone: entry.origin, secondary: entry.target, tsigError: TSIG_ERRORS[tsig.error] ?? tsig.error }, 'dns: secondary refused the NOTIFY\'s TSIG signature');
          return;
        }
        try {
          new ResponseVerifier(key, entry.requestMac, () => Math.floor(this.options.clock.nowMs() / 1000)).verify(message);
        } catch (error) {
          this.options.logger?.warn({ zone: entry.origin, secondary: entry.target, err: error }, 'dns: NOTIFY response does not verify; ignored, still retrying');
          return;
        }
      }
      entry.timer?.cancel();
      this.pending.delete(pendingKey);
      const rcode = message[3]! & 0x0f;
      if (rcode === 0) this.stats.acknowledged++;
      else {
        this.stats.failed++;
        this.options.logger?.warn({ zone: entry.origin, secondary: entry.target, rcode }, 'dns: secondary refused NOTIFY');
      }
      return;
    }
  }

  /** NOTIFYs still waiting for a response. */
  get outstanding(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    for (const entry of this.pending.values()) entry.timer?.cancel();
    this.pending.clear();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/**
 * The SOA serial `target` serves for `origin` (one UDP query, RFC 1035), or undefined when it does
 * not answer within `timeoutMs` or has no SOA for it. A restarted primary asks its secondaries so
 * that it never serves a serial below theirs (LiveZones.serveAbove).
 */
export async function secondarySerial(target: Endpoint, origin: string, options: { sourceAddress?: string; timeoutMs?: number; random?: Random } = {}): Promise<number | undefined> {
  const family = isIP(target.address) === 6 ? 'udp6' : 'udp4';
  const socket = dgram.createSocket(family);
  const id = Math.floor((options.random ?? systemRandom)() * 0x10000);
  const query = new MessageWriter();
  query.u16(id);
  query.bytes([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // QUERY, no flags, one question
  query.bytes(encodeName(origin));
  query.u16(TYPE.SOA);
  query.u16(CLASS_IN);
  try {
    return await new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), options.timeoutMs ?? limits.dnsSecondarySerialTimeoutMs);
      socket.on('error', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      socket.on('message', (message) => {
        const serial = soaSerialOf(message, id);
        if (serial === 'ignore') return;
        clearTimeout(timer);
        resolve(serial);
      });
      const sourceFamily = options.sourceAddress === undefined ? 0 : isIP(options.sourceAddress);
      const send = (): void => socket.send(query.toBuffer(), target.port, target.address);
      if (options.sourceAddress !== undefined && sourceFamily === (family === 'udp6' ? 6 : 4)) socket.bind(0, options.sourceAddress, send);
      else send();
    });
  } finally {
    socket.close();
  }
}

/** The serial of the first SOA in the answer section of a response with `id`; 'ignore' for someone else's packet. */
function soaSerialOf(message: Buffer, id: number): number | undefined | 'ignore' {
  if (message.length < 12 || message.readUInt16BE(0) !== id || (message[2]! & 0x80) === 0) return 'ignore';
  if ((message[3]! & 0x0f) !== 0 || message.readUInt16BE(6) === 0) return undefined;
  let at = skipName(message, 12, message.length);
  if (at < 0 || at + 4 > message.length) return undefined;
  at += 4;
  at = skipName(message, at, message.length);
  if (at < 0 || at + 10 > message.length || message.readUInt16BE(at) !== TYPE.SOA) return undefined;
  const rdataEnd = at + 10 + message.readUInt16BE(at + 8);
  let r = skipName(message, at + 10, rdataEnd);
  r = r < 0 ? -1 : skipName(message, r, rdataEnd);
  if (r < 0 || r + 4 > rdataEnd || rdataEnd > message.length) return undefined;
  return message.readUInt32BE(r);
}
