// Crash-safe file primitives for the file store: exclusive create (the compare-and-swap), atomic
// replace, bounded reads, and the cleanup of temp files that killed writers leave behind.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { link, open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DnslbError } from '../shared/errors.ts';

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

export function ioError(action: string, path: string, cause: unknown): DnslbError {
  return new DnslbError('STORE_IO', `cannot ${action} ${path}: ${(cause as Error).message}`, { cause });
}

export function corrupt(path: string, what: string, cause?: unknown): DnslbError {
  return new DnslbError('STORE_CORRUPT', `${path}: ${what}`, { cause });
}

/** Makes a directory's entries (a new name, a rename, an unlink) durable: POSIX fsync on the directory itself. */
export async function fsyncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch (cause) {
    throw ioError('fsync', directory, cause);
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `text` to a new file in `tmpDirectory` and fsyncs it. The name carries the writer's pid,
 * so that removeStaleTemps() can tell a dead writer's leftovers from a live writer's work.
 */
async function writeTemp(tmpDirectory: string, text: string, sync: boolean, mode = 0o666): Promise<string> {
  const path = join(tmpDirectory, `${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(path, 'wx', mode);
    await handle.writeFile(text, 'utf8');
    if (sync) await handle.sync();
  } catch (cause) {
    await handle?.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw ioError('write', path, cause);
  }
  await handle.close();
  return path;
}

/**
 * Creates `target` holding `text`, only if no file has that name: link(2) of a complete, fsynced
 * temp file is atomic and fails with EEXIST when another writer got there first. Returns false then.
 * A reader therefore sees no file or the whole file, never part of it, whatever instant a writer dies.
 */
/** `mode`: 0o600 for secrets (password hashes, the nonce secret), so that only the store's owner reads them. */
export async function createExclusive(tmpDirectory: string, target: string, text: string, mode?: number): Promise<boolean> {
  const temp = await writeTemp(tmpDirectory, text, true, mode);
  try {
    await link(temp, target);
  } catch (cause) {
    if (errno(cause) === 'EEXIST') return false;
    throw ioError('create', target, cause);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  await fsyncDirectory(dirname(target));
  return true;
}

/** Replaces `target` with `text` atomically (rename(2) of a complete temp file). */
export async function replaceAtomically(tmpDirectory: string, target: string, text: string, options: { syncDirectory: boolean }): Promise<void> {
  const temp = await writeTemp(tmpDirectory, text, true);
  try {
    await rename(temp, target);
  } catch (cause) {
    await unlink(temp).catch(() => undefined);
    throw ioError('replace', target, cause);
  }
  if (options.syncDirectory) await fsyncDirectory(dirname(target));
}

/** The file's text, or undefined when it does not exist; a file over `bytesMax` is corrupt. */
export async function readBounded(path: string, bytesMax: number): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    if (errno(cause) === 'ENOENT') return undefined;
    throw ioError('open', path, cause);
  }
  try {
    const { size } = await handle.stat();
    if (size > bytesMax) throw corrupt(path, `${size} bytes, more than the limit of ${bytesMax}`);
    return (await handle.readFile()).toString('utf8');
  } catch (cause) {
    if (cause instanceof DnslbError) throw cause;
    throw ioError('read', path, cause);
  } finally {
    await handle.close();
  }
}

/**
 * readBounded without the event loop: for bulk reads (every user at a server's start) done in short
 * chunks, where the async calls' own cost (a thread-pool round trip and promises per call) is most
 * of the work.
 */
export function readBoundedSync(path: string, bytesMax: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    if (errno(cause) === 'ENOENT') return undefined;
    throw ioError('open', path, cause);
  }
  try {
    const { size } = fstatSync(fd);
    if (size > bytesMax) throw corrupt(path, `${size} bytes, more than the limit of ${bytesMax}`);
    return readFileSync(fd, 'utf8');
  } catch (cause) {
    if (cause instanceof DnslbError) throw cause;
    throw ioError('read', path, cause);
  } finally {
    closeSync(fd);
  }
}

/** listDirectory without the event loop (see readBoundedSync). */
export function listDirectorySync(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch (cause) {
    if (errno(cause) === 'ENOENT') return [];
    throw ioError('list', directory, cause);
  }
}

/** Names in a directory; an absent directory has none. */
export async function listDirectory(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (cause) {
    if (errno(cause) === 'ENOENT') return [];
    throw ioError('list', directory, cause);
  }
}

/** Unlinks, ignoring a file that is already gone (another process cleaned it first). */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (cause) {
    if (errno(cause) !== 'ENOENT') throw ioError('remove', path, cause);
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return errno(error) === 'EPERM';
  }
}

/**
 * Removes temp files whose writer is dead (killed between write and link/rename). A temp file of a
 * live process is left alone: it may be about to be linked. Returns how many were removed.
 */
export async function removeStaleTemps(tmpDirectory: string): Promise<number> {
  let removed = 0;
  for (const name of await listDirectory(tmpDirectory)) {
    const pid = Number(/^(\d+)\./.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && (pid === process.pid || processIsAlive(pid))) continue;
    await removeIfPresent(join(tmpDirectory, name));
    removed += 1;
  }
  return removed;
}

export function isMissing(error: unknown): boolean {
  return errno(error) === 'ENOENT';
}
