// The metrics of `dnslb server` (one Front End server): every sample is read from one status() per
// scrape (FrontEndServer.status(), the same numbers GET /status shows), nothing counted twice.
import { GATEWAY_OUTCOMES } from '../frontend/proxy.ts';
import type { FrontEndStatus, OwnState } from '../frontend/server.ts';
import { REHOME_REASONS } from '../registrar/rehome.ts';
import type { AdminState, MemberState } from '../store/store.ts';
import { collectedCounter, collectedGauge, oncePerScrape, oneOf, type Labels, type Registry } from './metrics.ts';

// Records over the union types: the compiler says so when a state is added and not listed here.
const MEMBER_STATES = Object.keys({ active: 0, suspect: 0, down: 0, draining: 0, drained: 0, blocked: 0 } satisfies Record<MemberState, 0>);
const OWN_STATES = Object.keys({ active: 0, draining: 0, drained: 0 } satisfies Record<OwnState, 0>);
const ADMIN_STATES = Object.keys({ active: 0, draining: 0, blocked: 0 } satisfies Record<AdminState, 0>);

const entries = (record: Record<string, number>, label: string): [Labels, number][] => Object.entries(record).map(([key, value]) => [{ [label]: key }, value]);

export function registerFrontendMetrics(registry: Registry, server: { status(): FrontEndStatus }): void {
  const status = oncePerScrape(registry, () => server.status());
  const gauge = (name: string, help: string, read: (s: FrontEndStatus) => number | [Labels, number][], labelNames?: string[]) =>
    collectedGauge(registry, { name, help, labelNames, read: () => read(status()) });
  const counter = (name: string, help: string, read: (s: FrontEndStatus) => number | [Labels, number][], labelNames?: string[]) =>
    collectedCounter(registry, { name, help, labelNames, read: () => read(status()) });

  gauge('dnslb_frontend_info', 'Which server and pool this process is (always 1): join other series on it.', (s) => [[{ server: s.server, pool: s.pool }, 1]], ['server', 'pool']);
  gauge('dnslb_frontend_topology_version', 'The published topology version this server runs (0: a file never published): servers of one pool should agree.', (s) => s.topologyVersion);
  gauge('dnslb_frontend_state', "This server's own state (1 for the current one): draining refuses new work, drained has none left.", (s) => oneOf('state', OWN_STATES, s.state), ['state']);
  gauge('dnslb_frontend_admin_state', 'The admin state the store holds for this server (1 for the current one), set by an operator.', (s) => oneOf('state', ADMIN_STATES, s.resilience.adminState), ['state']);
  gauge('dnslb_frontend_accepting_connections', '1 while new client connections are accepted (0 while draining).', (s) => (s.resilience.acceptingConnections ? 1 : 0));
  gauge('dnslb_frontend_available_servers', 'Servers of the pool this server considers available homes now (itself included while active): the physical registrar sequence.', (s) => s.available.length);

  // Authentication (src/auth/README.md): no series without a user directory.
  const auth = (read: (a: NonNullable<FrontEndStatus['auth']>) => number | [Labels, number][]) => (s: FrontEndStatus) => (s.auth === null ? [] : read(s.auth));
  gauge('dnslb_auth_enabled', '1 while clients are challenged (settings.auth.enabled).', auth((a) => (a.enabled ? 1 : 0)));
  gauge('dnslb_auth_bound_flows', 'Client connections carrying a proven identity (RFC 5626 flows): later requests on them are not challenged.', auth((a) => a.boundFlows));
  counter(
    'dnslb_auth_outcomes_total',
    'Digest authentication outcomes: challenged (401/407 sent), authenticated (a password proven), via_flow (a request on an authenticated flow), failed (wrong password or unknown user), stale, replayed (nonce count), forbidden (403), refused (brute-force limiter), malformed (400).',
    auth((a) => [
      [{ outcome: 'challenged' }, a.counters.challenged],
      [{ outcome: 'authenticated' }, a.counters.authenticated],
      [{ outcome: 'via_flow' }, a.counters.viaFlow],
      [{ outcome: 'failed' }, a.counters.failed],
      [{ outcome: 'stale' }, a.counters.stale],
      [{ outcome: 'replayed' }, a.counters.replayed],
      [{ outcome: 'forbidden' }, a.counters.forbidden],
      [{ outcome: 'refused' }, a.counters.refused],
      [{ outcome: 'malformed' }, a.counters.malformed],
    ]),
    ['outcome'],
  );
  counter(
    'dnslb_auth_limiter_total',
    'Brute-force limiter: failures counted, answers delayed, attempts refused because of their source (403) or their user (503 Retry-After).',
    auth((a) => [
      [{ event: 'failure' }, a.limiter.failures],
      [{ event: 'delayed' }, a.limiter.delayed],
      [{ event: 'refused_source' }, a.limiter.refusedSource],
      [{ event: 'refused_user' }, a.limiter.refusedUser],
    ]),
    ['event'],
  );
  gauge('dnslb_auth_directory_users', 'Users in the directory this server holds in memory, kept current from the store.', auth((a) => a.users));

  // Registrar
  gauge('dnslb_registrar_users', 'Users with at least one binding here.', (s) => s.bindings.users);
  gauge(
    'dnslb_registrar_bindings',
    'Registered bindings here by mode: primary (this is the user\'s first server) or backup (an earlier one is unavailable: failover in progress).',
    (s) => [
      [{ mode: 'primary' }, s.bindings.bindingsPrimary],
      [{ mode: 'backup' }, s.bindings.bindingsBackup],
    ],
    ['mode'],
  );
  counter(
    'dnslb_registrar_register_answers_total',
    'REGISTER requests answered here by status class: 2xx accepted, 3xx sent to the home (301) or away while draining (302), 4xx/5xx refused.',
    (s) => entries(s.registerAnswersByClass, 'class'),
    ['class'],
  );
  gauge('dnslb_registrar_subscriptions', 'Active reg event subscriptions (RFC 3680).', (s) => s.registrar.subscriptionsActive);
  counter('dnslb_registrar_notifies_sent_total', 'reg event NOTIFYs sent (RFC 3680).', (s) => s.registrar.notifiesSent);
  counter('dnslb_registrar_users_deactivated_total', 'Users whose bindings were ended with a deactivated NOTIFY (hand-over, drain timeout).', (s) => s.registrar.usersDeactivated);
  counter('dnslb_registrar_users_arrived_total', 'Users that came to hold a binding here (none before the REGISTER): sign-ins and users re-homed here.', (s) => s.registrar.usersArrived);

  // Re-home / hand-over and drain
  counter(
    'dnslb_frontend_handover_users_total',
    'Users handed over to their home by reason (recovery, commission, decommission, drain): what left this server.',
    (s) => REHOME_REASONS.map((reason) => [{ reason }, s.resilience.handover.handedOverTotal[reason]] as [Labels, number]),
    ['reason'],
  );
  counter('dnslb_frontend_handover_batches_total', 'Hand-over batches released (at most one per settings.rehome.intervalMs).', (s) => s.resilience.handover.batchesTotal);
  counter('dnslb_frontend_handover_skipped_total', 'Users queued for hand-over but skipped at release (home here again, no binding left, nowhere to go).', (s) => s.resilience.handover.skippedTotal);
  counter('dnslb_frontend_handover_deferred_total', 'Hand-overs put back in the queue because the user was in a call through this server.', (s) => s.resilience.handover.deferredTotal);
  counter('dnslb_frontend_handover_busy_wait_ended_total', 'Users handed over while still counted in a call, after waiting an hour for it to end (a call whose end never passed this server).', (s) => s.resilience.handover.busyWaitEndedTotal);
  gauge('dnslb_frontend_handover_queued', 'Users waiting in the hand-over queue now.', (s) => s.resilience.handover.run.remaining);
  counter('dnslb_frontend_drain_redirects_total', 'Out-of-dialog requests answered 302 (or 503) because this server was draining.', (s) => s.resilience.drainRedirects);

  // Heartbeat (pool/)
  gauge(
    'dnslb_heartbeat_peer_state',
    "Each pool peer's state by this server's heartbeat (1 for the current one): suspect and down peers are no one's home here.",
    (s) => Object.entries(s.heartbeat.peers).flatMap(([peer, health]) => oneOf('state', MEMBER_STATES, health.state, { peer })),
    ['peer', 'state'],
  );
  gauge('dnslb_heartbeat_peer_misses', 'Consecutive heartbeat probes a peer has not answered.', (s) => Object.entries(s.heartbeat.peers).map(([peer, health]) => [{ peer }, health.misses]), ['peer']);

  // Dialogs and proxy
  gauge('dnslb_frontend_dialogs', 'Dialogs (calls) in progress through this server: a drain waits for them.', (s) => s.dialogs.active);
  counter('dnslb_frontend_dialogs_started_total', 'Dialogs started (2xx to INVITE) through this server.', (s) => s.dialogs.startedTotal);
  counter('dnslb_frontend_dialogs_ended_total', 'Dialogs ended (BYE, or forgotten at the drain timeout or age limit).', (s) => s.dialogs.endedTotal);
  gauge('dnslb_proxy_transactions_pending', 'Proxy client transactions waiting for a final answer (503 beyond limits.frontendTransactionsMax).', (s) => s.transactions.pending);
  counter('dnslb_proxy_requests_forwarded_total', 'Requests the proxy sent on, by method (other methods as "other").', (s) => entries(s.proxy.requestsForwardedByMethod, 'method'), ['method']);
  counter('dnslb_proxy_responses_forwarded_total', 'Responses the proxy passed back upstream.', (s) => s.proxy.responsesForwarded);
  counter('dnslb_proxy_answered_locally_total', 'Requests the proxy answered itself, by status (404 unknown user, 480 not registered, 408 timeout, 503 ...).', (s) => entries(s.proxy.answeredLocally, 'status'), ['status']);
  counter('dnslb_proxy_loops_detected_total', 'Requests refused 482 because they came back in a loop (RFC 3261 §16.3).', (s) => s.proxy.loopsDetected);
  counter('dnslb_proxy_transactions_timed_out_total', 'Proxy transactions that got no final answer in time (Timer C, 32 s non-INVITE).', (s) => s.proxy.transactionsTimedOut);

  // Between pools and to the PSTN (DESIGN §7)
  counter('dnslb_interpool_requests_forwarded_total', 'Requests sent to a server of another pool (topology-aware routing), per server tried.', (s) => s.proxy.interPoolForwarded);
  counter('dnslb_interpool_failovers_total', 'Tries given up on a server of another pool (connect failure, no answer, 503) for the next one.', (s) => s.proxy.interPoolFailovers);
  counter('dnslb_interpool_exhausted_total', 'Requests no server of the other pool answered: the caller got 480/503 naming each server tried.', (s) => s.proxy.interPoolExhausted);
  counter('dnslb_pstn_calls_to_mediation_total', 'Calls to telephone numbers this server sent to a Mediation pool by PSTN route (Front End).', (s) => s.proxy.pstnToMediation);
  counter('dnslb_pstn_calls_no_route_total', 'Calls to telephone numbers matching no PSTN route, answered 404 (or 484 when incomplete) with the reason.', (s) => s.proxy.pstnNoRoute);
  counter('dnslb_pstn_calls_to_gateway_total', 'Calls this Mediation server sent towards its gateways.', (s) => s.proxy.pstnToGateway);
  counter('dnslb_pstn_calls_from_gateway_total', 'Calls from a PSTN gateway to a number of the user directory, sent on to its user (Mediation server).', (s) => s.proxy.pstnFromGateway);
  counter('dnslb_pstn_calls_unknown_number_total', 'Calls from a PSTN gateway to a number no user has, answered 404 (Mediation server).', (s) => s.proxy.pstnUnknownNumber);
  counter('dnslb_pstn_calls_gateways_down_total', 'Calls no gateway of the pool took (connect failed): answered 503, so the Front End tries the next Mediation server.', (s) => s.proxy.pstnGatewayDown);
  counter(
    'dnslb_pstn_gateway_calls_total',
    'Calls sent to each PSTN gateway by outcome there: answered (2xx), rejected (300-699), timeout (no final answer), unreachable (took no connection).',
    (s) => Object.entries(s.proxy.pstnGateways).flatMap(([gateway, counts]) => GATEWAY_OUTCOMES.map((outcome): [Labels, number] => [{ gateway, outcome }, counts[outcome]])),
    ['gateway', 'outcome'],
  );

  // Links and transport (sip/)
  gauge('dnslb_pool_links_open', 'Server-to-server links open to pool peers.', (s) => s.links.open.length);
  counter('dnslb_pool_link_connect_failures_total', 'Failed attempts to open a server-to-server link.', (s) => s.links.connectFailures);
  counter('dnslb_sip_connections_accepted_total', 'SIP connections (TCP and TLS) accepted.', (s) => s.transport.connectionsAccepted);
  counter('dnslb_sip_connections_refused_total', 'SIP connections reset at accept (over --connections-max, or draining).', (s) => s.transport.connectionsRefused);
  counter('dnslb_sip_tls_handshake_failures_total', 'TLS handshakes that failed or timed out.', (s) => s.transport.handshakeFailures + s.transport.handshakeTimeouts);
  counter('dnslb_sip_messages_received_total', 'SIP messages received.', (s) => s.transport.messagesReceived);
  counter('dnslb_sip_invalid_messages_total', 'SIP messages that could not be parsed (the flow is closed).', (s) => s.transport.invalidMessages);
  gauge('dnslb_sip_flows_open', 'SIP flows (connections) open now.', (s) => s.transport.flowsOpen);

  // Store (liveness reports DNS reads)
  counter('dnslb_frontend_liveness_reports_total', 'Liveness reports written to the store (DNS reads them to leave dead servers out).', (s) => s.resilience.liveness.reportsWritten);
  counter('dnslb_frontend_liveness_report_failures_total', 'Liveness reports that could not be written: DNS may then count this server as dead.', (s) => s.resilience.liveness.failures);
}
