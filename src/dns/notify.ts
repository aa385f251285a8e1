// NOTIFY (RFC 1996) to the secondaries on every serial change: one UDP message per zone and
// secondary, retried with a doubling interval until the secondary answers or the attempts run out.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Clock, Random, Timer } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';
import type { Endpoint } from '../topology/schema.ts';
import { CLASS_IN, encodeName, MessageWriter, OPCODE, TYPE } from './wire.ts';
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
        const entry: Pending = { id, origin: version.content.origin, serial: version.serial, target, message: notifyMessage(id, version), attempts: 0, timer: undefined };
        this.pending.set(key, entry);
        this.send(key, entry);
      }
    }
  }

  private send(key: string, entry: Pending): void {
    entry.attempts++;
    if (entry.attempts > 1) this.stats.retried++;
    this.stats.sent++;
    this.socket?.send(entry.message, entry.target.port, entry.target.address);
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
    for (const [key, entry] of this.pending) {
      if (entry.id !== id || entry.target.port !== port || entry.target.address !== address) continue;
      entry.timer?.cancel();
      this.pending.delete(key);
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
