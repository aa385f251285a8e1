// The request path of each role (DESIGN §7): an ordered list of steps, built once per server, run for
// every request until one answers. A new policy is a new step in the lists below, not a new `if`.
//
//   classify → limits → max-forwards → require → drain → [authenticate] → role steps
//
// Front End role steps: redirect-home → register → reg-subscribe → options → route.
// Director role steps: redirect-home → options → route (no registrar: it holds no binding).
// Mediation role steps: options → mediation-gate → route (no registrar, no redirect: calls from the
// topology's servers go to the gateway, calls from the gateway to the callee's home pool).
// Edge: classify → edge-guard → limits → max-forwards → require → drain → options → edge steps
// (src/edge/path.ts: [federation] → edge-route). No authenticate step: the Edge holds no credentials;
// the first internal server authenticates what it relays (auth/relayed.ts).
import type { Random } from '../shared/clock.ts';
import type { Flow } from '../sip/flow.ts';
import type { Header } from '../sip/message.ts';
import type { RedirectContact } from '../registrar/sequence.ts';
import type { Routable } from '../pool/routing.ts';
import type { PoolKind } from '../topology/schema.ts';
import type { UserHomes } from './homes.ts';
import type { PoolView } from './pool-view.ts';
import type { Proxy } from './proxy.ts';
import type { RegisterAnswers } from './register-answers.ts';
import type { RegistrarService } from './registrar-service.ts';
import type { OwnState } from './status.ts';
import { ClassifyStep } from './steps/classify.ts';
import { DrainRedirectStep } from './steps/drain-redirect.ts';
import { LimitsStep } from './steps/limits.ts';
import { MediationGateStep } from './steps/mediation-gate.ts';
import { MaxForwardsStep } from './steps/max-forwards.ts';
import { OptionsStep } from './steps/options.ts';
import { RedirectHomeStep } from './steps/redirect-home.ts';
import { RegSubscribeStep } from './steps/reg-subscribe.ts';
import { RegisterStep } from './steps/register.ts';
import { RequireStep } from './steps/require.ts';
import { RouteStep } from './steps/route.ts';
import type { Step } from './steps/step.ts';

/** The request path a server runs. */
export type Role = 'frontend' | 'director' | 'mediation' | 'edge';

/** The path each pool kind's servers run. */
export const ROLE_OF_KIND: Readonly<Record<PoolKind, Role>> = { frontend: 'frontend', director: 'director', mediation: 'mediation', edge: 'edge' };

/** What the Edge role (src/edge/path.ts) puts into the shared path; this folder knows only its shape. */
export interface EdgeRole {
  /** Right after classify: which interface the request came on, and what the outside may not send. */
  guard: Step;
  /** The drain step's 302 Contacts: the other edge servers' Access Edge addresses. */
  contactHeaders: (contacts: readonly RedirectContact[], flow: Flow) => Header[];
  /** The role's own steps after options; the last always answers. */
  steps: readonly Step[];
}

/** What the steps work with, given once when the path is built (getters read the current state). */
export interface PathServices {
  view: () => PoolView;
  ownState: () => OwnState;
  /** The physical registrar sequence (pool/membership.ts isAvailable). */
  available: (fqdn: string) => boolean;
  /** May a server of any pool get server-to-server traffic now (pool/membership.ts isRoutable)? */
  routable: Routable;
  /** Users' home pools (homes.ts). */
  homes: UserHomes;
  random: Random;
  proxy: Proxy;
  registrar: RegistrarService;
  registerAnswers: RegisterAnswers;
  /** The authenticate step (steps/authenticate.ts), built by the server: it holds the server's Authenticator. */
  authenticate: Step;
  /** The Edge role's steps (required for role `edge`). */
  edge?: EdgeRole;
}

export interface RequestPath {
  readonly role: Role;
  readonly steps: readonly Step[];
  /** The drain step, for its counter (status().resilience.drainRedirects). */
  readonly drain: DrainRedirectStep;
  /** The redirect-home step, for its counters (status().homes). */
  readonly redirectHome: RedirectHomeStep;
}

/** Builds the path of `role`: the steps every role shares, then the role's own. */
export function buildPath(role: Role, services: PathServices): RequestPath {
  const edge = services.edge;
  if (role === 'edge' && edge === undefined) throw new Error('the edge role needs its steps (src/edge/path.ts)');
  const drain = new DrainRedirectStep({
    view: services.view,
    ownState: services.ownState,
    available: services.available,
    contactHeaders: role === 'edge' ? edge!.contactHeaders : (contacts, flow) => services.registrar.contactHeaders(contacts, flow),
    random: services.random,
    registerAnswers: services.registerAnswers,
  });
  const shared: Step[] = [
    new ClassifyStep(services.view),
    ...(role === 'edge' ? [edge!.guard] : []),
    new LimitsStep(services.proxy),
    new MaxForwardsStep(services.view, services.proxy.counters, services.random),
    new RequireStep(services.random, services.registerAnswers),
    drain,
    // Clients are authenticated where they arrive; a Mediation server serves none (its gate admits
    // the topology's servers and the pool's gateways only), and an Edge has no user directory: the
    // Director (or home pool) authenticates what it relays.
    ...(role === 'mediation' || role === 'edge' ? [] : [services.authenticate]),
  ];
  const redirectHome = new RedirectHomeStep({ role: role === 'director' ? 'director' : 'frontend', view: services.view, homes: services.homes, routable: services.routable, random: services.random, registerAnswers: services.registerAnswers });
  return { role, steps: Object.freeze([...shared, ...ROLE_STEPS[role](services, redirectHome)]), drain, redirectHome };
}

/** Each role's own steps, in order; the last one always answers. */
const ROLE_STEPS: Record<Role, (services: PathServices, redirectHome: RedirectHomeStep) => Step[]> = {
  frontend: (services, redirectHome) => [
    redirectHome,
    new RegisterStep(services.registrar, services.registerAnswers),
    new RegSubscribeStep(services.registrar),
    new OptionsStep(services.view, services.ownState, services.random),
    new RouteStep(services.proxy),
  ],
  director: (services, redirectHome) => [
    redirectHome,
    new OptionsStep(services.view, services.ownState, services.random),
    new RouteStep(services.proxy),
  ],
  mediation: (services) => [new OptionsStep(services.view, services.ownState, services.random), new MediationGateStep(services.view, services.random), new RouteStep(services.proxy)],
  edge: (services) => [new OptionsStep(services.view, services.ownState, services.random), ...services.edge!.steps],
};
