// The advisor: for each pool, is DNS load balancing recommended, supported (with failover scenarios lost), or is
// hardware load balancing the better choice? A pure function of the topology's pools and facts (README "Advisor").
import { assert } from '../shared/assert.ts';
import type { ExchangeUmVersion, LoadBalancing, Pool, PoolKind, Topology } from './schema.ts';

/**
 * recommended: DNS load balancing loses nothing here.
 * supported: DNS load balancing works, but some failover scenarios are lost (listed).
 * hardware-only: a hardware load balancer is the advice for this pool.
 */
export type Verdict = 'recommended' | 'supported' | 'hardware-only';

/** The rows of the decision guide (README "Advisor"); each finding names the row it comes from. */
export type GuideRow =
  | 'modern-only'
  | 'legacy-clients'
  | 'legacy-clients-many'
  | 'pre-2010-servers'
  | 'exchange-um-frontend'
  | 'exchange-um-edge'
  | 'federation-pre-2010'
  | 'public-im'
  | 'xmpp'
  | 'web-services'
  | 'mediation-gateways'
  | 'hardware-configured'
  | 'dns-configured-against-advice'
  | 'ttl-detection'
  | 'pool-size';

export interface LostScenario {
  row: GuideRow;
  /** What stops failing over when one server of the pool is down. */
  scenario: string;
  why: string;
  /** How to watch the loss happen (a command and the test that asserts it), when dnslb can show it. */
  see?: string;
}

/**
 * The peers that cannot fail over, made visible (issue 14 §5): the simulator's profile for each row and
 * the test that counts their lost requests with one edge server down.
 */
const EDGE_PEER_PROFILES: Partial<Record<GuideRow, string>> = {
  'federation-pre-2010': 'legacy-federation',
  'public-im': 'xmpp-gateway',
  xmpp: 'xmpp-gateway',
};

function seeEdgePeers(row: GuideRow, pool: Pool): string | undefined {
  const profile = EDGE_PEER_PROFILES[row];
  if (profile === undefined) return undefined;
  const n = pool.servers.length;
  const share =
    n < 2
      ? 'with its only edge server down every request fails, modern or not; with n servers and one down, about 1/n of these peers\' requests fail'
      : `with 1 of the ${n} edge servers down, about ${Math.round(100 / n)} % of these peers' requests fail (those whose first address is the dead server) while modern partners lose none`;
  return (
    `${share}: ` +
    `dnslb client simulate --peers ${profile}:N,federation:N, then dnslb server stop ${pool.servers[0]?.fqdn ?? 'EDGE'} (test/integration/federation-failover.test.ts counts it)`
  );
}

export interface Note {
  row: GuideRow;
  text: string;
}

export interface PoolAdvice {
  pool: string;
  kind: PoolKind;
  /** The load balancing the topology configures for the pool. */
  configured: LoadBalancing;
  /** The advice about DNS load balancing for this pool, whatever is configured. */
  verdict: Verdict;
  lost: LostScenario[];
  notes: Note[];
}

export interface Advice {
  legacyClientsPercentMax: number;
  pools: PoolAdvice[];
}

export interface AdviseOptions {
  /** Above this share of pre-2010 clients (%), frontend and director pools get `hardware-only`. */
  legacyClientsPercentMax?: number;
}

/**
 * 20 %: with one of n servers down, about share/n of all users (the legacy clients whose first address is the
 * dead server) cannot sign in until the DNS answer changes. At 20 % in a two-server pool that is one user in ten,
 * where we judge a hardware load balancer worth its cost. Deployments with other tolerances pass their own.
 */
export const LEGACY_CLIENTS_PERCENT_MAX = 20;

/** Exchange UM releases before 2010 SP1 know only one server per pool for SIP (voice mail, auto attendant). */
const UM_WITHOUT_FRONTEND_FAILOVER: readonly ExchangeUmVersion[] = ['2007', '2007-sp1', '2010'];
/** Before 2013, Exchange UM reaches remote users through one Edge server only. */
const UM_WITHOUT_EDGE_FAILOVER: readonly ExchangeUmVersion[] = ['2007', '2007-sp1', '2010', '2010-sp1'];

const ORDER: Record<Verdict, number> = { recommended: 0, supported: 1, 'hardware-only': 2 };

function isClientFacing(kind: PoolKind): boolean {
  return kind === 'frontend' || kind === 'director' || kind === 'edge';
}

function advisePool(pool: Pool, facts: Topology['facts'], legacyClientsPercentMax: number): PoolAdvice {
  const lost: LostScenario[] = [];
  const notes: Note[] = [];
  // Each lost scenario sets a floor under the verdict; the worst floor wins.
  const floors: Verdict[] = ['recommended'];
  const lose = (row: GuideRow, scenario: string, why: string, floor: Verdict = 'supported'): void => {
    const see = pool.kind === 'edge' ? seeEdgePeers(row, pool) : undefined;
    lost.push({ row, scenario, why, ...(see !== undefined ? { see } : {}) });
    floors.push(floor);
  };
  const frontOrDirector = pool.kind === 'frontend' || pool.kind === 'director';
  const share = facts.legacyClientsPercent;

  if (isClientFacing(pool.kind) && share > 0) {
    const many = frontOrDirector && share > legacyClientsPercentMax;
    lose(
      many ? 'legacy-clients-many' : 'legacy-clients',
      'client failover for clients older than Lync 2010',
      `${share} % of clients are older than Lync 2010: they try only the first address of the pool FQDN, so while that server is down they cannot sign in` +
        (many ? ` (above ${legacyClientsPercentMax} %: use a hardware load balancer)` : ''),
      many ? 'hardware-only' : 'supported',
    );
  }
  if (facts.pre2010Servers) {
    lose(
      'pre-2010-servers',
      'failover of traffic from Office Communications Server 2007 / 2007 R2 servers',
      'OCS 2007 and 2007 R2 servers do not understand DNS load balancing: they send to one server of the pool and do not try the others',
    );
  }
  if (frontOrDirector && UM_WITHOUT_FRONTEND_FAILOVER.includes(facts.exchangeUm)) {
    const why = `Exchange UM ${facts.exchangeUm} (before 2010 SP1) sends to one server of the pool and does not try the others`;
    lose('exchange-um-frontend', 'Exchange UM voice-mail playback', why);
    lose('exchange-um-frontend', 'transfer from the Exchange UM auto attendant', why);
  }
  if (pool.kind === 'edge' && UM_WITHOUT_EDGE_FAILOVER.includes(facts.exchangeUm)) {
    const why = `Exchange UM ${facts.exchangeUm} (before 2013) reaches remote users through one Edge server and does not try the others`;
    lose('exchange-um-edge', 'Exchange UM voice-mail playback for remote users', why);
    lose('exchange-um-edge', 'transfer from the Exchange UM auto attendant for remote users', why);
  }
  if (pool.kind === 'edge' && facts.federationWithPre2010) {
    lose('federation-pre-2010', 'federation with organisations running servers older than Lync 2010', 'their Access Edge sends to one of our Edge servers and does not try the others');
  }
  if (pool.kind === 'edge' && facts.publicIm) {
    lose(
      'public-im',
      'public IM connectivity (Windows Live, AOL, Yahoo!)',
      'the public IM providers send to one Edge server and do not try the others; they need one address that always answers',
      'hardware-only',
    );
  }
  if (pool.kind === 'edge' && facts.xmpp) {
    lose('xmpp', 'XMPP federation', 'XMPP partners connect to one Edge server and do not try the others; they need one address that always answers', 'hardware-only');
  }

  const verdict = floors.reduce((worst, floor) => (ORDER[floor] > ORDER[worst] ? floor : worst));

  if (frontOrDirector) {
    notes.push({
      row: 'web-services',
      text: 'Web services (HTTPS: address book, meetings, mobility) always need a hardware load balancer, whatever carries SIP: webServices VIPs',
    });
  }
  if (pool.kind === 'mediation') {
    notes.push({ row: 'mediation-gateways', text: 'the PSTN gateways and IP-PBXs that send calls to this pool must try the next address when one fails' });
  }
  if (lost.length === 0) {
    notes.push({ row: 'modern-only', text: 'every client and peer tries the next address when one fails: DNS load balancing loses no failover here' });
  }
  if (pool.loadBalancing === 'hardware') {
    notes.push({
      row: 'hardware-configured',
      text: verdict === 'hardware-only' ? 'configured for hardware load balancing, as advised' : `DNS load balancing is possible here (${verdict}) but not configured: the pool uses hardware load balancing`,
    });
  } else if (verdict === 'hardware-only') {
    notes.push({ row: 'dns-configured-against-advice', text: 'configured for DNS load balancing; the scenarios above need a hardware load balancer' });
  }
  return { pool: pool.fqdn, kind: pool.kind, configured: pool.loadBalancing, verdict, lost, notes };
}

/** A DNS-load-balanced pool whose answer TTL is much longer than the time to detect a dead server. */
export interface TtlWarning {
  pool: string;
  ttlS: number;
  /** Heartbeat detection, worst case: (failAfter + 1) intervals after the last answer. */
  detectionMs: number;
  /** How long a client may hold a dead server's address: detection + TTL + one connect attempt. */
  worstCaseMs: number;
  text: string;
}

/** Above this many times the detection time, a pool's TTL is what a client waits on after a failure. */
export const TTL_DETECTION_RATIO_MAX = 20;
/** A client's connect attempt to the dead address before it tries the next (client/connect.ts CONNECT_TIMEOUT_MS_DEFAULT). */
const CLIENT_RETRY_MS = 2000;

/** The heartbeat's worst-case time from a server's last answer to its peers' verdict down (DESIGN §3). */
export function detectionMs(settings: Topology['settings']): number {
  return (settings.heartbeat.failAfter + 1) * settings.heartbeat.intervalMs;
}

/**
 * The DNS-load-balanced pools whose answer TTL exceeds TTL_DETECTION_RATIO_MAX × the detection time:
 * after a failure, a resolver that cached the answer hands the dead address out until the TTL ends
 * (health-aware answers change within the detection time; cached ones do not).
 */
export function ttlWarnings(topology: Topology): TtlWarning[] {
  const detection = detectionMs(topology.settings);
  const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
  return topology.pools
    .filter((pool) => pool.loadBalancing === 'dns' && pool.dns.ttl * 1000 > TTL_DETECTION_RATIO_MAX * detection)
    .map((pool) => {
      const worstCaseMs = detection + pool.dns.ttl * 1000 + CLIENT_RETRY_MS;
      return {
        pool: pool.fqdn,
        ttlS: pool.dns.ttl,
        detectionMs: detection,
        worstCaseMs,
        text: `dns.ttl ${pool.dns.ttl} s is more than ${TTL_DETECTION_RATIO_MAX}× the time to detect a dead server (${seconds(detection)}: heartbeat ${topology.settings.heartbeat.intervalMs} ms × (failAfter ${topology.settings.heartbeat.failAfter} + 1)); a client may hold a dead server's address for ${seconds(worstCaseMs)} (detection + TTL + one ${seconds(CLIENT_RETRY_MS)} connect attempt): lower the TTL towards ${Math.max(1, Math.ceil((TTL_DETECTION_RATIO_MAX * detection) / 1000))} s`,
      };
    });
}

/** Lync Server 2013's largest supported Front End pool. */
export const POOL_SERVERS_SUPPORTED_MAX = 12;

/**
 * Front End pools larger than Lync 2013 supports. Valid all the same (a warning, not a rule): nothing
 * in dnslb stops at 12 — rendezvous hashing moves 1/(n+1) of the users on a commission, the heartbeat
 * costs n(n−1) probes per interval, the quorum guard extends Lync's table (pool/quorum.ts) — and a full
 * pool needs a 13th server for a while when a server is replaced (commission the new one, then
 * decommission the old). bench/RESULTS.md "Pool of 12" measures a pool of 12 and the 13th.
 */
export function poolSizeWarnings(topology: Topology): Array<{ pool: string; servers: number; text: string }> {
  return topology.pools
    .filter((pool) => pool.kind === 'frontend' && pool.servers.length > POOL_SERVERS_SUPPORTED_MAX)
    .map((pool) => ({
      pool: pool.fqdn,
      servers: pool.servers.length,
      text: `${pool.servers.length} Front End servers: Lync Server 2013 supports at most ${POOL_SERVERS_SUPPORTED_MAX} per pool; dnslb runs more (each server probes the ${pool.servers.length - 1} others every heartbeat interval), but consider a second pool unless this is a server being replaced`,
    }));
}

/** What `dnslb topology validate` warns about in a valid topology: a TTL much longer than failure detection, a pool above Lync's size. */
export function validationWarnings(topology: Topology): Array<{ pool: string; text: string }> {
  return [...ttlWarnings(topology), ...poolSizeWarnings(topology)].map(({ pool, text }) => ({ pool, text }));
}

/** The advice for every pool of a (validated) topology, in document order. */
export function advise(topology: Topology, options: AdviseOptions = {}): Advice {
  const legacyClientsPercentMax = options.legacyClientsPercentMax ?? LEGACY_CLIENTS_PERCENT_MAX;
  assert(legacyClientsPercentMax >= 0 && legacyClientsPercentMax <= 100, 'legacyClientsPercentMax is a percentage');
  const warnings = new Map(ttlWarnings(topology).map((warning) => [warning.pool, warning]));
  const sizes = new Map(poolSizeWarnings(topology).map((warning) => [warning.pool, warning]));
  const pools = topology.pools.map((pool) => {
    const advice = advisePool(pool, topology.facts, legacyClientsPercentMax);
    const notes: Note[] = [...advice.notes];
    const warning = warnings.get(pool.fqdn);
    if (warning) notes.push({ row: 'ttl-detection', text: warning.text });
    const size = sizes.get(pool.fqdn);
    if (size) notes.push({ row: 'pool-size', text: size.text });
    return notes.length === advice.notes.length ? advice : { ...advice, notes };
  });
  return { legacyClientsPercentMax, pools };
}
