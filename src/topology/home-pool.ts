// A user's home pool (DESIGN §7 Front End): an explicit assignment (the store's user directory) wins,
// then the topology's home rules in order, then the default pool. No home is a reason, never a guess.
import { aPoolOf, type HomeRule, type Pool, type Topology } from './schema.ts';
import { isUserPatternError, parseUserPattern, userPatternMatches, type UserPattern } from './user-pattern.ts';

export type HomePoolSource = 'assignment' | 'rule' | 'default';

export interface HomePoolFound {
  /** The frontend pool's FQDN. */
  pool: string;
  source: HomePoolSource;
  /** With source `rule`: the index into `topology.homePools.rules`. */
  rule?: number;
}

export interface NoHomePool {
  none: true;
  /** For the 404 reason phrase and logs: what was looked at and why nothing matched. */
  reason: string;
}

interface CompiledRule {
  index: number;
  rule: HomeRule;
  pattern: UserPattern;
}

// A published topology is frozen, so its rules are compiled once per topology object.
const compiled = new WeakMap<Topology, readonly CompiledRule[]>();

/** A domain rule is the pattern sip:*@domain; both kinds match through one path. */
export function patternOfRule(rule: HomeRule): UserPattern | null {
  if (rule.domain !== undefined) return { user: '*', host: rule.domain };
  const parsed = parseUserPattern(rule.users ?? '');
  return isUserPatternError(parsed) ? null : parsed;
}

function rulesOf(topology: Topology): readonly CompiledRule[] {
  let rules = compiled.get(topology);
  if (!rules) {
    rules = (topology.homePools?.rules ?? []).flatMap((rule, index) => {
      const pattern = patternOfRule(rule);
      return pattern ? [{ index, rule, pattern }] : [];
    });
    compiled.set(topology, rules);
  }
  return rules;
}

function frontendPool(topology: Topology, fqdn: string): Pool | undefined {
  return topology.pools.find((pool) => pool.fqdn === fqdn && pool.kind === 'frontend');
}

/** The pool users fall back to: `homePools.default`, else the only frontend pool when there is exactly one. */
export function defaultHomePool(topology: Topology): string | null {
  const named = topology.homePools?.default;
  if (named !== undefined) return named;
  const frontends = topology.pools.filter((pool) => pool.kind === 'frontend');
  return frontends.length === 1 ? (frontends[0]?.fqdn ?? null) : null;
}

/**
 * The home pool of `user`, a canonical URI (`canonicalUser` of registrar/sequence.ts: `sip:user@host`).
 * `explicitAssignment` is the pool FQDN the store's user directory holds for the user, if any; one
 * that names no frontend pool of this topology (the pool was removed or changed kind since the move)
 * is no home, never a fall-through to the rules: the user was moved on purpose.
 */
export function homePoolOf(user: string, topology: Topology, explicitAssignment?: string): HomePoolFound | NoHomePool {
  const at = user.lastIndexOf('@');
  if (!user.startsWith('sip:') || at < 5) return { none: true, reason: `${JSON.stringify(user.slice(0, 200))} is not a canonical user URI sip:user@domain` };
  const domain = user.slice(at + 1);
  if (!topology.sipDomains.includes(domain)) {
    return { none: true, reason: `${domain} is not a SIP domain of this deployment (${topology.sipDomains.join(', ')})` };
  }
  if (explicitAssignment !== undefined) {
    const assigned = explicitAssignment.toLowerCase().replace(/\.$/, '');
    if (frontendPool(topology, assigned)) return { pool: assigned, source: 'assignment' };
    const other = topology.pools.find((pool) => pool.fqdn === assigned);
    return {
      none: true,
      reason: other
        ? `${user} is assigned to ${assigned}, ${aPoolOf(other.kind)}, not a frontend pool`
        : `${user} is assigned to ${assigned}, which is not a pool of the published topology`,
    };
  }
  for (const { index, rule, pattern } of rulesOf(topology)) {
    if (userPatternMatches(pattern, user)) return { pool: rule.pool, source: 'rule', rule: index };
  }
  const fallback = defaultHomePool(topology);
  if (fallback !== null) return { pool: fallback, source: 'default' };
  const frontends = topology.pools.filter((pool) => pool.kind === 'frontend').length;
  const rules = topology.homePools?.rules.length ?? 0;
  return {
    none: true,
    reason: `${user} has no home pool: not assigned, ${rules === 0 ? 'no home rules' : `none of ${rules} home rule${rules === 1 ? '' : 's'} matches`}, and no homePools.default (${frontends} frontend pools)`,
  };
}
