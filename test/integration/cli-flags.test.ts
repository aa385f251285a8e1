// "One flag for one thing": every command's --help, walked through the command tree, agrees on what a
// flag means (one value placeholder per flag everywhere; --data-dir and --store word for word), every
// verb that reads the store or the running system takes both, and they behave alike wherever given.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Command, Option } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import { runDnslb } from '../helpers/cli.ts';
import { REPO } from '../helpers/dns-process.ts';

/** Every command that can run, with its path (`dns export`), parents before children. */
async function commands(): Promise<{ path: string; command: Command }[]> {
  const found: { path: string; command: Command }[] = [];
  const walk = (command: Command, path: string[]) => {
    for (const sub of command.commands) {
      found.push({ path: [...path, sub.name()].join(' '), command: sub });
      walk(sub, [...path, sub.name()]);
    }
  };
  walk(await buildProgram(), []);
  return found;
}

/** What `--help` lists for the command: its own options (commander's Help, which prints them). */
const optionsOf = (command: Command): Option[] => command.createHelp().visibleOptions(command).filter((option) => option.long !== '--help');

/**
 * Each command is either a reader of the store or the running system (both flags; `up` too: it
 * makes the data dir and runs the pool on the file store there or on --store etcd://…), or on this
 * list with the reason it needs neither. A new command fails the test until it is put in one of the two.
 */
const NEITHER: Record<string, string> = {
  topology: 'a group',
  'topology validate': 'checks a FILE',
  'topology advise': 'advises on a FILE',
  'topology schema': 'prints the JSON Schema',
  dns: 'a group',
  plan: 'a group',
  client: 'a group',
  'client simulate': 'a client: finds the pool through DNS, as Lync clients do',
  'client register': 'a client: finds the pool through DNS, as Lync clients do',
  pool: 'a group',
  completion: 'prints a shell completion script',
  hlb: 'a group',
  user: 'a group',
  certs: 'a group',
};

describe('one flag for one thing', () => {
  test('every flag takes the same kind of value under every command; --data-dir and --store read word for word alike', async () => {
    const seen = new Map<string, { flags: string; description: string; path: string }>();
    for (const { path, command } of await commands()) {
      for (const option of optionsOf(command)) {
        const first = seen.get(option.long!);
        if (!first) {
          seen.set(option.long!, { flags: option.flags, description: option.description, path });
          continue;
        }
        assert.equal(option.flags, first.flags, `${option.long} is "${option.flags}" under "${path}" but "${first.flags}" under "${first.path}"`);
        if (option.long === '--data-dir' || option.long === '--store') {
          assert.equal(option.description, first.description, `${option.long} under "${path}" is described otherwise than under "${first.path}"`);
        }
      }
    }
    assert.equal(seen.get('--data-dir')?.flags, '--data-dir <dir>');
    assert.equal(seen.get('--store')?.flags, '--store <dir|etcd://…>');
  });

  test('every command that reads the store or the running system takes --data-dir (default ./.dnslb) and --store', async () => {
    const program = await buildProgram();
    const global = optionsOf(program).find((option) => option.long === '--data-dir');
    for (const { path, command } of await commands()) {
      const longs = new Map(optionsOf(command).map((option) => [option.long, option]));
      if (path in NEITHER) {
        assert.ok(!longs.has('--store'), `${path} has --store but is listed as needing neither (${NEITHER[path]})`);
        continue;
      }
      const dataDir = longs.get('--data-dir');
      assert.ok(dataDir, `${path} takes no --data-dir: add withStoreOption/withDataDirOption, or list it in NEITHER with the reason`);
      assert.equal(dataDir.defaultValue, './.dnslb', path);
      assert.equal(dataDir.description, global?.description, `${path}: --data-dir as on the program`);
      assert.ok(longs.has('--store'), `${path} takes --data-dir but no --store`);
    }
  });

  test('the real --help prints them (dns export, topology show, pool status, server drain, up)', async () => {
    for (const path of ['dns export', 'topology show', 'pool status', 'server drain', 'up']) {
      const run = await runDnslb([...path.split(' '), '--help']);
      assert.equal(run.code, 0, run.stderr);
      // Help wraps at the terminal's width: compare with the line breaks folded.
      const text = run.stdout.replace(/\s+/g, ' ');
      assert.match(text, / --data-dir <dir> the data directory: the file store, the running system's admin address and token \(default: "\.\/\.dnslb"\)/, path);
      assert.match(text, / --store <dir\|etcd:\/\/…> the store: a data directory \(the file store\) or etcd\[s\]:\/\/host:port\[,host:port…\]\[\/prefix\]\[\?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE\] \(etcds: TLS; the password from password-file or DNSLB_ETCD_PASSWORD\) \(default: the file store of --data-dir\)/, path);
    }
  });

  describe('the same meaning wherever they are given', () => {
    let dir: string;
    let dataDir: string;
    const contoso = join(REPO, 'examples/contoso.yaml');
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'dnslb-flags-'));
      dataDir = join(dir, 'data');
      assert.equal((await runDnslb(['topology', 'publish', contoso, '--data-dir', dataDir, '--comment', 'one'])).code, 0);
      const edited = join(dir, 'edited.yaml');
      await cp(contoso, edited);
      await writeFile(edited, (await readFile(edited, 'utf8')).replace('      - { fqdn: fe3.contoso.com, ipv4: 127.0.0.13 }\n', '      - { fqdn: fe3.contoso.com, ipv4: 127.0.0.13 }\n      - { fqdn: fe4.contoso.com, ipv4: 127.0.0.14 }\n'));
      assert.equal((await runDnslb(['topology', 'publish', edited, '--data-dir', dataDir, '--comment', 'two'])).code, 0);
    });
    after(async () => rm(dir, { recursive: true, force: true }));

    test('dns export --zone contoso.com --data-dir DIR exports the published version (fe4 is in it); --store DIR and the program-wide --data-dir alike', async () => {
      const runs = await Promise.all([
        runDnslb(['dns', 'export', '--zone', 'contoso.com', '--data-dir', dataDir]),
        runDnslb(['dns', 'export', '--zone', 'contoso.com', '--store', dataDir]),
        runDnslb(['--data-dir', dataDir, 'dns', 'export', '--zone', 'contoso.com']),
      ]);
      for (const run of runs) assert.equal(run.code, 0, run.stderr);
      assert.match(runs[0]!.stdout, /^fe4 +\d+ IN A +127\.0\.0\.14$/m);
      // The SOA serial follows the clock (one per second): compare the zones without it.
      const zone = (text: string) => text.replace(/\b\d{10}\b/g, 'SERIAL');
      assert.equal(zone(runs[1]!.stdout), zone(runs[0]!.stdout));
      assert.equal(zone(runs[2]!.stdout), zone(runs[0]!.stdout));
    });

    test('a FILE given alone is used alone: dns export FILE does not read the data dir', async () => {
      const run = await runDnslb(['dns', 'export', contoso, '--zone', 'contoso.com', '--data-dir', dataDir]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^fe3 +\d+ IN A +127\.0\.0\.13$/m);
      assert.doesNotMatch(run.stdout, /^fe4 /m);
    });

    test('topology show without FILE shows the published version; --version N an older one', async () => {
      const current = await runDnslb(['topology', 'show', '--data-dir', dataDir]);
      assert.equal(current.code, 0, current.stderr);
      assert.match(current.stdout, new RegExp(`^version 2 in ${dataDir.replaceAll('/', '\\/')}: 5 pools, 13 servers`, 'm'));
      assert.match(current.stdout, /fe4\.contoso\.com/);
      const older = await runDnslb(['topology', 'show', '--version', '1', '--store', dataDir, '--json']);
      assert.equal(older.code, 0, older.stderr);
      const topology = JSON.parse(older.stdout) as { pools: { servers: { fqdn: string }[] }[] };
      assert.ok(!topology.pools.flatMap((pool) => pool.servers.map((server) => server.fqdn)).includes('fe4.contoso.com'));
      const missing = await runDnslb(['topology', 'show', '--version', '9', '--data-dir', dataDir]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /STORE_NOT_FOUND: version 9 does not exist \(the versions are 1 to 2\)/);
      const both = await runDnslb(['topology', 'show', contoso, '--version', '1']);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /CLI_USAGE: topology show: --version reads the store; give it or a FILE, not both/);
      const nowhere = await runDnslb(['topology', 'show', '--data-dir', join(dir, 'none')]);
      assert.equal(nowhere.code, 1);
      assert.match(nowhere.stderr, /STORE_NOT_FOUND: no store in .*none/);
    });

    test('plan without --topology plans on the published version', async () => {
      const run = await runDnslb(['plan', 'fail', 'fe4.contoso.com', '--data-dir', dataDir, '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse(run.stdout) as { pool: string }).pool, 'pool01.contoso.com');
    });

    test('a verb\'s own --data-dir and the program-wide one find the same (absent) running system', async () => {
      const own = await runDnslb(['pool', 'status', '--data-dir', join(dir, 'none')]);
      const global = await runDnslb(['--data-dir', join(dir, 'none'), 'pool', 'status']);
      assert.equal(own.code, 3);
      assert.equal(own.stderr, global.stderr);
      assert.match(own.stderr, /ADMIN_NOT_RUNNING: no running dnslb found in .*none/);
    });
  });
});
