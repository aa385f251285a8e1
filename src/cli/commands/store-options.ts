// What the store verbs share: the store (the file store of the program-wide --data-dir, or the
// verb's own --store: a data directory or etcd://… in distributed mode), who is acting, and the
// parser of version numbers given on the command line.
import { hostname, userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { openFileStore, type FileStore } from '../../store/file-store.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/store.ts';

export function dataDirOf(command: Command): string {
  return String(command.optsWithGlobals<{ dataDir: string }>().dataDir);
}

/** Adds --store to a verb that works on the store directly (DESIGN §4 distributed mode). */
export function withStoreOption(command: Command): Command {
  return command.option('--store <dir|etcd://host:port>', 'work on this store directly: a data directory or etcd://host:port[,host:port…][/prefix] (default: the file store of --data-dir)');
}

/**
 * The verb's --store value, when it was given. With globals: under `dnslb server`, which has a
 * --store of its own, commander gives the option to the parent even when it follows the verb.
 */
export function storeSpecOf(command: Command): string | undefined {
  return command.optsWithGlobals<{ store?: string }>().store;
}

/** Where the verb's store is, for messages: the --store value or the data directory. */
export function storeLabelOf(command: Command): string {
  return storeSpecOf(command) ?? dataDirOf(command);
}

/** Opens the verb's store (--store, else the file store of --data-dir); read-only verbs pass mustExist so that they create nothing. */
export function openStoreOf(command: Command, options: { mustExist: boolean }): Promise<Store> {
  const spec = storeSpecOf(command);
  if (spec !== undefined) return openStore(spec, { mustExist: options.mustExist });
  return openFileStoreOf(command, options);
}

/** The file store of --data-dir (dnslb up keeps its admin files beside it). */
export function openFileStoreOf(command: Command, options: { mustExist: boolean }): Promise<FileStore> {
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
