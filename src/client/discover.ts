// Finding the pool as Lync clients did (DESIGN §1): optionally Lync 2013's autodiscover through
// lyncdiscoverinternal/lyncdiscover first, then SRV records, then well-known host names, then the
// addresses of the target, in the order DNS gave them (the order is the load balancing).
import { Resolver } from 'node:dns/promises';
import { systemClock, systemRandom, type Clock, type Random } from '../shared/clock.ts';
import { DnslbError } from '../shared/errors.ts';
import { fetchAutodiscover, type AutodiscoverOptions } from './autodiscover.ts';

export type SipTransportName = 'tls' | 'tcp';

export interface Target {
  host: string;
  port: number;
  transport: SipTransportName;
  /** In the order the DNS server returned them. */
  addresses: string[];
}

export interface DiscoveryStep {
  /** A DNS question (the default) or an HTTPS GET of the autodiscover document. */
  kind?: 'dns' | 'https';
  query: string;
  /** What the step found, in words ("2 SRV targets", "NXDOMAIN", "3 addresses"). */
  found: string;
}

export interface Discovery {
  domain: string;
  /** The step that found the pool, e.g. "_sipinternaltls._tcp.contoso.com SRV". */
  via: string;
  targets: Target[];
  /** Every address to try, in order, with its port and transport. */
  endpoints: { address: string; port: number; transport: SipTransportName; host: string }[];
  steps: DiscoveryStep[];
  /** When the shortest TTL of the answers used runs out; discover again after it. */
  expiresAtMs: number;
}

export interface DiscoverOptions {
  /** DNS servers to ask, "address:port" or "address". */
  dnsServers: readonly string[];
  /** Which SIP transport the client wants; TLS is what Lync clients use. */
  transport?: SipTransportName;
  /** Per query. */
  timeoutMs?: number;
  clock?: Clock;
  random?: Random;
  /**
   * A resolver to share (the simulator shares one between thousands of users, each with its own
   * cache, as each device has); `dnsServers` and `timeoutMs` are then the resolver's business.
   */
  resolver?: Resolver;
  /**
   * Ask the Autodiscover service first (Lync 2013): lyncdiscoverinternal.<domain>, then
   * lyncdiscover.<domain>, over HTTPS through the Web services VIP; SRV and A records when neither answers.
   */
  autodiscover?: AutodiscoverOptions;
  /**
   * What is looked for: `internal` (default) a client's pool, in Lync's order above; `federation` a partner
   * organisation's Access Edge, `_sipfederationtls._tcp.<domain>` SRV only (TLS), as Lync's enhanced
   * federation does — no host-name fallback, no autodiscover.
   */
  service?: 'internal' | 'federation';
  /** Send the DNS queries from this address (an edge asks from its external address, so it gets the outside view). */
  localAddress?: string;
}

/** Node's resolver does not give the TTL of SRV records; their answers are re-checked after this. */
const SRV_TTL_S_ASSUMED = 60;
const DEFAULT_PORTS: Record<SipTransportName, number> = { tls: 5061, tcp: 5060 };

/** The SIP domain of a URI ("sip:alice@contoso.com" → "contoso.com") or a bare domain. */
export function domainOf(uriOrDomain: string): string {
  const at = uriOrDomain.lastIndexOf('@');
  const host = at >= 0 ? uriOrDomain.slice(at + 1) : uriOrDomain.replace(/^sips?:/i, '');
  return host.split(/[;:?>]/)[0]!.toLowerCase();
}

/**
 * RFC 2782 order: ascending priority; within one priority, a weighted random draw where weight 0
 * entries come first in the running sum (so they are picked only rarely when others have weight).
 */
export function orderSrv<T extends { priority: number; weight: number }>(records: readonly T[], random: Random = systemRandom): T[] {
  const byPriority = new Map<number, T[]>();
  for (const record of records) byPriority.set(record.priority, [...(byPriority.get(record.priority) ?? []), record]);
  const ordered: T[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const remaining = [...byPriority.get(priority)!].sort((a, b) => (a.weight === 0 ? -1 : 0) - (b.weight === 0 ? -1 : 0));
    while (remaining.length > 0) {
      const total = remaining.reduce((sum, record) => sum + record.weight, 0);
      const draw = Math.floor(random() * (total + 1));
      let running = 0;
      let index = remaining.findIndex((record) => (running += record.weight) >= draw);
      if (index < 0) index = 0;
      ordered.push(remaining.splice(index, 1)[0]!);
    }
  }
  return ordered;
}

function isNotFound(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ENOTFOUND' || code === 'ENODATA' || code === 'NXDOMAIN';
}

function describeFailure(error: unknown): string {
  const code = (error as { code?: string }).code;
  return code === 'ENOTFOUND' ? 'NXDOMAIN' : code === 'ENODATA' ? 'no records (NODATA)' : `error ${code ?? (error as Error).message}`;
}

export class PoolDiscoverer {
  private readonly resolver: Resolver;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly transport: SipTransportName;
  private readonly cache = new Map<string, Discovery>();
  private readonly autodiscover: AutodiscoverOptions | undefined;
  private readonly service: 'internal' | 'federation';

  constructor(options: DiscoverOptions) {
    this.autodiscover = options.autodiscover;
    this.service = options.service ?? 'internal';
    if (options.resolver) this.resolver = options.resolver;
    else {
      this.resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
      if (options.dnsServers.length > 0) this.resolver.setServers([...options.dnsServers]);
      if (options.localAddress !== undefined) {
        if (options.localAddress.includes(':')) this.resolver.setLocalAddress(undefined, options.localAddress);
        else this.resolver.setLocalAddress(options.localAddress);
      }
    }
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.transport = options.transport ?? 'tls';
  }

  /** The cached discovery while its TTL lasts, a fresh one after. */
  async discover(uriOrDomain: string): Promise<Discovery> {
    const domain = domainOf(uriOrDomain);
    const cached = this.cache.get(domain);
    if (cached && cached.expiresAtMs > this.clock.nowMs()) return cached;
    const discovery = await this.discoverFresh(domain);
    this.cache.set(domain, discovery);
    return discovery;
  }

  /** Forgets what was cached, so that the next discover() asks DNS again (after a failed sign-in). */
  forget(uriOrDomain: string): void {
    this.cache.delete(domainOf(uriOrDomain));
  }

  /** The addresses of one host name (a redirect's Contact), A then AAAA; CLIENT_DISCOVERY when it has none. */
  async resolveHost(host: string): Promise<string[]> {
    const steps: DiscoveryStep[] = [];
    const found = await this.addressesOf(host, steps);
    if (found.addresses.length === 0) throw new DnslbError('CLIENT_DISCOVERY', `${host} has no address: ${steps.map((step) => `${step.query} → ${step.found}`).join('; ')}`);
    return found.addresses;
  }

  private async addressesOf(host: string, steps: DiscoveryStep[]): Promise<{ addresses: string[]; ttlS: number }> {
    const addresses: string[] = [];
    let ttlS = Number.POSITIVE_INFINITY;
    for (const [type, lookup] of [
      ['A', () => this.resolver.resolve4(host, { ttl: true })],
      ['AAAA', () => this.resolver.resolve6(host, { ttl: true })],
    ] as const) {
      try {
        const records = await lookup();
        for (const record of records) {
          addresses.push(record.address);
          ttlS = Math.min(ttlS, record.ttl);
        }
        steps.push({ query: `${host} ${type}`, found: `${records.length} address${records.length === 1 ? '' : 'es'}` });
      } catch (error) {
        if (!isNotFound(error)) throw new DnslbError('CLIENT_DISCOVERY', `${host} ${type}: ${describeFailure(error)}`, { cause: error });
        steps.push({ query: `${host} ${type}`, found: describeFailure(error) });
      }
    }
    return { addresses, ttlS };
  }

  /**
   * Lync 2013's order: lyncdiscoverinternal (internal DNS only), then lyncdiscover; for the first name
   * that resolves, each address until one answers the document; then the SIP access it names,
   * resolved. Anything that fails is a step, and discovery goes on (to SRV in the end).
   */
  private async throughAutodiscover(domain: string, options: AutodiscoverOptions, steps: DiscoveryStep[], nowMs: number): Promise<Discovery | undefined> {
    const port = options.port ?? 443;
    for (const name of [`lyncdiscoverinternal.${domain}`, `lyncdiscover.${domain}`]) {
      let found: { addresses: string[]; ttlS: number };
      try {
        found = await this.addressesOf(name, steps);
      } catch (error) {
        // A DNS failure here (SERVFAIL, a timeout) must not stop discovery: SRV comes next.
        steps.push({ query: `${name} A`, found: (error as Error).message });
        continue;
      }
      for (const address of found.addresses) {
        const query = `GET https://${name}${port === 443 ? '' : `:${port}`}/ at ${address.includes(':') ? `[${address}]` : address}`;
        let answer;
        try {
          answer = await fetchAutodiscover(address, name, domain, options);
        } catch (error) {
          steps.push({ kind: 'https', query, found: (error as Error).message.replace(/^https:\/\/\S+ \([^)]*\): /, '') });
          continue;
        }
        const wanted = [...answer.access.filter((access) => access.transport === this.transport), ...answer.access.filter((access) => access.transport !== this.transport)];
        steps.push({ kind: 'https', query, found: `${answer.accessLocation} access ${wanted.map((access) => `${access.fqdn}:${access.port} ${access.transport}`).join(', ')}${answer.server ? ` (answered by ${answer.server})` : ''}` });
        const targets: Target[] = [];
        let ttlS = found.ttlS;
        for (const access of wanted.slice(0, 1)) {
          const addresses = await this.addressesOf(access.fqdn, steps).catch((error: unknown) => {
            steps.push({ query: `${access.fqdn} A`, found: (error as Error).message });
            return { addresses: [], ttlS: Number.POSITIVE_INFINITY };
          });
          ttlS = Math.min(ttlS, addresses.ttlS);
          targets.push({ host: access.fqdn, port: access.port, transport: access.transport, addresses: addresses.addresses });
        }
        if (targets.some((target) => target.addresses.length > 0)) return this.result(domain, `${name} autodiscover (https://${address}:${port})`, targets, steps, nowMs, ttlS);
      }
    }
    return undefined;
  }

  private async discoverFresh(domain: string): Promise<Discovery> {
    const steps: DiscoveryStep[] = [];
    const nowMs = this.clock.nowMs();
    if (this.service === 'federation') return this.federationEdge(domain, steps, nowMs);
    if (this.autodiscover) {
      const found = await this.throughAutodiscover(domain, this.autodiscover, steps, nowMs);
      if (found) return found;
    }
    const srvSteps: { name: string; transport: SipTransportName }[] = [
      { name: `_sipinternaltls._tcp.${domain}`, transport: 'tls' },
      { name: `_sipinternal._tcp.${domain}`, transport: 'tcp' },
    ];
    // A client that wants plain TCP still follows Lync's order, but prefers the TCP record.
    if (this.transport === 'tcp') srvSteps.reverse();
    // Outside (the external view has no internal records): the Access Edge of the Edge pool, TLS only.
    srvSteps.push({ name: `_sip._tls.${domain}`, transport: 'tls' });
    for (const step of srvSteps) {
      let records;
      try {
        records = await this.resolver.resolveSrv(step.name);
      } catch (error) {
        if (!isNotFound(error)) throw new DnslbError('CLIENT_DISCOVERY', `${step.name} SRV: ${describeFailure(error)}`, { cause: error });
        steps.push({ query: `${step.name} SRV`, found: describeFailure(error) });
        continue;
      }
      steps.push({ query: `${step.name} SRV`, found: records.map((record) => `${record.name}:${record.port}`).join(', ') || 'nothing' });
      const targets: Target[] = [];
      let ttlS = SRV_TTL_S_ASSUMED;
      for (const record of orderSrv(records, this.random)) {
        const found = await this.addressesOf(record.name, steps);
        ttlS = Math.min(ttlS, found.ttlS);
        targets.push({ host: record.name, port: record.port, transport: step.transport, addresses: found.addresses });
      }
      if (targets.some((target) => target.addresses.length > 0)) return this.result(domain, `${step.name} SRV`, targets, steps, nowMs, ttlS);
    }
    for (const host of [`sipinternal.${domain}`, `sip.${domain}`]) {
      const found = await this.addressesOf(host, steps);
      if (found.addresses.length > 0) {
        const target = { host, port: DEFAULT_PORTS[this.transport], transport: this.transport, addresses: found.addresses };
        return this.result(domain, `${host} A/AAAA`, [target], steps, nowMs, found.ttlS);
      }
    }
    throw new DnslbError('CLIENT_DISCOVERY', `no SIP pool found for ${domain}: ${steps.map((step) => `${step.query} → ${step.found}`).join('; ')}`);
  }

  /** A partner's Access Edge: `_sipfederationtls._tcp.<domain>` SRV, each target's addresses in DNS order. */
  private async federationEdge(domain: string, steps: DiscoveryStep[], nowMs: number): Promise<Discovery> {
    const name = `_sipfederationtls._tcp.${domain}`;
    let records;
    try {
      records = await this.resolver.resolveSrv(name);
    } catch (error) {
      if (!isNotFound(error)) throw new DnslbError('CLIENT_DISCOVERY', `${name} SRV: ${describeFailure(error)}`, { cause: error });
      throw new DnslbError('CLIENT_DISCOVERY', `no federation Access Edge found for ${domain}: ${name} SRV → ${describeFailure(error)}`);
    }
    steps.push({ query: `${name} SRV`, found: records.map((record) => `${record.name}:${record.port}`).join(', ') || 'nothing' });
    const targets: Target[] = [];
    let ttlS = SRV_TTL_S_ASSUMED;
    for (const record of orderSrv(records, this.random)) {
      const found = await this.addressesOf(record.name, steps);
      ttlS = Math.min(ttlS, found.ttlS);
      targets.push({ host: record.name, port: record.port, transport: 'tls', addresses: found.addresses });
    }
    if (!targets.some((target) => target.addresses.length > 0)) throw new DnslbError('CLIENT_DISCOVERY', `no federation Access Edge found for ${domain}: ${steps.map((step) => `${step.query} → ${step.found}`).join('; ')}`);
    return this.result(domain, `${name} SRV`, targets, steps, nowMs, ttlS);
  }

  private result(domain: string, via: string, targets: Target[], steps: DiscoveryStep[], nowMs: number, ttlS: number): Discovery {
    const endpoints = targets.flatMap((target) => target.addresses.map((address) => ({ address, port: target.port, transport: target.transport, host: target.host })));
    const ttlMs = Number.isFinite(ttlS) ? ttlS * 1000 : SRV_TTL_S_ASSUMED * 1000;
    return { domain, via, targets, endpoints, steps, expiresAtMs: nowMs + ttlMs };
  }
}
