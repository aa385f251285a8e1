// What the store verbs share: the store (the file store of the program-wide --data-dir, or the
// verb's own --store: a data directory or etcd://… in distributed mode), who is acting, and the
// parser of version numbers given on the command line.
import { hostname, userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { openFileStore, type FileStore } from '../../store/file-store.ts';
import { openStore } from '../../store/open.ts';
import type { PublishedVersion, Store } from '../../store/store.ts';

/** The one --data-dir of every verb that reads or changes the data dir, the store or the running system. */
export const DATA_DIR_FLAGS = '--data-dir <dir>';
export const DATA_DIR_DESCRIPTION = 'the data directory: the file store, the running system\'s admin address and token';
export const DATA_DIR_DEFAULT = './.dnslb';

/**
 * An option's value as the user gave it on the nearest command that has one: the verb's own, else a
 * parent's (`dnslb --data-dir D pool status` and `dnslb pool status --data-dir D` mean the same);
 * defaults count only when no command was given the option.
 */
function nearest(command: Command, key: string): unknown {
  let fallback: unknown;
  for (let current: Command | null = command; current; current = current.parent) {
    const value: unknown = current.getOptionValue(key);
    if (value === undefined) continue;
    if (current.getOptionValueSource(key) !== 'default') return value;
    fallback ??= value;
  }
  return fallback;
}

export function dataDirOf(command: Command): string {
  return String(nearest(command, 'dataDir') ?? DATA_DIR_DEFAULT);
}

/** Adds --data-dir to a verb (dnslb up, and with the store options every verb that reads the store). */
export function withDataDirOption(command: Command): Command {
  return command.option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT);
}

/** The one --store of every verb that reads or changes the store (test/integration/cli-flags.test.ts checks they agree). */
export const STORE_FLAGS = '--store <dir|etcd://…>';
export const STORE_DESCRIPTION = 'the store: a data directory (the file store) or etcd[s]://host:port[,host:port…][/prefix][?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE] (etcds: TLS; the password from password-file or DNSLB_ETCD_PASSWORD) (default: the file store of --data-dir)';

/** Adds --data-dir and --store to a verb that reads or changes the store or the running system (DESIGN §4). */
export function withStoreOption(command: Command): Command {
  return withDataDirOption(command).option(STORE_FLAGS, STORE_DESCRIPTION);
}

/**
 * Which store a verb that may also take a topology FILE reads: --store when given; else, without a
 * FILE, the file store of --data-dir; a FILE given alone is used alone (undefined: no store).
 */
export function storeSpecOrDefault(command: Command, file: string | undefined): string | undefined {
  return storeSpecOf(command) ?? (file === undefined ? dataDirOf(command) : undefined);
}

/** The verb's --store value, when it was given (to the verb, or to `dnslb server` before the verb). */
export function storeSpecOf(command: Command): string | undefined {
  const value = nearest(command, 'store');
  return value === undefined ? undefined : String(value);
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

/**
 * A published version from the verb's store (--store, else the file store of --data-dir): the
 * current one, or `version`. Creates nothing; STORE_NOT_FOUND names the store when it has none.
 */
export async function readPublished(command: Command, version?: number): Promise<PublishedVersion> {
  const store = await openStoreOf(command, { mustExist: true });
  try {
    return await store.read(version);
  } finally {
    await store.close();
  }
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
