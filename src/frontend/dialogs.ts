// The dialogs a server carries (RFC 3261 §12): counted from a 2xx to a dialog-creating INVITE until
// its BYE, so that draining knows when the last call has ended. Bounded in count and in age.
import type { Clock } from '../shared/clock.ts';
import { limits } from '../shared/limits.ts';

export interface DialogCounterOptions {
  clock: Clock;
  /** A dialog never closed by a BYE (a client that crashed) is forgotten after this long. Default limits.frontendDialogAgeMsMax. */
  maxAgeMs?: number;
  /** Most dialogs remembered; the oldest is forgotten beyond. Default limits.frontendDialogsMax. */
  dialogsMax?: number;
}

/** A dialog's id (RFC 3261 §12: Call-ID + both tags), the same whichever side's view it is taken from. */
export function dialogKey(callId: string, tagA: string, tagB: string): string {
  return tagA < tagB ? `${callId}\u0000${tagA}\u0000${tagB}` : `${callId}\u0000${tagB}\u0000${tagA}`;
}

export class DialogCounter {
  private readonly clock: Clock;
  private readonly maxAgeMs: number;
  private readonly dialogsMax: number;
  /** key → start time; Map order is start order, so the oldest is first. */
  private readonly dialogs = new Map<string, number>();
  private startedTotal = 0;
  private endedTotal = 0;
  private forgottenTotal = 0;

  constructor(options: DialogCounterOptions) {
    this.clock = options.clock;
    this.maxAgeMs = options.maxAgeMs ?? limits.frontendDialogAgeMsMax;
    this.dialogsMax = options.dialogsMax ?? limits.frontendDialogsMax;
  }

  /** A 2xx answered a dialog-creating INVITE. Repeated 2xx (retransmissions) count once. */
  confirm(callId: string, fromTag: string, toTag: string): void {
    const key = dialogKey(callId, fromTag, toTag);
    if (this.dialogs.has(key)) return;
    this.forgetOld();
    if (this.dialogs.size >= this.dialogsMax) {
      const oldest = this.dialogs.keys().next().value;
      if (oldest !== undefined) this.dialogs.delete(oldest);
      this.forgottenTotal++;
    }
    this.dialogs.set(key, this.clock.nowMs());
    this.startedTotal++;
  }

  /** A BYE passed (or an INVITE's dialog failed): the dialog ends. Unknown dialogs are ignored. */
  end(callId: string, fromTag: string, toTag: string): boolean {
    const ended = this.dialogs.delete(dialogKey(callId, fromTag, toTag));
    if (ended) this.endedTotal++;
    return ended;
  }

  /** Forgets every dialog (a drain that timed out ended them); returns how many there were. */
  endAll(): number {
    const count = this.dialogs.size;
    this.dialogs.clear();
    this.endedTotal += count;
    return count;
  }

  /** Active dialogs (those older than the age limit are forgotten first). */
  active(): number {
    this.forgetOld();
    return this.dialogs.size;
  }

  stats(): { active: number; startedTotal: number; endedTotal: number; forgottenTotal: number } {
    return { active: this.active(), startedTotal: this.startedTotal, endedTotal: this.endedTotal, forgottenTotal: this.forgottenTotal };
  }

  private forgetOld(): void {
    const oldestAllowed = this.clock.nowMs() - this.maxAgeMs;
    for (const [key, startedMs] of this.dialogs) {
      if (startedMs > oldestAllowed) break;
      this.dialogs.delete(key);
      this.forgottenTotal++;
    }
  }
}
