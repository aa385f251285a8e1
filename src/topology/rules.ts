// Rules that look across the whole document (DESIGN §3 "Topology validation"); each returns every violation found.
// They run on the schema's output (defaults filled in, names lower-cased); parse.ts adds line:column to each path.
import { isIP } from 'node:net';
import type { Problem, YamlPath } from './problem.ts';
import { formatPath } from './problem.ts';
import { FEDERATION_RULES } from './federation.ts';
import { ROLE_RULES } from './role-rules.ts';
import { aPoolOf, isFqdn, type AddressPair, type Pool, type StaticRecord, type Topology } from './schema.ts';

export type RuleProblem = Omit<Problem, 'line' | 'column'>;

export interface Rule {
  /** Short name, used in README.md and tests. */
  name: string;
  check(topology: Topology): RuleProblem[];
}

/** What a name in the document stands for, so that messages can say what it collides with. */
type NameRole = 'pool' | 'server' | 'internal Web services' | 'external Web services' | 'edge service' | 'DNS server';

interface NamedFqdn {
  fqdn: string;
  role: NameRole;
  path: YamlPath;
  /** The pool the name belongs to, when it belongs to one. */
  poolIndex?: number;
}

const EDGE_SERVICES = ['accessEdge', 'webConferencing', 'av'] as const;
const EDGE_SERVICE_LABELS = { accessEdge: 'Access Edge', webConferencing: 'Web Conferencing Edge', av: 'A/V Edge' } as const;

/** Every FQDN the topology defines itself (the DNS server answers them from the topology), in document order. */
function definedNames(topology: Topology): NamedFqdn[] {
  const names: NamedFqdn[] = [];
  topology.pools.forEach((pool, poolIndex) => {
    names.push({ fqdn: pool.fqdn, role: 'pool', path: ['pools', poolIndex, 'fqdn'], poolIndex });
    pool.servers.forEach((server, serverIndex) => {
      names.push({ fqdn: server.fqdn, role: 'server', path: ['pools', poolIndex, 'servers', serverIndex, 'fqdn'], poolIndex });
    });
    const { internal, external } = pool.webServices ?? {};
    if (internal) names.push({ fqdn: internal.fqdn, role: 'internal Web services', path: ['pools', poolIndex, 'webServices', 'internal', 'fqdn'], poolIndex });
    if (external) names.push({ fqdn: external.fqdn, role: 'external Web services', path: ['pools', poolIndex, 'webServices', 'external', 'fqdn'], poolIndex });
    if (pool.edge) {
      for (const service of EDGE_SERVICES) {
        names.push({ fqdn: pool.edge[service].fqdn, role: 'edge service', path: ['pools', poolIndex, 'edge', service, 'fqdn'], poolIndex });
      }
    }
  });
  topology.dns.servers.forEach((server, index) => {
    names.push({ fqdn: server.fqdn, role: 'DNS server', path: ['dns', 'servers', index, 'fqdn'] });
  });
  return names;
}

function staticRecords(topology: Topology): { record: StaticRecord; zoneIndex: number; recordIndex: number; path: YamlPath }[] {
  return topology.dns.zones.flatMap((zone, zoneIndex) =>
    zone.records.map((record, recordIndex) => ({ record, zoneIndex, recordIndex, path: ['dns', 'zones', zoneIndex, 'records', recordIndex] as YamlPath })),
  );
}

function isInside(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** One spelling per address, so that `::1` and `0:0::1` collide (the URL parser prints RFC 5952 form). */
function canonicalIp(address: string): string {
  return isIP(address) === 6 ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

const uniqueFqdns: Rule = {
  name: 'unique FQDNs',
  check(topology) {
    const problems: RuleProblem[] = [];
    const servers = new Map<string, NamedFqdn>();
    const first = new Map<string, NamedFqdn>();
    for (const named of definedNames(topology)) {
      if (named.role === 'server') {
        // The same server twice is one error ("server in two pools"), not also an FQDN or IP collision.
        const earlier = servers.get(named.fqdn);
        if (earlier) {
          const where = earlier.poolIndex === named.poolIndex ? 'is listed twice in this pool' : `is already in pool ${topology.pools[earlier.poolIndex ?? 0]?.fqdn}`;
          problems.push({ code: 'TOPOLOGY_DUPLICATE_SERVER', path: named.path, message: `server ${named.fqdn} ${where} (${formatPath(earlier.path)}); a server belongs to one pool` });
          continue;
        }
        servers.set(named.fqdn, named);
      }
      // An internal Web services FQDN equal to its own pool's FQDN is the override rule's error, reported there.
      if (named.role === 'internal Web services' && named.poolIndex !== undefined && topology.pools[named.poolIndex]?.fqdn === named.fqdn) continue;
      const earlier = first.get(named.fqdn);
      if (earlier) {
        problems.push({
          code: 'TOPOLOGY_DUPLICATE_FQDN',
          path: named.path,
          message: `${named.fqdn} (${named.role} FQDN) is already the ${earlier.role} FQDN at ${formatPath(earlier.path)}; each FQDN names one thing`,
        });
        continue;
      }
      first.set(named.fqdn, named);
    }
    return problems;
  },
};

interface AddressUse {
  path: YamlPath;
  /** Uses with the same owner may share an address (the same server listed twice, a pool's internal and external Web services VIP). */
  owner: string;
  what: string;
}

function addressUses(topology: Topology): AddressUse[] {
  const uses: AddressUse[] = [];
  const add = (pair: AddressPair | undefined, path: YamlPath, owner: string, what: string): void => {
    if (!pair) return;
    if (pair.ipv4 !== undefined) uses.push({ path: [...path, 'ipv4'], owner, what });
    if (pair.ipv6 !== undefined) uses.push({ path: [...path, 'ipv6'], owner, what });
  };
  topology.pools.forEach((pool, poolIndex) => {
    const at: YamlPath = ['pools', poolIndex];
    add(pool.vip, [...at, 'vip'], `pool-vip ${pool.fqdn}`, `the VIP of pool ${pool.fqdn}`);
    pool.servers.forEach((server, serverIndex) => {
      add(server, [...at, 'servers', serverIndex], `server ${server.fqdn}`, `server ${server.fqdn}`);
      // An edge server's three external services may share one external address (Lync's single-IP option),
      // but not an address of anything else, its own internal interface included.
      for (const service of EDGE_SERVICES) {
        add(server.external?.[service], [...at, 'servers', serverIndex, 'external', service], `external ${server.fqdn}`, `the external interface of ${server.fqdn}`);
      }
    });
    add(pool.webServices?.internal?.vip, [...at, 'webServices', 'internal', 'vip'], `web ${pool.fqdn}`, `the Web services VIP of ${pool.fqdn}`);
    add(pool.webServices?.external?.vip, [...at, 'webServices', 'external', 'vip'], `web ${pool.fqdn}`, `the Web services VIP of ${pool.fqdn}`);
    for (const service of EDGE_SERVICES) {
      add(pool.edge?.[service].vip, [...at, 'edge', service, 'vip'], `edge-vip ${pool.fqdn}`, `the edge VIP of ${pool.fqdn}`);
    }
    // Gateways may share an address with each other (one host, several ports), but a gateway at a
    // server's or VIP's address would send calls back into the deployment: a loop.
    pool.gateways?.forEach((_, gatewayIndex) => {
      uses.push({ path: [...at, 'gateways', gatewayIndex, 'endpoint', 'address'], owner: 'gateways', what: 'a PSTN gateway' });
    });
  });
  return uses;
}

function valueAt(topology: Topology, path: YamlPath): unknown {
  let node: unknown = topology;
  for (const part of path) node = (node as Record<string | number, unknown> | undefined)?.[part];
  return node;
}

const uniqueIps: Rule = {
  name: 'unique IP addresses',
  check(topology) {
    const problems: RuleProblem[] = [];
    const first = new Map<string, AddressUse>();
    for (const use of addressUses(topology)) {
      const address = canonicalIp(String(valueAt(topology, use.path)));
      const earlier = first.get(address);
      if (!earlier) {
        first.set(address, use);
      } else if (earlier.owner !== use.owner) {
        problems.push({
          code: 'TOPOLOGY_DUPLICATE_IP',
          path: use.path,
          message: `${address} of ${use.what} is already used by ${earlier.what} at ${formatPath(earlier.path)}`,
        });
      }
    }
    return problems;
  },
};

const webServicesOverride: Rule = {
  name: 'Web services override on DNS-load-balanced frontend and director pools',
  check(topology) {
    const problems: RuleProblem[] = [];
    topology.pools.forEach((pool, poolIndex) => {
      if ((pool.kind !== 'frontend' && pool.kind !== 'director') || pool.loadBalancing !== 'dns') return;
      const internal = pool.webServices?.internal;
      if (!internal) {
        problems.push({
          code: 'TOPOLOGY_WEB_SERVICES_OVERRIDE',
          path: pool.webServices ? ['pools', poolIndex, 'webServices'] : ['pools', poolIndex],
          message: `${pool.kind} pool ${pool.fqdn} uses DNS load balancing, so it needs webServices.internal: an FQDN other than the pool FQDN that resolves to the hardware load balancer's VIP (HTTPS cannot be DNS load balanced)`,
        });
      } else if (internal.fqdn === pool.fqdn) {
        problems.push({
          code: 'TOPOLOGY_WEB_SERVICES_OVERRIDE',
          path: ['pools', poolIndex, 'webServices', 'internal', 'fqdn'],
          message: `the internal Web services FQDN must differ from the pool FQDN ${pool.fqdn}: the pool FQDN resolves to the servers, Web services to the VIP`,
        });
      }
    });
    return problems;
  },
};

/**
 * The Web services ports (DESIGN §1: HTTPS stays on the hardware load balancer): each server listens on
 * its internal and external Web site ports beside its SIP ports, and with `hlb: haproxy` dnslb binds
 * both VIPs itself, so two sides must not claim one address and port.
 */
const webServicesPorts: Rule = {
  name: 'Web services ports and the HLB',
  check(topology) {
    const problems: RuleProblem[] = [];
    topology.pools.forEach((pool, poolIndex) => {
      const web = pool.webServices;
      if (!web) return;
      const at: YamlPath = ['pools', poolIndex, 'webServices'];
      const sipPorts = new Map([
        [pool.sip.tcpPort, 'SIP over TCP'],
        [pool.sip.tlsPort, 'SIP over TLS'],
      ]);
      for (const side of ['internal', 'external'] as const) {
        const serverPort = web[side]?.serverPort;
        if (serverPort === undefined) continue;
        const clash = sipPorts.get(serverPort);
        if (clash) {
          problems.push({ code: 'TOPOLOGY_WEB_SERVICES_PORT', path: [...at, side, 'serverPort'], message: `the ${side} Web site of ${pool.fqdn} cannot listen on port ${serverPort}: the servers use it for ${clash}` });
        }
      }
      if (web.internal && web.external && web.internal.serverPort === web.external.serverPort) {
        problems.push({
          code: 'TOPOLOGY_WEB_SERVICES_PORT',
          path: [...at, 'external', 'serverPort'],
          message: `the internal and external Web sites of ${pool.fqdn} both listen on port ${web.internal.serverPort} of each server; give the external one its own (Lync: 4443)`,
        });
      }
      if (web.hlb !== 'haproxy') return;
      if (!web.internal && !web.external) {
        problems.push({ code: 'TOPOLOGY_HLB', path: [...at, 'hlb'], message: `hlb: haproxy needs a VIP to listen on: give ${pool.fqdn} webServices.internal or webServices.external` });
        return;
      }
      if (web.internal && web.external && web.internal.port === web.external.port) {
        const shared = (['ipv4', 'ipv6'] as const).find((family) => web.internal?.vip[family] !== undefined && web.internal.vip[family] === web.external?.vip[family]);
        if (shared) {
          problems.push({
            code: 'TOPOLOGY_HLB',
            path: [...at, 'external', 'vip', shared],
            message: `hlb: haproxy cannot listen for both the internal and the external Web services of ${pool.fqdn} on ${web.internal.vip[shared]} port ${web.internal.port}; give them different VIPs or ports`,
          });
        }
      }
    });
    return problems;
  },
};

const keysForKind: Rule = {
  name: 'keys that fit the pool kind and load balancing',
  check(topology) {
    const problems: RuleProblem[] = [];
    topology.pools.forEach((pool, poolIndex) => {
      const at: YamlPath = ['pools', poolIndex];
      if (pool.kind === 'edge') {
        if (!pool.edge) {
          problems.push({ code: 'TOPOLOGY_EDGE_REQUIRED', path: at, message: `edge pool ${pool.fqdn} needs "edge": the external load balancing and the Access, Web Conferencing and A/V Edge services` });
        }
        pool.servers.forEach((server, serverIndex) => {
          if (!server.external) {
            problems.push({
              code: 'TOPOLOGY_EDGE_REQUIRED',
              path: [...at, 'servers', serverIndex],
              message: `edge server ${server.fqdn} needs "external": its address for each of accessEdge, webConferencing and av`,
            });
          }
        });
      } else {
        if (pool.edge) problems.push({ code: 'TOPOLOGY_KEY_NOT_ALLOWED', path: [...at, 'edge'], message: `"edge" is only for edge pools; ${pool.fqdn} is ${aPoolOf(pool.kind)}` });
        pool.servers.forEach((server, serverIndex) => {
          if (server.external) {
            problems.push({ code: 'TOPOLOGY_KEY_NOT_ALLOWED', path: [...at, 'servers', serverIndex, 'external'], message: `"external" addresses are only for edge servers; ${pool.fqdn} is ${aPoolOf(pool.kind)}` });
          }
        });
      }
      if (pool.gateways && pool.kind !== 'mediation') {
        problems.push({ code: 'TOPOLOGY_KEY_NOT_ALLOWED', path: [...at, 'gateways'], message: `"gateways" is only for mediation pools; ${pool.fqdn} is ${aPoolOf(pool.kind)}` });
      }
      if (pool.webServices && pool.kind !== 'frontend' && pool.kind !== 'director') {
        problems.push({ code: 'TOPOLOGY_KEY_NOT_ALLOWED', path: [...at, 'webServices'], message: `"webServices" is only for frontend and director pools; ${pool.fqdn} is ${aPoolOf(pool.kind)}` });
      }
      // A VIP nobody resolves to would mislead whoever reads the document.
      if (pool.vip && pool.loadBalancing === 'dns') {
        problems.push({ code: 'TOPOLOGY_KEY_NOT_ALLOWED', path: [...at, 'vip'], message: `"vip" is only for hardware load balancing; ${pool.fqdn} uses DNS load balancing` });
      }
      if (pool.edge?.externalLoadBalancing === 'dns') {
        for (const service of EDGE_SERVICES) {
          if (pool.edge[service].vip) {
            problems.push({ code: 'TOPOLOGY_KEY_NOT_ALLOWED', path: [...at, 'edge', service, 'vip'], message: `"vip" is only for hardware load balancing; the external interface of ${pool.fqdn} uses DNS load balancing` });
          }
        }
      }
    });
    return problems;
  },
};

const edgeLoadBalancing: Rule = {
  name: 'edge interfaces use the same load balancing',
  check(topology) {
    const problems: RuleProblem[] = [];
    topology.pools.forEach((pool, poolIndex) => {
      if (pool.kind !== 'edge' || !pool.edge || pool.edge.externalLoadBalancing === pool.loadBalancing) return;
      problems.push({
        code: 'TOPOLOGY_EDGE_LOAD_BALANCING',
        path: ['pools', poolIndex, 'edge', 'externalLoadBalancing'],
        message: `the external interface uses ${pool.edge.externalLoadBalancing} load balancing but the internal interface (loadBalancing) uses ${pool.loadBalancing}; an edge pool uses one type on both`,
      });
    });
    return problems;
  },
};

const vips: Rule = {
  name: 'hardware load balancing has VIPs',
  check(topology) {
    const problems: RuleProblem[] = [];
    topology.pools.forEach((pool, poolIndex) => {
      if (pool.loadBalancing === 'hardware' && !pool.vip) {
        problems.push({ code: 'TOPOLOGY_MISSING_VIP', path: ['pools', poolIndex], message: `pool ${pool.fqdn} uses hardware load balancing, so it needs "vip": the address its FQDN resolves to` });
      }
      if (pool.edge?.externalLoadBalancing === 'hardware') {
        for (const service of EDGE_SERVICES) {
          if (!pool.edge[service].vip) {
            problems.push({
              code: 'TOPOLOGY_MISSING_VIP',
              path: ['pools', poolIndex, 'edge', service],
              message: `the external interface of ${pool.fqdn} uses hardware load balancing, so the ${EDGE_SERVICE_LABELS[service]} service needs "vip"`,
            });
          }
        }
      }
    });
    return problems;
  },
};

const poolsHaveServers: Rule = {
  name: 'pools have servers',
  check(topology) {
    return topology.pools.flatMap((pool, poolIndex): RuleProblem[] =>
      pool.servers.length > 0 ? [] : [{ code: 'TOPOLOGY_NO_SERVERS', path: ['pools', poolIndex, 'servers'], message: `pool ${pool.fqdn} has no servers; a pool FQDN resolves only to deployed servers` }],
    );
  },
};

const noStaticRecordsForTopologyNames: Rule = {
  name: 'topology names are not static records',
  check(topology) {
    const names = new Map<string, NamedFqdn>();
    // DNS server names are left out on purpose: their address records may need to be written by hand.
    for (const named of definedNames(topology)) if (named.role !== 'DNS server' && !names.has(named.fqdn)) names.set(named.fqdn, named);
    const problems: RuleProblem[] = [];
    for (const { record, path } of staticRecords(topology)) {
      const named = names.get(record.name);
      if (!named) continue;
      problems.push({
        code: 'TOPOLOGY_POOL_RECORD',
        path: [...path, 'name'],
        message: `${record.name} is the ${named.role} FQDN at ${formatPath(named.path)}; its records come from the topology (a pool FQDN resolves only to its deployed servers), not from static records`,
      });
    }
    return problems;
  },
};

/** A target of CNAME/MX/SRV: a host name, or "." where RFC 2782 allows it (SRV: "service not available"). */
function checkTarget(target: string | undefined, path: YamlPath, allowRoot: boolean): RuleProblem[] {
  if (target === undefined) return [];
  const name = target.toLowerCase().replace(/\.$/, '');
  if ((allowRoot && target === '.') || isFqdn(name)) return [];
  return [{ code: 'TOPOLOGY_BAD_FQDN', path, message: `target "${target}" is not a well-formed FQDN` }];
}

function isUint16(text: string | undefined): boolean {
  return text !== undefined && /^\d{1,5}$/.test(text) && Number(text) <= 65_535;
}

const recordValues: Rule = {
  name: 'static record values fit their type',
  check(topology) {
    const problems: RuleProblem[] = [];
    const aliases = new Set(staticRecords(topology).filter(({ record }) => record.type === 'CNAME').map(({ record }) => record.name));
    for (const { record, path } of staticRecords(topology)) {
      const at = [...path, 'value'];
      const fields = record.value.trim().split(/\s+/);
      switch (record.type) {
        case 'A':
          if (isIP(record.value) !== 4) problems.push({ code: 'TOPOLOGY_BAD_ADDRESS', path: at, message: `an A record needs an IPv4 address, not "${record.value}"` });
          break;
        case 'AAAA':
          if (isIP(record.value) !== 6) problems.push({ code: 'TOPOLOGY_BAD_ADDRESS', path: at, message: `an AAAA record needs an IPv6 address, not "${record.value}"` });
          break;
        case 'CNAME':
          problems.push(...checkTarget(record.value, at, false));
          break;
        case 'MX':
          // RFC 1035 §3.3.9: PREFERENCE (16 bits) EXCHANGE.
          if (fields.length !== 2 || !isUint16(fields[0])) {
            problems.push({ code: 'TOPOLOGY_BAD_RECORD', path: at, message: `an MX value is "preference exchange" (preference 0-65535), not "${record.value}"` });
          } else {
            problems.push(...checkTarget(fields[1], at, false));
          }
          break;
        case 'SRV':
          // RFC 2782: the owner is _Service._Proto.Name; the value is Priority Weight Port Target.
          if (!/^_[a-z0-9-]+\._[a-z0-9-]+\./.test(record.name)) {
            problems.push({ code: 'TOPOLOGY_BAD_RECORD', path: [...path, 'name'], message: `an SRV record's name is _service._proto.name (like _sip._tls.contoso.com), not ${record.name}` });
          }
          if (fields.length !== 4 || !fields.slice(0, 3).every(isUint16)) {
            problems.push({ code: 'TOPOLOGY_BAD_RECORD', path: at, message: `an SRV value is "priority weight port target" (numbers 0-65535), not "${record.value}"` });
          } else {
            problems.push(...checkTarget(fields[3], at, true));
          }
          break;
        case 'TXT':
          break;
      }
      // RFC 2181 §10.3: MX and SRV targets must not be aliases.
      const target = record.type === 'MX' ? fields[1] : record.type === 'SRV' ? fields[3] : undefined;
      if (target !== undefined && aliases.has(target.toLowerCase().replace(/\.$/, ''))) {
        problems.push({ code: 'TOPOLOGY_BAD_RECORD', path: at, message: `the ${record.type} target ${target} is a CNAME; RFC 2181 §10.3 forbids an alias there` });
      }
    }
    return problems;
  },
};

function viewsOverlap(left: StaticRecord, right: StaticRecord): boolean {
  if (!left.views || !right.views) return true;
  return left.views.some((view) => right.views?.includes(view));
}

const cnameAlone: Rule = {
  name: 'a CNAME is alone at its name',
  check(topology) {
    const problems: RuleProblem[] = [];
    const records = staticRecords(topology);
    records.forEach(({ record, path, zoneIndex }, index) => {
      if (record.type !== 'CNAME') return;
      if (topology.dns.zones[zoneIndex]?.name === record.name) {
        problems.push({ code: 'TOPOLOGY_CNAME_CONFLICT', path: [...path, 'name'], message: `${record.name} is a zone apex (it has SOA and NS records); RFC 1034 §3.6.2: a CNAME cannot share its name` });
        return;
      }
      // RFC 1034 §3.6.2 / RFC 2181 §10.1: no other data at a CNAME's name (in the same view).
      const other = records.find((candidate, candidateIndex) => candidateIndex !== index && candidate.record.name === record.name && viewsOverlap(candidate.record, record));
      if (other) {
        problems.push({
          code: 'TOPOLOGY_CNAME_CONFLICT',
          path: [...path, 'name'],
          message: `${record.name} has a CNAME and also the ${other.record.type} record at ${formatPath(other.path)}; RFC 1034 §3.6.2: a CNAME is alone at its name`,
        });
      }
    });
    return problems;
  },
};

const insideZones: Rule = {
  name: 'names are inside the declared zones',
  check(topology) {
    const zones = topology.dns.zones.map((zone) => zone.name);
    const outside = (name: string): boolean => !zones.some((zone) => isInside(name, zone));
    const problems: RuleProblem[] = [];
    const zoneList = zones.join(', ');
    for (const named of definedNames(topology)) {
      if (outside(named.fqdn)) {
        problems.push({ code: 'TOPOLOGY_OUTSIDE_ZONE', path: named.path, message: `${named.fqdn} (${named.role} FQDN) is not inside any declared zone (${zoneList}), so no DNS server would answer it` });
      }
    }
    topology.sipDomains.forEach((domain, index) => {
      if (outside(domain)) {
        problems.push({ code: 'TOPOLOGY_OUTSIDE_ZONE', path: ['sipDomains', index], message: `SIP domain ${domain} is not inside any declared zone (${zoneList}), so its SRV records cannot be served` });
      }
    });
    topology.dns.zones.forEach((zone, zoneIndex) => {
      // The primary master (RFC 1035 §3.3.13 MNAME) is one of our servers. RNAME is a mailbox and may live anywhere.
      if (zone.soa.mname !== undefined && outside(zone.soa.mname)) {
        problems.push({ code: 'TOPOLOGY_OUTSIDE_ZONE', path: ['dns', 'zones', zoneIndex, 'soa', 'mname'], message: `SOA mname ${zone.soa.mname} is not inside any declared zone (${zoneList})` });
      }
      zone.records.forEach((record, recordIndex) => {
        // A record belongs to the zone it is written under; another declared zone does not make it servable there.
        if (!isInside(record.name, zone.name)) {
          problems.push({ code: 'TOPOLOGY_OUTSIDE_ZONE', path: ['dns', 'zones', zoneIndex, 'records', recordIndex, 'name'], message: `${record.name} is not inside the zone ${zone.name} it is listed under` });
        }
      });
    });
    return problems;
  },
};

const references: Rule = {
  name: 'references name declared things',
  check(topology) {
    const problems: RuleProblem[] = [];
    const sites = new Set(topology.sites.map((site) => site.name));
    const views = new Set(topology.dns.views.map((view) => view.name));
    topology.pools.forEach((pool: Pool, poolIndex) => {
      if (!sites.has(pool.site)) {
        problems.push({ code: 'TOPOLOGY_UNKNOWN_REFERENCE', path: ['pools', poolIndex, 'site'], message: `site "${pool.site}" is not declared under sites (${[...sites].join(', ')})` });
      }
    });
    for (const { record, path } of staticRecords(topology)) {
      record.views?.forEach((view, viewIndex) => {
        if (!views.has(view)) problems.push({ code: 'TOPOLOGY_UNKNOWN_REFERENCE', path: [...path, 'views', viewIndex], message: `view "${view}" is not declared under dns.views (${[...views].join(', ')})` });
      });
    }
    return problems;
  },
};

function duplicatesOf(values: readonly string[], path: (index: number) => YamlPath, what: string): RuleProblem[] {
  const seen = new Map<string, number>();
  const problems: RuleProblem[] = [];
  values.forEach((value, index) => {
    const earlier = seen.get(value);
    if (earlier === undefined) seen.set(value, index);
    else problems.push({ code: 'TOPOLOGY_DUPLICATE_NAME', path: path(index), message: `${what} "${value}" is already declared at ${formatPath(path(earlier))}` });
  });
  return problems;
}

const uniqueNames: Rule = {
  name: 'unique sites, SIP domains, zones and views',
  check(topology) {
    return [
      ...duplicatesOf(topology.sipDomains, (index) => ['sipDomains', index], 'SIP domain'),
      ...duplicatesOf(topology.sites.map((site) => site.name), (index) => ['sites', index, 'name'], 'site'),
      ...duplicatesOf(topology.dns.zones.map((zone) => zone.name), (index) => ['dns', 'zones', index, 'name'], 'zone'),
      ...duplicatesOf(topology.dns.views.map((view) => view.name), (index) => ['dns', 'views', index, 'name'], 'view'),
    ];
  },
};

const gatewaysOnce: Rule = {
  name: 'a gateway is listed once',
  check(topology) {
    const problems: RuleProblem[] = [];
    const seen = new Map<string, YamlPath>();
    topology.pools.forEach((pool, poolIndex) => {
      pool.gateways?.forEach((gateway, gatewayIndex) => {
        const path: YamlPath = ['pools', poolIndex, 'gateways', gatewayIndex, 'endpoint'];
        const key = `${canonicalIp(gateway.endpoint.address)} ${gateway.endpoint.port}`;
        const earlier = seen.get(key);
        if (earlier) problems.push({ code: 'TOPOLOGY_DUPLICATE_IP', path, message: `gateway ${gateway.endpoint.address}:${gateway.endpoint.port} is already listed at ${formatPath(earlier)}; a gateway serves one mediation pool, once` });
        else seen.set(key, path);
      });
    });
    return problems;
  },
};

/** Every rule, in the order their problems are reported. */
export const RULES: readonly Rule[] = [
  uniqueNames,
  references,
  poolsHaveServers,
  keysForKind,
  edgeLoadBalancing,
  vips,
  webServicesOverride,
  webServicesPorts,
  uniqueFqdns,
  uniqueIps,
  insideZones,
  noStaticRecordsForTopologyNames,
  recordValues,
  cnameAlone,
  gatewaysOnce,
  ...ROLE_RULES,
  ...FEDERATION_RULES,
];

export function checkRules(topology: Topology): RuleProblem[] {
  return RULES.flatMap((rule) => rule.check(topology));
}
