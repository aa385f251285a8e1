// A `dnslb up` system of the example (frontend, director, edge, mediation pools) with authentication on,
// synthetic users in the store, and UserAgents inside (the internal view: 127.0.0.1) or outside (a
// source address in the external view): remote users find the Access Edge through `_sip._tls` as a
// client on the Internet does, and sign in over TLS with their passwords.
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syntheticPassword } from '../../src/auth/passwords.ts';
import type { Call } from '../../src/client/call.ts';
import { PoolDiscoverer } from '../../src/client/discover.ts';
import { UserAgent, type UserAgentOptions } from '../../src/client/user-agent.ts';
import { eventually } from './eventually.ts';
import { startUp, type UpSystem } from './up.ts';

export interface EdgeSystem {
  system: UpSystem;
  /** The Access Edge addresses, edge1 then edge2 ("address:port" as a client's `server` says). */
  accessEdges: [string, string];
  ca: string;
  /** A UserAgent for user N (sip:userN@contoso.com): outside (through an Edge) or inside. */
  agent(n: number, where: 'outside' | 'inside', options?: Partial<UserAgentOptions>): UserAgent;
  /** The pool admin API's view of every server (`dnslb pool status --json`). */
  poolStatus(): Promise<PoolStatusJson>;
  /** poolStatus once every running server's admin API answered in it (a loaded server may miss one poll). */
  answeringStatus(): Promise<PoolStatusJson>;
  /** SIGKILLs one server's process (the supervisor restarts it only after the test's long delay). */
  kill(server: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ServerJson {
  server: string;
  kind: string;
  process: { pid: number | undefined; state: string } | null;
  status?: {
    state: string;
    bindings: { bindings: number };
    dialogs: { active: number };
    proxy: { requestsForwardedByMethod: Record<string, number> };
    auth: { counters: { authenticated: number; challenged: number } } | null;
    resilience: { acceptingConnections: boolean; drain: { phase: string; handedOver: number; bindingsLeft: number; dialogsLeft: number } | null };
    edge: { remoteUsers: number; guard: Record<string, number>; route: Record<string, number>; handover: { handedOverTotal: number; batches: { atMs: number; handedOver: number; deferred: number }[] } } | null;
  };
}

export interface PoolStatusJson {
  servers: ServerJson[];
}

/** The example on `net` (127.0.N): auth on, `users` synthetic users, the supervisor slow to restart a killed child. */
export async function startEdgeSystem(net: string, outside: string, users: number, options: { edit?: (text: string) => string } = {}): Promise<EdgeSystem> {
  const system = await startUp(net, {
    edit: (text) => {
      const edited = text.replace('auth: { enabled: false,', 'auth: { enabled: true,').replace(/restartDelayMs: \d+/, 'restartDelayMs: 600000');
      return options.edit ? options.edit(edited) : edited;
    },
  });
  const seed = 'edge-test-seed';
  const seedFile = join(system.dataDir, 'seed');
  await writeFile(seedFile, `${seed}\n`);
  const imported = await system.cli('user', 'import', '--synthetic', String(users), '--domain', 'contoso.com', '--password-seed-file', seedFile);
  if (imported.code !== 0) throw new Error(`user import: ${imported.stderr}`);
  const ca = await readFile(join(system.dataDir, 'tls', 'ca.pem'), 'utf8');
  const dnsServer = `${system.dns.address}:${system.dns.port}`;
  const resolverFrom = (local?: string): Resolver => {
    const resolver = new Resolver({ timeout: 2000, tries: 3 });
    resolver.setServers([dnsServer]);
    if (local !== undefined) resolver.setLocalAddress(local);
    return resolver;
  };
  const resolvers = { outside: resolverFrom(outside), inside: resolverFrom() };
  const poolStatus = async (): Promise<PoolStatusJson> => {
    const run = await system.cli('pool', 'status', '--json');
    if (run.code !== 0) throw new Error(`pool status: ${run.stderr}`);
    return JSON.parse(run.stdout) as PoolStatusJson;
  };
  return {
    system,
    accessEdges: [`${net}.51:4443`, `${net}.52:4443`],
    ca,
    agent(n, where, extra = {}) {
      const aor = `sip:user${n}@contoso.com`;
      return new UserAgent({
        aor,
        locator: new PoolDiscoverer({ dnsServers: [dnsServer], resolver: resolvers[where], transport: 'tls' }),
        transport: 'tls',
        password: syntheticPassword(seed, aor),
        connect: { ca, connectTimeoutMs: 2000, ...(where === 'outside' ? { localAddress: outside } : {}) },
        keepAliveIntervalMs: 600_000,
        backoffBaseMs: 300,
        backoffMaxMs: 2000,
        ...extra,
      });
    },
    poolStatus,
    answeringStatus: () =>
      eventually(async () => {
        const status = await poolStatus();
        const silent = status.servers.filter((entry) => entry.process?.state === 'running' && entry.status === undefined).map((entry) => entry.server);
        assert.deepEqual(silent, [], 'servers that did not answer their admin API');
        return status;
      }, { timeoutMs: 30_000, intervalMs: 250 }),
    async kill(server) {
      const entry = (await poolStatus()).servers.find((candidate) => candidate.server === server);
      const pid = entry?.process?.pid;
      if (pid === undefined) throw new Error(`${server} has no process`);
      process.kill(pid, 'SIGKILL');
    },
    stop: () => system.stop(),
  };
}

/** `count` agents outside (users 1…count) and `insideCount` inside (the next users), started and all registered. */
export async function signInUsers(edge: EdgeSystem, count: number, insideCount: number, wait = { timeoutMs: 60_000, intervalMs: 250 }): Promise<{ remote: UserAgent[]; inside: UserAgent[] }> {
  const remote = Array.from({ length: count }, (_, index) => edge.agent(index + 1, 'outside'));
  const inside = Array.from({ length: insideCount }, (_, index) => edge.agent(count + index + 1, 'inside'));
  await startAll([...remote, ...inside]);
  await eventually(() => assert.equal([...remote, ...inside].filter((agent) => agent.state === 'registered').length, count + insideCount), wait);
  return { remote, inside };
}

/** One server's entry once its admin API answered (a loaded server may miss one poll: ask again). */
export function answeringServer(edge: EdgeSystem, server: string, wait = { timeoutMs: 60_000, intervalMs: 250 }): Promise<ServerJson> {
  return eventually(async () => {
    const entry = (await edge.poolStatus()).servers.find((candidate) => candidate.server === server)!;
    assert.ok(entry.status, `${server} does not answer: ${JSON.stringify(entry)}`);
    return entry;
  }, wait);
}

/** Resolves when the call is up; rejects when it ends first. */
export function upOrFailed(call: Call): Promise<void> {
  if (call.state === 'up') return Promise.resolve();
  return new Promise((resolve, reject) => {
    call.once('up', () => resolve());
    call.once('ended', (end) => reject(new Error(`call to ${call.remoteUri} ended: ${end.how} ${end.status ?? ''} ${end.detail ?? ''}`)));
  });
}

/** Hangs up and resolves with the BYE's final status (null: none came). */
export function hangUp(call: Call): Promise<number | null> {
  return new Promise((resolve) => {
    call.once('byeAnswered', (status) => resolve(status));
    call.hangUp();
  });
}

/** Starts agents `concurrency` at a time; each start resolves when its first sign-in ended. */
export async function startAll(agents: readonly UserAgent[], concurrency = 30): Promise<void> {
  for (let first = 0; first < agents.length; first += concurrency) await Promise.all(agents.slice(first, first + concurrency).map((agent) => agent.start()));
}
