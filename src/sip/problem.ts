// The one boundary where a SIP message problem becomes a SIP status (STYLE "Errors"): SipMessageError
// carries what went wrong; answerFor says which response to send and whether the flow survives.
import { DnslbError, type ErrorCode } from '../shared/errors.ts';
import { headerValues, responseFromHeaders, type Header, type SipRequest, type SipResponse } from './message.ts';
import { parseCSeq, parseFromTo, requireOptions } from './headers.ts';

/**
 * What is wrong with a message:
 * - `syntax`: malformed start line or header (400);
 * - `version`: not SIP/2.0 (505);
 * - `uri-scheme`: Request-URI scheme other than sip/sips/tel (416);
 * - `framing`: the message cannot be delimited on a stream (400, then close; RFC 3261 §18.3);
 * - `too-large`: a line, the header section or the header count is over its limit (513, then close);
 * - `body-too-large`: Content-Length over the body limit (413, then close: the body is never buffered);
 * - `extension`: a Require option is not supported (420 with Unsupported).
 */
export type SipProblem = 'syntax' | 'version' | 'uri-scheme' | 'framing' | 'too-large' | 'body-too-large' | 'extension';

/** What could be read of a message that failed: enough, perhaps, to answer it. */
export interface PartialMessage {
  readonly isRequest: boolean;
  readonly method: string | null;
  readonly headers: readonly Header[];
}

const CODE_OF: Record<SipProblem, ErrorCode> = {
  syntax: 'SIP_PARSE',
  version: 'SIP_VERSION',
  'uri-scheme': 'SIP_URI_SCHEME',
  framing: 'SIP_FRAMING',
  'too-large': 'SIP_TOO_LARGE',
  'body-too-large': 'SIP_TOO_LARGE',
  extension: 'SIP_BAD_EXTENSION',
};

export class SipMessageError extends DnslbError {
  readonly problem: SipProblem;
  /** A short phrase naming the problem, used as the reason phrase of a 400 (`Malformed Via header`). */
  readonly reason: string;
  readonly partial: PartialMessage | null;
  /** True when the stream can no longer be delimited: the flow must close after answering. */
  readonly framingLost: boolean;
  /** For `extension`: the option tags to list in Unsupported. */
  readonly unsupported: readonly string[];

  constructor(
    problem: SipProblem,
    reason: string,
    details: { partial?: PartialMessage | null; framingLost?: boolean; unsupported?: readonly string[]; cause?: unknown } = {},
  ) {
    super(CODE_OF[problem], reason, { cause: details.cause });
    this.name = 'SipMessageError';
    this.problem = problem;
    this.reason = reason;
    this.partial = details.partial ?? null;
    this.framingLost = details.framingLost ?? (problem === 'framing' || problem === 'too-large' || problem === 'body-too-large');
    this.unsupported = details.unsupported ?? [];
  }
}

export interface Answer {
  readonly status: number;
  readonly reason: string;
  /** The response to send, or null when none can be formed (a response, an ACK, no Via or CSeq). */
  readonly response: SipResponse | null;
  /** False when the flow must be closed after sending (framing lost). */
  readonly keepConnection: boolean;
}

const STATUS_OF: Record<SipProblem, number> = {
  syntax: 400,
  version: 505,
  'uri-scheme': 416,
  framing: 400,
  'too-large': 513,
  'body-too-large': 413,
  extension: 420,
};

const STANDARD_REASON: Partial<Record<SipProblem, string>> = {
  version: 'Version Not Supported',
  'uri-scheme': 'Unsupported URI Scheme',
  'too-large': 'Message Too Large',
  'body-too-large': 'Request Entity Too Large',
  extension: 'Bad Extension',
};

/**
 * Says how to answer a message problem. A response is formed only for a request other than ACK
 * (§17.1.1.3: ACK is never answered; responses are never answered) that has at least one Via and a
 * CSeq that parses, since a client matches the response by top Via branch and CSeq method (§17.1.3).
 * From, To and Call-ID are copied when present; the To tag is added only when To itself parses.
 * 400 carries a reason phrase naming the problem; the others carry their standard phrase.
 */
export function answerFor(error: SipMessageError, options: { toTag?: string } = {}): Answer {
  const status = STATUS_OF[error.problem];
  const reason = STANDARD_REASON[error.problem] ?? sanitizeReason(error.reason);
  const keepConnection = !error.framingLost;
  const partial = error.partial;
  if (!partial || !partial.isRequest || partial.method === 'ACK') return { status, reason, response: null, keepConnection };
  const viaValues = headerValues(partial, 'Via');
  const cseqValue = headerValues(partial, 'CSeq')[0];
  if (viaValues.length === 0 || viaValues[0]?.trim() === '' || cseqValue === undefined || !parses(() => parseCSeq(cseqValue))) {
    return { status, reason, response: null, keepConnection };
  }
  const toValue = headerValues(partial, 'To')[0];
  const toParses = toValue !== undefined && parses(() => parseFromTo(toValue));
  const extra: Header[] = error.problem === 'extension' ? [{ name: 'Unsupported', value: error.unsupported.join(', ') }] : [];
  const response = responseFromHeaders(partial.headers, status, {
    reason,
    toTag: toParses ? options.toTag : undefined,
    headers: extra,
  });
  return { status, reason, response, keepConnection };
}

function parses(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

function sanitizeReason(text: string): string {
  // A reason phrase is one line of TEXT-UTF8; keep it short and free of control characters.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 120).trim() || 'Bad Request';
}

/**
 * RFC 3261 §8.2.2.3: a UAS (registrar) rejects a request whose Require lists an option it does not
 * support with 420 and an Unsupported header. Returns the error to pass to answerFor, or null.
 * (A proxy checks Proxy-Require the same way; pass `proxyRequire(request)` to unsupportedOptions.)
 */
export function checkRequire(request: SipRequest, supported: Iterable<string>): SipMessageError | null {
  // §8.2.2.3: never for CANCEL, nor for an ACK.
  if (request.method === 'CANCEL' || request.method === 'ACK') return null;
  const missing = unsupportedOptions(requireOptions(request), supported);
  if (missing.length === 0) return null;
  return new SipMessageError('extension', `Unsupported Require: ${missing.join(', ')}`, {
    partial: { isRequest: true, method: request.method, headers: request.headers },
    unsupported: missing,
  });
}

/** Option tags in `required` that are not in `supported`, compared exactly as written. */
export function unsupportedOptions(required: readonly string[], supported: Iterable<string>): string[] {
  const known = new Set(supported);
  return required.filter((option) => !known.has(option));
}
