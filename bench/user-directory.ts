// What a server pays to hold the user directory in memory (src/auth/user-table.ts): the CPU of
// loading N users from the file store at start (`store.users()`, then the table), the heap the table
// keeps per user, and the CPU of one digest lookup. Run: `node --expose-gc --import tsx bench/user-directory.ts [--users 100000]`.
// The users are written straight into the file store's layout (the files `addUser` writes: one folder
// per user, its record as version 1), so that setting up 100,000 users costs seconds, not 100,000
// change-log commits; what is measured is the read path a server takes.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { credentialFor } from '../src/auth/user-credential.ts';
import { UserTable } from '../src/auth/user-table.ts';
import { escapeName } from '../src/store/checks.ts';
import { openFileStore } from '../src/store/file-store.ts';
import type { UserRecord } from '../src/store/users.ts';
import { machineLine, writeSection } from './results.ts';

const { values } = parseArgs({ options: { users: { type: 'string', default: '100000' } } });
const USERS = Number(values.users);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

function heapUsed(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-user-directory-'));
try {
  // A store to hold them, then the users' files: a third with a home pool, a tenth with a number, all with an MD5 HA1 too.
  const created = await openFileStore({ dataDir });
  await created.close();
  const usersDirectory = join(dataDir, 'store', 'users');
  await mkdir(usersDirectory, { recursive: true });
  const records: UserRecord[] = [];
  const template = credentialFor('sip:user@contoso.com', 'x', { md5: true });
  for (let index = 0; index < USERS; index++) {
    const uri = `sip:user${index + 1}@contoso.com`;
    // Distinct hashes (the table stores them; equal strings might be shared by V8).
    const salt = index.toString(16).padStart(8, '0');
    const record: UserRecord = {
      uri,
      disabled: false,
      ...(index % 3 === 0 ? { homePool: index % 2 === 0 ? 'pool01.contoso.com' : 'pool02.contoso.com' } : {}),
      ...(index % 10 === 0 ? { number: `+1425555${String(index).padStart(4, '0').slice(-4)}` } : {}),
      credential: { realm: 'contoso.com', ha1Sha256: salt + template.ha1Sha256.slice(8), ha1Md5: salt + (template.ha1Md5 ?? '').slice(8) },
      by: 'bench',
      atMs: 0,
    };
    records.push(record);
  }
  const written = process.cpuUsage();
  for (let first = 0; first < USERS; first += 500) {
    await Promise.all(records.slice(first, first + 500).map(async (record) => {
      const folder = join(usersDirectory, escapeName(record.uri));
      await mkdir(folder);
      await writeFile(join(folder, `${'1'.padStart(16, '0')}.json`), JSON.stringify({ format: 1, removed: false, ...record }), { mode: 0o600 });
    }));
  }
  console.log(`wrote ${USERS} user files in ${(cpuMs(written) / 1000).toFixed(1)} s of CPU`);
  records.length = 0;

  // A server's start: read the whole directory, then build the table.
  const store = await openFileStore({ dataDir });
  const beforeRead = process.cpuUsage();
  const startedMs = performance.now();
  const users = await store.users();
  const readMs = cpuMs(beforeRead);
  const readWallMs = performance.now() - startedMs;
  if (users.length !== USERS) throw new Error(`read ${users.length} users, expected ${USERS}`);
  const beforeTable = process.cpuUsage();
  const table = new UserTable();
  table.replace(users);
  const tableMs = cpuMs(beforeTable);
  // The table's heap: built again beside the records read (alive in both measures), with URI keys of
  // its own (fresh strings, as a server's keys are once the records read at start are gone).
  const heapBefore = heapUsed();
  const measured = new UserTable();
  for (const record of users) measured.set(Buffer.from(record.uri, 'latin1').toString('latin1'), record);
  const heapAfter = heapUsed();
  const bytesPerUser = (heapAfter - heapBefore) / USERS;
  if (measured.size !== USERS) throw new Error('the measured table lost users');
  users.length = 0;
  await store.close();

  // One digest lookup: the user and its hex HA1, as the authenticate step asks.
  const lookups = 1_000_000;
  const beforeLookups = process.cpuUsage();
  let found = 0;
  for (let index = 0; index < lookups; index++) {
    const user = table.user(`sip:user${(index % USERS) + 1}@contoso.com`);
    if (user !== undefined && user.ha1Md5() !== undefined) found++;
  }
  const lookupNs = (cpuMs(beforeLookups) * 1e6) / lookups;
  if (found !== lookups) throw new Error('a lookup missed');

  const body = `
\`node --expose-gc --import tsx bench/user-directory.ts --users ${USERS}\` — ${machineLine()}

A server holds the user directory in memory (src/auth/user-table.ts), loaded whole at start from the store and then kept current by the store's \`user\` events. ${USERS.toLocaleString('en')} users in a file store (a third with a home pool, a tenth with a number, every one with SHA-256 and MD5 HA1s), written straight into the store's layout (the files \`addUser\` writes).

| | |
|---|---:|
| load at start: \`store.users()\` (file store), CPU | ${(readMs / 1000).toFixed(2)} s (${((readMs * 1000) / USERS).toFixed(0)} µs per user; ${(readWallMs / 1000).toFixed(1)} s wall) |
| load at start: building the table, CPU | ${tableMs.toFixed(0)} ms (${((tableMs * 1000) / USERS).toFixed(2)} µs per user) |
| heap of the table | ${((heapAfter - heapBefore) / 2 ** 20).toFixed(1)} MiB, ${bytesPerUser.toFixed(0)} B per user (URI key included) |
| one digest lookup (the user and its hex HA1), CPU | ${lookupNs.toFixed(0)} ns |

- Before, every server re-read the whole directory every 5 s (about 145 µs of CPU per user: some 14 s of CPU per 5 s at 100,000 users) and each digest check read its user from the store (100–160 µs); now the directory is read once at start (and again only after a failed watch or a compacted-away resume), and a check is the lookup above.
- Taken on a shared machine (other work on its 2 cores); the figures are CPU time, which load inflates less than wall time.
`;
  await writeSection('User directory in memory: load at start, heap per user', body);
  console.log(body);
  console.log(`table holds ${table.size} users, ${table.assigned} with a home pool, ${table.numbered} numbers`);
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
