// What the store verbs share: the data directory from the program-wide --data-dir, who is acting,
// and the parser of version numbers given on the command line.
import { hostname, userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { openFileStore, type FileStore } from '../../store/file-store.ts';

export function dataDirOf(command: Command): string {
  return String(command.optsWithGlobals<{ dataDir: string }>().dataDir);
}

/** Opens the file store of --data-dir; read-only verbs pass mustExist so that they create nothing. */
export function openStoreOf(command: Command, options: { mustExist: boolean }): Promise<FileStore> {
  return openFileStore({ dataDir: dataDirOf(command), mustExist: options.mustExist });
}

/** user@host, recorded with every change the CLI makes when --by is not given. */
export function defaultActor(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container with an arbitrary uid): keep $USER.
  }
  return `${user}@${hostname()}`;
}

/** commander argument parser: a version number (0 = nothing published). */
export function versionNumber(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('a version number (0, 1, 2 …)');
  return Number(value);
}
