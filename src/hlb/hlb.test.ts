// The HAProxy side without a running HAProxy: the exported configuration (checked by the real
// `haproxy -c`), the runtime API's answers as HAProxy 2.6 prints them, and dnslb → HAProxy admin states.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { parse } from '../topology/parse.ts';
import type { AdminState } from '../store/store.ts';
import { systemClock } from '../shared/clock.ts';
import { openFileStore } from '../store/file-store.ts';
import { desiredStates } from './admin-sync.ts';
import { HlbFollower } from './follower.ts';
import { haproxyConfig, hlbPool } from './haproxy-config.ts';
import { adminStateOfBits, parseServersState, parseStat } from './runtime-api.ts';

const run = promisify(execFile);
const EXAMPLE = new URL('../../examples/contoso.yaml', import.meta.url);

/** `haproxy -c` on the text: exit 0 (valid) or 2 (valid, nothing to listen on) pass; 1 is an error. */
async function haproxyCheck(text: string): Promise<{ code: number; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'dnslb-hlb-'));
  try {
    const file = join(dir, 'haproxy.cfg');
    await writeFile(file, text.replaceAll('/CA/ca.pem', join(dir, 'ca.pem')));
    // A real PEM CA: HAProxy loads ca-file while checking.
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/CN=test CA', '-days', '1']);
    try {
      const { stdout, stderr } = await run('haproxy', ['-c', '-f', file]);
      return { code: 0, output: stdout + stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, output: failed.stdout + failed.stderr };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('haproxyConfig', () => {
  test('the example pool: passes haproxy -c, a frontend per VIP, every server checked over HTTPS on /health', async () => {
    const topology = parse(await readFile(EXAMPLE, 'utf8'), 'contoso.yaml');
    const text = haproxyConfig(topology, 'POOL01.contoso.com.', { socketPath: '/run/dnslb/pool01.sock', caFile: '/CA/ca.pem', topologyVersion: 3 });
    const checked = await haproxyCheck(text);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, /Configuration file is valid/);
    assert.match(text, /^ {4}stats socket \/run\/dnslb\/pool01\.sock mode 600 level admin$/m);
    assert.match(text, /^ {4}mode tcp$/m, 'TLS passes through');
    assert.match(text, /^frontend web-internal\n(?: {4}#.*\n)? {4}bind 127\.0\.0\.21:8443$/m);
    assert.match(text, /^frontend web-external\n(?: {4}#.*\n)? {4}bind 127\.0\.0\.22:4443$/m);
    assert.match(text, /^ {4}server fe2\.contoso\.com 127\.0\.0\.12:4443 check check-ssl check-sni fe2\.contoso\.com verify required ca-file \/CA\/ca\.pem verifyhost fe2\.contoso\.com$/m);
    assert.equal(text.match(/^ {4}server /gm)?.length, 6);
    assert.match(text, /http-check send meth GET uri \/health ver HTTP\/1\.1 hdr Host webint\.contoso\.com/);
  });

  test('under dnslb up with a relative data dir (npm start\'s ./.dnslb): absolute socket and CA paths, checked by haproxy -c first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dnslb-hlb-relative-'));
    const cwd = process.cwd();
    process.chdir(dir);
    const store = await openFileStore({ dataDir: 'data' });
    try {
      await mkdir(join('data', 'tls'), { recursive: true });
      await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join('data', 'tls', 'ca.key'), '-out', join('data', 'tls', 'ca.pem'), '-subj', '/CN=test CA', '-days', '1']);
      const version = await store.publish(parse(await readFile(EXAMPLE, 'utf8'), 'contoso.yaml'), 0, { by: 'test', comment: 'test' });
      const children = await new HlbFollower({ store, dataDir: 'data', clock: systemClock }).prepare(version);
      assert.deepEqual(children.map((child) => child.name), ['hlb:pool01.contoso.com', 'hlb:pool02.contoso.com', 'hlb:dirpool.contoso.com']);
      const config = await readFile(join('data', 'hlb', 'pool01.contoso.com.cfg'), 'utf8');
      // HAProxy reads "data/hlb/….sock" as an address without a port, and refuses the file.
      assert.match(config, new RegExp(`^ {4}stats socket ${resolve(dir, 'data', 'hlb')}/pool01\\.contoso\\.com\\.sock `, 'm'));
      assert.match(config, new RegExp(`ca-file ${resolve(dir, 'data', 'tls', 'ca.pem')} `));
      assert.deepEqual(children[0]!.args.slice(-2), ['-f', resolve(dir, 'data', 'hlb', 'pool01.contoso.com.cfg')]);
      // Without the CA the check fails, naming the file and HAProxy's reason, before anything starts.
      await rm(join('data', 'tls', 'ca.pem'));
      await assert.rejects(new HlbFollower({ store, dataDir: 'data', clock: systemClock }).prepare(version), { code: 'HLB_CONFIG', message: /^haproxy -c refused \/.*pool01\.contoso\.com\.cfg: .*ca-file/s });
    } finally {
      await store.close();
      process.chdir(cwd);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('IPv6 VIPs and servers, other ports, one side only: still valid', async () => {
    const text = (await readFile(EXAMPLE, 'utf8'))
      .replace('- { fqdn: fe1.contoso.com, ipv4: 127.0.0.11 }', '- { fqdn: fe1.contoso.com, ipv6: "fd00::11" }')
      .replace(/internal: \{ fqdn: webint\.contoso\.com, .*\}/, 'internal: { fqdn: webint.contoso.com, vip: { ipv4: 127.0.0.21, ipv6: "fd00::21" }, port: 8443, serverPort: 9443 }')
      .replace(/\n *external: \{ fqdn: webext\.contoso\.com.*\n/, '\n');
    const config = haproxyConfig(parse(text, 'v6.yaml'), 'pool01.contoso.com', { socketPath: '/tmp/x.sock', caFile: '/CA/ca.pem' });
    assert.match(config, /bind ipv6@fd00::21:8443/);
    assert.match(config, /server fe1\.contoso\.com ipv6@fd00::11:9443 /);
    assert.doesNotMatch(config, /web-external/);
    const checked = await haproxyCheck(config);
    assert.equal(checked.code, 0, checked.output);
  });

  test('a pool that is not there, or has no Web services, is HLB_CONFIG naming it', async () => {
    const topology = parse(await readFile(EXAMPLE, 'utf8'), 'contoso.yaml');
    assert.throws(() => hlbPool(topology, 'nopool.contoso.com'), { code: 'HLB_CONFIG', message: /no pool nopool\.contoso\.com in the topology; pools: pool01\.contoso\.com/ });
    assert.throws(() => hlbPool(topology, 'medpool.contoso.com'), { code: 'HLB_CONFIG', message: /medpool\.contoso\.com has no Web services VIP/ });
  });
});

describe('the runtime API as HAProxy 2.6 answers it', () => {
  // Captured from `show servers state web-internal` after `set server …/fe1 state drain` and `…/fe2 state maint`.
  const SERVERS_STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 web-internal 1 fe1.contoso.com 127.0.0.11 2 8 1 1 0 8 2 0 6 0 0 0 - 443 - 0 0 - - 0
3 web-internal 2 fe2.contoso.com 127.0.0.12 0 1 1 1 1 8 2 0 14 0 0 0 - 443 - 0 0 - - 0
3 web-internal 3 fe3.contoso.com 127.0.0.13 2 0 1 1 1 8 2 0 6 0 0 0 - 443 - 0 0 - - 0

`;
  test('show servers state: admin state from the bits, operational state by name', () => {
    assert.deepEqual(
      parseServersState(SERVERS_STATE).map((row) => [row.backend, row.server, row.operational, row.admin]),
      [
        ['web-internal', 'fe1.contoso.com', 'up', 'drain'],
        ['web-internal', 'fe2.contoso.com', 'down', 'maint'],
        ['web-internal', 'fe3.contoso.com', 'up', 'ready'],
      ],
    );
    assert.equal(adminStateOfBits(0x01 | 0x08), 'maint', 'maintenance wins over drain');
    assert.equal(adminStateOfBits(0x10), 'drain', 'inherited drain');
    assert.throws(() => parseServersState('Unknown command.\n'), { code: 'HLB_RUNTIME' });
  });
  test('show stat: server rows only, with status, sessions and check', () => {
    const text = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code
web-internal,FRONTEND,,,0,2,9982,12,,,,,,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,2,,
web-internal,fe1.contoso.com,0,0,1,1,,7,,,,,,,,,,DRAIN,1,1,0,0,0,5,0,,1,2,1,,7,,2,0,,1,L7OK,200
web-internal,fe2.contoso.com,0,0,0,1,,5,,,,,,,,,,DOWN,1,1,0,2,1,3,3,,1,2,2,,5,,2,0,,1,* L4CON,
web-internal,BACKEND,0,0,1,2,999,12,,,,,,,,,,UP,2,2,0,,0,9,0,,1,2,0,,12,,1,0,,2,,
`;
    assert.deepEqual(parseStat(text), [
      { backend: 'web-internal', server: 'fe1.contoso.com', status: 'DRAIN', sessionsCurrent: 1, sessionsTotal: 7, checkStatus: 'L7OK' },
      { backend: 'web-internal', server: 'fe2.contoso.com', status: 'DOWN', sessionsCurrent: 0, sessionsTotal: 5, checkStatus: 'L4CON' },
    ]);
  });
});

describe('desiredStates: dnslb admin state → HAProxy admin state', () => {
  test('the table', async () => {
    const topology = parse(await readFile(EXAMPLE, 'utf8'), 'contoso.yaml');
    const pool = topology.pools[0]!;
    const withoutFe3 = { ...pool, servers: pool.servers.filter((server) => server.fqdn !== 'fe3.contoso.com') };
    const rows: [string, AdminState | undefined, boolean, string][] = [
      ['no admin state', undefined, true, 'ready'],
      ['active', 'active', true, 'ready'],
      ['draining', 'draining', true, 'drain'],
      ['blocked', 'blocked', true, 'maint'],
      ['decommissioned (not in the published pool)', undefined, false, 'drain'],
      ['decommissioned and blocked', 'blocked', false, 'maint'],
    ];
    for (const [what, admin, inPool, expected] of rows) {
      const states = new Map<string, AdminState>(admin ? [['fe3.contoso.com', admin]] : []);
      const desired = desiredStates(['fe1.contoso.com', 'fe3.contoso.com'], inPool ? pool : withoutFe3, states);
      assert.equal(desired.get('fe3.contoso.com'), expected, what);
      assert.equal(desired.get('fe1.contoso.com'), 'ready', `${what}: the others stay ready`);
    }
  });
});
