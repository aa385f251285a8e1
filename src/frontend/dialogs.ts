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
  /** key → start time, the users of the pool in it and its user agents' flows here; Map order is start order, so the oldest is first. */
  private readonly dialogs = new Map<string, { startedMs: number; users: readonly string[]; flows: readonly string[] }>();
  /** user → dialogs it is in (a hand-over waits for a user's calls to end). */
  private readonly byUser = new Map<string, number>();
  /** flow id → the dialogs with a user agent on that flow. */
  private readonly byFlow = new Map<string, Set<string>>();
  private startedTotal = 0;
  private endedTotal = 0;
  private forgottenTotal = 0;

  constructor(options: DialogCounterOptions) {
    this.clock = options.clock;
    this.maxAgeMs = options.maxAgeMs ?? limits.frontendDialogAgeMsMax;
    this.dialogsMax = options.dialogsMax ?? limits.frontendDialogsMax;
  }

  /**
   * A 2xx answered a dialog-creating INVITE. Repeated 2xx (retransmissions) count once. `users` are
   * the canonical users of our SIP domains in it (From and To), so that a hand-over can wait for them;
   * `flows` the flows of its user agents here (a client's own connection, not a server's link): the
   * dialog ends when one of them closes (flowClosed).
   */
  confirm(callId: string, fromTag: string, toTag: string, users: readonly string[] = [], flows: readonly string[] = []): void {
    const key = dialogKey(callId, fromTag, toTag);
    if (this.dialogs.has(key)) return;
    this.forgetOld();
    if (this.dialogs.size >= this.dialogsMax) {
      const oldest = this.dialogs.keys().next().value;
      if (oldest !== undefined) this.remove(oldest);
      this.forgottenTotal++;
    }
    const unique = [...new Set(users)];
    const uniqueFlows = [...new Set(flows)];
    this.dialogs.set(key, { startedMs: this.clock.nowMs(), users: unique, flows: uniqueFlows });
    for (const user of unique) this.byUser.set(user, (this.byUser.get(user) ?? 0) + 1);
    for (const flow of uniqueFlows) {
      const keys = this.byFlow.get(flow);
      if (keys) keys.add(key);
      else this.byFlow.set(flow, new Set([key]));
    }
    this.startedTotal++;
  }

  /** A BYE transaction ended (answered, timed out or failed): the dialog ends. Unknown dialogs are ignored. */
  end(callId: string, fromTag: string, toTag: string): boolean {
    const ended = this.remove(dialogKey(callId, fromTag, toTag));
    if (ended) this.endedTotal++;
    return ended;
  }

  /**
   * A user agent's flow closed: its dialogs end here. Through this server nothing reaches that party
   * any more, and its BYE may never come (a client that crashed, or that reset its connection with
   * the BYE unread): counted until the age limit, the dialog would keep a drain from ending and its
   * users busy for every hand-over. Returns how many ended.
   */
  flowClosed(flowId: string): number {
    const keys = this.byFlow.get(flowId);
    if (!keys) return 0;
    let ended = 0;
    for (const key of [...keys]) if (this.remove(key)) ended++;
    this.byFlow.delete(flowId);
    this.endedTotal += ended;
    return ended;
  }

  /** Does this server carry the dialog (confirmed by a 2xx through it, not yet ended or forgotten)? */
  holds(callId: string, tagA: string, tagB: string): boolean {
    this.forgetOld();
    return this.dialogs.has(dialogKey(callId, tagA, tagB));
  }

  /** Is the user (canonical URI) in a dialog through this server? */
  inDialog(user: string): boolean {
    this.forgetOld();
    return this.byUser.has(user);
  }

  private remove(key: string): boolean {
    const dialog = this.dialogs.get(key);
    if (!dialog) return false;
    this.dialogs.delete(key);
    for (const user of dialog.users) {
      const left = (this.byUser.get(user) ?? 1) - 1;
      if (left <= 0) this.byUser.delete(user);
      else this.byUser.set(user, left);
    }
    for (const flow of dialog.flows) {
      const keys = this.byFlow.get(flow);
      keys?.delete(key);
      if (keys?.size === 0) this.byFlow.delete(flow);
    }
    return true;
  }

  /** Forgets every dialog (a drain that timed out ended them); returns how many there were. */
  endAll(): number {
    const count = this.dialogs.size;
    this.dialogs.clear();
    this.byUser.clear();
    this.byFlow.clear();
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
    for (const [key, { startedMs }] of this.dialogs) {
      if (startedMs > oldestAllowed) break;
      this.remove(key);
      this.forgottenTotal++;
    }
  }
}
