// Topology + live server state → the content of each zone in each view (a pure function), and the
// SOA serial arithmetic (RFC 1982) that versions it.
import { isIP } from 'node:net';
import { consensus, takesNewWork } from '../pool/health.ts';
import type { AdminState, LivenessRecord } from '../store/store.ts';
import type { AddressPair, Pool, Server, StaticRecord, Topology, View } from '../topology/schema.ts';
import type { PolicyName } from './policy.ts';
import type { RecordData, RecordType } from './wire.ts';

/** One RRset: every record of one name and type, with how the answer orders them. */
export interface RRset {
  /** Lower-case, no trailing dot. */
  name: string;
  type: RecordType;
  ttl: number;
  records: RecordData[];
  policy: PolicyName;
  /** At most this many records per answer; 0 = all. */
  maxRecords: number;
}

export interface SoaFields {
  mname: string;
  rname: string;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** A zone's content without its serial: what is compared to decide whether the serial moves. */
export interface ZoneContent {
  origin: string;
  soa: SoaFields;
  /** View name → RRsets (the SOA excluded: it carries the serial), sorted by name then type. */
  views: ReadonlyMap<string, readonly RRset[]>;
}

/** A zone content at a serial: one entry of a zone's history (IXFR will diff two of these). */
export interface ZoneVersion {
  serial: number;
  content: ZoneContent;
  /** fingerprint(content), kept to compare cheaply. */
  fingerprint: string;
}

/** What the store says about servers right now. */
export interface LiveState {
  adminStates: ReadonlyMap<string, AdminState>;
  liveness: readonly LivenessRecord[];
  nowMs: number;
}

export const NO_LIVE_STATE: LiveState = { adminStates: new Map(), liveness: [], nowMs: 0 };

/** The SRV priority of the Front End pools when Directors come first (RFC 2782: lower is tried first). */
export const SRV_PRIORITY_BEHIND_DIRECTORS = 10;

/** Which records a view carries: split-brain DNS as a Lync deployment publishes it. */
export type ViewScope = 'internal' | 'external' | 'all';

/**
 * A view named `external` gets what the Internet sees (edge services, external Web services,
 * `_sip._tls`, federation SRV, lyncdiscover); any other view the inside records. With a single
 * view there is no split: it carries both.
 */
export function scopeOf(view: View, views: readonly View[]): ViewScope {
  if (views.length === 1) return 'all';
  return view.name === 'external' ? 'external' : 'internal';
}

function inScope(scope: ViewScope, wanted: 'internal' | 'external' | 'both'): boolean {
  return wanted === 'both' || scope === 'all' || scope === wanted;
}

// ---------------------------------------------------------------------------------------------
// Live state → which servers answer.

/**
 * The servers of `pool` that its answers carry. Blocked servers never (an operator's decision, no
 * fail-open). With `healthAware`, servers an operator is draining leave too, and so do the servers
 * the pool's consensus (src/pool/health.ts) holds down or that say themselves they are draining or
 * drained. A server nobody whose word counts has reported on yet is unknown, not down: it answers
 * (at start-up DNS serves the full pool until there is evidence). If no healthy server is left,
 * every unblocked one answers (fail open: a wrong answer beats none).
 */
export function answeringServers(pool: Pool, live: LiveState): Server[] {
  const unblocked = pool.servers.filter((server) => live.adminStates.get(server.fqdn) !== 'blocked');
  if (!pool.dns.healthAware) return unblocked;
  const health = consensus(pool.servers.map((server) => server.fqdn), live.liveness, live.nowMs);
  const healthy = unblocked.filter((server) => live.adminStates.get(server.fqdn) !== 'draining' && takesNewWork(health.get(server.fqdn)));
  return healthy.length > 0 ? healthy : unblocked;
}

// ---------------------------------------------------------------------------------------------
// Building.

/** An RRset waiting to be placed in the views it is wanted in. */
interface Pending extends RRset {
  wanted: 'internal' | 'external' | 'both' | readonly string[];
}

function addressRecords(pair: AddressPair | undefined, type: 'A' | 'AAAA'): RecordData[] {
  if (!pair) return [];
  const address = type === 'A' ? pair.ipv4 : pair.ipv6;
  return address === undefined ? [] : [{ type, address }];
}

/** The zone holding `name`: the longest origin that is `name` or a suffix of it at a label boundary. */
export function zoneOf(name: string, origins: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const origin of origins) {
    if ((name === origin || name.endsWith(`.${origin}`)) && (best === undefined || origin.length > best.length)) best = origin;
  }
  return best;
}

function staticRecordData(record: StaticRecord): RecordData | undefined {
  const value = record.value.trim();
  switch (record.type) {
    case 'A':
      return isIP(value) === 4 ? { type: 'A', address: value } : undefined;
    case 'AAAA':
      return isIP(value) === 6 ? { type: 'AAAA', address: value.toLowerCase() } : undefined;
    case 'CNAME':
      return { type: 'CNAME', target: value.toLowerCase().replace(/\.$/, '') };
    case 'TXT':
      return { type: 'TXT', text: value };
    case 'MX': {
      const match = /^(\d+)\s+(\S+)$/.exec(value);
      return match ? { type: 'MX', preference: Number(match[1]), exchange: match[2]!.toLowerCase().replace(/\.$/, '') } : undefined;
    }
    case 'SRV': {
      const match = /^(\d+)\s+(\d+)\s+(\d+)\s+(\S+)$/.exec(value);
      return match
        ? { type: 'SRV', priority: Number(match[1]), weight: Number(match[2]), port: Number(match[3]), target: match[4]!.toLowerCase().replace(/\.$/, '') }
        : undefined;
    }
  }
}

/** Every record the topology and live state call for, before they are split into zones and views. */
function collect(topology: Topology, live: LiveState): Pending[] {
  const out: Pending[] = [];
  const add = (wanted: Pending['wanted'], name: string, type: RecordType, ttl: number, records: RecordData[], policy: PolicyName = 'fixed', maxRecords = 0): void => {
    if (records.length > 0) out.push({ wanted, name, type, ttl, records, policy, maxRecords });
  };
  const addAddresses = (wanted: Pending['wanted'], name: string, pairs: readonly (AddressPair | undefined)[], ttl: number, policy: PolicyName = 'fixed', maxRecords = 0): void => {
    add(wanted, name, 'A', ttl, pairs.flatMap((pair) => addressRecords(pair, 'A')), policy, maxRecords);
    add(wanted, name, 'AAAA', ttl, pairs.flatMap((pair) => addressRecords(pair, 'AAAA')), policy, maxRecords);
  };

  for (const pool of topology.pools) {
    const { ttl, order, maxRecords } = pool.dns;
    const answering = answeringServers(pool, live);
    // The pool FQDN: one record per answering server, in rotation (or the VIP of a hardware LB).
    if (pool.loadBalancing === 'dns') addAddresses('internal', pool.fqdn, answering, ttl, order, maxRecords);
    else addAddresses('internal', pool.fqdn, [pool.vip], ttl);
    // Each server FQDN answers its own address, unless blocked (DESIGN §1 "Blocking").
    for (const server of pool.servers) {
      if (live.adminStates.get(server.fqdn) === 'blocked') continue;
      addAddresses('internal', server.fqdn, [server], ttl);
    }
    const web = pool.webServices;
    if (web?.internal) addAddresses('internal', web.internal.fqdn, [web.internal.vip], ttl);
    if (web?.external) addAddresses('both', web.external.fqdn, [web.external.vip], ttl);
    const edge = pool.edge;
    if (edge) {
      const services = [
        [edge.accessEdge, 'accessEdge'],
        [edge.webConferencing, 'webConferencing'],
        [edge.av, 'av'],
      ] as const;
      for (const [service, key] of services) {
        if (edge.externalLoadBalancing === 'dns') {
          addAddresses('external', service.fqdn, answering.map((server) => server.external?.[key]), ttl, order, maxRecords);
        } else {
          addAddresses('external', service.fqdn, [service.vip], ttl);
        }
      }
    }
  }

  // Per SIP domain: the SRV records clients use to find their pool, and Lync's discovery names.
  const directors = topology.pools.filter((pool) => pool.kind === 'director');
  const frontends = topology.pools.filter((pool) => pool.kind === 'frontend');
  const edgePool = topology.pools.find((pool) => pool.edge !== undefined);
  const webPool = [...frontends, ...directors].find((pool) => pool.webServices?.internal || pool.webServices?.external);
  for (const domain of topology.sipDomains) {
    // As Lync publishes them: where there is a Director pool, the SRV records name it first — a
    // Director authenticates the client and redirects it (301) to its home pool's servers, whichever
    // pool that is. The Front End pools follow at a lower priority (dnslb goes further than Lync
    // here): a client that reaches no Director still signs in, since a Front End redirects a user
    // of another pool home the same way. Without Directors, the Front End pools alone.
    const registrars = [...directors.map((pool) => ({ pool, priority: 0 })), ...frontends.map((pool) => ({ pool, priority: directors.length > 0 ? SRV_PRIORITY_BEHIND_DIRECTORS : 0 }))];
    const ttl = registrars[0]?.pool.dns.ttl ?? 3600;
    add('internal', `_sipinternaltls._tcp.${domain}`, 'SRV', ttl, registrars.map(({ pool, priority }) => ({ type: 'SRV', priority, weight: 0, port: pool.sip.tlsPort, target: pool.fqdn })));
    add('internal', `_sipinternal._tcp.${domain}`, 'SRV', ttl, registrars.map(({ pool, priority }) => ({ type: 'SRV', priority, weight: 0, port: pool.sip.tcpPort, target: pool.fqdn })));
    if (edgePool?.edge) {
      const access = edgePool.edge.accessEdge;
      const edgeTtl = edgePool.dns.ttl;
      add('external', `_sip._tls.${domain}`, 'SRV', edgeTtl, [{ type: 'SRV', priority: 0, weight: 0, port: access.port ?? 443, target: access.fqdn }]);
      add('external', `_sipfederationtls._tcp.${domain}`, 'SRV', edgeTtl, [{ type: 'SRV', priority: 0, weight: 0, port: access.federationPort, target: access.fqdn }]);
    }
    if (webPool?.webServices) {
      const { internal, external } = webPool.webServices;
      if (internal) addAddresses('internal', `lyncdiscoverinternal.${domain}`, [internal.vip], webPool.dns.ttl);
      if (external) addAddresses('both', `lyncdiscover.${domain}`, [external.vip], webPool.dns.ttl);
    }
  }

  // The DNS servers' own names (glue for the NS records), in every view.
  for (const server of topology.dns.servers) {
    const pairs = server.listen
      .map((endpoint) => endpoint.address)
      .filter((address) => address !== '0.0.0.0' && address !== '::')
      .map((address) => (isIP(address) === 4 ? { ipv4: address } : { ipv6: address }));
    addAddresses('both', server.fqdn, pairs, 3600);
  }

  for (const zone of topology.dns.zones) {
    for (const record of zone.records) {
      const data = staticRecordData(record);
      if (data) add(record.views ?? 'both', record.name, record.type, record.ttl, [data]);
    }
  }
  return out;
}

function compareRRsets(a: RRset, b: RRset): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.type < b.type ? -1 : a.type > b.type ? 1 : 0;
}

function sameRecord(a: RecordData, b: RecordData): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The content of every zone of the topology in every view, given the live state. Pure: the same
 * inputs give the same output (the serial is not part of it; see ZoneHistory in live.ts).
 */
export function buildZones(topology: Topology, live: LiveState): ZoneContent[] {
  const origins = topology.dns.zones.map((zone) => zone.name);
  const pending = collect(topology, live);
  const views = topology.dns.views;
  const nsNames = topology.dns.servers.map((server) => server.fqdn);
  return topology.dns.zones.map((zone) => {
    const soa: SoaFields = {
      mname: zone.soa.mname ?? nsNames[0] ?? `ns.${zone.name}`,
      rname: zone.soa.rname ?? `hostmaster.${zone.name}`,
      refresh: zone.soa.refreshS,
      retry: zone.soa.retryS,
      expire: zone.soa.expireS,
      minimum: zone.soa.minimumS,
    };
    const byView = new Map<string, RRset[]>();
    for (const view of views) {
      const scope = scopeOf(view, views);
      const sets = new Map<string, RRset>();
      sets.set(`${zone.name}/NS`, { name: zone.name, type: 'NS', ttl: zone.soa.refreshS, records: nsNames.map((target) => ({ type: 'NS', target })), policy: 'fixed', maxRecords: 0 });
      for (const item of pending) {
        if (zoneOf(item.name, origins) !== zone.name) continue;
        const wanted = item.wanted;
        const included = typeof wanted === 'string' ? inScope(scope, wanted) : wanted.includes(view.name);
        if (!included) continue;
        const key = `${item.name}/${item.type}`;
        const existing = sets.get(key);
        if (existing) {
          for (const record of item.records) if (!existing.records.some((seen) => sameRecord(seen, record))) existing.records.push(record);
        } else {
          sets.set(key, { name: item.name, type: item.type, ttl: item.ttl, records: [...item.records], policy: item.policy, maxRecords: item.maxRecords });
        }
      }
      byView.set(view.name, [...sets.values()].sort(compareRRsets));
    }
    return { origin: zone.name, soa, views: byView };
  });
}

/** A stable text of a zone's content: equal fingerprints ⇔ nothing to bump the serial for. */
export function fingerprint(content: ZoneContent): string {
  return JSON.stringify({ origin: content.origin, soa: content.soa, views: [...content.views.entries()] });
}

// ---------------------------------------------------------------------------------------------
// Serials (RFC 1982 serial number arithmetic, SERIAL_BITS = 32).

const HALF = 2 ** 31;

/** RFC 1982 §3.2: s1 > s2 in sequence-space arithmetic. */
export function serialGreater(s1: number, s2: number): boolean {
  return (s1 < s2 && s2 - s1 > HALF) || (s1 > s2 && s1 - s2 < HALF);
}

/** RFC 1982 §3.1: s + n, for n in [0, 2^31 - 1]. */
export function serialAdd(serial: number, n: number): number {
  return (serial + n) % 2 ** 32;
}

/**
 * The next serial: the Unix time in seconds, or previous + 1 when that is not greater (several
 * changes in one second, or a clock that went back). Tied to the clock, it also grows across
 * restarts as long as the process did not run more than (changes − seconds) ahead of the clock;
 * see README "Serials".
 */
export function nextSerial(previous: number | undefined, nowMs: number): number {
  const clockSerial = Math.floor(nowMs / 1000) % 2 ** 32;
  if (previous === undefined) return clockSerial;
  return serialGreater(clockSerial, previous) ? clockSerial : serialAdd(previous, 1);
}

// ---------------------------------------------------------------------------------------------
// Flat record lists (zone transfers, master files, RFC 2136 differences).

/** One resource record of a zone, as transfers and master files list them. */
export interface ZoneRecord {
  /** Lower-case, no trailing dot. */
  name: string;
  ttl: number;
  data: RecordData;
}

/** The zone's SOA record at this version; its TTL is MINIMUM, as the answers serve it. */
export function soaOf(version: ZoneVersion): ZoneRecord {
  const { content, serial } = version;
  return { name: content.origin, ttl: content.soa.minimum, data: { type: 'SOA', serial, ...content.soa } };
}

/** Every record of the zone in `view` except the SOA, RRsets in name/type order, records as stored. */
export function viewRecords(version: ZoneVersion, view: string): ZoneRecord[] {
  const rrsets = version.content.views.get(view) ?? [];
  return rrsets.flatMap((rrset) => rrset.records.map((data) => ({ name: rrset.name, ttl: rrset.ttl, data })));
}

