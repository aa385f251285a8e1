// A stand-in for a SIP Flow in unit tests of request steps: it records what is sent on it and says
// where it comes from. Only what steps read of a Flow is there (send, remoteAddress, transport, certificateNames, id).
import type { Flow } from '../../src/sip/flow.ts';
import type { SipMessage, SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parse.ts';
import type { SipRequest } from '../../src/sip/message.ts';

export interface RecordingFlow {
  flow: Flow;
  sent: SipMessage[];
  /** The responses sent, in order. */
  responses(): SipResponse[];
}

/** `certificateNames`: what a verified certificate of the other end names (a server's over mutual TLS). */
export function recordingFlow(options: { remoteAddress?: string; transport?: 'tcp' | 'tls'; id?: string; certificateNames?: readonly string[] | null } = {}): RecordingFlow {
  const sent: SipMessage[] = [];
  const fake = {
    id: options.id ?? 'flow-1',
    transport: options.transport ?? 'tcp',
    remoteAddress: options.remoteAddress ?? '127.0.9.1',
    remotePort: 40000,
    certificateNames: options.certificateNames ?? null,
    closed: false,
    send(message: SipMessage): boolean {
      sent.push(message);
      return true;
    },
  };
  return { flow: fake as unknown as Flow, sent, responses: () => sent.filter((message): message is SipResponse => message.kind === 'response') };
}

/** A request from lines (CRLF-joined, blank line and no body added). */
export function sipRequest(lines: readonly string[]): SipRequest {
  const message = parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`));
  if (message.kind !== 'request') throw new Error('not a request');
  return message;
}
