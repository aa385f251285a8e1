// scripts/ensure-system-packages.sh run for real by bash, against stub `apt-get`, `id` and `pkill` on a PATH
// of their own and a policy-rc.d in a temporary folder: it never touches the machine's packages or policy.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

const SCRIPT = fileURLToPath(new URL('../../scripts/ensure-system-packages.sh', import.meta.url));
const REAL_POLICY = '/usr/sbin/policy-rc.d';

/** The script's own list, "command package" per line, so that the test follows it. */
async function wanted(): Promise<{ command: string; pkg: string }[]> {
  const text = await readFile(SCRIPT, 'utf8');
  const block = /WANTED=\(\n([\s\S]*?)\n\)/.exec(text);
  assert.ok(block, 'the WANTED list in the script');
  return [...block[1]!.matchAll(/^\s*"(\S+) (\S+)"$/gm)].map((match) => ({ command: match[1]!, pkg: match[2]! }));
}

const fingerprint = async (path: string) => {
  try {
    const info = await stat(path);
    return `${info.mtimeMs} ${info.size} ${await readFile(path, 'utf8')}`;
  } catch {
    return 'absent';
  }
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** One line per stub call, in order: `apt-get ARGS | policy=…`, `pkill ARGS`. */
  calls: string[];
  policy: string;
}

interface Case {
  /** Commands of the list that are absent. */
  absent: string[];
  uid: number;
  /** Content of policy-rc.d before the run, or absent. */
  policyBefore?: string;
  /** Exit code of every `apt-get install`. */
  installExit?: number;
}

describe('scripts/ensure-system-packages.sh', () => {
  const roots: string[] = [];
  const realPolicyBefore = fingerprint(REAL_POLICY);
  after(async () => {
    for (const root of roots) await rm(root, { recursive: true, force: true });
    assert.equal(await fingerprint(REAL_POLICY), await realPolicyBefore, 'the real policy-rc.d is untouched');
  });

  async function run(options: Case): Promise<Run> {
    const root = await mkdtemp(join(tmpdir(), 'dnslb-ensure-'));
    roots.push(root);
    const bin = join(root, 'bin');
    const policy = join(root, 'usr', 'sbin', 'policy-rc.d');
    const calls = join(root, 'calls');
    await mkdir(bin);
    await mkdir(join(root, 'usr', 'sbin'), { recursive: true });
    await writeFile(calls, '');
    const stub = async (name: string, body: string) => {
      await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`);
      await chmod(join(bin, name), 0o755);
    };
    for (const { command } of await wanted()) {
      if (options.absent.includes(command)) continue;
      // "lib/PATH": a file under a library folder (DNSLB_LIB_DIRS below), not a command.
      if (command.startsWith('lib/')) {
        await mkdir(dirname(join(root, command)), { recursive: true });
        await writeFile(join(root, command), '');
      } else await stub(command, 'exit 0');
    }
    // What the script itself needs from outside bash.
    for (const tool of ['chmod', 'rm', 'tail']) await symlink(`/usr/bin/${tool}`, join(bin, tool));
    await stub('id', `case "$1" in -u) echo ${options.uid} ;; -un) echo ${options.uid === 0 ? 'root' : 'newcomer'} ;; *) exit 2 ;; esac`);
    await stub(
      'apt-get',
      [
        `if [ -x "${policy}" ]; then state="x:$(/usr/bin/tr '\\n' ' ' <"${policy}")"; elif [ -e "${policy}" ]; then state=present; else state=absent; fi`,
        `echo "apt-get $* | policy=$state" >>"${calls}"`,
        `echo "apt-get says: $*"`,
        `[ "$1" = install ] && exit ${options.installExit ?? 0}`,
        'exit 0',
      ].join('\n'),
    );
    await stub('pkill', `echo "pkill $*" >>"${calls}"`);
    if (options.policyBefore !== undefined) await writeFile(policy, options.policyBefore, { mode: 0o755 });
    const env = { PATH: bin, DNSLB_SBIN_DIRS: '', DNSLB_LIB_DIRS: join(root, 'lib'), DNSLB_POLICY_RC_D: policy, TMPDIR: root, HOME: root };
    const result = await new Promise<Omit<Run, 'calls' | 'policy'>>((resolve, reject) => {
      execFile('/bin/bash', [SCRIPT], { env, timeout: 30_000 }, (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      });
    });
    let policyAfter = 'absent';
    try {
      policyAfter = await readFile(policy, 'utf8');
    } catch {
      // removed, or never made
    }
    return { ...result, calls: (await readFile(calls, 'utf8')).split('\n').filter(Boolean), policy: policyAfter };
  }

  const install = 'apt-get install -y --no-install-recommends knot-dnsutils sip-tester';

  test('all present: nothing is installed and it exits 0', async () => {
    const result = await run({ absent: [], uid: 1000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'ensure-system-packages: all present');
    assert.deepEqual(result.calls, []);
    assert.equal(result.policy, 'absent');
  });

  test('missing, as root, no policy-rc.d: installs with daemons held back by a policy-rc.d it then removes', async () => {
    const result = await run({ absent: ['kdig', 'sipp'], uid: 0 });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /installing missing Debian packages: knot-dnsutils sip-tester\n/);
    assert.match(result.stdout, /ensure-system-packages: installed knot-dnsutils sip-tester\n$/);
    assert.deepEqual(result.calls[0], `${install} | policy=x:#!/bin/sh exit 101 `);
    assert.deepEqual(result.calls.slice(1), ['pkill -x named', 'pkill -x knotd', 'pkill -x nsd', 'pkill -x kamailio', 'pkill -x etcd', 'pkill -x haproxy']);
    assert.equal(result.policy, 'absent', 'the policy-rc.d it made is gone');
  });

  test('a package without a command (Kamailio\'s TLS module) is found by its file, and installed when the file is missing', async () => {
    const present = await run({ absent: [], uid: 0 });
    assert.deepEqual(present.calls, [], 'the module file is there: nothing to install');
    const result = await run({ absent: ['lib/kamailio/modules/tls.so'], uid: 0 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.calls[0]?.split(' | ')[0], 'apt-get install -y --no-install-recommends kamailio-tls-modules');
  });

  test('regression: missing, as root, with a policy-rc.d already there: exits 0 and leaves that policy as it was', async () => {
    const own = '#!/bin/sh\n# the image\'s own\nexit 101\n';
    const result = await run({ absent: ['kdig', 'sipp'], uid: 0, policyBefore: own });
    assert.equal(result.code, 0, `exit ${result.code}: ${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /ensure-system-packages: installed knot-dnsutils sip-tester\n$/);
    assert.equal(result.calls[0], `${install} | policy=x:${own.replaceAll('\n', ' ')}`);
    assert.equal(result.policy, own);
  });

  test('missing, not root: names the user and the packages, installs nothing, exits 1', async () => {
    const result = await run({ absent: ['kdig', 'sipp'], uid: 1000 });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot install as newcomer; run as root or install: apt-get install knot-dnsutils sip-tester/);
    assert.deepEqual(result.calls, []);
    assert.equal(result.policy, 'absent');
  });

  test('apt-get failing twice (with an update between): exits 1 with the log, removes its policy-rc.d', async () => {
    const result = await run({ absent: ['kdig', 'sipp'], uid: 0, installExit: 100 });
    assert.equal(result.code, 1);
    assert.deepEqual(result.calls.map((call) => call.split(' | ')[0]), [install, 'apt-get update', install]);
    assert.match(result.stderr, /apt-get install failed for: knot-dnsutils sip-tester \(log: \/\S+\/dnslb-apt\.log\)/);
    assert.match(result.stderr, /apt-get says: install -y/, 'the end of the log is shown');
    assert.equal(result.policy, 'absent');
  });
});
