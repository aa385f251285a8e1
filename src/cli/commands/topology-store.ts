// dnslb topology publish|diff|versions: the topology subcommands that work with the store (--data-dir, or --store DIR|etcd://…).
import type { Command } from 'commander';
import { DnslbError } from '../../shared/errors.ts';
import type { Store } from '../../store/store.ts';
import { diffTopologies, formatDiff, type TopologyDiff } from '../../topology/diff.ts';
import { parseFile } from '../../topology/parse.ts';
import type { Topology } from '../../topology/schema.ts';
import { dataDirOf, defaultActor, openStoreOf, storeLabelOf, storeSpecOf, versionNumber, withStoreOption } from './store-options.ts';

/** Adds the store subcommands to the `topology` command (created when no other file did). */
export function registerTopologyStore(program: Command): void {
  const topology = program.commands.find((command) => command.name() === 'topology') ?? program.command('topology').description('validate, inspect and publish topology documents');

  withStoreOption(topology
    .command('publish'))
    .description('validate a topology and publish it as the next version (compare-and-swap on --base)')
    .argument('<file>', 'topology YAML')
    .option('--base <version>', 'the version this one replaces; refused when the store has moved on (default: the current version)', versionNumber)
    .option('--by <who>', 'who publishes (default: user@host)')
    .option('--comment <text>', 'why, kept with the version', '')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, options: { base?: number; by?: string; comment: string; json?: boolean }, command: Command) => {
      // Validate before touching the store: an invalid document leaves it as it was.
      const parsed = await parseFile(file);
      const store = await openStoreOf(command, { mustExist: false });
      try {
        const base = options.base ?? (await store.currentVersion());
        const published = await store.publish(parsed, base, { by: options.by ?? defaultActor(), comment: options.comment });
        const summary = { version: published.version, base, revision: published.revision, by: published.by, comment: published.comment, ...(storeSpecOf(command) === undefined ? { dataDir: dataDirOf(command) } : { store: storeSpecOf(command) }) };
        if (options.json) console.log(JSON.stringify(summary));
        else console.log(`published ${file} as version ${published.version} (base ${base}) in ${storeLabelOf(command)} by ${published.by}`);
      } finally {
        await store.close();
      }
    });

  withStoreOption(topology
    .command('diff'))
    .description('what changed: between two store versions (default: the one before the current → the current), a store version and a file, or two files')
    .argument('[files...]', 'none: two store versions; one file: --from (default current) → the file; two files: A → B')
    .option('--from <version>', 'the older store version', versionNumber)
    .option('--to <version>', 'the newer store version (default: current)', versionNumber)
    .option('--json', 'print the diff as JSON')
    .action(async (files: string[], options: { from?: number; to?: number; json?: boolean }, command: Command) => {
      if (files.length > 2) command.error('error: diff takes at most two files', { exitCode: 2, code: 'dnslb.usage' });
      let diff: TopologyDiff;
      let label: string;
      if (files.length === 2) {
        diff = diffTopologies(await parseFile(files[0] as string), await parseFile(files[1] as string));
        label = `${files[0]} → ${files[1]}`;
      } else {
        const after = files.length === 1 ? await parseFile(files[0] as string) : undefined;
        const store = await openStoreOf(command, { mustExist: true });
        try {
          const current = await store.currentVersion();
          if (after) {
            const from = options.from ?? current;
            diff = diffTopologies(await topologyOf(store, from), after);
            label = `version ${from} → ${files[0]}`;
          } else {
            const to = options.to ?? current;
            const from = options.from ?? Math.max(to - 1, 0);
            diff = diffTopologies(await topologyOf(store, from), await topologyOf(store, to));
            label = `version ${from} → version ${to}`;
          }
        } finally {
          await store.close();
        }
      }
      if (options.json) console.log(JSON.stringify({ diff: label, ...diff }));
      else console.log(`${label}\n${formatDiff(diff)}`);
    });

  withStoreOption(topology
    .command('versions'))
    .description('list the published versions: number, when, by whom, why')
    .option('--json', 'print the list as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const store = await openStoreOf(command, { mustExist: true });
      try {
        const versions = await store.listVersions();
        if (options.json) {
          console.log(JSON.stringify(versions));
          return;
        }
        if (versions.length === 0) console.log('no version published yet');
        for (const summary of versions) {
          console.log(`${String(summary.version).padStart(4)}  ${new Date(summary.publishedAtMs).toISOString()}  ${summary.by}${summary.comment === '' ? '' : `  ${summary.comment}`}`);
        }
      } finally {
        await store.close();
      }
    });
}

/** Version 0 is the empty start: diffing from it is diffing from nothing, which the store cannot show. */
async function topologyOf(store: Store, version: number): Promise<Topology> {
  if (version === 0) throw new DnslbError('STORE_NOT_FOUND', 'version 0 is the empty store; give --from 1 or later');
  return (await store.read(version)).topology;
}
