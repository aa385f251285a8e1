// The dnslb command: one commander program; each verb registers itself from commands/<verb>.ts.
import { Command, CommanderError } from 'commander';
import { DnslbError } from '../shared/errors.ts';
import { TopologyError } from '../topology/problem.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE } from './exit-codes.ts';
import { registerTopology } from './commands/topology.ts';
import { registerDns } from './commands/dns.ts';
import { openStore } from '../store/open.ts';
import { registerPlan } from './commands/plan.ts';
import { registerClient } from './commands/client.ts';
import { registerServer } from './commands/server.ts';
import { registerTopologyStore } from './commands/topology-store.ts';
import { registerUp } from './commands/up.ts';
import { registerPool } from './commands/pool.ts';
import { registerServerAdmin } from './commands/server-admin.ts';
import { registerHlb } from './commands/hlb.ts';
import { registerUser } from './commands/user.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerCerts } from './commands/certs.ts';
import { versionText } from './version.ts';
import { DATA_DIR_DEFAULT, DATA_DIR_DESCRIPTION, DATA_DIR_FLAGS } from './commands/store-options.ts';

/** Operating errors whose cause is the user's input rather than the system. */
const INVALID_INPUT_CODES = new Set(['ADMIN_QUORUM', 'ADMIN_NOT_FOUND', 'TOPOLOGY_FILE', 'STORE_STALE_VERSION', 'STORE_UNKNOWN_SERVER', 'STORE_NOT_FOUND', 'STORE_TOO_LARGE', 'CLI_BAD_INPUT', 'STORE_USER_EXISTS', 'STORE_UNKNOWN_USER', 'STORE_UNKNOWN_POOL', 'STORE_BAD_USER', 'AUTH_USERS_FILE', 'AUTH_PASSWORD']);

export function buildProgram(): Command {
  const program = new Command('dnslb')
    .description('Pools of SIP servers behind DNS load balancing')
    // Program options before the verb only, so that a verb may have an option of the same name
    // (`topology show --version N` beside `dnslb --version`); every verb that uses the data dir or
    // the store declares --data-dir and --store itself (store-options.ts), with one meaning.
    .enablePositionalOptions()
    .option(DATA_DIR_FLAGS, DATA_DIR_DESCRIPTION, DATA_DIR_DEFAULT)
    .version(versionText(), '-V, --version', 'print the version and whether the native UDP engine is loaded')
    .showHelpAfterError()
    .exitOverride();
  registerTopology(program);
  // --store DIR (the file store, which must exist: dns never creates one) or etcd://host:port[/prefix].
  registerDns(program, (value) => openStore(value, { mustExist: true }));
  registerPlan(program);
  registerClient(program);
  registerServer(program);
  registerTopologyStore(program);
  registerUp(program);
  registerPool(program);
  registerServerAdmin(program);
  registerHlb(program);
  registerUser(program);
  registerCerts(program);
  // Last: the completion script is generated from every command registered before it.
  registerCompletion(program);
  program.commands.forEach(function exitOverrideEverywhere(command: Command) {
    command.exitOverride();
    command.commands.forEach(exitOverrideEverywhere);
  });
  return program;
}

/** Runs the command line; returns the exit code instead of exiting, so tests and bin/ share it. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof TopologyError) {
      console.error(error.message);
      console.error(`${error.problems.length} problem${error.problems.length === 1 ? '' : 's'} in ${error.file}; nothing was published`);
      return EXIT_INVALID;
    }
    if (error instanceof DnslbError) {
      console.error(`dnslb: ${error.code}: ${error.message}`);
      if (error.code === 'CLI_USAGE') return EXIT_USAGE;
      return INVALID_INPUT_CODES.has(error.code) ? EXIT_INVALID : EXIT_RUNTIME;
    }
    console.error(`dnslb: unexpected failure: ${(error as Error)?.stack ?? String(error)}`);
    return EXIT_RUNTIME;
  }
}
