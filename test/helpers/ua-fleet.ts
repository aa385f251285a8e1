// Many real src/client UserAgents in the test process against a pool started by frontend-pool.ts:
// discovery is a fixed list (each user gets the pool's addresses in a rotated order, as DNS rotation
// would give them), redirect Contacts resolve through the pool's own FQDN → address map.
import type { Discovery } from '../../src/client/discover.ts';
import { UserAgent, type Locator, type UserAgentOptions } from '../../src/client/user-agent.ts';
import type { RunningPool } from './frontend-pool.ts';

export interface Fleet {
  agents: UserAgent[];
  /** Index in the pool's `addresses` of the server a user is registered at now, or -1. */
  serverOf(agent: UserAgent): number;
  stop(): Promise<void>;
}

export interface FleetOptions {
  /** The pool (only its SIP TCP port is used: a `dnslb up` system passes `{ tcpPort: 5060 }`). */
  pool: Pick<RunningPool, 'tcpPort'>;
  /** Every address of the pool (the FQDN feN.contoso.com is addresses[N-1]). */
  addresses: readonly string[];
  /** How many of `addresses` DNS would answer (the published pool). */
  discovered: number;
  count: number;
  prefix?: string;
  /** Users signing in at once (each start waits for its sign-in). */
  concurrency?: number;
  agent?: Partial<UserAgentOptions>;
}

export function fleetUser(prefix: string, n: number): string {
  return `sip:${prefix}${n}@contoso.com`;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const { pool, addresses } = options;
  const prefix = options.prefix ?? 'user';
  const hosts = new Map(addresses.map((address, index) => [`fe${index + 1}.contoso.com`, address]));
  const agents: UserAgent[] = [];
  for (let n = 0; n < options.count; n++) {
    const rotation = addresses.slice(0, options.discovered).map((_, k) => addresses[(n + k) % options.discovered]!);
    const locator: Locator = {
      async discover(): Promise<Discovery> {
        return { domain: 'contoso.com', via: 'static', targets: [], steps: [], expiresAtMs: 0, endpoints: rotation.map((address) => ({ address, port: pool.tcpPort, transport: 'tcp', host: address })) };
      },
      forget() {},
      async resolveHost(host: string) {
        const address = hosts.get(host.toLowerCase());
        if (address === undefined) throw new Error(`no address for ${host}`);
        return [address];
      },
    };
    agents.push(new UserAgent({ aor: fleetUser(prefix, n), locator, transport: 'tcp', keepAliveIntervalMs: 600_000, backoffBaseMs: 300, backoffMaxMs: 2000, connect: { connectTimeoutMs: 1000 }, ...options.agent }));
  }
  const concurrency = options.concurrency ?? 50;
  for (let first = 0; first < agents.length; first += concurrency) await Promise.all(agents.slice(first, first + concurrency).map((agent) => agent.start()));
  return {
    agents,
    serverOf(agent) {
      if (agent.state !== 'registered' || agent.server === null) return -1;
      const [address, port] = agent.server.split(':');
      return Number(port) === pool.tcpPort ? addresses.indexOf(address!) : -1;
    },
    async stop() {
      await Promise.all(agents.map((agent) => agent.stop({ unregisterTimeoutMs: 200 })));
    },
  };
}
