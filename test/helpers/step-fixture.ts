// What unit tests of request steps share: a pool view (fe1 at 127.0.7.1 is "us", fe2 and fe3 its
// peers), requests written as lines, a recording flow, and a context run through one step.
import { parse } from '../../src/topology/parse.ts';
import { PoolView } from '../../src/frontend/pool-view.ts';
import { ClassifyStep } from '../../src/frontend/steps/classify.ts';
import { RequestContext, type Step, type StepOutcome } from '../../src/frontend/steps/step.ts';
import { topologyYaml } from './frontend-pool.ts';
import { recordingFlow, sipRequest, type RecordingFlow } from './recording-flow.ts';

export const STEP_ADDRESSES = ['127.0.7.1', '127.0.7.2', '127.0.7.3'];
export const SELF_ADDRESS = STEP_ADDRESSES[0]!;
export const PEER_ADDRESS = STEP_ADDRESSES[1]!;
export const CLIENT_ADDRESS = '127.0.9.1';

export function stepView(): PoolView {
  return new PoolView(parse(topologyYaml(STEP_ADDRESSES, 5060, 1000), 'steps.yaml'), 'fe1.contoso.com', 4);
}

/** Deterministic "randomness" for To tags. */
export const fixedRandom = (): number => 0.5;

let sequence = 0;

/** A request line plus the usual headers; `extra` lines go last, `overrides` replace by header name. */
export function request(startLine: string, extra: readonly string[] = [], overrides: Record<string, string> = {}): ReturnType<typeof sipRequest> {
  const n = ++sequence;
  const method = startLine.split(' ')[0]!;
  const defaults: Record<string, string> = {
    Via: `SIP/2.0/TCP ${CLIENT_ADDRESS}:40000;branch=z9hG4bK-t${n}`,
    'Max-Forwards': '70',
    From: `<sip:alice@contoso.com>;tag=a${n}`,
    To: method === 'REGISTER' ? '<sip:alice@contoso.com>' : '<sip:bob@contoso.com>',
    'Call-ID': `call-${n}@test`,
    CSeq: `1 ${method}`,
  };
  const lines = [startLine];
  for (const [name, value] of Object.entries({ ...defaults, ...overrides })) if (value !== '') lines.push(`${name}: ${value}`);
  return sipRequest([...lines, ...extra]);
}

export interface Ran {
  outcome: StepOutcome;
  context: RequestContext;
  flow: RecordingFlow;
}

/**
 * Classifies `message` as it arrives from `from` (a client by default), then runs `step` on it. From a
 * server's address it arrives as that server's link would: over TLS with its certificate (mutual TLS
 * between servers, the default), unless `certificate: false` (a process on that address without it).
 */
export function runStep(step: Step, message: ReturnType<typeof sipRequest>, options: { from?: string; view?: PoolView; certificate?: boolean } = {}): Ran {
  const view = options.view ?? stepView();
  const remoteAddress = options.from ?? CLIENT_ADDRESS;
  const server = options.certificate === false ? undefined : view.serverWithAddress(remoteAddress);
  const flow = recordingFlow(server ? { remoteAddress, transport: 'tls', certificateNames: [server.fqdn] } : { remoteAddress });
  const context = new RequestContext().reset(flow.flow, message);
  new ClassifyStep(() => view).run(context);
  return { outcome: step.run(context), context, flow };
}
