// The user agent's timing and ordering rules, as tables: RFC 5626 §4.5 back-off, refresh, keep-alive, redirect order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseContact } from '../sip/headers.ts';
import { backoffDelayMs, keepAliveDelayMs, orderRedirectContacts, refreshDelayMs } from './registration.ts';

const RFC = { backoffBaseMs: 30_000, backoffMaxMs: 1_800_000 };

test('back-off follows RFC 5626 §4.5: min(max, base × 2^n), then 50–100 % of it', () => {
  const table: [failures: number, random: number, expectedMs: number][] = [
    [0, 0.999999, 30_000],
    [1, 0, 30_000], // 60 s × 50 %
    [1, 0.999999, 60_000],
    [2, 0.5, 90_000], // 120 s × 75 %
    [5, 0.999999, 960_000],
    [6, 0.999999, 1_799_999], // 1920 s capped at 1800 s (× 0.9999995)
    [6, 0, 900_000],
    [2000, 0.5, 1_350_000], // 2^2000 is Infinity: still capped
  ];
  for (const [failures, random, expectedMs] of table) assert.equal(backoffDelayMs(failures, RFC, () => random), expectedMs, `n=${failures} r=${random}`);
});

test('back-off never exceeds max-time and never falls below half of its ceiling (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 0.9999, noNaN: true }), fc.integer({ min: 1, max: 100_000 }), (failures, random, baseMs) => {
      const options = { backoffBaseMs: baseMs, backoffMaxMs: 1_800_000 };
      const delayMs = backoffDelayMs(failures, options, () => random);
      const ceilingMs = Math.min(options.backoffMaxMs, baseMs * 2 ** failures);
      return delayMs <= options.backoffMaxMs && delayMs >= Math.floor(ceilingMs / 2);
    }),
  );
});

test('refresh a minute before expiry, or halfway for short registrations', () => {
  const table: [grantedS: number, expectedMs: number][] = [
    [3600, 3_540_000],
    [600, 540_000],
    [120, 60_000],
    [119, 59_500],
    [60, 30_000],
    [1, 500],
  ];
  for (const [grantedS, expectedMs] of table) assert.equal(refreshDelayMs(grantedS), expectedMs, `granted ${grantedS} s`);
});

test('keep-alive interval is 80–100 % of the configured one (RFC 5626 §4.4.1)', () => {
  assert.equal(keepAliveDelayMs(30_000, () => 0), 24_000);
  assert.equal(keepAliveDelayMs(30_000, () => 0.5), 27_000);
  assert.equal(keepAliveDelayMs(30_000, () => 0.999999), 30_000);
});

test('redirect Contacts are tried highest q first; no q is 1.0; ties keep the server order', () => {
  const list = ['<sip:a.test>;q=0.3', '<sip:b.test>;q=0.7', '<sip:c.test>', '<sip:d.test>;q=0.7'].map(parseContact);
  assert.deepEqual(
    orderRedirectContacts(list).map((contact) => (contact.uri as { host: string }).host),
    ['c.test', 'b.test', 'd.test', 'a.test'],
  );
});
