// Which store a `--store` value names, and opening it: a directory is the file store (its data
// directory), `etcd://host:port[,host:port…][/prefix]` the etcd v3 store, `etcds://…` the same over
// TLS; either may carry `?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE` (src/store/README.md,
// "Security"). The password is never part of the value (it would show in `ps`): a file, or the
// DNSLB_ETCD_PASSWORD environment variable.
import { readFile } from 'node:fs/promises';
import { DnslbError } from '../shared/errors.ts';
import type { Clock } from '../shared/clock.ts';
import { openFileStore } from './file-store.ts';
import type { Store } from './store.ts';

/** TLS to etcd (etcds://): file paths, read when the store is opened. */
export interface EtcdTlsSpec {
  /** PEM CA certificate(s) to verify etcd's certificate with; the system's roots when absent. */
  ca?: string;
  /** Client certificate and its key (etcd's --client-cert-auth); both or neither. */
  cert?: string;
  key?: string;
}

/** etcd user (RBAC); the password from passwordFile, else from DNSLB_ETCD_PASSWORD. */
export interface EtcdAuthSpec {
  user: string;
  passwordFile?: string;
}

export type StoreSpec =
  | { kind: 'file'; dataDir: string }
  | { kind: 'etcd'; endpoints: string[]; prefix: string; tls?: EtcdTlsSpec; auth?: EtcdAuthSpec };

const ETCD_SCHEME = 'etcd://';
const ETCDS_SCHEME = 'etcds://';
/** The environment variable holding the etcd user's password when no password-file is given. */
export const ETCD_PASSWORD_ENV = 'DNSLB_ETCD_PASSWORD';
const QUERY_KEYS = new Set(['ca', 'cert', 'key', 'user', 'password-file']);
const FORMS = 'a data directory or etcd[s]://host:port[,host:port…][/prefix][?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE]';
/** The etcd backend's default key prefix (etcd-store.ts ETCD_STORE_DEFAULTS.prefix; kept here so that parsing loads no gRPC). */
const ETCD_DEFAULT_PREFIX = '/dnslb/';
/** host:port, host a DNS name or IPv4 address, or [IPv6]:port. */
const ENDPOINT = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Parses a `--store` value; `flag` names the option in the CLI_USAGE error of a malformed one. */
export function parseStoreSpec(value: string, flag = '--store'): StoreSpec {
  if (!value.includes('://')) {
    if (value.length === 0) throw new DnslbError('CLI_USAGE', `${flag}: empty; give ${FORMS}`);
    return { kind: 'file', dataDir: value };
  }
  const secure = value.startsWith(ETCDS_SCHEME);
  if (!secure && !value.startsWith(ETCD_SCHEME)) throw new DnslbError('CLI_USAGE', `${flag} ${value}: unknown scheme; give ${FORMS}`);
  const afterScheme = value.slice((secure ? ETCDS_SCHEME : ETCD_SCHEME).length);
  const question = afterScheme.indexOf('?');
  const rest = question < 0 ? afterScheme : afterScheme.slice(0, question);
  const query = question < 0 ? undefined : afterScheme.slice(question + 1);
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
  const options = etcdOptions(value, flag, secure, query);
  // etcd's Authenticate call carries the password as it is: over plain etcd:// it would cross the
  // network readable by anyone on the path. Loopback never leaves the host.
  const offHost = endpoints.filter((endpoint) => !LOOPBACK_HOST.test(endpoint.slice(0, endpoint.lastIndexOf(':'))));
  if (!secure && options.auth !== undefined && offHost.length > 0) throw new DnslbError('CLI_USAGE', `${flag} ${value}: user= over plain etcd:// would send the password unencrypted to ${offHost.join(', ')}; use etcds:// (etcd with TLS), or keep etcd on this host's loopback`);
  return { kind: 'etcd', endpoints, prefix, ...options };
}

/** Hosts whose traffic never leaves this machine. */
const LOOPBACK_HOST = /^(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])$/i;

/** The TLS and user options of an etcd URL's query (`?ca=…&cert=…&key=…&user=…&password-file=…`). */
function etcdOptions(value: string, flag: string, secure: boolean, query: string | undefined): { tls?: EtcdTlsSpec; auth?: EtcdAuthSpec } {
  const params = new URLSearchParams(query ?? '');
  const seen = new Set<string>();
  for (const [name, text] of params) {
    if (name === 'password') throw new DnslbError('CLI_USAGE', `${flag}: a password in the store URL would show in \`ps\` and in logs; give password-file=FILE or the ${ETCD_PASSWORD_ENV} environment variable`);
    if (!QUERY_KEYS.has(name)) throw new DnslbError('CLI_USAGE', `${flag} ${value}: unknown option "${name}" (known: ${[...QUERY_KEYS].join(', ')})`);
    if (seen.has(name)) throw new DnslbError('CLI_USAGE', `${flag} ${value}: "${name}" given twice`);
    if (text === '') throw new DnslbError('CLI_USAGE', `${flag} ${value}: "${name}" is empty`);
    seen.add(name);
  }
  const ca = params.get('ca') ?? undefined;
  const cert = params.get('cert') ?? undefined;
  const key = params.get('key') ?? undefined;
  const user = params.get('user') ?? undefined;
  const passwordFile = params.get('password-file') ?? undefined;
  if (!secure && (ca !== undefined || cert !== undefined || key !== undefined)) throw new DnslbError('CLI_USAGE', `${flag} ${value}: ca, cert and key are TLS options: use etcds://`);
  if ((cert === undefined) !== (key === undefined)) throw new DnslbError('CLI_USAGE', `${flag} ${value}: cert and key go together (the client certificate and its private key)`);
  if (passwordFile !== undefined && user === undefined) throw new DnslbError('CLI_USAGE', `${flag} ${value}: password-file without user`);
  const tls: EtcdTlsSpec = { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) };
  return {
    ...(secure ? { tls } : {}),
    ...(user !== undefined ? { auth: { user, ...(passwordFile !== undefined ? { passwordFile } : {}) } } : {}),
  };
}

async function readSecretFile(flag: string, what: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new DnslbError('CLI_USAGE', `${flag}: cannot read the ${what} file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Reads the files an etcd spec names (and the password), as the etcd backend takes them. */
export async function etcdCredentials(spec: Extract<StoreSpec, { kind: 'etcd' }>, flag = '--store', env: NodeJS.ProcessEnv = process.env): Promise<{ tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }; auth?: { user: string; password: string } }> {
  const out: { tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }; auth?: { user: string; password: string } } = {};
  if (spec.tls) {
    const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
    if (spec.tls.ca !== undefined) tls.ca = await readSecretFile(flag, 'CA certificate (ca=)', spec.tls.ca);
    if (spec.tls.cert !== undefined) tls.cert = await readSecretFile(flag, 'client certificate (cert=)', spec.tls.cert);
    if (spec.tls.key !== undefined) tls.key = await readSecretFile(flag, 'client key (key=)', spec.tls.key);
    out.tls = tls;
  }
  if (spec.auth) {
    let password: string | undefined;
    // One line: a trailing newline (echo > file) is not part of the password.
    if (spec.auth.passwordFile !== undefined) password = (await readSecretFile(flag, 'password (password-file=)', spec.auth.passwordFile)).toString('utf8').replace(/\r?\n$/, '');
    else password = env[ETCD_PASSWORD_ENV];
    if (password === undefined || password === '') throw new DnslbError('CLI_USAGE', `${flag}: user=${spec.auth.user} needs a password: password-file=FILE in the URL or the ${ETCD_PASSWORD_ENV} environment variable`);
    out.auth = { user: spec.auth.user, password };
  }
  return out;
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
  const credentials = await etcdCredentials(spec, options.flag);
  return openEtcdStore({ endpoints: spec.endpoints, prefix: spec.prefix, ...credentials, ...clock });
}
