// Connect-with-failover against real sockets on loopback: refused, silently dropped (timeout), legacy, staggered.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { blackhole } from '../../test/helpers/blackhole.ts';
import { isDnslbError } from '../shared/errors.ts';
import { connectWithFailover, type Attempt } from './connect.ts';

const LISTENING = '127.0.9.21';
const REFUSING = '127.0.9.22';
const DROPPING = '127.0.9.23';

describe('connectWithFailover', () => {
  let server: Server;
  let port = 0;
  let unblackhole: () => Promise<void> = async () => {};

  before(async () => {
    server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, LISTENING, resolve));
    port = (server.address() as { port: number }).port;
    unblackhole = await blackhole(DROPPING);
  });
  after(async () => {
    await unblackhole();
    await new Promise((resolve) => server.close(resolve));
  });

  const endpoint = (address: string) => ({ address, port, transport: 'tcp' as const });
  const outcomes = (attempts: Attempt[]) => attempts.map((attempt) => `${attempt.endpoint.address} ${attempt.outcome}`);

  test('modern: a refused address is skipped at once and the next one connects', async () => {
    const connected = await connectWithFailover([endpoint(REFUSING), endpoint(LISTENING)]);
    connected.socket.destroy();
    assert.equal(connected.endpoint.address, LISTENING);
    assert.deepEqual(outcomes(connected.attempts), [`${REFUSING} refused`, `${LISTENING} connected`]);
  });

  test('modern: a host that drops packets times out, then the next one connects', async () => {
    const connected = await connectWithFailover([endpoint(DROPPING), endpoint(LISTENING)], { connectTimeoutMs: 300 });
    connected.socket.destroy();
    assert.deepEqual(outcomes(connected.attempts), [`${DROPPING} timeout`, `${LISTENING} connected`]);
  });

  test('modern, staggered: the second attempt starts while the first is pending and wins', async () => {
    const connected = await connectWithFailover([endpoint(DROPPING), endpoint(LISTENING)], { connectTimeoutMs: 10_000, staggered: true, staggerDelayMs: 50 });
    connected.socket.destroy();
    // The dropped attempt never finished: it was abandoned when the second connected, not timed out.
    assert.deepEqual(outcomes(connected.attempts), [`${DROPPING} abandoned`, `${LISTENING} connected`]);
  });

  test('legacy: only the first address is tried, so a dead first server means failure', async () => {
    await assert.rejects(connectWithFailover([endpoint(REFUSING), endpoint(LISTENING)], { mode: 'legacy' }), (error: unknown) => {
      assert.ok(isDnslbError(error, 'CLIENT_CONNECT'));
      assert.match(error.message, /legacy/);
      assert.deepEqual(outcomes((error as unknown as { attempts: Attempt[] }).attempts), [`${REFUSING} refused`]);
      return true;
    });
    const connected = await connectWithFailover([endpoint(LISTENING), endpoint(REFUSING)], { mode: 'legacy' });
    connected.socket.destroy();
    assert.equal(connected.attempts.length, 1);
  });

  test('every address failing rejects with each attempt named', async () => {
    await assert.rejects(connectWithFailover([endpoint(REFUSING), endpoint(DROPPING)], { connectTimeoutMs: 200 }), /127\.0\.9\.22:\d+ refused, 127\.0\.9\.23:\d+ timeout/);
    await assert.rejects(connectWithFailover([]), /no address/);
  });
});
