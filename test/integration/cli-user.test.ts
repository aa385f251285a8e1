// `dnslb user …` through the real command (node bin/dnslb.js, a child process) on a temp --data-dir and
// on a real etcd (--store etcd://…): add, set-password, disable/enable, remove, list, show, import;
// passwords only from a file (never argv), hashes only in the store.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ha1 } from '../../src/auth/digest.ts';
import { openFileStore } from '../../src/store/file-store.ts';
import { openEtcdStore } from '../../src/store/etcd-store.ts';
import { runDnslb, type CliRun } from '../helpers/cli.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';

const root = new URL('../..', import.meta.url).pathname;
const contoso = join(root, 'examples', 'contoso.yaml');
let work: string;
let etcd: EtcdServer | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dnslb-user-cli-'));
});
after(async () => {
  await etcd?.dispose();
  await rm(work, { recursive: true, force: true });
});

const dnslb = (...args: string[]): Promise<CliRun> => runDnslb(args, { cwd: work });

function ok(run: CliRun): CliRun {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  return run;
}

async function passwordFile(name: string, password: string): Promise<string> {
  const file = join(work, name);
  await writeFile(file, `${password}\n`);
  return file;
}

describe('dnslb user', () => {
  test('add with a password file; show and list never print hashes; the store holds HA1s, not the password', async () => {
    const dataDir = join(work, 'add');
    const secret = await passwordFile('alice.pw', 'Circle of Life');
    const added = ok(await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:Alice@CONTOSO.com', '--password-file', secret, '--md5'));
    assert.match(added.stdout, /added sip:Alice@contoso\.com {2}enabled {2}home - {2}realm contoso\.com {2}SHA-256\+MD5/);

    const store = await openFileStore({ dataDir, mustExist: true });
    try {
      const stored = await store.user('sip:Alice@contoso.com');
      assert.deepEqual(stored?.credential, { realm: 'contoso.com', ha1Sha256: ha1('SHA-256', 'Alice', 'contoso.com', 'Circle of Life'), ha1Md5: ha1('MD5', 'Alice', 'contoso.com', 'Circle of Life') });
    } finally {
      await store.close();
    }
    const files = await readdir(join(dataDir, 'store', 'users'), { recursive: true });
    for (const file of files.filter((name) => name.endsWith('.json'))) {
      assert.ok(!(await readFile(join(dataDir, 'store', 'users', file), 'utf8')).includes('Circle of Life'), 'no password on disk');
    }

    const shown = ok(await dnslb('--data-dir', dataDir, 'user', 'show', 'sip:Alice@contoso.com', '--json'));
    const view = JSON.parse(shown.stdout) as Record<string, unknown>;
    assert.deepEqual([view.uri, view.realm, view.algorithms, view.disabled], ['sip:Alice@contoso.com', 'contoso.com', ['SHA-256', 'MD5'], false]);
    assert.ok(!shown.stdout.includes(ha1('SHA-256', 'Alice', 'contoso.com', 'Circle of Life')), 'show prints no hash');
    const listed = ok(await dnslb('--data-dir', dataDir, 'user', 'list'));
    assert.equal(listed.stdout.trim().split('\n').length, 1);

    const again = await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:Alice@contoso.com', '--password-file', secret);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /STORE_USER_EXISTS: user sip:Alice@contoso\.com already exists/);
  });

  test('no terminal and no --password-file: AUTH_PASSWORD, nothing written; an empty password file is refused; a password argument is a usage error', async () => {
    const dataDir = join(work, 'nopassword');
    const noPassword = await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:bob@contoso.com');
    assert.equal(noPassword.code, 1);
    assert.match(noPassword.stderr, /AUTH_PASSWORD: no terminal to ask for the password: pass --password-file FILE/);
    const empty = join(work, 'empty.pw');
    await writeFile(empty, '\n');
    const emptyRun = await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:bob@contoso.com', '--password-file', empty);
    assert.equal(emptyRun.code, 1);
    assert.match(emptyRun.stderr, /AUTH_PASSWORD: .*empty/);
    const argv = await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:bob@contoso.com', 'hunter2');
    assert.equal(argv.code, 2, 'an extra argument (a password on the command line) is refused');
    const badUri = await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:@contoso.com', '--password-file', empty);
    assert.equal(badUri.code, 2);
    assert.match(badUri.stderr, /CLI_USAGE/);
    const list = await dnslb('--data-dir', dataDir, 'user', 'list');
    assert.equal(list.stdout.trim(), '');
  });

  test('set-password replaces the hashes; disable, enable, remove; unknown users are STORE_UNKNOWN_USER (exit 1)', async () => {
    const dataDir = join(work, 'lifecycle');
    ok(await dnslb('--data-dir', dataDir, 'user', 'add', 'carol@contoso.com', '--password-file', await passwordFile('carol1.pw', 'first')));
    ok(await dnslb('--data-dir', dataDir, 'user', 'set-password', 'sip:carol@contoso.com', '--password-file', await passwordFile('carol2.pw', 'second')));
    assert.match(ok(await dnslb('--data-dir', dataDir, 'user', 'disable', 'sip:carol@contoso.com')).stdout, /disabled sip:carol@contoso\.com {2}disabled/);
    const store = await openFileStore({ dataDir, mustExist: true });
    try {
      const carol = await store.user('sip:carol@contoso.com');
      assert.equal(carol?.credential.ha1Sha256, ha1('SHA-256', 'carol', 'contoso.com', 'second'));
      assert.equal(carol?.disabled, true);
    } finally {
      await store.close();
    }
    assert.match(ok(await dnslb('--data-dir', dataDir, 'user', 'enable', 'sip:carol@contoso.com')).stdout, /enabled sip:carol@contoso\.com {2}enabled/);
    ok(await dnslb('--data-dir', dataDir, 'user', 'remove', 'sip:carol@contoso.com'));
    for (const verb of ['remove', 'disable', 'show']) {
      const missing = await dnslb('--data-dir', dataDir, 'user', verb, 'sip:carol@contoso.com');
      assert.equal(missing.code, 1, verb);
      assert.match(missing.stderr, /STORE_UNKNOWN_USER: no user sip:carol@contoso\.com/, verb);
    }
  });

  test('a home pool must be a frontend pool of the published topology', async () => {
    const dataDir = join(work, 'home');
    const secret = await passwordFile('dave.pw', 'pw');
    const early = await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:dave@contoso.com', '--home-pool', 'pool01.contoso.com', '--password-file', secret);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /STORE_UNKNOWN_POOL: home pool pool01\.contoso\.com: nothing is published yet/);
    ok(await dnslb('--data-dir', dataDir, 'topology', 'publish', contoso));
    const director = await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:dave@contoso.com', '--home-pool', 'dirpool.contoso.com', '--password-file', secret);
    assert.equal(director.code, 1);
    assert.match(director.stderr, /STORE_UNKNOWN_POOL: home pool dirpool\.contoso\.com is a director pool/);
    assert.match(ok(await dnslb('--data-dir', dataDir, 'user', 'add', 'sip:dave@contoso.com', '--home-pool', 'POOL01.contoso.com.', '--password-file', secret)).stdout, /home pool01\.contoso\.com/);
  });

  test('import: passwords or hashes, add then update; a bad line names file:line and writes nothing', async () => {
    const dataDir = join(work, 'import');
    const passwords = join(work, 'users.csv');
    await writeFile(passwords, 'uri,password,disabled\r\nsip:u1@contoso.com,"pa,ss ""1""",\r\nsip:u2@contoso.com,pw2,true\r\n');
    assert.match(ok(await dnslb('--data-dir', dataDir, 'user', 'import', passwords, '--md5')).stdout, /imported 2 users from .*users\.csv: 2 added, 0 updated/);
    const hashes = join(work, 'hashes.csv');
    const h = ha1('SHA-256', 'u2', 'contoso.com', 'new');
    await writeFile(hashes, `ha1-sha256,uri\n${h},sip:u2@contoso.com\n${'0'.repeat(64)},sip:u3@contoso.com\n`);
    assert.match(ok(await dnslb('--data-dir', dataDir, 'user', 'import', hashes)).stdout, /2 users .*: 1 added, 1 updated/);
    const store = await openFileStore({ dataDir, mustExist: true });
    try {
      const users = await store.users();
      assert.deepEqual(users.map((user) => [user.uri, user.disabled, user.credential.ha1Md5 !== undefined]), [
        ['sip:u1@contoso.com', false, true],
        ['sip:u2@contoso.com', false, false],
        ['sip:u3@contoso.com', false, false],
      ]);
      assert.equal(users[0]?.credential.ha1Sha256, ha1('SHA-256', 'u1', 'contoso.com', 'pa,ss "1"'), 'RFC 4180 quoting: commas and doubled quotes');
      assert.equal(users[1]?.credential.ha1Sha256, h);
    } finally {
      await store.close();
    }
    const bad = join(work, 'bad.csv');
    await writeFile(bad, 'uri,password\nsip:u9@contoso.com,x\nsip:u10@contoso.com\n');
    const refused = await dnslb('--data-dir', dataDir, 'user', 'import', bad);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /AUTH_USERS_FILE: .*bad\.csv:3: 1 fields, the header has 2/);
    const list = ok(await dnslb('--data-dir', dataDir, 'user', 'list'));
    assert.ok(!list.stdout.includes('u9@'), 'nothing of a bad file is written');
  });

  test('the same verbs on a real etcd (--store etcd://…)', async () => {
    etcd = await startEtcd();
    const spec = `etcd://${etcd.endpoint}/usercli/`;
    ok(await dnslb('user', 'add', 'sip:erin@contoso.com', '--store', spec, '--password-file', await passwordFile('erin.pw', 'pw')));
    ok(await dnslb('user', 'disable', 'sip:erin@contoso.com', '--store', spec));
    const listed = ok(await dnslb('user', 'list', '--json', '--store', spec));
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ uri: string; disabled: boolean }>).map((user) => [user.uri, user.disabled]), [['sip:erin@contoso.com', true]]);
    const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: '/usercli/' });
    try {
      assert.equal((await store.user('sip:erin@contoso.com'))?.credential.ha1Sha256, ha1('SHA-256', 'erin', 'contoso.com', 'pw'));
    } finally {
      await store.close();
    }
  });
});
