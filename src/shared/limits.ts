// Every limit of dnslb in one place (STYLE "Config and input"): checked where it applies,
// relations between limits asserted at start by checkLimits().
import { assert } from './assert.ts';

export const limits = {
  /** Largest topology document read from disk or the store. */
  topologyBytesMax: 4 * 1024 * 1024, // 4 MiB

  // sip: message framing and parsing (src/sip/framer.ts, parse.ts)
  /** Longest physical header line (bytes, CRLF excluded); a longer one closes the flow. */
  sipLineBytesMax: 8 * 1024, // 8 KiB
  /** Largest header section (start line + headers + blank line). */
  sipHeaderSectionBytesMax: 32 * 1024, // 32 KiB
  /** Most header fields in one message (after unfolding and comma-splitting). */
  sipHeaderCountMax: 256,
  /** Largest body (Content-Length); larger is refused before a byte of it is buffered. */
  sipBodyBytesMax: 64 * 1024, // 64 KiB
  /** Largest whole message: header section + body. */
  sipMessageBytesMax: 96 * 1024, // 96 KiB

  // sip: transport (src/sip/transport.ts, flow.ts)
  /** Hard cap on simultaneous connections a SipTransport holds (its option can only lower it). */
  sipConnectionsMax: 50_000,
  /** Bytes queued for sending on one flow before it is closed as a slow reader. */
  sipFlowSendBufferBytesMax: 1024 * 1024, // 1 MiB
  /** Longest idle timeout a flow may be given. */
  sipIdleTimeoutMsMax: 3_600_000, // 1 h
  /** Longest TLS handshake timeout. */
  sipTlsHandshakeTimeoutMsMax: 120_000, // 2 min
} as const;

/** Asserts the relations between limits; called once when a process starts. */
export function checkLimits(): void {
  assert(limits.topologyBytesMax > 0);
  assert(limits.sipLineBytesMax < limits.sipHeaderSectionBytesMax, 'a header line fits in a header section');
  assert(limits.sipHeaderSectionBytesMax + limits.sipBodyBytesMax <= limits.sipMessageBytesMax, 'header section + body fit in a message');
  assert(limits.sipMessageBytesMax <= limits.sipFlowSendBufferBytesMax, 'one whole message can be queued for sending');
}
