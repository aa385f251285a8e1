// dnslb user add|set-password|disable|enable|remove|list|show|import|move: the user directory in the store
// (src/store/users.ts). A password comes from a prompt on a terminal or from --password-file, never
// from an argument (arguments show in `ps`); only its HA1 hashes reach the store.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseUsersCsv } from '../../auth/users-csv.ts';
import { credentialFor } from '../../auth/user-credential.ts';
import { canonicalUser } from '../../registrar/sequence.ts';
import { DnslbError, isDnslbError } from '../../shared/errors.ts';
import type { Store } from '../../store/store.ts';
import type { NewUser, UserRecord } from '../../store/users.ts';
import { limits } from '../../shared/limits.ts';
import { firstLineOf, syntheticPassword, syntheticUris } from '../../auth/passwords.ts';
import { planPoolMoves } from '../../registrar/move-plan.ts';
import { assignmentsOf, formatMovePlan, moveRequests } from './plan.ts';
import { defaultActor, openStoreOf, storeLabelOf, withStoreOption } from './store-options.ts';

/** Longest password file read (a password is one line). */
const PASSWORD_FILE_BYTES_MAX = 4096;
/** Largest users file `import` reads. */
const USERS_FILE_BYTES_MAX = 64 * 1024 * 1024; // 64 MiB

interface PasswordOptions {
  passwordFile?: string;
  md5?: boolean;
}

/** A user's URI from the command line, canonical; a bad one is CLI_USAGE naming it. */
function userUri(value: string): string {
  let uri: string;
  try {
    uri = canonicalUser(value.includes(':') ? value : `sip:${value}`);
  } catch (error) {
    if (isDnslbError(error)) throw new DnslbError('CLI_USAGE', `user ${JSON.stringify(value)}: ${error.message}`, { cause: error });
    throw error;
  }
  if (!uri.includes('@')) throw new DnslbError('CLI_USAGE', `user ${JSON.stringify(value)}: no user part (sip:user@domain)`);
  return uri;
}

/** Reads one line from the terminal without echoing it (raw mode: no line discipline echo). */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = process.stdin;
    process.stderr.write(question);
    let typed = '';
    const finish = (error?: Error): void => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: Buffer): void => {
      for (const character of chunk.toString('utf8')) {
        if (character === '\r' || character === '\n') return finish();
        if (character === '\u0003' || character === '\u0004') return finish(new DnslbError('AUTH_PASSWORD', 'cancelled'));
        if (character === '\u007f' || character === '\b') typed = typed.slice(0, -1);
        else typed += character;
      }
    };
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}

/** The password: the first line of --password-file, else asked twice on the terminal. */
async function readPassword(options: PasswordOptions, uri: string): Promise<string> {
  if (options.passwordFile !== undefined) {
    let text: string;
    try {
      const bytes = await readFile(options.passwordFile);
      if (bytes.length > PASSWORD_FILE_BYTES_MAX) throw new DnslbError('AUTH_PASSWORD', `${options.passwordFile} is ${bytes.length} bytes: a password file holds one line`);
      text = bytes.toString('utf8');
    } catch (error) {
      if (isDnslbError(error)) throw error;
      throw new DnslbError('AUTH_PASSWORD', `cannot read ${options.passwordFile}: ${(error as Error).message}`, { cause: error });
    }
    const password = text.split(/\r?\n/)[0] ?? '';
    if (password === '') throw new DnslbError('AUTH_PASSWORD', `${options.passwordFile}: the first line (the password) is empty`);
    return password;
  }
  if (!process.stdin.isTTY) throw new DnslbError('AUTH_PASSWORD', 'no terminal to ask for the password: pass --password-file FILE (a password is never taken as an argument)');
  const password = await promptHidden(`password for ${uri}: `);
  if (password === '') throw new DnslbError('AUTH_PASSWORD', 'empty password');
  if ((await promptHidden('again: ')) !== password) throw new DnslbError('AUTH_PASSWORD', 'the two passwords differ');
  return password;
}

function describeUser(user: UserRecord): string {
  const algorithms = ['SHA-256', ...(user.credential.ha1Md5 ? ['MD5'] : [])].join('+');
  return `${user.uri}  ${user.disabled ? 'disabled' : 'enabled'}  home ${user.homePool ?? '-'}${user.number === undefined ? '' : `  number ${user.number}`}  realm ${user.credential.realm}  ${algorithms}  by ${user.by} at ${new Date(user.atMs).toISOString()}`;
}

/** What `list`/`show --json` print: everything but the hashes (HA1 is as good as the password for digest). */
function publicView(user: UserRecord): object {
  const { credential, ...rest } = user;
  return { ...rest, realm: credential.realm, algorithms: ['SHA-256', ...(credential.ha1Md5 ? ['MD5'] : [])] };
}

async function withStore<T>(command: Command, mustExist: boolean, action: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStoreOf(command, { mustExist });
  try {
    return await action(store);
  } finally {
    await store.close();
  }
}

export function registerUser(program: Command): void {
  const user = program.command('user').description('the user directory in the store: who may sign in, with digest hashes only');
  const passwordOptions = (command: Command): Command =>
    command.option('--password-file <file>', 'read the password from the first line of FILE (default: ask on the terminal)').option('--md5', 'also keep an MD5 hash, for clients that cannot do SHA-256 (used only where the topology enables MD5)');

  withStoreOption(passwordOptions(user.command('add').description('add a user; asks for its password').argument('<uri>', 'sip:user@domain')))
    .option('--home-pool <fqdn>', 'the frontend pool the user is homed on')
    .option('--disabled', 'add it disabled')
    .action(async (value: string, options: PasswordOptions & { homePool?: string; disabled?: boolean }, command: Command) => {
      const uri = userUri(value);
      const password = await readPassword(options, uri);
      const homePool = options.homePool?.toLowerCase().replace(/\.$/, '');
      const added = await withStore(command, false, (store) => store.addUser({ uri, ...(homePool ? { homePool } : {}), disabled: options.disabled === true, credential: credentialFor(uri, password, { md5: options.md5 === true }) }, { by: defaultActor() }));
      console.log(`added ${describeUser(added)}`);
    });

  withStoreOption(passwordOptions(user.command('set-password').description('replace a user\'s password (its hashes)').argument('<uri>', 'sip:user@domain'))).action(async (value: string, options: PasswordOptions, command: Command) => {
    const uri = userUri(value);
    const password = await readPassword(options, uri);
    const changed = await withStore(command, true, (store) => store.updateUser(uri, { credential: credentialFor(uri, password, { md5: options.md5 === true }) }, { by: defaultActor() }));
    console.log(`password set: ${describeUser(changed)}`);
  });

  for (const [verb, disabled, description] of [
    ['disable', true, 'refuse the user\'s sign-ins (403) until enabled; its hashes are kept'],
    ['enable', false, 'accept the user\'s sign-ins again'],
  ] as const) {
    withStoreOption(user.command(verb).description(description).argument('<uri>', 'sip:user@domain')).action(async (value: string, _options: object, command: Command) => {
      const changed = await withStore(command, true, (store) => store.updateUser(userUri(value), { disabled }, { by: defaultActor() }));
      console.log(`${verb}d ${describeUser(changed)}`);
    });
  }

  withStoreOption(user.command('remove').description('remove a user from the directory').argument('<uri>', 'sip:user@domain')).action(async (value: string, _options: object, command: Command) => {
    const uri = userUri(value);
    await withStore(command, true, (store) => store.removeUser(uri));
    console.log(`removed ${uri}`);
  });

  withStoreOption(user.command('list').description('every user: URI, enabled or disabled, home pool, realm, hash algorithms (never the hashes)').option('--json', 'as JSON')).action(async (options: { json?: boolean }, command: Command) => {
    const users = await withStore(command, true, (store) => store.users());
    if (options.json) console.log(JSON.stringify(users.map(publicView), null, 2));
    else for (const entry of users) console.log(describeUser(entry));
  });

  withStoreOption(
    user
      .command('move')
      .description('move users to another frontend pool (their home pool in the store); their current home servers hand them over at most settings.rehome.batchSize per interval')
      .argument('[users...]', 'SIP URIs to move to --pool')
      .option('--pool <fqdn>', 'the frontend pool the users given as arguments move to')
      .option('--file <moves.csv>', 'moves, one "user,pool" a line (an empty pool: back to the home rules and the default)')
      .option('--list', 'print each user, not just the counts'),
  ).action(async (users: string[], options: { pool?: string; file?: string; list?: boolean }, command: Command) => {
    const requests = await moveRequests(users, options);
    await withStore(command, true, async (store) => {
      const version = await store.currentVersion();
      if (version === 0) throw new DnslbError('STORE_NOT_FOUND', `nothing is published in ${storeLabelOf(command)}: no pool to move users to`);
      const { topology } = await store.read(version);
      const assignments = await assignmentsOf(store);
      // Every move is checked (pools, users, duplicates) before anything changes: all or nothing.
      const plan = planPoolMoves(topology, requests, { assignmentOf: (uri) => assignments.get(uri) });
      const known = new Set((await store.users()).map((entry) => entry.uri));
      const unknown = plan.moves.filter((move) => !known.has(move.user)).map((move) => move.user);
      if (unknown.length > 0) {
        throw new DnslbError('STORE_UNKNOWN_USER', `${unknown.length} user${unknown.length === 1 ? ' is' : 's are'} not in the directory (add them first); nothing was moved: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', …' : ''}`);
      }
      const by = defaultActor();
      const canonicalPools = new Map(requests.map((request) => [canonicalUser(request.user), request.pool === null ? null : request.pool.toLowerCase().replace(/\.$/, '')]));
      for (const move of plan.moves) await store.updateUser(move.user, { homePool: canonicalPools.get(move.user) ?? null }, { by });
      console.log(formatMovePlan(`version ${version} in ${storeLabelOf(command)}`, plan, options.list === true).replace(/^plan: move/, 'moved'));
      console.log(`the running servers pick the moves up within seconds and hand the users over at most ${topology.settings.rehome.batchSize} per ${topology.settings.rehome.intervalMs} ms per home server`);
    });
  });

  withStoreOption(user.command('show').description('one user (never its hashes)').argument('<uri>', 'sip:user@domain').option('--json', 'as JSON')).action(async (value: string, options: { json?: boolean }, command: Command) => {
    const uri = userUri(value);
    const found = await withStore(command, true, (store) => store.user(uri));
    if (!found) throw new DnslbError('STORE_UNKNOWN_USER', `no user ${uri} in the directory`);
    console.log(options.json ? JSON.stringify(publicView(found), null, 2) : describeUser(found));
  });

  withStoreOption(
    user
      .command('import')
      .description('add or update the users of a CSV file with a header row: uri and password or ha1-sha256 (+ ha1-md5), optional home-pool, number, disabled; or synthetic users (--synthetic N)')
      .argument('[file]', 'users CSV file')
      .option('--md5', 'also keep MD5 hashes of the passwords in the file')
      .option('--synthetic <n>', 'instead of a file: users <prefix>1@DOMAIN … <prefix>N@DOMAIN with the synthetic rule\'s passwords (as `dnslb client simulate --password-seed-file` answers)')
      .option('--domain <domain>', 'the SIP domain of the synthetic users')
      .option('--prefix <prefix>', 'the user part before the number of the synthetic users', 'user')
      .option('--password-seed-file <file>', 'the synthetic rule\'s seed, on the first line'),
  ).action(async (fileArgument: string | undefined, options: { md5?: boolean; synthetic?: string; domain?: string; prefix: string; passwordSeedFile?: string }, command: Command) => {
    const { rows, file } = fileArgument === undefined ? await syntheticRows(options) : await csvRows(fileArgument, options);
    const by = defaultActor();
    let added = 0;
    let updated = 0;
    await withStore(command, false, async (store) => {
      for (const { line, ...row } of rows) {
        try {
          const existing = await store.user(row.uri);
          if (existing) {
            await store.updateUser(row.uri, { credential: row.credential, disabled: row.disabled, ...(row.homePool ? { homePool: row.homePool } : {}), ...(row.number ? { number: row.number } : {}) }, { by });
            updated++;
          } else {
            await store.addUser(row, { by });
            added++;
          }
        } catch (error) {
          if (isDnslbError(error)) throw new DnslbError(error.code, `${file}:${line}: ${error.message} (${added} added and ${updated} updated before it)`, { cause: error });
          throw error;
        }
      }
    });
    console.log(`imported ${rows.length} users from ${file}: ${added} added, ${updated} updated`);
  });
}

/** The rows of a users CSV; every line is checked before anything is written: a bad file changes nothing. */
async function csvRows(file: string, options: { md5?: boolean; synthetic?: string }): Promise<{ rows: Array<NewUser & { line: number }>; file: string }> {
  if (options.synthetic !== undefined) throw new DnslbError('CLI_USAGE', 'give a users file or --synthetic N, not both');
  let text: string;
  try {
    const bytes = await readFile(file);
    if (bytes.length > USERS_FILE_BYTES_MAX) throw new DnslbError('AUTH_USERS_FILE', `${file} is ${bytes.length} bytes, more than ${USERS_FILE_BYTES_MAX}`);
    text = bytes.toString('utf8');
  } catch (error) {
    if (isDnslbError(error)) throw error;
    throw new DnslbError('AUTH_USERS_FILE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  return { rows: parseUsersCsv(text, file, { md5: options.md5 === true }), file };
}

/** The synthetic users (src/auth/passwords.ts): --synthetic N --domain D --password-seed-file FILE. */
async function syntheticRows(options: { md5?: boolean; synthetic?: string; domain?: string; prefix: string; passwordSeedFile?: string }): Promise<{ rows: Array<NewUser & { line: number }>; file: string }> {
  if (options.synthetic === undefined) throw new DnslbError('CLI_USAGE', 'dnslb user import needs a users file or --synthetic N');
  const count = Number(options.synthetic);
  if (!Number.isInteger(count) || count < 1 || count > limits.storeUsersMax) throw new DnslbError('CLI_USAGE', `--synthetic ${options.synthetic}: a whole number in 1..${limits.storeUsersMax}`);
  if (options.domain === undefined || options.passwordSeedFile === undefined) throw new DnslbError('CLI_USAGE', '--synthetic N needs --domain DOMAIN and --password-seed-file FILE');
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(options.prefix)) throw new DnslbError('CLI_USAGE', `--prefix ${options.prefix}: letters, digits, . _ -`);
  const seed = await firstLineOf(options.passwordSeedFile, 'password seed');
  const rows = syntheticUris(count, options.domain.toLowerCase(), options.prefix).map((uri, index) => ({ line: index + 1, uri, disabled: false, credential: credentialFor(uri, syntheticPassword(seed, uri), { md5: options.md5 === true }) }));
  return { rows, file: `${count} synthetic users` };
}
