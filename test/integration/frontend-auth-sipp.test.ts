// sipp REGISTERs with digest (its own [authentication]) to real 3-server pools with settings.auth on
// (127.0.40.111-116): 1,000 users over TCP and 1,000 over TLS through the socat tunnel, every one at its
// home; the nonce fe1 issued is answered again at the home after fe1's 301. Wrong passwords and
// unknown users get 401 again and never a binding. sipp 3.6 answers MD5 only, so these pools allow
// MD5, listed first (settings.auth.algorithms), and the users have MD5 hashes too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialFor } from '../../src/auth/user-credential.ts';
import { homeOf } from '../../src/registrar/sequence.ts';
import type { FileStore } from '../../src/store/file-store.ts';
import { freePortPair, startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';
import { registerWithDigest, REGISTER_REFUSED, runSipp, writeUsersWithPasswords } from '../helpers/sipp-scenarios.ts';

const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const ALL = new Set(SERVERS);
const SIPP_ADDRESS = '127.0.40.200';
const AUTH_SETTINGS = '  auth: { enabled: true, algorithms: [MD5, SHA-256] }';

const passwordOf = (name: string): string => `pw-${name}-${name.length * 7}`;

async function addUsers(store: FileStore, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const uri = `sip:${name}@contoso.com`;
    await store.addUser({ uri, disabled: false, credential: credentialFor(uri, passwordOf(name), { md5: true }) }, { by: 'test' });
  }
}

async function registeredEverywhere(pool: RunningPool): Promise<Map<string, { server: string; mode: string }[]>> {
  const where = new Map<string, { server: string; mode: string }[]>();
  for (let index = 0; index < pool.servers.length; index++) {
    for (const entry of await pool.users(index)) where.set(entry.user, [...(where.get(entry.user) ?? []), { server: pool.servers[index]!.fqdn, mode: entry.mode }]);
  }
  return where;
}

/** Every user at its home only, in primary mode. */
function assertAllAtHome(where: Map<string, { server: string; mode: string }[]>, names: readonly string[]): void {
  for (const name of names) {
    const user = `sip:${name}@contoso.com`;
    assert.deepEqual(where.get(user), [{ server: homeOf(user, SERVERS, ALL)!.server, mode: 'primary' }], `${user} should be at its home only`);
  }
}

describe('sipp REGISTER with digest over TCP: 1,000 users, 3 servers', () => {
  let pool: RunningPool;
  let dir = '';
  const names = Array.from({ length: 1000 }, (_, index) => `user${index}`);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-fe-auth-sipp-'));
    pool = await startPool({ addresses: ['127.0.40.111', '127.0.40.112', '127.0.40.113'], store: true, settingsYaml: AUTH_SETTINGS });
    await addUsers(pool.store!, [...names, 'victim0', 'victim1', 'victim2']);
    await pool.directoryHeld(names.length + 3);
  });
  after(async () => {
    await pool?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every user answers the 401 and ends registered at its home; those redirected reused fe1\'s nonce there', async () => {
    const users = writeUsersWithPasswords(dir, names.map((name) => [name, passwordOf(name)]));
    writeFileSync(join(dir, 'register.xml'), registerWithDigest());
    const result = await runSipp(dir, ['-sf', 'register.xml', '-inf', users, '-t', 'tn', '-i', SIPP_ADDRESS, '-p', '0', '-m', String(names.length), '-r', '500', '-l', '200', '-max_socket', '4000', '-timeout', '90s', `${pool.servers[0]!.address}:${pool.tcpPort}`], { timeoutMs: 120_000 });
    assert.equal(result.code, 0, `sipp failed: ${result.stderr}\n${result.errors}\n${result.stdout.slice(-1500)}`);
    assertAllAtHome(await registeredEverywhere(pool), names);
    const statuses = await Promise.all([0, 1, 2].map((index) => pool.status(index)));
    const redirected = statuses[0]!.registrar.registersRedirected;
    assert.ok(redirected > 500, `about 2/3 were redirected (${redirected})`);
    // fe1 proved every password once; each home proved again those fe1 sent there, with fe1's nonce (no new 401 in the scenario).
    const authenticated = statuses.reduce((sum, status) => sum + status.auth!.counters.authenticated, 0);
    assert.equal(authenticated, names.length + redirected);
    assert.equal(statuses[1]!.auth!.counters.challenged + statuses[2]!.auth!.counters.challenged, 0, 'the homes never challenged: fe1\'s nonce was good there');
    assert.equal(statuses.reduce((sum, status) => sum + status.auth!.counters.failed, 0), 0);
  });

  test('wrong passwords and unknown users: 401 again, never a binding', async () => {
    const refused: [string, string][] = [
      ['victim0', 'guess'],
      ['victim1', 'guess'],
      ['victim2', passwordOf('victim0')],
      ['nobody0', 'guess'],
      ['nobody1', 'guess'],
    ];
    const users = writeUsersWithPasswords(dir, refused, 'refused.csv');
    writeFileSync(join(dir, 'refused.xml'), REGISTER_REFUSED);
    // All to fe1: authentication comes before the redirect, so a wrong password never learns where the user lives.
    const result = await runSipp(dir, ['-sf', 'refused.xml', '-inf', users, '-t', 'tn', '-i', SIPP_ADDRESS, '-p', '0', '-m', String(refused.length), '-r', '50', '-max_socket', '100', '-timeout', '60s', `${pool.servers[0]!.address}:${pool.tcpPort}`]);
    assert.equal(result.code, 0, `sipp failed (an answer other than 401): ${result.stderr}\n${result.errors}`);
    const where = await registeredEverywhere(pool);
    for (const [name] of refused) assert.equal(where.has(`sip:${name}@contoso.com`), false, `${name} has no binding`);
    const status = await pool.status(0);
    assert.equal(status.auth!.counters.failed, refused.length, 'unknown users are counted as failures like wrong passwords');
  });
});

// Debian's sipp is built without OpenSSL: sipp speaks SIP over TCP to a socat tunnel in front of each
// server (on the server's own address), and socat speaks TLS to the server, verifying it with the test CA.
describe('sipp REGISTER with digest over TLS (socat tunnel): 1,000 users, 3 servers', () => {
  const addresses = ['127.0.40.114', '127.0.40.115', '127.0.40.116'];
  const names = Array.from({ length: 1000 }, (_, index) => `tls${index}`);
  let pool: RunningPool;
  let dir = '';
  let tunnelPort = 0;
  const tunnels: Running[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-fe-auth-tls-'));
    pool = await startPool({ addresses, store: true, settingsYaml: AUTH_SETTINGS});
    // Each server has its own certificate from the pool CA (mutual TLS between them); socat verifies with it.
    writeFileSync(join(dir, 'ca.pem'), readFileSync(pool.caFile!, 'utf8'));
    await addUsers(pool.store!, names);
    await pool.directoryHeld(names.length);
    tunnelPort = await freePortPair(addresses);
    for (const address of addresses) {
      tunnels.push(start('socat', [`TCP-LISTEN:${tunnelPort},bind=${address},fork,reuseaddr`, `OPENSSL:${address}:${pool.tlsPort},cafile=${join(dir, 'ca.pem')},verify=1`]));
    }
    await waitUntil('tunnels listening', () =>
      Promise.all(
        addresses.map(
          (address) =>
            new Promise<boolean>((resolve) => {
              const socket = connect({ host: address, port: tunnelPort }, () => {
                socket.destroy();
                resolve(true);
              });
              socket.on('error', () => resolve(false));
            }),
        ),
      ).then((up) => up.every(Boolean)),
    );
  });
  after(async () => {
    await Promise.all(tunnels.map((tunnel) => tunnel.stop()));
    await pool?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every user answers the 401 over TLS and ends registered at its home', async () => {
    const users = writeUsersWithPasswords(dir, names.map((name) => [name, passwordOf(name)]));
    writeFileSync(join(dir, 'register.xml'), registerWithDigest({ contactPattern: `:${pool.tlsPort};transport=tls;maddr=`, port: tunnelPort }));
    const result = await runSipp(dir, ['-sf', 'register.xml', '-inf', users, '-t', 'tn', '-i', SIPP_ADDRESS, '-p', '0', '-m', String(names.length), '-r', '200', '-l', '100', '-max_socket', '4000', '-timeout', '90s', `${addresses[0]}:${tunnelPort}`], { timeoutMs: 150_000 });
    assert.equal(result.code, 0, `sipp failed: ${result.stderr}\n${result.errors}\n${result.stdout.slice(-1500)}`);
    assertAllAtHome(await registeredEverywhere(pool), names);
    const statuses = await Promise.all([0, 1, 2].map((index) => pool.status(index)));
    assert.equal(statuses.reduce((sum, status) => sum + status.auth!.counters.authenticated, 0), names.length + statuses[0]!.registrar.registersRedirected);
    for (const status of statuses) assert.equal(status.transport.handshakeFailures, 0);
  });
});
