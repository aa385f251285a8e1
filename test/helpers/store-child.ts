// A child process for the store's crash and concurrency tests (bundled by the test, run with plain node):
//   loop DATA_DIR            publish documentFor(N+1) on base N for ever, with liveness reports, until killed
//   once DATA_DIR BASE TAG   wait for a line on stdin, publish once on BASE, print the outcome as JSON
import { createInterface } from 'node:readline';
import { isDnslbError } from '../../src/shared/errors.ts';
import { openFileStore } from '../../src/store/file-store.ts';
import { reportOf } from '../../src/store/store.ts';
import { documentFor } from './crash-documents.ts';

const [mode, dataDir, baseText, tag] = process.argv.slice(2);
if (dataDir === undefined) throw new Error('usage: store-child loop|once DATA_DIR [BASE TAG]');
// A small compaction interval, so that kills land inside compactions too.
const store = await openFileStore({ dataDir, compactEvery: 4 });

if (mode === 'loop') {
  process.stdout.write('ready\n');
  for (let round = 0; ; round++) {
    const base = await store.currentVersion();
    try {
      await store.publish(documentFor(base + 1), base, { by: `child ${process.pid}` });
    } catch (error) {
      if (!isDnslbError(error, 'STORE_STALE_VERSION')) throw error; // another child won: go again
    }
    if (round % 2 === 0) {
      await store.reportLiveness(reportOf({ server: 'fe1.crash.test', reporter: `child${process.pid % 3}`, state: 'active', atMs: Date.now(), ttlMs: 60_000, topologyVersion: base }));
    }
  }
} else {
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  for await (const _line of lines) break;
  try {
    const published = await store.publish(documentFor(Number(baseText) + 1), Number(baseText), { by: tag ?? 'once' });
    process.stdout.write(`${JSON.stringify({ won: true, version: published.version })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ won: false, code: isDnslbError(error) ? error.code : String(error) })}\n`);
  }
  await store.close();
}
