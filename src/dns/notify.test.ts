// NOTIFY (RFC 1996) over real UDP sockets with a FakeClock: the message format, retries with a
// doubling interval, the end of retries on the secondary's response, and giving up.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import { Notifier } from './notify.ts';
import { checkRequest, findTsig, parseTsigKey, ResponseSigner, tsigErrorResponse } from './tsig.ts';
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

  test('with a TSIG key: every attempt signed afresh; an unsigned or forged response is ignored, a signed one ends the retries; a TSIG error gives up', async () => {
    const clock = new FakeClock();
    const key = parseTsigKey('xfr-key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==');
    const keys = new Map([[key.name, key]]);
    const nowS = (): number => Math.floor(clock.nowMs() / 1000);
    const peer = await secondary();
    const notifier = new Notifier({ secondaries: () => [{ address: '127.0.7.20', port: peer.port }], clock, random: seededRandom(5), retryMs: 1000, attemptsMax: 4, tsigKey: key });
    await notifier.start();
    notifier.notify([version]);
    const first = await peer.next();
    const check = checkRequest(first.message, keys, nowS());
    assert.equal(check.kind, 'ok', 'the secondary verifies our signature with the shared key');
    clock.advance(1000);
    const retry = await peer.next();
    assert.notDeepEqual(findTsig(retry.message)?.mac, findTsig(first.message)?.mac, 'signed again at the retry');
    const retryTsig = findTsig(retry.message);
    assert.ok(retryTsig && checkRequest(retry.message, keys, nowS()).kind === 'ok');
    const answer = Buffer.from(retryTsig.unsigned);
    answer[2] = answer[2]! | 0x80;
    // Unsigned, and signed with the wrong key: ignored, the retries go on.
    peer.socket.send(answer, retry.port, retry.address);
    const wrongKey = parseTsigKey(`xfr-key:hmac-sha256:${Buffer.from('not the secret at all').toString('base64')}`);
    peer.socket.send(new ResponseSigner(wrongKey, retryTsig.mac, nowS).sign(answer), retry.port, retry.address);
    clock.advance(2000);
    const third = await peer.next();
    assert.equal(notifier.stats.acknowledged, 0);
    const thirdTsig = findTsig(third.message);
    assert.ok(thirdTsig);
    const unsignedThird = Buffer.from(thirdTsig.unsigned);
    unsignedThird[2] = unsignedThird[2]! | 0x80;
    peer.socket.send(new ResponseSigner(key, thirdTsig.mac, nowS).sign(unsignedThird), third.port, third.address);
    while (notifier.outstanding > 0) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(notifier.stats.acknowledged, 1);

    // A secondary that does not know the key answers NOTAUTH with BADKEY: no point retrying.
    notifier.notify([version]);
    const next = await peer.next();
    const nextTsig = findTsig(next.message);
    assert.ok(nextTsig);
    const refused = Buffer.from(nextTsig.unsigned);
    refused[2] = refused[2]! | 0x80;
    refused[3] = (refused[3]! & 0xf0) | 9; // NOTAUTH
    peer.socket.send(tsigErrorResponse(refused, { kind: 'bad', error: 17, tsig: nextTsig }, nowS()), next.port, next.address);
    while (notifier.outstanding > 0) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(notifier.stats.failed, 1);
    await notifier.close();
    peer.socket.close();
  });
});
