// The health endpoint a load balancer probes (HAProxy `option httpchk`): the server's state in JSON,
// with a status code that takes a server out when no new work should reach it.

/** What the Web services know of their server (the Front End's own state, blocked from the store). */
export type WebServerState = 'active' | 'draining' | 'drained' | 'blocked';

export const HEALTH_PATH = '/health';

export interface HealthAnswer {
  statusCode: 200 | 503;
  body: { server: string; state: WebServerState; acceptingNewWork: boolean };
}

/**
 * `active` and `draining` answer 200: a draining server still serves the sessions it has, and the
 * load balancer learns "no new ones" from its admin state (dnslb sets HAProxy's `drain`), which keeps
 * checks running; were the check to fail, HAProxy would count the server down rather than draining.
 * `drained` and `blocked` answer 503, so that a load balancer dnslb does not drive (the hardware one of
 * `hlb: none`) takes the server out on its own.
 */
export function healthOf(server: string, state: WebServerState): HealthAnswer {
  const serving = state === 'active' || state === 'draining';
  return { statusCode: serving ? 200 : 503, body: { server, state, acceptingNewWork: state === 'active' } };
}
