// `dnslb completion bash|zsh` sourced by the real shells, completing a few command lines; `dnslb --version`
// naming the version and the native UDP engine's state.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { formatVersion } from '../../src/cli/version.ts';
import { runDnslb } from '../helpers/cli.ts';
import { REPO } from '../helpers/dns-process.ts';

const run = promisify(execFile);

/** Lines "WORD WORD …" → what the completion function puts in COMPREPLY, one line per command line. */
const BASH_DRIVER = `source "$1"
while IFS= read -r line; do
  read -r -a COMP_WORDS <<<"$line"
  [[ "$line" == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
  _dnslb
  echo "\${COMPREPLY[*]}"
done <"$2"`;

// zsh calls bash completion functions the way bashcompinit's _bash_complete does: in sh emulation.
const ZSH_DRIVER = `source "$1"
complete_line() {
  emulate -L sh
  setopt kshglob noshglob braceexpand
  COMP_WORDS=(\${=1})
  [[ "$1" == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
  _dnslb
  echo "\${COMPREPLY[*]}"
}
while IFS= read -r line; do complete_line "$line"; done <"$2"`;

describe('dnslb completion', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dnslb-completion-'));
    await mkdir(join(dir, 'data-one'));
    await writeFile(join(dir, 'data-file'), '');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function complete(shell: 'bash' | 'zsh', lines: string[]): Promise<string[][]> {
    const script = await runDnslb(['completion', shell]);
    assert.equal(script.code, 0, script.stderr);
    await writeFile(join(dir, `completion.${shell}`), script.stdout);
    await writeFile(join(dir, 'lines'), `${lines.join('\n')}\n`);
    await writeFile(join(dir, `driver.${shell}`), shell === 'bash' ? BASH_DRIVER : ZSH_DRIVER);
    const { stdout } = await run(shell, [join(dir, `driver.${shell}`), join(dir, `completion.${shell}`), join(dir, 'lines')], { cwd: dir });
    return stdout.split('\n').slice(0, lines.length).map((line) => line.split(' ').filter(Boolean));
  }

  const CASES: [string, string[]][] = [
    ['dnslb ', ['topology', 'dns', 'plan', 'client', 'server', 'node', 'up', 'pool', 'hlb', 'user', 'certs', 'completion']],
    ['dnslb dns ', ['serve', 'push', 'export']],
    ['dnslb dns export --', ['--zone', '--view', '--data-dir', '--store', '--help']],
    ['dnslb --data-dir /tmp dns e', ['export']],
    ['dnslb server dr', ['drain']],
    ['dnslb node dr', ['drain']],
    ['dnslb topology show --version 2 --st', ['--store']],
    ['dnslb server drain fe1.contoso.com --f', ['--force']],
    ['dnslb user mo', ['move']],
    ['dnslb client simulate --password-s', ['--password-seed-file']],
    ['dnslb client simulate --pstn', ['--pstn-share', '--pstn-numbers']],
    ['dnslb client simulate --peer', ['--peers', '--peer-domain', '--peer-address', '--peer-messages-per-minute', '--peer-cert', '--peer-key']],
    ['dnslb client register --password', ['--password-file', '--passwords']],
    ['dnslb client register --local', ['--local-address']],
    ['dnslb client register --cal', ['--call']],
    ['dnslb client simulate --local', ['--local-address']],
    ['dnslb client simulate --fir', ['--first-user']],
    ['dnslb user import --syn', ['--synthetic']],
    ['dnslb up topology.yaml --st', ['--store']],
    ['dnslb certs ', ['issue']],
    ['dnslb certs issue --se', ['--server']],
  ];

  test('bash: verbs, aliases, options (after options with values), directories and files', async () => {
    const lines = [...CASES.map(([line]) => line), 'dnslb dns export --store data-', 'dnslb up data-'];
    const results = await complete('bash', lines);
    CASES.forEach(([line, expected], index) => assert.deepEqual(results[index], expected, line));
    assert.deepEqual(results[CASES.length], ['data-one'], '--store completes directories only');
    assert.deepEqual(results[CASES.length + 1]?.sort(), ['data-file', 'data-one'], 'up FILE completes files');
  });

  test('zsh (bashcompinit): the same verbs and options, zsh matching the typed prefix itself', async () => {
    const results = await complete('zsh', CASES.map(([line]) => line));
    CASES.forEach(([line, expected], index) => {
      // zsh's compgen returns every candidate and lets the completion system match the prefix.
      const typed = line.endsWith(' ') ? '' : line.split(' ').at(-1)!;
      assert.deepEqual(results[index]?.filter((word) => word.startsWith(typed)), expected, line);
    });
  });

  test('an unknown shell is a usage error', async () => {
    const result = await runDnslb(['completion', 'fish']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /CLI_USAGE: completion fish: bash or zsh/);
  });
});

describe('dnslb --version', () => {
  test('prints the package version, whether the native UDP engine loads, and node\'s version', async () => {
    const manifest = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const result = await runDnslb(['--version']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `dnslb ${manifest.version}`);
    // The build of this checkout decides which line it is.
    if (existsSync(join(REPO, 'build/Release/udp_batch.node'))) assert.match(lines[1]!, /^native UDP engine: loaded \(native\/udp-batch/);
    else assert.match(lines[1]!, /^native UDP engine: not loaded: native\/udp-batch is not built/);
    assert.equal(lines[2], `node ${process.version}`);
    assert.deepEqual((await runDnslb(['-V'])).stdout, result.stdout);
  });

  test('both states read as a person needs them', () => {
    assert.equal(formatVersion('1.2.3', { preferred: 'batch' }, 'v20.1.0'), 'dnslb 1.2.3\nnative UDP engine: loaded (native/udp-batch, recvmmsg/sendmmsg); dns serve answers UDP in batches\nnode v20.1.0');
    assert.equal(
      formatVersion('1.2.3', { preferred: 'dgram', batchProblem: 'native/udp-batch is not built (Cannot find module); run `npm rebuild` with a C compiler' }, 'v20.1.0').split('\n')[1],
      'native UDP engine: not loaded: native/udp-batch is not built (Cannot find module); run `npm rebuild` with a C compiler; dns serve answers UDP through node:dgram, at about half the speed',
    );
  });
});
