// dnslb client simulate | register: the load simulator and a single user's sign-in, step by step.
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { PoolDiscoverer, type SipTransportName } from '../../client/discover.ts';
import { openFilesLimit, parsePeerGroups, parseShare, PSTN_NUMBERS, Simulator, usersWithinFiles, type PeerOptions, type SimulationSummary } from '../../client/simulate.ts';
import { UserAgent } from '../../client/user-agent.ts';
import { firstLineOf, passwordSource } from '../../auth/passwords.ts';
import { checkLimits, limits } from '../../shared/limits.ts';
import { DnslbError } from '../../shared/errors.ts';

/** "60s", "2m", "500ms", "1h", or plain seconds. */
export function parseDurationMs(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) throw new DnslbError('CLI_USAGE', `not a duration: ${text} (use 500ms, 60s, 2m, 1h)`);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] ?? 1000;
  return Math.round(Number(match[1]) * unitMs);
}

function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new DnslbError('CLI_USAGE', `${flag} ${text}: not a whole number in ${min}..${max}`);
  return value;
}

/** Repeated and comma-separated values, one list. */
function dnsServers(values: string[]): string[] {
  return values.flatMap((value) => value.split(',')).map((value) => value.trim()).filter((value) => value !== '');
}

function transportOf(text: string): SipTransportName {
  if (text !== 'tcp' && text !== 'tls') throw new DnslbError('CLI_USAGE', `--transport ${text}: tcp or tls`);
  return text;
}

/** One line of counters, as the progress line and the periodic summary print it. */
export function formatSummary(summary: SimulationSummary): string {
  const servers = Object.entries(summary.registeredPerServer)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([server, count]) => `${server}=${count}`)
    .join(' ');
  return [
    `${(summary.elapsedMs / 1000).toFixed(1)}s`,
    `registered ${summary.registered}/${summary.users}`,
    `[${servers || 'none'}]`,
    `primary ${summary.primary} backup ${summary.backup}`,
    `failovers ${summary.failovers}`,
    `redirects ${summary.redirects}`,
    `calls up ${summary.calls.up}/${summary.calls.attempted} (${summary.calls.toNumbers} to numbers; ${summary.calls.inProgress} live, ${summary.calls.failed} failed, ${summary.calls.dropped} dropped, ${summary.calls.byeFailed} BYE failed)`,
    `errors ${summary.signInFailures.modern + summary.signInFailures.legacy} (legacy ${summary.signInFailures.legacy})`,
    `loop lag p99 ${summary.eventLoopDelayMs.p99} ms max ${summary.eventLoopDelayMs.max} ms`,
    // Why call setups failed, when some did: "failed setups: rejected 480 User not registered ×3".
    ...(summary.calls.failed > 0 ? [`failed setups: ${Object.entries(summary.calls.failedBy).sort(([, a], [, b]) => b - a).map(([why, count]) => `${why} ×${count}`).join(', ')}`] : []),
  ].join('  ');
}

interface SimulateOptions {
  domain: string;
  dns: string[];
  users: string;
  firstUser: string;
  legacyShare: string;
  callsPerMinute: string;
  duration: string;
  signInWithin: string;
  callHold: string;
  pstnShare: string;
  pstnNumbers: string;
  report?: string;
  transport: string;
  ca?: string;
  rate: string;
  summaryEvery: string;
  backoffBaseMs: string;
  backoffMaxMs: string;
  keepAliveMs: string;
  connectTimeoutMs: string;
  staggered?: boolean;
  expires: string;
  passwords?: string;
  passwordSeedFile?: string;
  peers?: string;
  peerCert?: string;
  peerKey?: string;
  peerDomain: string;
  peerAddress?: string[];
  peerMessagesPerMinute: string;
  localAddress?: string;
}

interface RegisterOptions {
  uri: string;
  dns: string[];
  transport: string;
  ca?: string;
  legacy?: boolean;
  connectTimeoutMs: string;
  stay?: string;
  call?: string;
  /** commander's --no-autodiscover: false when given. */
  autodiscover: boolean;
  autodiscoverPort: string;
  passwordFile?: string;
  passwords?: string;
  localAddress?: string;
}

const LOCAL_ADDRESS_DESCRIPTION = 'send DNS queries and connect from this IPv4 address: outside the `internal` view (e.g. 127.0.1.5), a remote user reaching the Access Edge';

function localAddressOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (isIP(text) !== 4) throw new DnslbError('CLI_USAGE', `--local-address ${text}: an IPv4 address`);
  return text;
}

export function registerClient(program: Command): void {
  const client = program.command('client').description('simulated Lync clients: sign-in, failover, calls');

  client
    .command('simulate')
    .description('register many simulated users through DNS, place calls between them, and report')
    .requiredOption('--domain <domain>', 'SIP domain of the users (user1@domain, user2@domain, ...); several, comma-separated: the users take them in turn')
    .requiredOption('--dns <address:port...>', 'DNS servers to ask (repeat or comma-separate)')
    .option('--users <n>', 'simulated users', '100')
    .option('--first-user <n>', 'number of the first user (user<n>@domain…): several simulators sign in distinct users', '1')
    .option('--legacy-share <share>', 'share of legacy clients that try only the first address ("20%" or 0.2)', '0')
    .option('--calls-per-minute <n>', 'calls placed between random registered users', '0')
    .option('--duration <time>', 'how long to run (500ms, 60s, 2m)', '60s')
    .option('--sign-in-within <time>', 'before the --duration starts, wait until every user is registered, at most this long (0: the duration starts with the first sign-in)', '0')
    .option('--call-hold <time>', 'how long a call that came up lasts before the caller hangs up', '5s')
    .option('--pstn-share <share>', 'share of the calls placed to a telephone number (through the Mediation pool) rather than to a user ("20%" or 0.2)', '0')
    .option('--pstn-numbers <pattern>', 'the numbers called: + then digits, each x a random digit', '+1425555xxxx')
    .option('--report <file>', 'write the JSON report here')
    .option('--transport <tcp|tls>', 'SIP transport (the SRV record asked first)', 'tcp')
    .option('--ca <file>', 'PEM CA to trust for TLS')
    .option('--rate <n>', 'users started per second', '200')
    .option('--summary-every <time>', 'summary line interval', '5s')
    .option('--backoff-base-ms <ms>', 'RFC 5626 back-off base-time', '1000')
    .option('--backoff-max-ms <ms>', 'RFC 5626 back-off max-time', '30000')
    .option('--keep-alive-ms <ms>', 'CRLF keep-alive interval (RFC 5626)', '30000')
    .option('--connect-timeout-ms <ms>', 'per-address connect timeout', '2000')
    .option('--staggered', 'modern clients start the next connection attempt 250 ms after the previous one (RFC 8305), not after its timeout')
    .option('--expires <s>', 'registration lifetime asked for', '3600')
    .option('--passwords <file>', 'answer the registrar\'s digest challenge with the passwords of this CSV (uri,password columns, as `dnslb user import` reads)')
    .option('--password-seed-file <file>', 'answer it with the synthetic rule\'s passwords (the seed on the first line; `dnslb user import --synthetic N` loads the same users)')
    .option('--peers <profile:n,...>', 'federation partners sending IMs to the users through the Access Edge: federation (walks the addresses), legacy-federation, xmpp-gateway (first address only), e.g. legacy-federation:4,federation:4')
    .option('--peer-domain <domain>', 'the partners\' SIP domain (a federation partner of the topology, or not: 403)', 'fabrikam.com')
    .option('--peer-address <address...>', 'addresses the partners\' connections and DNS questions leave from (outside the internal view), dealt out in turn')
    .option('--peer-messages-per-minute <n>', 'IMs from all partners together', '60')
    .option('--peer-cert <file>', 'PEM certificate the partners present (its subjectAltName: the partner domain\'s Access Edge FQDN, from a CA the edge trusts for it: edge.federation.trustedCas)')
    .option('--peer-key <file>', 'PEM key of --peer-cert')
    .option('--local-address <ipv4>', LOCAL_ADDRESS_DESCRIPTION)
    .action(async (options: SimulateOptions) => {
      checkLimits();
      const passwordOf = await passwordSource(options);
      let peers: PeerOptions | undefined;
      if (options.peers !== undefined) {
        try {
          peers = { groups: parsePeerGroups(options.peers), domain: options.peerDomain, messagesPerMinute: wholeNumber('--peer-messages-per-minute', options.peerMessagesPerMinute, 0, 1_000_000), ...(options.peerAddress ? { localAddresses: options.peerAddress.flatMap((item) => item.split(',')) } : {}) };
        } catch (error) {
          if (error instanceof DnslbError) throw error;
          throw new DnslbError('CLI_USAGE', `--peers ${options.peers}: ${(error as Error).message}`);
        }
        for (const address of peers.localAddresses ?? []) if (isIP(address) === 0) throw new DnslbError('CLI_USAGE', `--peer-address ${address}: not an IP address`);
        if ((options.peerCert === undefined) !== (options.peerKey === undefined)) throw new DnslbError('CLI_USAGE', '--peer-cert and --peer-key go together');
        if (options.peerCert !== undefined && options.peerKey !== undefined) peers.certificate = { cert: await readFile(options.peerCert, 'utf8'), key: await readFile(options.peerKey, 'utf8') };
      }
      const users = wholeNumber('--users', options.users, 1, limits.clientSimulatedUsersMax);
      // Each signed-in user holds a connection: past the process's open-files limit the last users
      // would fail to connect for ever (and each failure costs another trip through DNS and a redirect).
      const within = usersWithinFiles(openFilesLimit());
      if (within !== null && users > within) throw new DnslbError('CLI_USAGE', `--users ${users}: this process may hold ${openFilesLimit()} open files (ulimit -n) and each signed-in user holds a connection, so at most ${within} users here; run several simulators with --first-user (e.g. --users ${Math.ceil(users / 2)} --first-user ${Math.ceil(users / 2) + 1}) or raise the limit`);
      const durationMs = parseDurationMs(options.duration);
      const signInWithinMs = parseDurationMs(options.signInWithin);
      let legacyShare: number;
      try {
        legacyShare = parseShare(options.legacyShare);
      } catch {
        throw new DnslbError('CLI_USAGE', `--legacy-share ${options.legacyShare}: a share like 20% or 0.2`);
      }
      let pstnShare: number;
      try {
        pstnShare = parseShare(options.pstnShare);
      } catch {
        throw new DnslbError('CLI_USAGE', `--pstn-share ${options.pstnShare}: a share like 20% or 0.2`);
      }
      if (!PSTN_NUMBERS.test(options.pstnNumbers)) throw new DnslbError('CLI_USAGE', `--pstn-numbers ${options.pstnNumbers}: + then at most 15 digits, each x a random digit (+1425555xxxx)`);
      const domains = dnsServers([options.domain]);
      if (domains.length === 0) throw new DnslbError('CLI_USAGE', '--domain: at least one SIP domain');
      const simulator = new Simulator({
        domain: domains,
        pstnShare,
        pstnNumbers: options.pstnNumbers,
        dnsServers: dnsServers(options.dns),
        users,
        firstUser: wholeNumber('--first-user', options.firstUser, 1, Number.MAX_SAFE_INTEGER),
        legacyShare,
        callsPerMinute: wholeNumber('--calls-per-minute', options.callsPerMinute, 0, 1_000_000),
        callHoldMs: parseDurationMs(options.callHold),
        startRatePerS: wholeNumber('--rate', options.rate, 1, 100_000),
        transport: transportOf(options.transport),
        ...(options.ca ? { ca: await readFile(options.ca, 'utf8') } : {}),
        ...(passwordOf ? { passwordOf } : {}),
        ...(peers ? { peers } : {}),
        ...(options.localAddress !== undefined ? { localAddress: localAddressOf(options.localAddress) } : {}),
        userAgent: {
          backoffBaseMs: wholeNumber('--backoff-base-ms', options.backoffBaseMs, 1, limits.clientBackoffMsMax),
          backoffMaxMs: wholeNumber('--backoff-max-ms', options.backoffMaxMs, 1, limits.clientBackoffMsMax),
          keepAliveIntervalMs: wholeNumber('--keep-alive-ms', options.keepAliveMs, 100, 3_600_000),
          connect: { connectTimeoutMs: wholeNumber('--connect-timeout-ms', options.connectTimeoutMs, 1, 600_000), staggered: options.staggered === true },
          expiresS: wholeNumber('--expires', options.expires, 1, 86_400),
        },
      });
      const tty = process.stdout.isTTY === true;
      const summaryEveryMs = parseDurationMs(options.summaryEvery);
      let lastSummaryMs = 0;
      let registeringDone = false;
      // On a terminal: a live \r progress line while users sign in, then a summary line every few seconds.
      const progress = setInterval(() => {
        const summary = simulator.summary();
        if (!registeringDone && simulator.settled) {
          registeringDone = true;
          if (tty) process.stdout.write('\n');
        }
        if (tty && !registeringDone) {
          process.stdout.write(`\rsigning in: ${summary.registered} registered, ${summary.registering} in progress, ${summary.failed} failed of ${summary.users}   `);
          return;
        }
        if (summary.elapsedMs - lastSummaryMs >= summaryEveryMs) {
          lastSummaryMs = summary.elapsedMs;
          process.stdout.write(`${formatSummary(summary)}\n`);
        }
      }, tty ? 200 : 500);
      // Ctrl-C or a SIGTERM ends the run early; the report is still written.
      const stopEarly = new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      simulator.start();
      let stoppedEarly = false;
      void stopEarly.then(() => (stoppedEarly = true));
      if (signInWithinMs > 0) {
        const signedIn = await Promise.race([simulator.allRegistered(signInWithinMs), stopEarly.then(() => false)]);
        if (!signedIn && !stoppedEarly) process.stdout.write(`not every user registered within ${options.signInWithin}: ${formatSummary(simulator.summary())}\n`);
      }
      let durationTimer: NodeJS.Timeout | undefined;
      if (!stoppedEarly) await Promise.race([new Promise((resolve) => (durationTimer = setTimeout(resolve, durationMs))), stopEarly]);
      // Stopped early: the duration timer must not keep the process alive.
      clearTimeout(durationTimer);
      clearInterval(progress);
      const report = simulator.report();
      await simulator.stop();
      if (tty && !registeringDone) process.stdout.write('\n');
      process.stdout.write(`final: ${formatSummary(report.totals)}\n`);
      const reasons = report.totals.signInFailureReasons;
      if (Object.keys(reasons.legacy).length > 0) process.stdout.write(`legacy sign-in failures: ${JSON.stringify(reasons.legacy)}\n`);
      if (Object.keys(reasons.modern).length > 0) process.stdout.write(`sign-in failures: ${JSON.stringify(reasons.modern)}\n`);
      for (const [profile, counts] of Object.entries(report.peers)) {
        process.stdout.write(`peers ${profile}: ${counts.requests} IMs, ${counts.ok} ok, ${counts.failed} failed${counts.failed > 0 ? ` ${JSON.stringify(counts.failedBy)}` : ''}\n`);
      }
      if (options.report) await writeFile(options.report, JSON.stringify(report, null, 2) + '\n');
    });

  client
    .command('register')
    .description('sign one user in, printing discovery steps, connection attempts, redirects and the registrar mode')
    .requiredOption('--uri <sip-uri>', 'the user, sip:alice@contoso.com')
    .requiredOption('--dns <address:port...>', 'DNS servers to ask')
    .option('--transport <tcp|tls>', 'SIP transport', 'tls')
    .option('--ca <file>', 'PEM CA to trust for TLS')
    .option('--legacy', 'behave as a legacy client: only the first address')
    .option('--connect-timeout-ms <ms>', 'per-address connect timeout', '2000')
    .option('--stay <time>', 'stay registered this long (keep-alives, refreshes, reg event) before unregistering')
    .option('--no-autodiscover', 'skip Lync 2013\'s first step (the autodiscover document through lyncdiscoverinternal/lyncdiscover over HTTPS): SRV, then A records only')
    .option('--autodiscover-port <port>', 'the HTTPS port of the Web services VIP', '443')
    .option('--password-file <file>', 'the user\'s password on the first line, to answer the registrar\'s digest challenge')
    .option('--passwords <file>', 'the user\'s password from this CSV (uri,password columns)')
    .option('--local-address <ipv4>', LOCAL_ADDRESS_DESCRIPTION)
    .option('--call <sip-uri>', 'once signed in, call this user (an inside, remote or federated one), print how the call went and hang up after 2 s; fails when it does not come up')
    .action(async (options: RegisterOptions) => {
      checkLimits();
      if (options.passwordFile !== undefined && options.passwords !== undefined) throw new DnslbError('CLI_USAGE', 'give --password-file FILE or --passwords FILE.csv, not both');
      const password = options.passwordFile !== undefined ? await firstLineOf(options.passwordFile, 'password') : (await passwordSource({ passwords: options.passwords }))?.(options.uri);
      if (options.passwords !== undefined && password === undefined) throw new DnslbError('AUTH_USERS_FILE', `${options.passwords} has no password for ${options.uri}`);
      const transport = transportOf(options.transport);
      // One CA for both: the Web services answer with the servers' own certificates (TLS passes through the HLB).
      const ca = options.ca ? await readFile(options.ca, 'utf8') : undefined;
      const autodiscover = options.autodiscover ? { port: wholeNumber('--autodiscover-port', options.autodiscoverPort, 1, 65_535), ...(ca ? { ca } : {}) } : undefined;
      const localAddress = localAddressOf(options.localAddress);
      const agent = new UserAgent({
        aor: options.uri,
        locator: new PoolDiscoverer({ dnsServers: dnsServers(options.dns), transport, ...(autodiscover ? { autodiscover } : {}), ...(localAddress !== undefined ? { localAddress } : {}) }),
        transport,
        mode: options.legacy ? 'legacy' : 'modern',
        connect: { connectTimeoutMs: wholeNumber('--connect-timeout-ms', options.connectTimeoutMs, 1, 600_000), ...(ca ? { ca } : {}), ...(localAddress !== undefined ? { localAddress } : {}) },
        retry: options.stay !== undefined,
        ...(password !== undefined ? { password } : {}),
      });
      agent.on('trace', (line) => process.stdout.write(`${line}\n`));
      agent.on('registered', (info) => process.stdout.write(`registered at ${info.server} in ${info.mode} mode (${info.redirects} redirect${info.redirects === 1 ? '' : 's'}, ${info.grantedS} s)${info.failover ? ' after failover' : ''}\n`));
      let failure: DnslbError | null = null;
      agent.once('registrationFailed', ({ error }) => (failure = error));
      agent.on('incomingCall', (call) => {
        process.stdout.write(`incoming call from ${call.remoteUri}: answering\n`);
        call.once('ended', (end) => process.stdout.write(`call from ${call.remoteUri} ended: ${end.how}${end.status !== undefined ? ` ${end.status}` : ''}\n`));
      });
      await agent.start();
      let callFailure: DnslbError | null = null;
      if (options.call !== undefined && agent.state === 'registered') callFailure = await placeCall(agent, options.call);
      if (options.stay !== undefined) await new Promise((resolve) => setTimeout(resolve, parseDurationMs(options.stay!)));
      const registered = agent.state === 'registered';
      await agent.stop();
      if (!registered && failure) throw failure;
      if (callFailure) throw callFailure;
    });
}

/** `client register --call`: one call, its progress printed, hung up after 2 s once up; the error when it did not come up. */
async function placeCall(agent: UserAgent, uri: string): Promise<DnslbError | null> {
  const call = agent.call(uri);
  process.stdout.write(`calling ${uri}\n`);
  call.on('ringing', () => process.stdout.write(`call to ${uri}: ringing\n`));
  const outcome = await new Promise<{ up: true } | { up: false; how: string; status?: number; detail?: string }>((resolve) => {
    call.once('up', () => resolve({ up: true }));
    call.once('ended', (end) => resolve({ up: false, ...end }));
  });
  if (!outcome.up) return new DnslbError('CLIENT_CALL', `call to ${uri} failed: ${outcome.how}${outcome.status !== undefined ? ` ${outcome.status}` : ''}${outcome.detail ? ` (${outcome.detail})` : ''}`);
  process.stdout.write(`call to ${uri}: up\n`);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const bye = await new Promise<number | null>((resolve) => {
    call.once('byeAnswered', resolve);
    call.hangUp();
  });
  process.stdout.write(`call to ${uri}: hung up (BYE ${bye ?? 'unanswered'})\n`);
  return null;
}
