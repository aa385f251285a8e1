// The Edge role's part of the request path (src/frontend/request-path.ts builds the whole path):
//
//   classify → edge-guard → limits → max-forwards → require → drain → options → [federation] → edge-route
//
// The federation step (steps/federation.ts, built by edge-server.ts) takes the new requests between our
// users and a partner organisation's; edge-route refuses any other request from or to another domain.
import type { RedirectContact } from '../registrar/sequence.ts';
import type { Flow } from '../sip/flow.ts';
import type { Header } from '../sip/message.ts';
import { formatQ } from '../registrar/sequence.ts';
import type { EdgeRole, PathServices } from '../frontend/request-path.ts';
import type { Step } from '../frontend/steps/step.ts';
import type { EdgeFlows } from './edge-flows.ts';
import { edgeInterfacesOf, type EdgeInterfaces } from './interfaces.ts';
import { EdgeGuardStep } from './steps/edge-guard.ts';
import { EdgeRouteStep } from './steps/edge-route.ts';

export interface EdgeSteps {
  role: EdgeRole;
  guard: EdgeGuardStep;
  route: EdgeRouteStep;
}

export function buildEdgeRole(services: Omit<PathServices, 'edge'>, parts: { interfaces: EdgeInterfaces; flows: EdgeFlows; linkTransport: () => 'tcp' | 'tls'; federation?: Step }): EdgeSteps {
  const guard = new EdgeGuardStep(services.view, parts.interfaces, parts.flows, services.random);
  const route = new EdgeRouteStep({ view: services.view, proxy: services.proxy, flows: parts.flows, homes: services.homes, routable: services.routable, random: services.random, linkTransport: parts.linkTransport });
  return {
    guard,
    route,
    role: {
      guard,
      contactHeaders: (contacts, flow) => accessEdgeContacts(services, contacts, flow),
      steps: [...(parts.federation ? [parts.federation] : []), route],
    },
  };
}

/**
 * The 302 of a draining Edge: one Contact per other available edge server of the user's sequence over
 * the edge pool, at its Access Edge address and client port (the address a remote client can reach).
 */
function accessEdgeContacts(services: Omit<PathServices, 'edge'>, contacts: readonly RedirectContact[], flow: Flow): Header[] {
  const view = services.view();
  const headers: Header[] = [];
  for (const contact of contacts) {
    if (contact.server === view.self.fqdn) continue;
    let external: EdgeInterfaces;
    try {
      external = edgeInterfacesOf(view.pool, contact.server);
    } catch {
      continue;
    }
    const host = external.externalAddress.includes(':') ? `[${external.externalAddress}]` : external.externalAddress;
    headers.push({ name: 'Contact', value: `<sip:${host}:${external.clientPort};transport=${flow.transport}>;q=${formatQ(contact.q)}` });
  }
  return headers;
}
