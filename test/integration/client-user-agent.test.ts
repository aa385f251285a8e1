// The UserAgent against real peers over TCP on 127.0.8.x: sipp registrars (200 with
// X-Registrar-Mode, 301 with q-valued Contacts, reg event deactivated, calls in both directions,
// CANCEL, a server that goes away), a blackholed address, and — only for the CRLF pong, which
// sipp does not send — a tiny responder built on src/sip/transport.ts.
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Call } from '../../src/client/call.ts';
import type { Endpoint } from '../../src/client/connect.ts';
import type { Discovery } from '../../src/client/discover.ts';
import { UserAgent, type Locator, type UserAgentOptions } from '../../src/client/user-agent.ts';
import { createResponse } from '../../src/sip/message.ts';
import { SipTransport } from '../../src/sip/transport.ts';
import { blackhole } from '../helpers/blackhole.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { stopAll } from '../helpers/process.ts';
import { freePortOn, startSipp, type Sipp } from '../helpers/sipp.ts';

/** Resolves when the user agent's SUBSCRIBE to its own reg event has been answered 2xx. */
function subscribedTo(ua: { on(event: 'trace', listener: (line: string) => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    ua.on('trace', (line: string) => {
      if (/^SUBSCRIBE reg → .*: 2\d\d /.test(line)) resolve();
    });
  });
}

const A = (n: number) => `127.0.8.${n}`;

/** Discovery is tested elsewhere (discover.test.ts, client-simulate.test.ts): here the pool is a fixed list. */
function staticLocator(endpoints: Endpoint[]): Locator {
  return {
    async discover(): Promise<Discovery> {
      return { domain: 'contoso.com', via: 'static', targets: [], steps: [], expiresAtMs: 0, endpoints: endpoints.map((e) => ({ ...e, host: e.address })) };
    },
    forget() {},
    async resolveHost(host: string) {
      throw new Error(`no DNS here for ${host}`);
    },
  };
}

const agents: UserAgent[] = [];
function agent(endpoints: Endpoint[], options: Partial<UserAgentOptions> = {}): UserAgent {
  const ua = new UserAgent({ aor: 'sip:alice@contoso.com', locator: staticLocator(endpoints), keepAliveIntervalMs: 600_000, backoffBaseMs: 60_000, ...options });
  agents.push(ua);
  return ua;
}

/** The next event of that name whose payload passes `accept` (a hung test fails by the runner's timeout). */
async function next<T>(emitter: EventEmitter, event: string, accept: (value: T) => boolean = () => true): Promise<T> {
  for (;;) {
    const [value] = (await once(emitter, event)) as [T];
    if (accept(value)) return value;
  }
}

async function exitCode(sipp: Sipp): Promise<number | null> {
  if (sipp.process.child.exitCode === null) await once(sipp.process.child, 'exit');
  return sipp.process.child.exitCode;
}

after(async () => {
  await Promise.all(agents.map((ua) => ua.stop({ unregisterTimeoutMs: 200 })));
  await stopAll();
});

const tcp = (address: string, port: number): Endpoint => ({ address, port, transport: 'tcp' });

describe('UserAgent registration', () => {
  test('follows a 301 to the highest-q Contact and reports the mode from X-Registrar-Mode', async () => {
    const port = await freePortOn([A(21), A(22), A(23)]);
    await startSipp({ scenario: 'redirect.xml', address: A(21), port, set: { low: `${A(22)}:${port}`, high: `${A(23)}:${port}` } });
    await startSipp({ scenario: 'registrar.xml', address: A(22), port, set: { mode: 'primary', expires: '600' } });
    await startSipp({ scenario: 'registrar.xml', address: A(23), port, set: { mode: 'backup', expires: '300' } });
    const ua = agent([tcp(A(21), port)]);
    const registered = next<{ server: string; mode: string; redirects: number; grantedS: number }>(ua, 'registered');
    await ua.start();
    const info = await registered;
    assert.deepEqual({ server: info.server, mode: info.mode, redirects: info.redirects, grantedS: info.grantedS }, { server: `${A(23)}:${port}`, mode: 'backup', redirects: 1, grantedS: 300 });
    assert.equal(ua.state, 'registered');
  });

  test('a redirect Contact with maddr is reached at that address, with no DNS question for its host', async () => {
    const port = await freePortOn([A(43), A(44), A(45)]);
    // The Front Ends' 301: the server's FQDN with its address in maddr (the locator here has no DNS: it would throw).
    await startSipp({ scenario: 'redirect.xml', address: A(43), port, set: { low: `fe5.contoso.com:${port};maddr=${A(45)}`, high: `fe4.contoso.com:${port};maddr=${A(44)}` } });
    await startSipp({ scenario: 'registrar.xml', address: A(44), port, set: { mode: 'primary', expires: '600' } });
    const ua = agent([tcp(A(43), port)], { subscribeRegEvent: false });
    const traces: string[] = [];
    ua.on('trace', (line) => traces.push(line));
    await ua.start();
    assert.equal(ua.server, `${A(44)}:${port}`, traces.join('\n'));
    assert.equal(ua.stats.redirects, 1);
    assert.ok(!traces.some((line) => /no DNS here/.test(line)), traces.join('\n'));
  });

  test('after 2 redirects it stops following and tries the next address (no redirect loop)', async () => {
    const port = await freePortOn([A(24), A(25), A(26)]);
    // 24 and 25 send the client to each other forever.
    await startSipp({ scenario: 'redirect.xml', address: A(24), port, set: { low: `${A(25)}:${port}`, high: `${A(25)}:${port}` } });
    await startSipp({ scenario: 'redirect.xml', address: A(25), port, set: { low: `${A(24)}:${port}`, high: `${A(24)}:${port}` } });
    await startSipp({ scenario: 'registrar.xml', address: A(26), port, set: { mode: 'primary', expires: '600' } });
    const ua = agent([tcp(A(24), port), tcp(A(26), port)], { subscribeRegEvent: false });
    const traces: string[] = [];
    ua.on('trace', (line) => traces.push(line));
    await ua.start();
    assert.equal(ua.server, `${A(26)}:${port}`);
    assert.equal(ua.registrarMode, 'primary');
    assert.equal(ua.stats.redirects, 3, traces.join('\n'));
    assert.ok(traces.some((line) => /redirected the registration a 3th time; at most 2/.test(line)), traces.join('\n'));
  });

  test('a NOTIFY with our contact deactivated (RFC 3680) makes it REGISTER again at once', async () => {
    const port = await freePortOn([A(27)]);
    await startSipp({ scenario: 'notify-deactivated.xml', address: A(27), port });
    const ua = agent([tcp(A(27), port)]);
    const deactivated = next(ua, 'deactivated');
    await ua.start();
    await deactivated;
    await next<{ refresh: boolean }>(ua, 'registered');
    assert.equal(ua.stats.deactivations, 1);
    assert.equal(ua.stats.registrations, 2);
  });

  test('when its server goes away, it re-registers on the next server and counts a failover', async () => {
    const port = await freePortOn([A(28), A(29)]);
    // sipp ends after one call (the REGISTER), closing the flow: the server is gone.
    const first = await startSipp({ scenario: 'registrar.xml', address: A(28), port, set: { mode: 'primary', expires: '600' }, calls: 1 });
    await startSipp({ scenario: 'registrar.xml', address: A(29), port, set: { mode: 'backup', expires: '600' } });
    const ua = agent([tcp(A(28), port), tcp(A(29), port)], { subscribeRegEvent: false });
    await ua.start();
    assert.equal(ua.server, `${A(28)}:${port}`);
    const failover = await next<{ server: string; mode: string; failover: boolean }>(ua, 'registered');
    assert.deepEqual({ server: failover.server, mode: failover.mode, failover: failover.failover }, { server: `${A(29)}:${port}`, mode: 'backup', failover: true });
    assert.deepEqual({ flowDeaths: ua.stats.flowDeaths, failovers: ua.stats.failovers }, { flowDeaths: 1, failovers: 1 });
    assert.equal(await exitCode(first), 0);
  });

  test('a flow whose pong does not come (sipp sends none) is dead, and the agent moves on', async () => {
    const port = await freePortOn([A(30), A(31)]);
    await startSipp({ scenario: 'registrar.xml', address: A(30), port, set: { mode: 'primary', expires: '600' } });
    await startSipp({ scenario: 'registrar.xml', address: A(31), port, set: { mode: 'primary', expires: '600' } });
    const ua = agent([tcp(A(30), port), tcp(A(31), port)], { subscribeRegEvent: false, keepAliveIntervalMs: 100, pongTimeoutMs: 100 });
    const dead = next<{ server: string; reason: string }>(ua, 'flowDead');
    await ua.start();
    assert.deepEqual(await dead, { server: `${A(30)}:${port}`, reason: 'no pong in 100 ms' });
    const moved = await next<{ server: string }>(ua, 'registered');
    assert.equal(moved.server, `${A(31)}:${port}`);
  });

  test('CRLF keep-alives that are answered keep the flow (tiny SipTransport responder: sipp sends no pong)', async () => {
    const server = new SipTransport();
    const { port } = await server.listen({ transport: 'tcp', host: A(32), port: 0 });
    server.on('message', (flow, message) => {
      if (message.kind === 'request') flow.send(createResponse(message, 200, { toTag: 'srv', headers: [{ name: 'X-Registrar-Mode', value: 'primary' }] }));
    });
    try {
      const ua = agent([tcp(A(32), port)], { subscribeRegEvent: false, keepAliveIntervalMs: 30, pongTimeoutMs: 2000 });
      await ua.start();
      while (server.stats().pingsAnswered < 5) await sleep(20);
      assert.equal(ua.state, 'registered');
      assert.equal(ua.stats.flowDeaths, 0);
      assert.equal(ua.registrarMode, 'primary');
    } finally {
      await server.close();
    }
  });

  test('a silent (blackholed) first server times out and the next one registers the user', async () => {
    const port = await freePortOn([A(33), A(34)]);
    await startSipp({ scenario: 'registrar.xml', address: A(34), port, set: { mode: 'primary', expires: '600' } });
    const unblackhole = await blackhole(A(33));
    try {
      const ua = agent([tcp(A(33), port), tcp(A(34), port)], { subscribeRegEvent: false, connect: { connectTimeoutMs: 300 } });
      const registered = next<{ attempts: { outcome: string }[]; server: string }>(ua, 'registered');
      await ua.start();
      const info = await registered;
      assert.deepEqual(info.attempts.map((attempt) => attempt.outcome), ['timeout', 'connected']);
      assert.equal(info.server, `${A(34)}:${port}`);
    } finally {
      await unblackhole();
    }
  });

  test('every address refused: sign-in fails, and the retry waits the RFC 5626 back-off (FakeClock)', async () => {
    const port = await freePortOn([A(35), A(36)]);
    const clock = new FakeClock();
    const ua = agent([tcp(A(35), port), tcp(A(36), port)], { clock, random: () => 0.5, backoffBaseMs: 1000, backoffMaxMs: 3000 });
    const failures: { consecutiveFailures: number; retryInMs: number | null; error: { code: string } }[] = [];
    ua.on('registrationFailed', (failure) => failures.push(failure));
    await ua.start();
    // n=1: min(3000, 1000 × 2) × 75 %.
    assert.deepEqual(failures.map((f) => [f.consecutiveFailures, f.retryInMs, f.error.code]), [[1, 1500, 'CLIENT_CONNECT']]);
    assert.equal(ua.state, 'failed');
    clock.advance(1499);
    await sleep(50);
    assert.equal(failures.length, 1, 'no retry before the back-off has passed');
    const second = next(ua, 'registrationFailed');
    clock.advance(1);
    await second;
    // n=2: min(3000, 4000) × 75 %.
    assert.deepEqual(failures.map((f) => [f.consecutiveFailures, f.retryInMs]), [[1, 1500], [2, 2250]]);
  });
});

describe('UserAgent calls', () => {
  test('INVITE, 100/180/200, ACK, BYE against sipp: ringing, up, ended, and sipp counts every call a success', async () => {
    const port = await freePortOn([A(40)]);
    // REGISTER, SUBSCRIBE and INVITE are sipp's three calls; it exits 0 only if all three went as scripted.
    const sipp = await startSipp({ scenario: 'registrar.xml', address: A(40), port, set: { mode: 'primary', expires: '600' }, calls: 3 });
    const ua = agent([tcp(A(40), port)]);
    const subscribed = subscribedTo(ua);
    await ua.start();
    await subscribed; // the SUBSCRIBE finishes first, so that sipp's calls do not overlap
    const call = ua.call('sip:bob@contoso.com');
    const states: string[] = [];
    call.on('ringing', () => states.push('ringing'));
    call.on('up', () => {
      states.push('up');
      call.hangUp();
    });
    const [ended] = (await once(call, 'ended')) as [{ how: string }];
    assert.deepEqual(states, ['ringing', 'up']);
    assert.equal(ended.how, 'bye-sent');
    assert.equal(await exitCode(sipp), 0, sipp.process.output().slice(-2000));
  });

  test('an incoming INVITE is answered: 180, 200 with Contact, then ACK and the caller\'s BYE', async () => {
    const port = await freePortOn([A(41)]);
    const sipp = await startSipp({ scenario: 'incoming-call.xml', address: A(41), port, calls: 1 });
    const ua = agent([tcp(A(41), port)], { subscribeRegEvent: false });
    const incoming = next<Call>(ua, 'incomingCall');
    await ua.start();
    const call = await incoming;
    const up = once(call, 'up');
    const [ended] = (await once(call, 'ended')) as [{ how: string }];
    await up;
    assert.equal(call.direction, 'incoming');
    assert.equal(ended.how, 'bye-received');
    assert.equal(await exitCode(sipp), 0, sipp.process.output().slice(-2000));
  });

  test('hanging up a ringing call sends CANCEL; the 487 ends it and is ACKed', async () => {
    const port = await freePortOn([A(42)]);
    const sipp = await startSipp({ scenario: 'ringing.xml', address: A(42), port, calls: 3 });
    const ua = agent([tcp(A(42), port)]);
    const subscribed = subscribedTo(ua);
    await ua.start();
    await subscribed;
    const call = ua.call('sip:carol@contoso.com');
    call.once('ringing', () => call.hangUp());
    const [ended] = (await once(call, 'ended')) as [{ how: string; status?: number }];
    assert.deepEqual(ended, { how: 'cancelled', status: 487, detail: 'Request Terminated' });
    assert.equal(await exitCode(sipp), 0, sipp.process.output().slice(-2000));
  });
});
