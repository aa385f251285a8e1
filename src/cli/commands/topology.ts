// dnslb topology validate|show|advise|schema|publish|diff: working with topology documents.
import type { Command } from 'commander';
import { parseFile } from '../../topology/parse.ts';

export function registerTopology(program: Command): void {
  const topology = program.command('topology').description('validate, inspect and publish topology documents');
  topology
    .command('validate')
    .description('check a topology document; prints every problem with file, YAML path and line:column')
    .argument('<file>', 'topology YAML')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, options: { json?: boolean }) => {
      const parsed = await parseFile(file);
      if (options.json) console.log(JSON.stringify({ valid: true, file, pools: parsed.pools.length }));
      else console.log(`${file}: valid (${parsed.pools.length} pools, ${parsed.pools.reduce((n, p) => n + p.servers.length, 0)} servers)`);
    });
}
