// Every limit of dnslb in one place (STYLE "Config and input"): checked where it applies,
// relations between limits asserted at start by checkLimits().
import { assert } from './assert.ts';

export const limits = {
  /** Largest topology document read from disk or the store. */
  topologyBytesMax: 4 * 1024 * 1024, // 4 MiB

  // store (src/store): sizes of what is read back from disk, so a hand-edited or hostile data
  // directory cannot make a process allocate without bound.
  /** Largest change-log entry: a whole topology plus its envelope (who, when, comment). */
  storeLogEntryBytesMax: 4 * 1024 * 1024 + 64 * 1024, // 4 MiB + 64 KiB
  /** Largest compaction file: version summaries and admin states, never topologies. */
  storeCompactionBytesMax: 16 * 1024 * 1024, // 16 MiB
  /** Largest liveness report file. */
  storeLivenessBytesMax: 4 * 1024, // 4 KiB
  /** Longest `by`, `comment` and admin `reason` text kept with a change. */
  storeTextCharsMax: 1024,
  /** Log entries read in one pass; a longer log means compaction has not run (or was disabled by hand). */
  storeLogEntriesMax: 100_000,
  /** Times a writer retries after losing the race for the next revision before giving up (STORE_LOCKED). */
  storeCommitAttemptsMax: 1000,
  /** Longest TTL a liveness report may ask for. */
  storeLivenessTtlMsMax: 3_600_000, // 1 h
} as const;

/** Asserts the relations between limits; called once when a process starts. */
export function checkLimits(): void {
  assert(limits.topologyBytesMax > 0);
  assert(limits.storeLogEntryBytesMax > limits.topologyBytesMax + 3 * limits.storeTextCharsMax * 4, 'a log entry holds a topology plus its texts');
  assert(limits.storeLivenessBytesMax > 0 && limits.storeCommitAttemptsMax > 0 && limits.storeLogEntriesMax > 0);
}
