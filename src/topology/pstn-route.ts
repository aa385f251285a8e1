// Which Mediation pool a call to a telephone number goes to (DESIGN §7 Mediation): the topology's
// PSTN routes, most specific prefix first, and why a number has no route (404) or is incomplete (484).
import { E164_DIGITS_MAX, isNumberError, numberOfUri } from './phone-number.ts';
import type { Gateway, PstnRoute, Topology } from './schema.ts';

/** The digit counts (after +) a route takes: from the prefix's own digits (or digitsMin) to digitsMax. */
export function routeDigits(route: PstnRoute): { min: number; max: number } {
  const prefixDigits = route.prefix.length - 1;
  return { min: Math.max(route.digitsMin ?? 1, prefixDigits, 1), max: route.digitsMax ?? E164_DIGITS_MAX };
}

/** "11" or "8–15" digits. */
export function formatDigitRange(range: { min: number; max: number }): string {
  return range.min === range.max ? `${range.min}` : `${range.min}–${range.max}`;
}

/** How a route is named in messages: its name, else its prefix. */
export function routeLabel(route: PstnRoute, index: number): string {
  return route.name === undefined ? `route ${index} (${route.prefix})` : `route "${route.name}" (${route.prefix})`;
}

export interface RouteFound {
  /** The mediation pool's FQDN. */
  pool: string;
  /** Index into `topology.pstn.routes`. */
  route: number;
  /** The number in normal form: `+14255550100`. */
  number: string;
  /** The pool's gateways, in order. */
  gateways: readonly Gateway[];
}

export interface NoRoute {
  none: true;
  /**
   * The SIP status the caller is answered with: 484 Address Incomplete (RFC 3261 §21.4.22) when more
   * digits could still reach a route, else 404 Not Found (§21.4.5): no route takes this number.
   */
  status: 404 | 484;
  reason: string;
}

/**
 * The route of a call to `uri` (a `tel:` URI or a SIP URI with `user=phone`). Among the routes whose
 * prefix starts the number and whose digit range holds its length, the longest prefix wins, then the
 * earlier route (validation refuses two routes of one prefix that overlap, so the order never decides
 * between reachable routes).
 */
export function routeForNumber(uri: string, topology: Topology): RouteFound | NoRoute {
  const parsed = numberOfUri(uri);
  if (isNumberError(parsed)) return { none: true, status: 404, reason: parsed.error };
  if (parsed.kind === 'local') {
    const context = parsed.context === null ? 'no phone-context' : `phone-context ${parsed.context}`;
    return { none: true, status: 404, reason: `${parsed.number} is a local number (${context}); PSTN routes take global numbers (+ and the country code)` };
  }
  const routes = topology.pstn?.routes ?? [];
  if (routes.length === 0) return { none: true, status: 404, reason: `no PSTN routes in the topology, so ${parsed.number} cannot be called` };
  const digits = parsed.number.length - 1;
  let best = -1;
  let incomplete = -1;
  let tooLong = -1;
  routes.forEach((route, index) => {
    const range = routeDigits(route);
    const prefixDigits = route.prefix.length - 1;
    if (parsed.number.startsWith(route.prefix)) {
      if (digits >= range.min && digits <= range.max) {
        if (best < 0 || prefixDigits > (routes[best]?.prefix.length ?? 0) - 1) best = index;
      } else if (digits < range.min) {
        if (incomplete < 0) incomplete = index;
      } else if (tooLong < 0) {
        tooLong = index;
      }
    } else if (route.prefix.startsWith(parsed.number) && incomplete < 0) {
      // The number is the start of a longer prefix: more digits could reach the route.
      incomplete = index;
    }
  });
  const found = routes[best];
  if (found) {
    const pool = topology.pools.find((candidate) => candidate.fqdn === found.pool);
    return { pool: found.pool, route: best, number: parsed.number, gateways: pool?.gateways ?? [] };
  }
  const incompleteRoute = routes[incomplete];
  if (incompleteRoute) {
    const range = routeDigits(incompleteRoute);
    return {
      none: true,
      status: 484,
      reason: `${parsed.number} is incomplete: ${digits} digit${digits === 1 ? '' : 's'}, ${routeLabel(incompleteRoute, incomplete)} takes numbers of ${formatDigitRange(range)} digits`,
    };
  }
  const longRoute = routes[tooLong];
  if (longRoute) {
    return { none: true, status: 404, reason: `no PSTN route for ${parsed.number}: ${digits} digits, longer than ${routeLabel(longRoute, tooLong)} takes (${routeDigits(longRoute).max})` };
  }
  const shown = routes.slice(0, 5).map((route) => route.prefix).join(', ');
  return { none: true, status: 404, reason: `no PSTN route for ${parsed.number} (routes: ${shown}${routes.length > 5 ? ', …' : ''})` };
}
