// Rules of the keys that put pools in their roles (DESIGN §7): home pool rules lead to frontend pools and
// can each be chosen; PSTN routes lead to mediation pools that have gateways, and never tie.
import { patternOfRule } from './home-pool.ts';
import type { YamlPath } from './problem.ts';
import { formatPath } from './problem.ts';
import { routeDigits, routeLabel } from './pstn-route.ts';
import type { RuleProblem, Rule } from './rules.ts';
import { aPoolOf, type PoolKind, type Topology } from './schema.ts';
import { globCovers, globMatches, type UserPattern } from './user-pattern.ts';

/** A pool reference that must name a declared pool of one kind. */
function checkPoolReference(topology: Topology, fqdn: string, kind: PoolKind, path: YamlPath, what: string): RuleProblem[] {
  const pool = topology.pools.find((candidate) => candidate.fqdn === fqdn);
  if (!pool) {
    const ofKind = topology.pools.filter((candidate) => candidate.kind === kind).map((candidate) => candidate.fqdn);
    return [{ code: 'TOPOLOGY_UNKNOWN_REFERENCE', path, message: `${what} ${fqdn} is not a pool of the topology (${kind} pools: ${ofKind.join(', ') || 'none'})` }];
  }
  if (pool.kind !== kind) return [{ code: 'TOPOLOGY_POOL_KIND', path, message: `${what} ${fqdn} is ${aPoolOf(pool.kind)}; it must be ${aPoolOf(kind)}` }];
  return [];
}

/** The declared SIP domains a host glob matches: users live only there, so that is all a rule can reach. */
function domainsOf(pattern: UserPattern, topology: Topology): string[] {
  return topology.sipDomains.filter((domain) => globMatches(pattern.host, domain));
}

const homeRules: Rule = {
  name: 'home pool rules lead to frontend pools and can each be chosen',
  check(topology) {
    const homePools = topology.homePools;
    if (!homePools) return [];
    const problems: RuleProblem[] = [];
    if (homePools.default !== undefined) {
      problems.push(...checkPoolReference(topology, homePools.default, 'frontend', ['homePools', 'default'], 'the default home pool'));
    }
    const earlier: { index: number; pattern: UserPattern; domains: string[] }[] = [];
    homePools.rules.forEach((rule, index) => {
      const at: YamlPath = ['homePools', 'rules', index];
      problems.push(...checkPoolReference(topology, rule.pool, 'frontend', [...at, 'pool'], 'the home pool'));
      const pattern = patternOfRule(rule);
      if (!pattern) return;
      const domains = domainsOf(pattern, topology);
      if (domains.length === 0) {
        const where: YamlPath = rule.domain !== undefined ? [...at, 'domain'] : [...at, 'users'];
        problems.push({
          code: 'TOPOLOGY_UNREACHABLE_RULE',
          path: where,
          message: `${rule.domain ?? rule.users} matches no SIP domain of the topology (${topology.sipDomains.join(', ')}), so no user can match this rule`,
        });
        return;
      }
      // Hidden when an earlier rule takes every user this one could: its user glob covers this one's, and
      // it matches every SIP domain this one does.
      const hider = earlier.find((other) => globCovers(other.pattern.user, pattern.user) && domains.every((domain) => other.domains.includes(domain)));
      if (hider) {
        problems.push({
          code: 'TOPOLOGY_UNREACHABLE_RULE',
          path: at,
          message: `home rule ${index} can never match: rule ${hider.index} (${formatPath(['homePools', 'rules', hider.index])}) comes first and matches every user it does; rules are tried in order`,
        });
      }
      earlier.push({ index, pattern, domains });
    });
    return problems;
  },
};

const pstnRoutes: Rule = {
  name: 'PSTN routes lead to mediation pools with gateways and never tie',
  check(topology) {
    const routes = topology.pstn?.routes ?? [];
    const problems: RuleProblem[] = [];
    const names = new Map<string, number>();
    routes.forEach((route, index) => {
      const at: YamlPath = ['pstn', 'routes', index];
      if (route.name !== undefined) {
        const first = names.get(route.name);
        if (first === undefined) names.set(route.name, index);
        else problems.push({ code: 'TOPOLOGY_DUPLICATE_NAME', path: [...at, 'name'], message: `route "${route.name}" is already declared at ${formatPath(['pstn', 'routes', first])}` });
      }
      const reference = checkPoolReference(topology, route.pool, 'mediation', [...at, 'pool'], 'the route pool');
      problems.push(...reference);
      const pool = topology.pools.find((candidate) => candidate.fqdn === route.pool);
      if (reference.length === 0 && pool && !pool.gateways) {
        problems.push({ code: 'TOPOLOGY_NO_GATEWAY', path: [...at, 'pool'], message: `mediation pool ${route.pool} has no gateways, so calls on ${routeLabel(route, index)} could not leave it` });
      }
      const range = routeDigits(route);
      if (range.min > range.max) {
        problems.push({
          code: 'TOPOLOGY_UNREACHABLE_RULE',
          path: [...at, route.digitsMax === undefined ? 'prefix' : 'digitsMax'],
          message: `${routeLabel(route, index)} takes numbers of at least ${range.min} digits and at most ${range.max}, so none`,
        });
        return;
      }
      // Routes of one prefix compete on length alone: a later one inside an earlier one's range is never
      // chosen, one that overlaps it would win only by its place in the list. Longer prefixes win anyway.
      for (let other = 0; other < index; other++) {
        const before = routes[other];
        if (!before || before.prefix !== route.prefix) continue;
        const beforeRange = routeDigits(before);
        if (beforeRange.min > beforeRange.max || beforeRange.max < range.min || range.max < beforeRange.min) continue;
        if (beforeRange.min <= range.min && range.max <= beforeRange.max) {
          problems.push({
            code: 'TOPOLOGY_UNREACHABLE_RULE',
            path: at,
            message: `${routeLabel(route, index)} is never chosen: ${routeLabel(before, other)} has the same prefix, comes first and takes every length it does (${beforeRange.min}–${beforeRange.max} digits)`,
          });
        } else {
          problems.push({
            code: 'TOPOLOGY_ROUTE_OVERLAP',
            path: at,
            message: `${routeLabel(route, index)} and ${routeLabel(before, other)} have the same prefix and both take numbers of ${Math.max(range.min, beforeRange.min)}–${Math.min(range.max, beforeRange.max)} digits; give them digit ranges that do not overlap`,
          });
        }
        break;
      }
    });
    return problems;
  },
};

/** The rules of this file, in the order their problems are reported. */
export const ROLE_RULES: readonly Rule[] = [homeRules, pstnRoutes];
