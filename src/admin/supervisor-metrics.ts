// The metrics of `dnslb up`'s supervisor (its pool admin API): children per state and restarts, read
// from the supervisor's status() at scrape time.
import type { ChildState } from '../supervisor/supervisor.ts';
import { collectedCounter, collectedGauge, oncePerScrape, oneOf, type Registry } from './metrics.ts';
import type { ProcessControl } from './pool-api.ts';

const CHILD_STATES = Object.keys({ starting: 0, running: 0, restarting: 0, stopping: 0, stopped: 0 } satisfies Record<ChildState, 0>);

export function registerSupervisorMetrics(registry: Registry, processes: Pick<ProcessControl, 'status'>): void {
  const children = oncePerScrape(registry, () => processes.status());
  collectedGauge(registry, {
    name: 'dnslb_supervisor_children',
    help: 'Child processes (one per SIP server, one for DNS) by state: restarting ones died and come back after settings.supervisor.restartDelayMs.',
    labelNames: ['state'],
    read: () => CHILD_STATES.map((state) => [{ state }, children().filter((child) => child.state === state).length] as const),
  });
  collectedGauge(registry, {
    name: 'dnslb_supervisor_child_state',
    help: "Each child's state (1 for the current one).",
    labelNames: ['child', 'state'],
    read: () => children().flatMap((child) => oneOf('state', CHILD_STATES, child.state, { child: child.name })),
  });
  collectedCounter(registry, {
    name: 'dnslb_supervisor_child_restarts_total',
    help: 'Times the supervisor started a child again after it died: a server that keeps crashing.',
    labelNames: ['child'],
    read: () => children().map((child) => [{ child: child.name }, child.restarts] as const),
  });
}
