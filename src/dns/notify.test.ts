// NOTIFY (RFC 1996) over real UDP sockets with a FakeClock: the message format, retries with a
// doubling interval, the end of retries on the secondary's response, and giving up.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { Notifier } from './notify.ts';
import type { ZoneVersion } from './zone.ts';

const version: ZoneVersion = {
  serial: 1_700_000_123,
  content: { origin: 'contoso.com', soa: { mname: 'dns1.contoso.com', rname: 'hostmaster.contoso.com', refresh: 3600, retry: 600, expire: 604_800, minimum: 60 }, views: new Map() },
  fingerprint: '',
};

async function secondary(): Promise<{ socket: dgram.Socket; port: number; next(): Promise<{ message: Buffer; port: number; address: string }> }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.7.20', resolve));
  const queue: { message: Buffer; port: number; address: string }[] = [];
  const waiters: ((item: { message: Buffer; port: number; address: string }) => void)[] = [];
  socket.on('message', (message, remote) => {
    const item = { message, port: remote.port, address: remote.address };
    const waiter = waiters.shift();
    if (waiter) waiter(item);
    else queue.push(item);
  });
  return { socket, port: socket.address().port, next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiters.push(resolve))) };
}

describe('Notifier', () => {
  test('sends NOTIFY from the source address; the response ends the retries', async () => {
    const clock = new FakeClock();
    const peer = await secondary();
    const notifier = new Notifier({ secondaries: () => [{ address: '127.0.7.20', port: peer.port }], sourceAddress: '127.0.7.21', clock, random: seededRandom(3), retryMs: 1000, attemptsMax: 4 });
    await notifier.start();
    notifier.notify([version]);
    const first = await peer.next();
    assert.equal(first.address, '127.0.7.21');
    const decoded = dnsPacket.decode(first.message);
    assert.equal((decoded as { opcode?: string }).opcode, 'NOTIFY');
    assert.ok(decoded.flags! & dnsPacket.AUTHORITATIVE_ANSWER);
    assert.deepEqual(decoded.questions, [{ name: 'contoso.com', type: 'SOA', class: 'IN' }]);
    assert.equal(decoded.answers?.[0]?.type === 'SOA' && decoded.answers[0].data.serial, version.serial);
    // No response yet: a retry after 1 s with the same ID.
    clock.advance(1000);
    const retry = await peer.next();
    assert.equal(dnsPacket.decode(retry.message).id, decoded.id);
    assert.equal(notifier.stats.retried, 1);
    // RFC 1996 §4.7: the response (QR, opcode NOTIFY, same ID) stops the retries.
    const response = Buffer.from(first.message.subarray(0, first.message.length));
    response[2] = response[2]! | 0x80;
    peer.socket.send(response, first.port, first.address);
    while (notifier.outstanding > 0) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(notifier.stats.acknowledged, 1);
    clock.advance(60_000);
    assert.equal(notifier.stats.sent, 2);
    await notifier.close();
    peer.socket.close();
  });

  test('without a response: retries at 1, 2, 4 s (doubling), then gives up', async () => {
    const clock = new FakeClock();
    const peer = await secondary();
    const notifier = new Notifier({ secondaries: () => [{ address: '127.0.7.20', port: peer.port }], clock, random: seededRandom(4), retryMs: 1000, attemptsMax: 4 });
    await notifier.start();
    notifier.notify([version]);
    await peer.next();
    const sentAt: number[] = [];
    for (const step of [999, 1, 1999, 1, 3999, 1]) {
      const before = notifier.stats.sent;
      clock.advance(step);
      if (notifier.stats.sent > before) {
        sentAt.push(step);
        await peer.next();
      }
    }
    assert.deepEqual(sentAt, [1, 1, 1], 'a retry exactly at 1 s, 1+2 s and 1+2+4 s, none earlier');
    clock.advance(8000);
    assert.equal(notifier.stats.failed, 1);
    assert.equal(notifier.outstanding, 0);
    assert.equal(notifier.stats.sent, 4);
    await notifier.close();
    peer.socket.close();
  });
});
