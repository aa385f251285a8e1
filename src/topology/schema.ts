// The topology document (Lync's Topology Builder, as YAML): its zod schema, defaults and types.
// Shape rules live here; rules that look across the document (uniqueness, zones, references) live in rules.ts.
import { isIP } from 'node:net';
import * as z from 'zod';
import { limits } from '../shared/limits.ts';
import { normalisePrefix, E164_DIGITS_MAX } from './phone-number.ts';
import { isUserPatternError, parseUserPattern } from './user-pattern.ts';

/** RFC 1035 §2.3.1 / RFC 1123 §2.1: labels of letters, digits and hyphens, 1–63 bytes, 253 in all. */
const FQDN_PATTERN = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/;

/**
 * Issues raised by these refinements carry the stable code parse.ts reports for them
 * (a malformed name is TOPOLOGY_BAD_FQDN, a malformed address TOPOLOGY_BAD_ADDRESS, not a generic TOPOLOGY_SCHEMA).
 */
const BAD_FQDN = { code: 'TOPOLOGY_BAD_FQDN' } as const;
const BAD_ADDRESS = { code: 'TOPOLOGY_BAD_ADDRESS' } as const;
const BAD_PATTERN = { code: 'TOPOLOGY_BAD_PATTERN' } as const;

const FQDN_JSON_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.?$';

export function isFqdn(value: string): boolean {
  return FQDN_PATTERN.test(value);
}

/**
 * Owner names of static records may also start with underscore labels (RFC 2782 `_sip._tls.contoso.com`,
 * RFC 8552 `_dmarc`) or a wildcard label (RFC 4592 `*.contoso.com`); the rest must be a host name.
 */
export function isRecordName(value: string): boolean {
  const labels = value.split('.');
  let first = 0;
  if (labels[0] === '*') first = 1;
  while (first < labels.length && /^_[a-z0-9-]{1,62}$/.test(labels[first] ?? '')) first += 1;
  return value.length <= 253 && FQDN_PATTERN.test(labels.slice(first).join('.'));
}

export const fqdn = z
  .string()
  .transform((value) => value.toLowerCase().replace(/\.$/, ''))
  .refine(isFqdn, { message: 'not a well-formed FQDN (labels of a-z, 0-9 and -, at most 63 bytes each, at least two labels)', params: BAD_FQDN })
  // For editors (`dnslb topology schema`): the same shape before lower-casing, a trailing dot allowed.
  .meta({ description: 'a fully qualified domain name', pattern: FQDN_JSON_PATTERN, maxLength: 254 });

const recordName = z
  .string()
  .transform((value) => value.toLowerCase().replace(/\.$/, ''))
  .refine(isRecordName, {
    message: 'not a well-formed record name (an FQDN, optionally after "_service" labels or a "*" label)',
    params: BAD_FQDN,
  });

export const ipv4 = z
  .string()
  .refine((value) => isIP(value) === 4, { message: 'not an IPv4 address', params: BAD_ADDRESS })
  .meta({ format: 'ipv4' });
export const ipv6 = z
  .string()
  .refine((value) => isIP(value) === 6, { message: 'not an IPv6 address', params: BAD_ADDRESS })
  .transform((value) => value.toLowerCase())
  .meta({ format: 'ipv6' });

const port = z.number().int().min(1).max(65535);

function isEndpoint(address: string | undefined, portNumber: number): address is string {
  return address !== undefined && isIP(address) !== 0 && Number.isInteger(portNumber) && portNumber >= 1 && portNumber <= 65535;
}

/**
 * "address:port" or "[v6]:port", parsed to { address, port }. The parsed form is accepted too, so that a
 * parsed topology (as the store keeps it) validates again through fromObject.
 */
export const endpoint = z.union([z.string(), z.strictObject({ address: z.string(), port: z.number() })]).transform((value, context) => {
  let address: string | undefined;
  let portNumber: number;
  if (typeof value === 'string') {
    const match = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:]+):(\d+)$/.exec(value);
    address = match?.[1];
    portNumber = Number(match?.[2]);
  } else {
    ({ address, port: portNumber } = value);
  }
  if (!isEndpoint(address, portNumber)) {
    context.addIssue({ code: 'custom', message: 'not an endpoint "address:port" or "[ipv6]:port"', params: BAD_ADDRESS });
    return z.NEVER;
  }
  return { address: address.toLowerCase(), port: portNumber };
});
export type Endpoint = { address: string; port: number };

export const cidr = z.string().transform((value, context) => {
  const [address, bitsText] = value.split('/');
  const family = address === undefined ? 0 : isIP(address);
  const bits = Number(bitsText);
  const maxBits = family === 6 ? 128 : 32;
  if (family === 0 || bitsText === undefined || !/^\d+$/.test(bitsText) || bits > maxBits) {
    context.addIssue({ code: 'custom', message: 'not a CIDR "address/bits"', params: BAD_ADDRESS });
    return z.NEVER;
  }
  return value.toLowerCase();
});

const addresses = {
  ipv4: ipv4.optional(),
  ipv6: ipv6.optional(),
};

/** Where a host answers: at least one of IPv4 or IPv6. */
const address = z.strictObject(addresses).refine((value) => value.ipv4 !== undefined || value.ipv6 !== undefined, {
  message: 'needs ipv4 or ipv6 (or both)',
});

export const POOL_KINDS = ['frontend', 'director', 'edge', 'mediation'] as const;
export type PoolKind = (typeof POOL_KINDS)[number];

/** "a frontend pool", "an edge pool": for messages. */
export function aPoolOf(kind: PoolKind): string {
  return `${kind === 'edge' ? 'an' : 'a'} ${kind} pool`;
}
export const LOAD_BALANCING = ['dns', 'hardware'] as const;
export type LoadBalancing = (typeof LOAD_BALANCING)[number];
export const ANSWER_ORDERS = ['rotate', 'random', 'fixed'] as const;

const dnsPolicy = z
  .strictObject({
    order: z.enum(ANSWER_ORDERS).default('rotate'),
    /** At most this many address records per answer; 0 = all servers. */
    maxRecords: z.number().int().min(0).max(64).default(0),
    /** Seconds. Short, so that clients notice a blocked or drained server soon. */
    ttl: z.number().int().min(0).max(86_400).default(300),
    /** Leave draining and dead servers out of the pool answer (failing open when none is left). */
    healthAware: z.boolean().default(true),
  })
  .prefault({});

const edgeExternalAddresses = z.strictObject({
  accessEdge: address,
  webConferencing: address,
  av: address,
});

const server = z
  .strictObject({
    fqdn,
    ...addresses,
    /** Edge servers only: the external address of each of the three edge services. */
    external: edgeExternalAddresses.optional(),
  })
  // A server without an address could be neither resolved nor reached.
  .refine((value) => value.ipv4 !== undefined || value.ipv6 !== undefined, { message: 'a server needs ipv4 or ipv6 (or both)' });

/** One side (internal or external) of a pool's Web services: the FQDN clients use, the VIP it resolves to. */
const webService = z.strictObject({
  fqdn,
  vip: address,
  /** The HTTPS port clients connect to on the VIP (Lync: 443 on both sides). */
  port: port.default(443),
});

/** Where a hardware load balancer for the Web services comes from: `none` (yours, outside dnslb) or `haproxy` (dnslb up runs Debian's HAProxy on the VIPs). */
export const HLB_KINDS = ['none', 'haproxy'] as const;
export type HlbKind = (typeof HLB_KINDS)[number];

const webServices = z.strictObject({
  /** Lync's internal Web site listens on 443 on every server. */
  internal: webService.extend({ serverPort: port.default(443) }).optional(),
  /** Lync's external Web site listens on 4443 on every server (a reverse proxy publishes it on 443). */
  external: webService.extend({ serverPort: port.default(4443) }).optional(),
  hlb: z.enum(HLB_KINDS).default('none'),
});

const edgeService = z.strictObject({
  fqdn,
  /** Access Edge: 443 for clients (`_sip._tls`); federation uses `federationPort`. */
  port: port.optional(),
  /** With hardware load balancing on the external interface: the VIP of this service. */
  vip: address.optional(),
});

/**
 * Federation through this edge pool's Access Edge (federation-rules.ts, src/frontend/federation.ts): the
 * partner organisations whose users ours may talk to, and where the edge looks their Access Edges up.
 */
const federation = z.strictObject({
  /** SIP domains of the partner organisations; requests to or from any other domain through the Access Edge get 403. */
  partners: z.array(fqdn).max(limits.topologyFederationPartnersMax).default([]),
  /** The DNS server asked for a partner's `_sipfederationtls._tcp` SRV and Access Edge addresses; the host's resolvers when absent. */
  resolver: endpoint.optional(),
  /** A request to a partner tries at most this many of its Access Edge addresses (next on connect failure, no answer, 503). */
  triesMax: z.number().int().min(1).max(16).default(4),
  /**
   * Partner domain → PEM file of the CA(s) its Access Edge certificate must verify against (both ways:
   * its connections to us, ours to it); a partner not listed here must present a certificate of a public
   * CA (Node's root store). A relative path is taken from the edge server's working directory; the file
   * is read when a partner connects (it may appear after the start). src/edge/partner-identity.ts.
   */
  trustedCas: z.record(fqdn, z.string().min(1).max(4096)).optional(),
});

const edge = z.strictObject({
  /** Load balancing of the external interface; must equal the pool's (internal interface). */
  externalLoadBalancing: z.enum(LOAD_BALANCING),
  accessEdge: edgeService.extend({ federationPort: port.default(5061) }),
  webConferencing: edgeService,
  av: edgeService,
  federation: federation.optional(),
});

export const GATEWAY_TRANSPORTS = ['tcp', 'tls'] as const;

/** A PSTN gateway (or IP-PBX) a Mediation pool forwards calls to: an address, never a name (no DNS on the call path). */
const gateway = z.strictObject({
  /** "address:port" or "[v6]:port". */
  endpoint,
  /** SIP over TCP or TLS, as everywhere in dnslb (no UDP). */
  transport: z.enum(GATEWAY_TRANSPORTS).default('tcp'),
  /** The gateway's name: what its TLS certificate must match, and what messages call it. */
  fqdn: fqdn.optional(),
});

const pool = z.strictObject({
  /** The pool FQDN: with DNS load balancing it answers one record per server. */
  fqdn,
  kind: z.enum(POOL_KINDS),
  site: z.string().min(1),
  loadBalancing: z.enum(LOAD_BALANCING),
  /** With hardware load balancing: the VIP the pool FQDN resolves to. */
  vip: address.optional(),
  servers: z.array(server),
  /** Frontend and director pools: Web services stay behind a hardware load balancer (HTTPS). */
  webServices: webServices.optional(),
  /** Edge pools: the external services. */
  edge: edge.optional(),
  /** Mediation pools: the gateways calls leave through, tried in order. */
  gateways: z.array(gateway).min(1).optional(),
  dns: dnsPolicy,
  sip: z
    .strictObject({
      tcpPort: port.default(5060),
      tlsPort: port.default(5061),
    })
    .prefault({}),
});

export const STATIC_RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'SRV'] as const;

const staticRecord = z.strictObject({
  name: recordName,
  type: z.enum(STATIC_RECORD_TYPES),
  /** A: IPv4; AAAA: IPv6; CNAME: a target name; MX: "preference exchange"; SRV: "priority weight port target"; TXT: text. */
  value: z.string().min(1),
  ttl: z.number().int().min(0).max(604_800).default(3600),
  /** Views the record is served in; all views when absent. */
  views: z.array(z.string().min(1)).optional(),
});

const zone = z.strictObject({
  name: fqdn,
  soa: z
    .strictObject({
      /** Primary name server; the first DNS server's FQDN when absent. */
      mname: fqdn.optional(),
      /** Responsible mailbox as a domain name (hostmaster.example.com). */
      rname: fqdn.optional(),
      refreshS: z.number().int().min(1).default(3600),
      retryS: z.number().int().min(1).default(600),
      expireS: z.number().int().min(1).default(604_800),
      /** RFC 2308 §4: the negative-caching TTL. */
      minimumS: z.number().int().min(0).max(86_400).default(60),
    })
    .prefault({}),
  records: z.array(staticRecord).default([]),
});

const dnsServer = z.strictObject({
  fqdn,
  listen: z.array(endpoint).min(1),
});

const view = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'view names are lower-case words'),
  /** Clients whose source address falls in one of these networks get this view (first match wins). */
  clients: z.array(cidr).min(1),
});

const dns = z.strictObject({
  servers: z.array(dnsServer).min(1),
  zones: z.array(zone).min(1),
  views: z
    .array(view)
    .min(1)
    .default([
      { name: 'internal', clients: ['0.0.0.0/0', '::/0'] },
    ]),
  /** Secondaries allowed to transfer the zones; each is sent NOTIFY on every change. */
  secondaries: z.array(endpoint).default([]),
  /** Response rate limiting on UDP (src/dns/rrl.ts, src/dns/README.md): off when absent. */
  rateLimit: z
    .strictObject({
      /** Responses per second to one source prefix; past it, slipped or dropped. */
      responsesPerSecond: z.number().int().min(1).max(1_000_000),
      /** Every slip-th response over the rate goes out truncated (TC=1); 0: none, 1: all. */
      slip: z.number().int().min(0).max(10).default(2),
      ipv4PrefixLength: z.number().int().min(8).max(32).default(24),
      ipv6PrefixLength: z.number().int().min(16).max(128).default(56),
    })
    .optional(),
});

const settings = z
  .strictObject({
    heartbeat: z
      .strictObject({
        intervalMs: z.number().int().min(50).max(60_000).default(1000), // 1 s
        failAfter: z.number().int().min(1).max(100).default(3),
        riseAfter: z.number().int().min(1).max(100).default(2),
        // After a refused probe, the next one sooner (pool/heartbeat.ts); a quarter of the interval when left out.
        refusedRetryMs: z.number().int().min(10).max(60_000).optional(),
      })
      .prefault({}),
    rehome: z
      .strictObject({
        batchSize: z.number().int().min(1).max(100_000).default(100),
        intervalMs: z.number().int().min(10).max(600_000).default(1000), // 1 s
      })
      .prefault({}),
    drain: z
      .strictObject({
        timeoutMs: z.number().int().min(1000).max(86_400_000).default(3_600_000), // 1 h
      })
      .prefault({}),
    /** SIP digest authentication of clients (DESIGN §7 "Trust", src/auth/README.md): off unless the topology turns it on. */
    auth: z
      .strictObject({
        /** Challenge clients' REGISTERs (401) and out-of-dialog requests (407) against the user directory in the store. */
        enabled: z.boolean().default(false),
        /**
         * The digest algorithms offered (one challenge each, in this order: clients answer the first
         * they can) and accepted. MD5 only when listed (RFC 8760 §2.4: for clients that cannot do
         * SHA-256; sipp 3.6 answers the first challenge and knows MD5 only, so its tests list MD5 first).
         */
        algorithms: z
          .array(z.enum(['SHA-256', 'MD5']))
          .min(1)
          .refine((list) => new Set(list).size === list.length, { message: 'an algorithm is listed twice' })
          .default(['SHA-256']),
        /** A nonce older than this is answered with a new challenge and stale=true. */
        nonceLifetimeMs: z.number().int().min(10_000).max(86_400_000).default(300_000), // 5 min
      })
      .prefault({}),
    /**
     * Server-to-server links: heartbeat, proxying, hand-over, routing between pools (DESIGN §7 "Trust",
     * src/frontend/README.md "Server-to-server links").
     */
    interServer: z
      .strictObject({
        /**
         * `tls` (the default): mutual TLS with the pool CA; a peer is recognised only by a verified
         * certificate whose subjectAltName is a server FQDN of the topology. `tcp`: plain TCP, a peer
         * recognised by its source address — only when written here; every server warns at start.
         */
        transport: z.enum(['tls', 'tcp']).default('tls'),
      })
      .prefault({}),
    supervisor: z
      .strictObject({
        restartDelayMs: z.number().int().min(0).max(600_000).default(2000), // 2 s
        // Generous: on a loaded 2-core machine eight children compiling TypeScript at once take a while.
        startTimeoutMs: z.number().int().min(1000).max(600_000).default(60_000), // 1 min
      })
      .prefault({}),
  })
  .prefault({});

/** A glob over the canonical user URI (user-pattern.ts), written back in canonical form (scheme and host lower case). */
const userPattern = z
  .string()
  .transform((value, context) => {
    const parsed = parseUserPattern(value);
    if (isUserPatternError(parsed)) {
      context.addIssue({ code: 'custom', message: parsed.error, params: BAD_PATTERN });
      return z.NEVER;
    }
    return `sip:${parsed.user}@${parsed.host}`;
  })
  .meta({ description: 'a glob over the canonical user URI: * any run of characters, ? one character', pattern: '^[sS][iI][pP]:[^@]+@[^@]+$' });

const homeRule = z
  .strictObject({
    /** Every user of this SIP domain. */
    domain: fqdn.optional(),
    /** The users whose canonical URI matches this glob. */
    users: userPattern.optional(),
    /** A frontend pool. */
    pool: fqdn,
  })
  .refine((rule) => (rule.domain === undefined) !== (rule.users === undefined), {
    message: 'a home rule has exactly one of "domain" (a SIP domain) or "users" (a pattern such as sip:*@dublin.contoso.com)',
  });

/** Where users live (DESIGN §7): the first rule that matches a user, else the default; an explicit assignment in the store comes first. */
const homePools = z.strictObject({
  /** The frontend pool of users no rule matches; with one frontend pool in the topology, that pool when absent. */
  default: fqdn.optional(),
  rules: z.array(homeRule).max(limits.topologyHomeRulesMax).default([]),
});

/** A route prefix in normal form: `+` and digits, visual separators removed. */
const numberPrefix = z
  .string()
  .transform((value, context) => {
    const normal = normalisePrefix(value);
    if ('error' in normal) {
      context.addIssue({ code: 'custom', message: normal.error, params: BAD_PATTERN });
      return z.NEVER;
    }
    return normal.prefix;
  })
  .meta({ description: 'a global number prefix: + then digits, separators - . ( ) allowed', pattern: '^\\+[0-9().-]*$' });

const digitCount = z.number().int().min(1).max(E164_DIGITS_MAX);

const pstnRoute = z
  .strictObject({
    /** For messages and diffs. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/, 'a route name is a word of at most 64 letters, digits, spaces, . _ -').optional(),
    /** The numbers this route takes: global numbers starting with these digits. */
    prefix: numberPrefix,
    /** Digits (after +) a complete number has at least; a shorter one is incomplete (484). Default: the prefix's digits, at least 1. */
    digitsMin: digitCount.optional(),
    /** Digits a number has at most; a longer one takes no route here. Default 15 (E.164). */
    digitsMax: digitCount.optional(),
    /** A mediation pool. */
    pool: fqdn,
  })
  .refine((route) => route.digitsMin === undefined || route.digitsMax === undefined || route.digitsMin <= route.digitsMax, {
    message: 'digitsMin is larger than digitsMax',
    path: ['digitsMin'],
  });

/** Calls to telephone numbers (DESIGN §7 Mediation): the most specific matching prefix wins. */
const pstn = z.strictObject({
  routes: z.array(pstnRoute).max(limits.topologyPstnRoutesMax).default([]),
});

export const EXCHANGE_UM_VERSIONS = ['none', '2007', '2007-sp1', '2010', '2010-sp1', '2013', '2016', '2019'] as const;
export type ExchangeUmVersion = (typeof EXCHANGE_UM_VERSIONS)[number];

/** What the advisor weighs (DESIGN §3 "Advisor"). */
const facts = z
  .strictObject({
    /** Share of clients older than Lync 2010 (they try only the first address), 0–100 %. */
    legacyClientsPercent: z.number().min(0).max(100).default(0),
    // A bare 2013 in YAML is a number; accept it as the version it names. A union (not a preprocess) so that
    // the JSON Schema for editors (`dnslb topology schema`) also accepts the bare number.
    exchangeUm: z
      .union([z.enum(EXCHANGE_UM_VERSIONS), z.literal([2007, 2010, 2013, 2016, 2019])])
      .transform((value) => String(value))
      .pipe(z.enum(EXCHANGE_UM_VERSIONS))
      .default('none'),
    /** Interoperates with Office Communications Server 2007 / 2007 R2 pools. */
    pre2010Servers: z.boolean().default(false),
    /** Federates with organisations running servers older than Lync 2010. */
    federationWithPre2010: z.boolean().default(false),
    /** Public IM connectivity (Windows Live, AOL, Yahoo!) on the edge. */
    publicIm: z.boolean().default(false),
    /** XMPP federation on the edge. */
    xmpp: z.boolean().default(false),
  })
  .prefault({});

export const topologySchema = z.strictObject({
  /** The document format; 1 is the only one so far. */
  schemaVersion: z.literal(1).default(1),
  sipDomains: z.array(fqdn).min(1),
  sites: z.array(z.strictObject({ name: z.string().min(1), description: z.string().optional() })).min(1),
  /** When present, the only users the servers know (`sip:user@domain`); otherwise any user of the SIP domains. */
  users: z.array(z.string().regex(/^sips?:[^@\s]+@[^@\s]+$/i, 'not a SIP URI sip:user@domain')).optional(),
  pools: z.array(pool).min(1),
  homePools: homePools.optional(),
  pstn: pstn.optional(),
  dns,
  settings,
  facts,
});

export type Topology = z.output<typeof topologySchema>;
export type TopologyInput = z.input<typeof topologySchema>;
export type Pool = Topology['pools'][number];
export type Server = Pool['servers'][number];
export type DnsPolicy = Pool['dns'];
export type Zone = Topology['dns']['zones'][number];
export type StaticRecord = Zone['records'][number];
export type View = Topology['dns']['views'][number];
export type Facts = Topology['facts'];
export type Settings = Topology['settings'];
export type WebServices = NonNullable<Pool['webServices']>;
/** The two sides of a pool's Web services, each with its own VIP, ports and FQDN. */
export type WebServicesSide = 'internal' | 'external';
export type Gateway = NonNullable<Pool['gateways']>[number];
export type Federation = NonNullable<NonNullable<Pool['edge']>['federation']>;
export type HomePools = NonNullable<Topology['homePools']>;
export type HomeRule = HomePools['rules'][number];
export type PstnRoute = NonNullable<Topology['pstn']>['routes'][number];
export type AddressPair = { ipv4?: string | undefined; ipv6?: string | undefined };
