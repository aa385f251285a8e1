// Federation peer profiles against real SIP listeners on loopback: an "Access Edge" that answers 200, one
// that answers 503, one that answers 403, and an address where nothing listens (connection refused).
// The locator stands in for DNS (the lookup itself is tested in discover.test.ts and
// src/frontend/federation.test.ts): it returns the addresses in the order a test chooses.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../shared/clock.ts';
import { SipTransport } from '../sip/transport.ts';
import type { SipRequest } from '../sip/message.ts';
import { createResponse } from '../sip/message.ts';
import { seededRandom } from '../../test/helpers/seeded-random.ts';
import type { Discovery } from './discover.ts';
import { FederationPeer, type PeerProfile } from './federation-peer.ts';

const OK = '127.0.19.11';
const BUSY = '127.0.19.12';
const FORBIDS = '127.0.19.14';
/** Nothing listens here. */
const DEAD = '127.0.19.13';
const PEER_ADDRESS = '127.0.19.60';

/** A locator whose answer the test sets, counting its lookups and forgets. */
class ScriptedLocator {
  order: string[] = [];
  lookups = 0;
  forgets = 0;
  constructor(private readonly port: number) {}
  async discover(domain: string): Promise<Discovery> {
    this.lookups++;
    const endpoints = this.order.map((address) => ({ address, port: this.port, transport: 'tcp' as const, host: 'sip.contoso.com' }));
    return { domain, via: `_sipfederationtls._tcp.${domain} SRV`, targets: [], endpoints, steps: [], expiresAtMs: Number.MAX_SAFE_INTEGER };
  }
  forget(): void {
    this.forgets++;
  }
}

describe('FederationPeer profiles', () => {
  const transports: SipTransport[] = [];
  const received = new Map<string, number>();
  let port = 0;

  before(async () => {
    const answers: Record<string, number> = { [OK]: 200, [BUSY]: 503, [FORBIDS]: 403 };
    // One port for all: the first listener picks it, the others take the same on their own address.
    for (const address of [OK, BUSY, FORBIDS]) {
      const transport = new SipTransport({ clock: systemClock, random: seededRandom(1) });
      const bound = await transport.listen({ transport: 'tcp', host: address, port });
      port = bound.port;
      transport.on('message', (flow, message) => {
        if (message.kind !== 'request') return;
        received.set(address, (received.get(address) ?? 0) + 1);
        flow.send(createResponse(message as SipRequest, answers[address]!, { toTag: 'edge' }));
      });
      transports.push(transport);
    }
  });
  after(async () => {
    for (const transport of transports) await transport.close();
  });

  const peer = (profile: PeerProfile, locator: ScriptedLocator, triesMax?: number): FederationPeer =>
    new FederationPeer({ profile, from: 'sip:bob@fabrikam.com', locator, connect: { localAddress: PEER_ADDRESS, connectTimeoutMs: 2000 }, clock: systemClock, random: seededRandom(7), ...(triesMax ? { triesMax } : {}) });

  test('a modern partner walks on past a refused connection and a 503 to the edge that answers', async () => {
    const locator = new ScriptedLocator(port);
    locator.order = [DEAD, BUSY, OK];
    const modern = peer('federation', locator);
    const result = await modern.message('sip:alice@contoso.com');
    modern.close();
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.first, `${DEAD}:${port}`);
    assert.deepEqual(
      result.tries.map((entry) => [entry.endpoint.split(':')[0], entry.outcome.split(' ')[0]]),
      [
        [DEAD, 'connect'],
        [BUSY, '503'],
        [OK, '200'],
      ],
    );
  });

  test('triesMax bounds the walk; a final answer other than 503 ends it', async () => {
    const locator = new ScriptedLocator(port);
    locator.order = [DEAD, BUSY, OK];
    const bounded = peer('federation', locator, 2);
    const result = await bounded.message('sip:alice@contoso.com');
    assert.equal(result.ok, false);
    assert.equal(result.status, 503);
    assert.equal(result.tries.length, 2);
    assert.equal(locator.forgets, 1, 'a walk that found nothing asks DNS again next time');
    locator.order = [FORBIDS, OK];
    const forbidden = await bounded.message('sip:alice@contoso.com');
    bounded.close();
    assert.deepEqual([forbidden.status, forbidden.tries.length], [403, 1]);
  });

  for (const profile of ['legacy-federation', 'xmpp-gateway'] as const) {
    test(`${profile}: only the first address it ever resolved, never another`, async () => {
      const locator = new ScriptedLocator(port);
      locator.order = [DEAD, OK];
      const legacy = peer(profile, locator);
      const first = await legacy.message('sip:alice@contoso.com');
      assert.deepEqual([first.ok, first.status, first.tries.length, first.first], [false, null, 1, `${DEAD}:${port}`]);
      assert.match(first.outcome, /^connect refused/);
      // DNS now puts the live edge first: the pinned peer does not even ask.
      locator.order = [OK, DEAD];
      const again = await legacy.message('sip:alice@contoso.com');
      assert.deepEqual([again.ok, again.first], [false, `${DEAD}:${port}`]);
      assert.equal(locator.lookups, 1);
      legacy.close();

      const lucky = new ScriptedLocator(port);
      lucky.order = [OK, DEAD];
      const fine = peer(profile, lucky);
      const results = [await fine.message('sip:alice@contoso.com'), await fine.message('sip:carol@contoso.com')];
      fine.close();
      assert.deepEqual(
        results.map((result) => [result.ok, result.first]),
        [
          [true, `${OK}:${port}`],
          [true, `${OK}:${port}`],
        ],
      );
    });
  }

  test('requests share one connection per Access Edge address, from the partner\'s own address', async () => {
    const locator = new ScriptedLocator(port);
    locator.order = [OK];
    const accepted = transports[0]!.stats().connectionsAccepted;
    const modern = peer('federation', locator);
    const results = await Promise.all([1, 2, 3].map((n) => modern.message(`sip:user${n}@contoso.com`)));
    modern.close();
    assert.ok(results.every((result) => result.ok));
    assert.equal(transports[0]!.stats().connectionsAccepted - accepted, 1);
  });

  test('no Access Edge in DNS is a failed request that says so, not an exception', async () => {
    const empty = new ScriptedLocator(port);
    const result = await peer('federation', empty).message('sip:alice@contoso.com');
    assert.deepEqual([result.ok, result.first], [false, null]);
    assert.match(result.outcome, /^no Access Edge/);
  });
});
