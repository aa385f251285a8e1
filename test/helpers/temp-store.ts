// A real file store in a fresh temporary data directory, for tests of components that follow the store.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/shared/clock.ts';
import { openFileStore, type FileStore } from '../../src/store/file-store.ts';

export async function tempFileStore(clock?: Clock): Promise<FileStore & { dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-store-'));
  const store = await openFileStore({ dataDir, ...(clock ? { clock } : {}) });
  return Object.assign(store, { dataDir });
}
