// A pool's Web services VIPs as an HAProxy configuration (DESIGN §1: HTTPS stays on a hardware load
// balancer): one frontend per VIP, one backend per Web site with the pool's servers, health checks
// over HTTPS on each server's /health, TLS passed through (src/hlb/README.md says why). Pure: the
// same topology and options give the same text, which `haproxy -c` accepts.
import { isIP } from 'node:net';
import { DnslbError } from '../shared/errors.ts';
import type { Pool, Topology, WebServicesSide } from '../topology/schema.ts';
import { HEALTH_PATH } from '../webservices/health.ts';

/** Check timing and connection limits; README "Config" says why each default. */
export interface HaproxyTuning {
  /** Between two health checks of one server. */
  checkIntervalMs: number;
  /** Failed checks before a server is marked down. */
  fallAfter: number;
  /** Passed checks before a server is marked up again. */
  riseAfter: number;
  /** To connect to a server; a refused or timed-out connect is retried on another server. */
  connectTimeoutMs: number;
  /** Idle time of a client or server side of a passed-through TLS connection. */
  idleTimeoutMs: number;
}

export const HAPROXY_TUNING: HaproxyTuning = {
  checkIntervalMs: 1000, // 1 s: a dead server is out within fallAfter × 1 s
  fallAfter: 2,
  riseAfter: 2,
  connectTimeoutMs: 2000, // 2 s
  idleTimeoutMs: 60_000, // 1 min
};

export interface HaproxyConfigOptions {
  /** HAProxy's runtime API socket (`stats socket … level admin`), which dnslb drives. */
  socketPath: string;
  /** The pool CA (DATA/tls/ca.pem): health checks verify each server's certificate against it. */
  caFile: string;
  /** Shown in the header comment. */
  topologyVersion?: number;
  tuning?: Partial<HaproxyTuning>;
}

/** The backend (and frontend) name of one Web site of a pool, as the runtime API commands name it. */
export function backendName(side: WebServicesSide): string {
  return `web-${side}`;
}

/** `addr:port` as HAProxy reads it; an IPv6 address goes bare (HAProxy splits at the last colon), with ipv6@ to be plain. */
function haproxyAddress(address: string, port: number): string {
  return isIP(address) === 6 ? `ipv6@${address}:${port}` : `${address}:${port}`;
}

/** The pool (frontend or director) whose Web services VIPs HAProxy serves; HLB_CONFIG names what is missing. */
export function hlbPool(topology: Topology, poolFqdn: string): Pool {
  const fqdn = poolFqdn.toLowerCase().replace(/\.$/, '');
  const pool = topology.pools.find((candidate) => candidate.fqdn === fqdn);
  if (!pool) throw new DnslbError('HLB_CONFIG', `no pool ${fqdn} in the topology; pools: ${topology.pools.map((each) => each.fqdn).join(', ')}`);
  if (!pool.webServices?.internal && !pool.webServices?.external) {
    throw new DnslbError('HLB_CONFIG', `pool ${fqdn} has no Web services VIP (webServices.internal or .external); only frontend and director pools with Web services sit behind an HLB`);
  }
  return pool;
}

/** The Web sites of a pool that have a VIP, internal first. */
export function sidesOf(pool: Pool): WebServicesSide[] {
  return (['internal', 'external'] as const).filter((side) => pool.webServices?.[side] !== undefined);
}

/** The configuration text for `pool`'s Web services VIPs. */
export function haproxyConfig(topology: Topology, poolFqdn: string, options: HaproxyConfigOptions): string {
  const pool = hlbPool(topology, poolFqdn);
  const tuning = { ...HAPROXY_TUNING, ...options.tuning };
  const lines: string[] = [
    `# HAProxy for the Web services of ${pool.fqdn}${options.topologyVersion === undefined ? '' : ` (topology version ${options.topologyVersion})`}, made by dnslb.`,
    '# TLS passes through (mode tcp): clients see each server\'s own certificate from the pool CA, end to end.',
    '# dnslb drives the admin state of each server through the stats socket (set server … state drain|maint|ready).',
    'global',
    `    stats socket ${options.socketPath} mode 600 level admin`,
    '    stats timeout 10s',
    '',
    'defaults',
    '    mode tcp',
    `    timeout connect ${tuning.connectTimeoutMs}ms`,
    `    timeout client ${tuning.idleTimeoutMs}ms`,
    `    timeout server ${tuning.idleTimeoutMs}ms`,
    `    timeout check ${tuning.connectTimeoutMs}ms`,
    // A connect that fails (a server killed, not yet seen by the checks) is retried on another server.
    '    retries 2',
    '    option redispatch 1',
    `    default-server inter ${tuning.checkIntervalMs}ms fall ${tuning.fallAfter} rise ${tuning.riseAfter}`,
  ];
  for (const side of sidesOf(pool)) {
    const web = pool.webServices![side]!;
    const name = backendName(side);
    lines.push('', `frontend ${name}`, `    # ${web.fqdn} (and lyncdiscover${side === 'internal' ? 'internal' : ''}.<domain>) resolve here`);
    for (const address of [web.vip.ipv4, web.vip.ipv6]) if (address !== undefined) lines.push(`    bind ${haproxyAddress(address, web.port)}`);
    lines.push(`    default_backend ${name}`);
    lines.push(
      '',
      `backend ${name}`,
      '    balance roundrobin',
      // The health endpoint says 503 once a server is drained or blocked (src/webservices/health.ts).
      '    option httpchk',
      `    http-check send meth GET uri ${HEALTH_PATH} ver HTTP/1.1 hdr Host ${web.fqdn}`,
      '    http-check expect status 200',
    );
    for (const server of pool.servers) {
      const address = server.ipv4 ?? server.ipv6!;
      lines.push(`    server ${server.fqdn} ${haproxyAddress(address, web.serverPort)} check check-ssl check-sni ${server.fqdn} verify required ca-file ${options.caFile} verifyhost ${server.fqdn}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
