// Waiting for something that happens asynchronously (a store event crossing fs.watch, a process
// reacting) without asserting how long it takes: retry until it holds, fail with the last error.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../../src/store/store.ts';

export async function eventually<T>(check: () => T | Promise<T>, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  // Generous by default: a loaded 2-core machine is slow, and a condition that holds returns at once.
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(options.intervalMs ?? 20);
  }
}

/** Waits until a store follower has applied every revision the store has now, then lets its queued rebuild run. */
export async function caughtUp(follower: { appliedRevision: number }, store: Store): Promise<void> {
  const { revision } = await store.snapshot();
  await eventually(() => {
    if (follower.appliedRevision < revision) throw new Error(`follower at revision ${follower.appliedRevision}, store at ${revision}`);
  });
  await new Promise((resolve) => setImmediate(resolve));
}
