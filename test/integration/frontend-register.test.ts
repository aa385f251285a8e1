// 1,000 users REGISTER over TCP through sipp to a real 3-server pool (`dnslb server` processes on
// 127.0.6.1-3): each user lands at its home server (the first of its registrar sequence), and those
// who first hit another server were redirected (301) there. Then the same over TLS with a test CA.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeOf } from '../../src/registrar/sequence.ts';
import { connect } from 'node:net';
import { freePortPair, startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';
import { registerFollowingRedirect, runSipp, writeUsers } from '../helpers/sipp-scenarios.ts';

const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const ALL = new Set(SERVERS);

async function registeredEverywhere(pool: RunningPool): Promise<Map<string, { server: string; mode: string }[]>> {
  const where = new Map<string, { server: string; mode: string }[]>();
  for (let index = 0; index < pool.servers.length; index++) {
    for (const entry of await pool.users(index)) {
      where.set(entry.user, [...(where.get(entry.user) ?? []), { server: pool.servers[index]!.fqdn, mode: entry.mode }]);
    }
  }
  return where;
}

describe('REGISTER through sipp over TCP: 1,000 users, 3 servers', () => {
  let pool: RunningPool;
  let dir = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-fe-reg-'));
    pool = await startPool({ addresses: ['127.0.6.1', '127.0.6.2', '127.0.6.3'] });
  });
  after(async () => {
    await pool?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every user ends registered at its home server, in primary mode; the others were redirected first', async () => {
    const names = Array.from({ length: 1000 }, (_, index) => `user${index}`);
    const users = writeUsers(dir, names);
    writeFileSync(join(dir, 'register.xml'), registerFollowingRedirect());
    // Every user starts at fe1 (a legacy client tries the first address only).
    const result = await runSipp(dir, ['-sf', 'register.xml', '-inf', users, '-t', 'tn', '-i', '127.0.6.100', '-p', '0', '-m', String(names.length), '-r', '500', '-l', '200', '-max_socket', '4000', '-timeout', '60s', `${pool.servers[0]!.address}:${pool.tcpPort}`]);
    assert.equal(result.code, 0, `sipp failed: ${result.stderr}\n${result.errors}`);

    const where = await registeredEverywhere(pool);
    assert.equal(where.size, names.length);
    let homedElsewhere = 0;
    for (const name of names) {
      const user = `sip:${name}@contoso.com`;
      const home = homeOf(user, SERVERS, ALL)!;
      if (home.server !== 'fe1.contoso.com') homedElsewhere++;
      assert.deepEqual(where.get(user), [{ server: home.server, mode: 'primary' }], `${user} should be at ${home.server} only`);
    }
    const statuses = await Promise.all([0, 1, 2].map((index) => pool.status(index)));
    assert.equal(statuses[0]!.registrar.registersRedirected, homedElsewhere, 'fe1 redirected exactly the users homed elsewhere');
    assert.equal(statuses[1]!.registrar.registersRedirected + statuses[2]!.registrar.registersRedirected, 0);
    assert.equal(statuses.reduce((sum, status) => sum + status.registrar.registersAccepted, 0), names.length);
    assert.ok(homedElsewhere > 500 && homedElsewhere < 830, `about 2/3 of the users live elsewhere (${homedElsewhere})`);
    assert.equal(statuses.reduce((sum, status) => sum + status.bindings.bindingsPrimary, 0), names.length);
  });
});

// Debian's sipp is built without OpenSSL: sipp speaks SIP over TCP to a socat tunnel in front of each
// server (on the server's own address), and socat speaks TLS to the server, verifying it with the test CA.
describe('REGISTER through sipp over TLS with the test CA', () => {
  const addresses = ['127.0.6.4', '127.0.6.5', '127.0.6.6'];
  let pool: RunningPool;
  let dir = '';
  let tunnelPort = 0;
  const tunnels: Running[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-fe-tls-'));
    pool = await startPool({ addresses});
    // Each server has its own certificate from the pool CA (mutual TLS between them); socat verifies with it.
    writeFileSync(join(dir, 'ca.pem'), readFileSync(pool.caFile!, 'utf8'));
    tunnelPort = await freePortPair(addresses);
    for (const address of addresses) {
      tunnels.push(start('socat', [`TCP-LISTEN:${tunnelPort},bind=${address},fork,reuseaddr`, `OPENSSL:${address}:${pool.tlsPort},cafile=${join(dir, 'ca.pem')},verify=1`]));
    }
    await waitUntil('tunnels listening', () => Promise.all(addresses.map((address) => new Promise<boolean>((resolve) => {
      const socket = connect({ host: address, port: tunnelPort }, () => { socket.destroy(); resolve(true); });
      socket.on('error', () => resolve(false));
    }))).then((up) => up.every(Boolean)));
  });
  after(async () => {
    await Promise.all(tunnels.map((tunnel) => tunnel.stop()));
    await pool?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('users register over TLS at their homes; the 301 names the TLS port; the pool links are TLS', async () => {
    const names = Array.from({ length: 200 }, (_, index) => `tls${index}`);
    const users = writeUsers(dir, names);
    writeFileSync(join(dir, 'register.xml'), registerFollowingRedirect({ contactPattern: `:${pool.tlsPort};transport=tls;maddr=`, port: tunnelPort }));
    const result = await runSipp(dir, ['-sf', 'register.xml', '-inf', users, '-t', 'tn', '-i', '127.0.6.100', '-p', '0', '-m', String(names.length), '-r', '200', '-l', '50', '-max_socket', '4000', '-timeout', '60s', `${addresses[0]}:${tunnelPort}`]);
    assert.equal(result.code, 0, `sipp failed: ${result.stderr}\n${result.errors}`);
    const where = await registeredEverywhere(pool);
    for (const name of names) {
      const user = `sip:${name}@contoso.com`;
      const home = homeOf(user, SERVERS, ALL)!;
      assert.deepEqual(where.get(user), [{ server: home.server, mode: 'primary' }]);
    }
    const statuses = await Promise.all([0, 1, 2].map((index) => pool.status(index)));
    for (const status of statuses) {
      assert.equal(status.transport.handshakeFailures, 0);
      // Every REGISTER came over TLS: nothing was accepted on the TCP port but the peers' links... which are TLS too.
      assert.equal(status.transport.flowsClosed['framing'] ?? 0, 0);
      assert.ok(Object.values(status.heartbeat.peers).every((peer) => peer.state === 'active'));
    }
    assert.ok(statuses[0]!.registrar.registersRedirected > 0);
  });
});
