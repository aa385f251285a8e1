// How many users one simulator process can keep signed in: one connection each, under the process's
// open-files limit (/proc/self/limits); and --first-user, which lets several processes share a load.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { filesForUsers, openFilesLimit, Simulator, SIMULATOR_SPARE_FILES, usersWithinFiles } from './simulate.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

describe('openFilesLimit / usersWithinFiles', () => {
  test('reads the soft limit of open files', () => {
    assert.equal(openFilesLimit(LIMITS), 20_000);
    assert.equal(openFilesLimit(LIMITS.replace('Max open files            20000', 'Max open files            1024 ')), 1024);
    assert.equal(openFilesLimit(LIMITS.replace(/Max open files.*\n/, 'Max open files            unlimited            unlimited            files\n')), Number.POSITIVE_INFINITY);
  });

  test('no limit line, or no /proc: unknown (null), and no bound on users', () => {
    assert.equal(openFilesLimit('Limit Soft Hard\n'), null);
    assert.equal(openFilesLimit(LIMITS.replace(/Max open files.*\n/, 'Max open files            many                 many                 files\n')), null);
    assert.equal(usersWithinFiles(null), null);
    assert.equal(usersWithinFiles(Number.POSITIVE_INFINITY), null);
  });

  test('this process: a whole number of files on Linux', () => {
    const limit = openFilesLimit();
    if (process.platform === 'linux') assert.ok(limit !== null && limit > 0);
  });

  test('20,000 files keep fewer than 20,000 users: the spare files are kept for the process itself, and two per DNS resolver of 250 users', () => {
    assert.equal(usersWithinFiles(20_000), 19_586); // 19,586 + 256 spare + 2 × ⌈19,586 / 250⌉ = 20,000
    for (const limit of [300, 1024, 20_000, 65_536]) {
      const users = usersWithinFiles(limit)!;
      assert.ok(filesForUsers(users) <= limit && filesForUsers(users + 1) > limit, `${limit} files: ${users} users`);
    }
    assert.equal(filesForUsers(150), 150 + SIMULATOR_SPARE_FILES + 2);
    // An idle simulator already holds 19 files (stdio, epoll, eventfds, pipes): 20,000 users never fit in 20,000.
    assert.ok(usersWithinFiles(20_000)! < 20_000 - 19);
    assert.equal(usersWithinFiles(100), 0);
  });
});

describe('Simulator firstUser', () => {
  const locator = { discover: () => Promise.reject(new Error('no sign-in in this test')), forget: () => {}, resolveHost: async () => [] };

  test('the users are numbered from firstUser, the domains dealt by that number', async () => {
    // A fake clock that never advances: the users are made, none starts signing in.
    const simulator = new Simulator({ domain: ['a.test', 'b.test'], dnsServers: [], users: 3, firstUser: 10_001, locatorFor: () => locator, clock: new FakeClock() });
    simulator.start();
    assert.deepEqual(
      simulator.report().users.map((user) => user.aor),
      ['sip:user10001@a.test', 'sip:user10002@b.test', 'sip:user10003@a.test'],
    );
    await simulator.stop();
  });

  test('from 1 by default; a first user below 1 is refused', async () => {
    const simulator = new Simulator({ domain: 'a.test', dnsServers: [], users: 2, locatorFor: () => locator, clock: new FakeClock() });
    simulator.start();
    assert.deepEqual(simulator.report().users.map((user) => user.aor), ['sip:user1@a.test', 'sip:user2@a.test']);
    await simulator.stop();
    assert.throws(() => new Simulator({ domain: 'a.test', dnsServers: [], users: 1, firstUser: 0, locatorFor: () => locator }), /firstUser/);
  });
});
