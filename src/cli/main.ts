// The dnslb command: one commander program; each verb registers itself from commands/<verb>.ts.
import { Command, CommanderError } from 'commander';
import { DnslbError } from '../shared/errors.ts';
import { TopologyError } from '../topology/problem.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE } from './exit-codes.ts';
import { versionText } from './version.ts';
import { DATA_DIR_DEFAULT, DATA_DIR_DESCRIPTION, DATA_DIR_FLAGS } from './commands/store-options.ts';

type Register = (program: Command) => void;

/**
 * Every verb, in the order help lists them, with the module that registers it, imported when
 * needed: a command line naming one verb loads that verb's modules alone (the build puts each in a
 * chunk of its own), so that a process `dnslb up` starts (`dnslb server`, `dnslb dns serve`) does
 * not compile the simulator, the planner, the DNS server or the YAML parser it never runs. Help,
 * completion and an unknown verb load them all.
 */
const VERBS: readonly { readonly verb: string; readonly aliases?: readonly string[]; readonly load: () => Promise<Register> }[] = [
  { verb: 'topology', load: async () => (await import('./commands/topology.ts')).registerTopology },
  {
    verb: 'dns',
    load: async () => {
      const [{ registerDns }, { openStore }] = await Promise.all([import('./commands/dns.ts'), import('../store/open.ts')]);
      // --store DIR (the file store, which must exist: dns never creates one) or etcd://host:port[/prefix].
      return (program) => registerDns(program, (value) => openStore(value, { mustExist: true }));
    },
  },
  { verb: 'plan', load: async () => (await import('./commands/plan.ts')).registerPlan },
  { verb: 'client', load: async () => (await import('./commands/client.ts')).registerClient },
  { verb: 'server', aliases: ['node'], load: async () => (await import('./commands/server.ts')).registerServer },
  // More `topology` subcommands (publish, diff, versions), added to the command registered above.
  { verb: 'topology', load: async () => (await import('./commands/topology-store.ts')).registerTopologyStore },
  { verb: 'up', load: async () => (await import('./commands/up.ts')).registerUp },
  { verb: 'pool', load: async () => (await import('./commands/pool.ts')).registerPool },
  // `server drain|block|…`, added to the command registered above.
  { verb: 'server', aliases: ['node'], load: async () => (await import('./commands/server-admin.ts')).registerServerAdmin },
  { verb: 'hlb', load: async () => (await import('./commands/hlb.ts')).registerHlb },
  { verb: 'user', load: async () => (await import('./commands/user.ts')).registerUser },
  { verb: 'certs', load: async () => (await import('./commands/certs.ts')).registerCerts },
  // Last: the completion script is generated from every command registered before it.
  { verb: 'completion', load: async () => (await import('./commands/completion.ts')).registerCompletion },
];

/**
 * The verb of a command line (argv as node gives it), or undefined when it names none (help,
 * --version, a mistake). Program options stand before the verb (enablePositionalOptions):
 * --data-dir takes a value, and any other option means the whole program is wanted.
 */
export function verbOf(argv: readonly string[]): string | undefined {
  const dataDirFlags = DATA_DIR_FLAGS.split(/[ ,]+/).filter((flag) => flag.startsWith('-'));
  for (let index = 2; index < argv.length; index++) {
    const arg = argv[index]!;
    if (dataDirFlags.includes(arg)) index++;
    else if (dataDirFlags.some((flag) => arg.startsWith(`${flag}=`))) continue;
    else if (arg.startsWith('-')) return undefined;
    else return VERBS.some((entry) => entry.verb === arg || entry.aliases?.includes(arg)) ? arg : undefined;
  }
  return undefined;
}

/** Operating errors whose cause is the user's input rather than the system. */
const INVALID_INPUT_CODES = new Set(['ADMIN_QUORUM', 'ADMIN_NOT_FOUND', 'TOPOLOGY_FILE', 'STORE_STALE_VERSION', 'STORE_UNKNOWN_SERVER', 'STORE_NOT_FOUND', 'STORE_TOO_LARGE', 'CLI_BAD_INPUT', 'STORE_USER_EXISTS', 'STORE_UNKNOWN_USER', 'STORE_UNKNOWN_POOL', 'STORE_BAD_USER', 'AUTH_USERS_FILE', 'AUTH_PASSWORD']);

/** The program with every verb, or with `verb`'s alone (the completion verb needs them all). */
export async function buildProgram(verb?: string): Promise<Command> {
  const wanted = verb === undefined || verb === 'completion' ? VERBS : VERBS.filter((entry) => entry.verb === verb || entry.aliases?.includes(verb));
  const registrars = await Promise.all(wanted.map((entry) => entry.load()));
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
  for (const register of registrars) register(program);
  program.commands.forEach(function exitOverrideEverywhere(command: Command) {
    command.exitOverride();
    command.commands.forEach(exitOverrideEverywhere);
  });
  return program;
}

/** Runs the command line; returns the exit code instead of exiting, so tests and bin/ share it. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(verbOf(argv));
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
