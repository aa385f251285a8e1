// Mutual TLS between servers (issue 13 item 5, DESIGN §7 "Trust"), against real `dnslb server`
// processes: fe1 and fe2 each with its own certificate from the pool CA, their heartbeat over TLS. A
// process that reaches fe1 without fe2's certificate and key — openssl s_client without a client
// certificate, s_client with a certificate for fe2.contoso.com signed by another CA, a plain TCP
// connection from fe2's own address — gets no peer treatment: no heartbeat state in the OPTIONS answer,
// and its INVITE is challenged (407) as a client's, where a real peer's is proxied unchallenged. The
// same probes with fe2's real certificate get both, so the probes do see peer treatment when it is given.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCertificate } from '../../src/sip/certificates.ts';
import { startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { waitUntil } from '../helpers/process.ts';
import { serverCertificateFiles } from '../helpers/tls-certs.ts';

const ADDRESSES = ['127.0.57.1', '127.0.57.2'];
const [FE1, FE2] = ADDRESSES as [string, string];
const AUTH = '  auth: { enabled: true }';

let sequence = 0;

/** The heartbeat's OPTIONS as fe2 sends it, and an INVITE fe2 would proxy to fe1 for a caller. */
function requests(from: string): { options: string; invite: string; callIds: [string, string] } {
  const n = ++sequence;
  const options = [
    'OPTIONS sip:fe1.contoso.com SIP/2.0',
    `Via: SIP/2.0/TLS ${from};branch=z9hG4bK-mtls-o${n}`,
    'Max-Forwards: 0',
    `From: <sip:fe2.contoso.com>;tag=o${n}`,
    'To: <sip:fe1.contoso.com>',
    `Call-ID: mtls-options-${n}@${from}`,
    'CSeq: 1 OPTIONS',
    'X-Dnslb-State: active',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const invite = [
    'INVITE sip:bob@contoso.com SIP/2.0',
    `Via: SIP/2.0/TLS ${from};branch=z9hG4bK-mtls-i${n}`,
    'Max-Forwards: 69',
    `From: <sip:alice@contoso.com>;tag=i${n}`,
    'To: <sip:bob@contoso.com>',
    `Call-ID: mtls-invite-${n}@${from}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:alice@${from}>`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return { options, invite, callIds: [`mtls-options-${n}@${from}`, `mtls-invite-${n}@${from}`] };
}

/** The final answer (status line and headers) to the request with `callId` in `text`, once it is there. */
function answerIn(text: string, callId: string): string | undefined {
  for (const block of text.split('\r\n\r\n')) {
    if (!block.includes(`Call-ID: ${callId}`)) continue;
    const start = block.lastIndexOf('SIP/2.0 ');
    if (start >= 0 && !/^SIP\/2\.0 1\d\d /.test(block.slice(start))) return block.slice(start);
  }
  return undefined;
}

/** Sends both requests over `openssl s_client` to fe1's TLS port from `bind`, with `cert` when given; their answers. */
async function viaOpenssl(port: number, bind: string, caFile: string, cert?: { certFile: string; keyFile: string }): Promise<[string, string]> {
  const args = ['s_client', '-connect', `${FE1}:${port}`, '-bind', `${bind}:0`, '-servername', 'fe1.contoso.com', '-CAfile', caFile, '-verify_return_error', '-quiet'];
  if (cert) args.push('-cert', cert.certFile, '-key', cert.keyFile);
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('latin1')));
  try {
    const { options, invite, callIds } = requests(bind);
    child.stdin.write(options + invite);
    await waitUntil(`answers over s_client (${cert ? 'with a certificate' : 'no certificate'})`, () => callIds.every((id) => answerIn(out, id) !== undefined), { timeoutMs: 15_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\nstdout: ${out}\nstderr: ${err}`);
    });
    return [answerIn(out, callIds[0])!, answerIn(out, callIds[1])!];
  } finally {
    child.kill();
  }
}

/** The same over plain TCP to fe1's TCP port, from `bind` (fe2's own address). */
async function viaTcp(port: number, bind: string): Promise<[string, string]> {
  const socket = connect({ host: FE1, port, localAddress: bind });
  let out = '';
  socket.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')));
  socket.on('error', () => {});
  try {
    const { options, invite, callIds } = requests(bind);
    socket.write(options + invite);
    await waitUntil('answers over TCP', () => callIds.every((id) => answerIn(out, id) !== undefined), { timeoutMs: 15_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\nreceived: ${out}`);
    });
    return [answerIn(out, callIds[0])!, answerIn(out, callIds[1])!];
  } finally {
    socket.destroy();
  }
}

function assertClient([options, invite]: [string, string], what: string): void {
  assert.match(options, /^SIP\/2\.0 200 /, what);
  assert.doesNotMatch(options, /\r\nX-Dnslb-(State|Server|Topology-Version):/i, `${what}: the heartbeat's state went to a non-peer`);
  assert.match(invite, /^SIP\/2\.0 407 /, `${what}: a client's INVITE is challenged`);
}

describe('mutual TLS between servers: no peer treatment without a server certificate', () => {
  let pool: RunningPool;
  let dir = '';
  let fe2: { certFile: string; keyFile: string };
  let foreign: { certFile: string; keyFile: string };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-mtls-'));
    // startPool waits until each server sees the other active: the heartbeat works over mutual TLS.
    pool = await startPool({ addresses: ADDRESSES, store: true, settingsYaml: AUTH });
    fe2 = await serverCertificateFiles('fe2.contoso.com', { names: ['pool01.contoso.com'], ips: [FE2] });
    // fe2's very names, signed by a CA of the attacker's own.
    foreign = await ensureCertificate(join(dir, 'other-ca'), 'fe2.contoso.com', { names: ['fe2.contoso.com', 'pool01.contoso.com'], ips: [FE2], days: 1 });
  });
  after(async () => {
    await pool?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the pool runs its heartbeat over TLS: each server sees the other active', async () => {
    for (const index of [0, 1]) {
      const status = await pool.status(index);
      assert.deepEqual(Object.values(status.heartbeat.peers).map((peer) => peer.state), ['active']);
    }
  });

  test("control: s_client with fe2's own certificate and key gets the heartbeat's state and is not challenged", async () => {
    const [options, invite] = await viaOpenssl(pool.tlsPort, FE2, pool.caFile!, fe2);
    assert.match(options, /\r\nX-Dnslb-State: active/);
    assert.match(options, /\r\nX-Dnslb-Server: fe1\.contoso\.com/);
    assert.doesNotMatch(invite, /^SIP\/2\.0 40[17] /, 'a peer is trusted, not challenged');
  });

  test('s_client without a client certificate, from fe2\'s own address: a client', async () => {
    assertClient(await viaOpenssl(pool.tlsPort, FE2, pool.caFile!), 's_client, no certificate');
  });

  test('s_client with a certificate for fe2.contoso.com signed by another CA, from fe2\'s own address: a client', async () => {
    assertClient(await viaOpenssl(pool.tlsPort, FE2, pool.caFile!, foreign), 's_client, another CA');
  });

  test('plain TCP from fe2\'s own address: a client', async () => {
    assertClient(await viaTcp(pool.tcpPort, FE2), 'TCP from 127.0.57.2');
  });

  test('fe1 still sees fe2 active afterwards (the probes did not disturb the real links)', async () => {
    const status = await pool.status(0);
    assert.equal(status.heartbeat.peers['fe2.contoso.com']?.state, 'active');
  });
});
