// `dnslb up` that cannot start (127.0.41.x): a busy admin port, a server's SIP port or the DNS port held by
// another process. Each run ends with exit 3 and an error naming the busy address and the process holding
// it (this test process, found through ss), and leaves nothing running behind.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runDnslb } from '../helpers/cli.ts';
import { freePort } from '../helpers/free-port.ts';
import { exampleTopology, tcpBetweenServers } from '../helpers/up.ts';

const NET = '127.0.41';
const holder = `node \\(pid ${process.pid}\\)`;

async function holdTcp(host: string, port: number): Promise<net.Server> {
  const server = net.createServer();
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

/** Nothing listens on the SIP port of any server address of the test's /24 (every child is gone), but `held`. */
async function nothingListens(held?: string): Promise<void> {
  const probe = async (host: string, port: number) => {
    const socket = net.connect(port, host);
    const outcome = await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'refused' : String(error.code)));
    });
    socket.destroy();
    return outcome;
  };
  for (const octet of [11, 12, 13, 31, 32, 61, 62]) if (`${NET}.${octet}` !== held) assert.equal(await probe(`${NET}.${octet}`, 5060), 'refused', `${NET}.${octet}:5060`);
}

describe('dnslb up that cannot start names the busy address and its holder', () => {
  let dir: string;
  let topologyFile: string;
  let dnsPort: number;
  const up = (dataDir: string, adminPort: number) => runDnslb(['--data-dir', dataDir, 'up', topologyFile, '--no-tls', '--admin-listen', `127.0.0.1:${adminPort}`], { timeoutMs: 180_000 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dnslb-up-start-'));
    dnsPort = await freePort(`${NET}.1`);
    topologyFile = join(dir, 'topology.yaml');
    await writeFile(topologyFile, await exampleTopology(NET, dnsPort, tcpBetweenServers));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test('a busy admin port: ADMIN_LISTEN with the address and the process, and no child started', async () => {
    const busy = await holdTcp('127.0.0.1', 0);
    const port = (busy.address() as AddressInfo).port;
    try {
      const result = await up(join(dir, 'admin'), port);
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.match(result.stderr, new RegExp(`^dnslb: ADMIN_LISTEN: the admin API cannot listen on 127\\.0\\.0\\.1:${port} \\(tcp\\): address in use by ${holder}; choose another with --admin-listen$`, 'm'));
      assert.doesNotMatch(result.stderr, /ADMIN_NOT_RUNNING/);
      assert.doesNotMatch(result.stdout, /dnslb up: running/);
      await nothingListens();
    } finally {
      busy.close();
    }
  });

  test('fe2\'s SIP port held by another process: SUPERVISOR_START names fe2 and its SIP_LISTEN reason; everything stops', async () => {
    const busy = await holdTcp(`${NET}.12`, 5060);
    const adminPort = await freePort('127.0.0.1');
    const dataDir = join(dir, 'sip');
    try {
      const result = await up(dataDir, adminPort);
      assert.equal(result.code, 3, result.stdout + result.stderr);
      const line = result.stderr.split('\n').find((text) => text.startsWith('dnslb: SUPERVISOR_START:')) ?? '';
      assert.match(line, /^dnslb: SUPERVISOR_START: fe2\.contoso\.com exited before it was ready: fe2\.contoso\.com \((restarting|stopped), last run ended with exit 3; its last output: /, result.stderr);
      assert.match(line, new RegExp(`SIP_LISTEN: cannot listen on ${NET.replaceAll('.', '\\.')}\\.12:5060 \\(tcp\\): address in use by ${holder}`));
      assert.doesNotMatch(result.stdout, /dnslb up: running/);
      await assert.rejects(access(join(dataDir, 'admin.json')), 'the admin endpoint is removed');
      await nothingListens(`${NET}.12`);
    } finally {
      busy.close();
    }
  });

  test('the DNS port held (UDP) by another process: SUPERVISOR_START names dns and its DNS_LISTEN reason', async () => {
    const busy = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => busy.bind(dnsPort, `${NET}.1`, resolve));
    try {
      const result = await up(join(dir, 'dns'), await freePort('127.0.0.1'));
      assert.equal(result.code, 3, result.stdout + result.stderr);
      const line = result.stderr.split('\n').find((text) => text.startsWith('dnslb: SUPERVISOR_START:')) ?? '';
      assert.match(line, /^dnslb: SUPERVISOR_START: dns exited before it was ready: /, result.stderr);
      assert.match(line, new RegExp(`DNS_LISTEN: cannot listen on ${NET.replaceAll('.', '\\.')}\\.1:${dnsPort} \\(udp\\): address in use by ${holder}`));
      await nothingListens();
    } finally {
      busy.close();
    }
  });
});
