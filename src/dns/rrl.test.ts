// Response rate limiting (rrl.ts): the bucket per source prefix, slip, the IPv6 prefix, the
// truncated form of a response, and DnsServer answering through it (clock injected).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { ipv6PrefixHash, ResponseRateLimiter, RRL_ANSWER, RRL_DROP, RRL_SLIP, truncateInto, type RateLimitSettings, type RateLimitVerdict } from './rrl.ts';

const ip = (text: string): number => text.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
const settings = (more: Partial<RateLimitSettings> = {}): RateLimitSettings => ({ responsesPerSecond: 10, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56, ...more });

function tally(limiter: ResponseRateLimiter, source: number | string, count: number, nowMs: number): Record<RateLimitVerdict, number> {
  const out: Record<RateLimitVerdict, number> = { [RRL_ANSWER]: 0, [RRL_SLIP]: 0, [RRL_DROP]: 0 };
  for (let i = 0; i < count; i++) out[limiter.decide(source, nowMs)]++;
  return out;
}

describe('ResponseRateLimiter', () => {
  test('a source prefix gets responsesPerSecond answers a second; past it every slip-th is truncated, the rest dropped', () => {
    const limiter = new ResponseRateLimiter(settings());
    assert.deepEqual(tally(limiter, ip('10.0.0.1'), 100, 0), { [RRL_ANSWER]: 10, [RRL_SLIP]: 45, [RRL_DROP]: 45 });
    // Half a second later: five more answers (the bucket refills at the rate, never above one second's worth).
    assert.deepEqual(tally(limiter, ip('10.0.0.1'), 10, 500)[RRL_ANSWER], 5);
    assert.deepEqual(tally(limiter, ip('10.0.0.1'), 100, 60_500)[RRL_ANSWER], 10);
  });

  test('the prefix is the unit: the same /24 shares a bucket, another /24 has its own', () => {
    const limiter = new ResponseRateLimiter(settings({ slip: 0 }));
    assert.equal(tally(limiter, ip('10.0.0.1'), 10, 0)[RRL_ANSWER], 10);
    assert.equal(tally(limiter, ip('10.0.0.200'), 10, 0)[RRL_ANSWER], 0, 'same /24');
    assert.deepEqual(tally(limiter, ip('10.0.1.1'), 10, 0), { [RRL_ANSWER]: 10, [RRL_SLIP]: 0, [RRL_DROP]: 0 });
    const hosts = new ResponseRateLimiter(settings({ ipv4PrefixLength: 32 }));
    assert.equal(tally(hosts, ip('10.0.0.1'), 10, 0)[RRL_ANSWER], 10);
    assert.equal(tally(hosts, ip('10.0.0.2'), 10, 0)[RRL_ANSWER], 10, '/32: each address its own');
  });

  test('slip 1 truncates every limited response; slip 0 drops them all', () => {
    assert.deepEqual(tally(new ResponseRateLimiter(settings({ slip: 1 })), ip('10.0.0.1'), 20, 0), { [RRL_ANSWER]: 10, [RRL_SLIP]: 10, [RRL_DROP]: 0 });
    assert.deepEqual(tally(new ResponseRateLimiter(settings({ slip: 0 })), ip('10.0.0.1'), 20, 0), { [RRL_ANSWER]: 10, [RRL_SLIP]: 0, [RRL_DROP]: 10 });
  });

  test('a share divides the rate (one of four workers)', () => {
    assert.equal(tally(new ResponseRateLimiter(settings({ responsesPerSecond: 100 }), 1 / 4), ip('10.0.0.1'), 100, 0)[RRL_ANSWER], 25);
  });

  test('IPv6: the /56 is the unit; "::" forms and case do not matter', () => {
    assert.equal(ipv6PrefixHash('fd00:0:0:1::1', 56), ipv6PrefixHash('FD00:0000:0000:00ff:ffff::9', 56));
    assert.notEqual(ipv6PrefixHash('fd00:0:0:100::1', 56), ipv6PrefixHash('fd00:0:0:1::1', 56));
    assert.equal(ipv6PrefixHash('::1', 128), ipv6PrefixHash('0:0:0:0:0:0:0:1', 128));
    assert.equal(ipv6PrefixHash('fe80::1%eth0', 64), ipv6PrefixHash('fe80::2', 64));
    const limiter = new ResponseRateLimiter(settings({ slip: 0 }));
    assert.equal(tally(limiter, 'fd00::1', 10, 0)[RRL_ANSWER], 10);
    assert.equal(tally(limiter, 'fd00::2', 10, 0)[RRL_ANSWER], 0);
    assert.equal(tally(limiter, ip('10.0.0.1'), 10, 0)[RRL_ANSWER], 10, 'IPv4 and IPv6 never share a bucket');
  });

  test('the table is bounded; prefixes that share a slot share its bucket, so alternating with a colliding prefix refills nothing', () => {
    // Four slots: 10.0.0.1 and the addresses after it (as /32s) must collide somewhere.
    const limiter = new ResponseRateLimiter(settings({ slip: 0, ipv4PrefixLength: 32 }), 1, 4);
    assert.equal(tally(limiter, ip('10.0.0.1'), 20, 0)[RRL_ANSWER], 10);
    for (let i = 2; i < 64; i++) limiter.decide(ip(`10.0.0.${i}`), 0);
    assert.equal(tally(limiter, ip('10.0.0.1'), 20, 0)[RRL_ANSWER], 0, 'its slot was taken over, not refilled');
    // The attack: spoofed queries for a victim, interleaved with ones from a prefix in the same slot.
    const table = new ResponseRateLimiter(settings({ slip: 0, responsesPerSecond: 5 }), 1, 4);
    const victim = ip('192.0.2.1');
    const sameSlot = [...Array(4096).keys()].map((i) => ip(`198.${51 + (i >> 8)}.${i & 255}.1`)).find((candidate) => {
      const probe = new ResponseRateLimiter(settings({ slip: 0, responsesPerSecond: 1 }), 1, 4);
      probe.decide(victim, 0);
      return probe.decide(candidate, 0) === RRL_DROP; // it found the victim's bucket empty: same slot
    });
    assert.ok(sameSlot !== undefined);
    let answered = 0;
    for (let i = 0; i < 1000; i++) {
      if (table.decide(victim, i) === RRL_ANSWER) answered++;
      table.decide(sameSlot, i);
    }
    assert.ok(answered <= 5 + 5, `the victim got ${answered} answers in one second at 5/s`);
  });
});

describe('truncateInto', () => {
  // ID 0x1234, QR AA RD, one question (a.example A), one answer, one OPT.
  const response = Buffer.concat([
    Buffer.from([0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 1]),
    Buffer.from([1, 97, 7, ...Buffer.from('example'), 0, 0, 1, 0, 1]),
    Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]),
    Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]),
  ]);

  test('TC set, header and question kept, no records', () => {
    const out = Buffer.alloc(100);
    response.copy(out, 7);
    const length = truncateInto(out, 7, response.length);
    assert.equal(length, 12 + 11 + 4);
    const truncated = out.subarray(7, 7 + length);
    assert.equal(truncated.readUInt16BE(0), 0x1234);
    assert.equal(truncated[2], 0x87, 'QR AA TC RD');
    assert.deepEqual([...truncated.subarray(4, 12)], [0, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(truncated.subarray(12), response.subarray(12, 27));
  });

  test('a response without one well-formed question keeps its header only', () => {
    const out = Buffer.from(response);
    out.writeUInt16BE(0, 4);
    assert.equal(truncateInto(out, 0, response.length), 12);
    const broken = Buffer.from(response.subarray(0, 16));
    assert.equal(truncateInto(broken, 0, broken.length), 12);
    assert.equal(broken.readUInt16BE(4), 0);
  });
});

test('FakeClock drives the refill as the server passes it', () => {
  const clock = new FakeClock();
  const limiter = new ResponseRateLimiter(settings({ slip: 0 }));
  assert.equal(tally(limiter, ip('10.0.0.1'), 20, clock.nowMs())[RRL_ANSWER], 10);
  clock.advance(1000);
  assert.equal(tally(limiter, ip('10.0.0.1'), 20, clock.nowMs())[RRL_ANSWER], 10);
});
