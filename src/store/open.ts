// Which store a `--store` value names, and opening it: a directory is the file store (its data
// directory), `etcd://host:port[,host:port…][/prefix]` the etcd v3 store.
import { DnslbError } from '../shared/errors.ts';
import type { Clock } from '../shared/clock.ts';
import { openFileStore } from './file-store.ts';
import type { Store } from './store.ts';

export type StoreSpec = { kind: 'file'; dataDir: string } | { kind: 'etcd'; endpoints: string[]; prefix: string };

const ETCD_SCHEME = 'etcd://';
/** The etcd backend's default key prefix (etcd-store.ts ETCD_STORE_DEFAULTS.prefix; kept here so that parsing loads no gRPC). */
const ETCD_DEFAULT_PREFIX = '/dnslb/';
/** host:port, host a DNS name or IPv4 address, or [IPv6]:port. */
const ENDPOINT = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Parses a `--store` value; `flag` names the option in the CLI_USAGE error of a malformed one. */
export function parseStoreSpec(value: string, flag = '--store'): StoreSpec {
  if (!value.includes('://')) {
    if (value.length === 0) throw new DnslbError('CLI_USAGE', `${flag}: empty; give a data directory or etcd://host:port[,host:port…][/prefix]`);
    return { kind: 'file', dataDir: value };
  }
  if (!value.startsWith(ETCD_SCHEME)) throw new DnslbError('CLI_USAGE', `${flag} ${value}: unknown scheme; give a data directory or etcd://host:port[,host:port…][/prefix]`);
  const rest = value.slice(ETCD_SCHEME.length);
  const slash = rest.indexOf('/');
  const hosts = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const endpoints = hosts.split(',');
  for (const endpoint of endpoints) {
    const match = ENDPOINT.exec(endpoint);
    const port = Number(match?.[1]);
    if (!match || port < 1 || port > 65_535) throw new DnslbError('CLI_USAGE', `${flag} ${value}: "${endpoint}" is not host:port (port 1 to 65535)`);
  }
  let prefix: string = ETCD_DEFAULT_PREFIX;
  if (path !== '' && path !== '/') {
    const segments = path.replace(/^\/|\/$/g, '').split('/');
    if (!segments.every((segment) => PREFIX_SEGMENT.test(segment))) throw new DnslbError('CLI_USAGE', `${flag} ${value}: the key prefix "${path}" may hold only letters, digits, '.', '_', '-' between slashes`);
    prefix = `/${segments.join('/')}/`;
  }
  return { kind: 'etcd', endpoints, prefix };
}

export interface OpenStoreOptions {
  /** File store: fail with STORE_NOT_FOUND instead of creating an absent store (read-only verbs). */
  mustExist?: boolean;
  clock?: Clock;
  /** The option the value came from, for error messages. */
  flag?: string;
}

/** Opens the store a `--store` value names (parseStoreSpec), whichever backend it is. */
export async function openStore(value: string, options: OpenStoreOptions = {}): Promise<Store> {
  const spec = parseStoreSpec(value, options.flag);
  const clock = options.clock ? { clock: options.clock } : {};
  if (spec.kind === 'file') return openFileStore({ dataDir: spec.dataDir, mustExist: options.mustExist, ...clock });
  // Loaded only for etcd:// stores: the etcd client brings gRPC and protobuf (tens of MB of heap and
  // startup time) into every process that imports this file, SIP servers on the file store included.
  const { openEtcdStore } = await import('./etcd-store.ts');
  return openEtcdStore({ endpoints: spec.endpoints, prefix: spec.prefix, ...clock });
}
