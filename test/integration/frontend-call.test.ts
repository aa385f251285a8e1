// A call through two servers of a real pool: a sipp UAS registered at one server, a sipp UAC at
// another; INVITE/100/180/200/ACK/BYE/200 pass both servers, ACK and BYE follow the Record-Route,
// both sipp processes exit 0, and each server counted the dialog while it lasted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeOf } from '../../src/registrar/sequence.ts';
import { freePortPair, startPool, type RunningPool } from '../helpers/frontend-pool.ts';
import { REGISTER_CONTACT, runSipp, startSipp, UAC_CALL, UAS_ANSWER } from '../helpers/sipp-scenarios.ts';
import { connect } from 'node:net';
import { eventually } from '../helpers/eventually.ts';

const ADDRESSES = ['127.0.6.7', '127.0.6.8', '127.0.6.9'];
const SERVERS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
const UAS_IP = '127.0.6.101';
const UAC_IP = '127.0.6.102';

/** Two users with different homes. */
function pickUsers(): { callee: string; caller: string; calleeHome: number; callerHome: number } {
  const homeIndex = (name: string) => SERVERS.indexOf(homeOf(`sip:${name}@contoso.com`, SERVERS, new Set(SERVERS))!.server);
  const callee = 'alice';
  const calleeHome = homeIndex(callee);
  for (let n = 0; ; n++) {
    const caller = `bob${n}`;
    const callerHome = homeIndex(caller);
    if (callerHome !== calleeHome) return { callee, caller, calleeHome, callerHome };
  }
}

describe('a call between users homed on two servers, with sipp at both ends', () => {
  let pool: RunningPool;
  let dir = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnslb-fe-call-'));
    pool = await startPool({ addresses: ADDRESSES });
  });
  after(async () => {
    await pool?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('INVITE/180/200/ACK/BYE/200 through both servers; sipp exits 0 at both ends', async () => {
    const { callee, caller, calleeHome, callerHome } = pickUsers();
    const uasPort = await freePortPair([UAS_IP]);
    const uacPort = await freePortPair([UAC_IP]);
    writeFileSync(join(dir, 'register.xml'), REGISTER_CONTACT);
    writeFileSync(join(dir, 'uas.xml'), UAS_ANSWER);
    writeFileSync(join(dir, 'uac.xml'), UAC_CALL);
    writeFileSync(join(dir, 'callee.csv'), `SEQUENTIAL\n${callee};${UAS_IP}:${uasPort}\n`);
    writeFileSync(join(dir, 'caller.csv'), `SEQUENTIAL\n${caller};${UAC_IP}:${uacPort}\n`);
    writeFileSync(join(dir, 'call.csv'), `SEQUENTIAL\n${caller};${callee}\n`);
    const at = (index: number) => `${ADDRESSES[index]}:${pool.tcpPort}`;

    for (const [csv, home] of [['callee.csv', calleeHome], ['caller.csv', callerHome]] as const) {
      const registered = await runSipp(dir, ['-sf', 'register.xml', '-inf', csv, '-t', 't1', '-i', '127.0.6.103', '-p', '0', '-m', '1', '-timeout', '20s', at(home)]);
      assert.equal(registered.code, 0, `REGISTER failed: ${registered.stderr}\n${registered.errors}`);
    }
    const uas = startSipp(dir, ['-sf', 'uas.xml', '-t', 't1', '-i', UAS_IP, '-p', String(uasPort), '-m', '1', '-timeout', '30s']);
    try {
      // The UAS listens before the call starts (a condition, not a pause).
      await eventually(
        () =>
          new Promise<void>((resolve, reject) => {
            const probe = connect({ host: UAS_IP, port: uasPort }, () => {
              probe.destroy();
              resolve();
            });
            probe.once('error', reject);
          }),
      );
      const call = await runSipp(dir, ['-sf', 'uac.xml', '-inf', 'call.csv', '-t', 't1', '-i', UAC_IP, '-p', String(uacPort), '-m', '1', '-timeout', '30s', at(callerHome)]);
      assert.equal(call.code, 0, `UAC failed: ${call.stderr}\n${call.errors}`);
      const answered = await uas.exited;
      assert.equal(answered.code, 0, `UAS failed: ${answered.stderr}\n${answered.errors}`);
    } finally {
      await uas.stop();
    }
    const [callerServer, calleeServer] = await Promise.all([pool.status(callerHome), pool.status(calleeHome)]);
    for (const status of [callerServer, calleeServer]) {
      // Each server on the path saw the dialog start (2xx to INVITE) and end (BYE): Record-Route held.
      assert.equal(status.dialogs.startedTotal, 1, `${status.server} dialogs`);
      assert.equal(status.dialogs.endedTotal, 1, `${status.server} dialogs ended`);
      assert.equal(status.dialogs.active, 0);
      // INVITE, ACK, BYE forwarded by each.
      assert.equal(status.proxy.requestsForwarded, 3, `${status.server} forwarded ${status.proxy.requestsForwarded}`);
    }
    assert.deepEqual(callerServer.links.open.includes(SERVERS[calleeHome]!), true, 'the caller\'s server keeps its link to the callee\'s open');
  });
});
