// The store follower keeps the user directory in the server's memory, change by change: a
// `user move`, `disable` or new password written to the store (from another instance, as the CLI
// would) changes a server's answers as soon as its follower has applied that one revision — no
// re-read of the directory, no waiting for a poll. In process on real sockets (the multi-pool fixture
// on 127.0.52.x: dir1 of the Director pool, fe1 of pool01, fe4 of pool02) with a real file store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { caughtUp } from '../../test/helpers/eventually.ts';
import { freePortPair } from '../../test/helpers/frontend-pool.ts';
import { multiPoolYaml } from '../../test/helpers/multi-pool.ts';
import { TestSipClient } from '../../test/helpers/sip-client.ts';
import { serverTls } from '../../test/helpers/tls-certs.ts';
import { answerChallenge, parseChallenge } from '../auth/answer.ts';
import { credentialFor } from '../auth/user-credential.ts';
import { systemClock } from '../shared/clock.ts';
import { headerValue, type SipMessage, type SipResponse } from '../sip/message.ts';
import { openFileStore, type FileStore } from '../store/file-store.ts';
import { parse } from '../topology/parse.ts';
import { FrontEndServer } from './server.ts';
import { StoreFollower } from './store-follower.ts';

const PREFIX = '127.0.52';
const DIR1 = `${PREFIX}.31`;
const FE1 = `${PREFIX}.11`;
const FE4 = `${PREFIX}.14`;
const CLIENT = `${PREFIX}.235`;
const ANN = 'sip:dub-ann@contoso.com';
const POOL01 = [`${PREFIX}.11`, `${PREFIX}.12`, `${PREFIX}.13`];
const POOL02 = [`${PREFIX}.14`, `${PREFIX}.15`, `${PREFIX}.16`];

describe('the user directory followed in memory (dir1, fe1, fe4 with a file store)', () => {
  let dataDir: string;
  let store: FileStore;
  let writer: FileStore;
  let port = 0;
  const servers: FrontEndServer[] = [];
  const followers: StoreFollower[] = [];
  const clients: TestSipClient[] = [];
  let calls = 0;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'dnslb-follower-'));
    store = await openFileStore({ dataDir });
    // Changes come from another instance, as `dnslb user …` in another process writes them.
    writer = await openFileStore({ dataDir });
    port = await freePortPair([DIR1, FE1, FE4]);
    const topology = parse(multiPoolYaml(PREFIX, port, 100, '  auth: { enabled: true }'), 'multi-pool.yaml');
    await writer.publish(topology, 0, { by: 'test' });
    // dub-* users live on pool02 by the topology's rule.
    await writer.addUser({ uri: ANN, disabled: false, credential: credentialFor(ANN, 'ann-pw', { md5: false }) }, { by: 'test' });
    for (const [fqdn, pool] of [['dir1.contoso.com', 'dirpool.contoso.com'], ['fe1.contoso.com', 'pool01.contoso.com'], ['fe4.contoso.com', 'pool02.contoso.com']] as const) {
      const server = new FrontEndServer({ topology, topologyVersion: 1, server: fqdn, tls: await serverTls(fqdn), auth: { secret: await store.authSecret(pool, randomBytes(32)) } });
      await server.start();
      const follower = new StoreFollower({ store, server, clock: systemClock, logger: pino({ level: 'silent' }) });
      await follower.start();
      servers.push(server);
      followers.push(follower);
    }
  });

  after(async () => {
    for (const client of clients) client.close();
    for (const follower of followers) await follower.stop({ reportDown: false });
    await Promise.all(servers.map((server) => server.stop()));
    await store?.close();
    await writer?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** REGISTER as `user` on a new connection, answering the 401 with `password`: the final answer. */
  const signIn = async (address: string, user: string, password: string): Promise<SipResponse> => {
    const client = await TestSipClient.open(address, port, CLIENT);
    clients.push(client);
    const callId = `follower-${++calls}@test`;
    const name = user.slice(4, user.indexOf('@'));
    const lines = (cseq: number, extra: string[] = []): string[] => [
      'REGISTER sip:contoso.com SIP/2.0',
      `Via: SIP/2.0/TCP ${CLIENT}:${client.localPort};branch=z9hG4bK-f${calls}-${cseq}`,
      'Max-Forwards: 70',
      `From: <${user}>;tag=f${calls}`,
      `To: <${user}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:${name}@${CLIENT}:${client.localPort};transport=tcp>`,
      'Expires: 300',
      ...extra,
    ];
    const final = (message: SipMessage): message is SipResponse => message.kind === 'response' && headerValue(message, 'Call-ID') === callId && message.status >= 200;
    client.send(lines(1));
    const challenge = await client.next(final);
    assert.equal(challenge.status, 401);
    const authorization = answerChallenge({ challenge: parseChallenge(headerValue(challenge, 'WWW-Authenticate')!), username: name, password, method: 'REGISTER', uri: 'sip:contoso.com', cnonce: `c${calls}`, nc: 1 });
    client.send(lines(2, [`Authorization: ${authorization}`]));
    const answer = await client.next((message): message is SipResponse => final(message) && (headerValue(message, 'CSeq') ?? '').startsWith('2 '));
    client.close();
    return answer;
  };
  const contactHosts = (answer: SipResponse): string[] => answer.headers.filter((header) => header.name.toLowerCase() === 'contact').map((header) => /maddr=([0-9.]+)/.exec(header.value)?.[1] ?? header.value);
  const allCaughtUp = async (): Promise<void> => {
    for (const follower of followers) await caughtUp(follower, store);
  };

  test('loaded once at start: the directory is in memory on every server', () => {
    for (const server of servers) assert.equal(server.status().auth?.users, 1);
  });

  test('user move: once the one change is applied, the Director and the old home pool send the user to its new pool', async () => {
    const before = await signIn(DIR1, ANN, 'ann-pw');
    assert.equal(before.status, 301);
    assert.ok(contactHosts(before).every((host) => POOL02.includes(host)), `by the rule, pool02: ${contactHosts(before).join(' ')}`);
    await writer.updateUser(ANN, { homePool: 'pool01.contoso.com' }, { by: 'test' });
    await allCaughtUp();
    const director = await signIn(DIR1, ANN, 'ann-pw');
    assert.equal(director.status, 301);
    assert.ok(contactHosts(director).every((host) => POOL01.includes(host)), `moved to pool01: ${contactHosts(director).join(' ')}`);
    const oldHome = await signIn(FE4, ANN, 'ann-pw');
    assert.notEqual(oldHome.status, 200, 'the old home pool no longer registers the user');
    if (oldHome.status === 301) assert.ok(contactHosts(oldHome).every((host) => POOL01.includes(host)), `fe4 sends it on to pool01: ${contactHosts(oldHome).join(' ')}`);
  });

  test('a new password works, and the old one stops working, as soon as the change is applied', async () => {
    await writer.updateUser(ANN, { credential: credentialFor(ANN, 'ann-pw-2', { md5: false }) }, { by: 'test' });
    await allCaughtUp();
    assert.equal((await signIn(FE1, ANN, 'ann-pw')).status, 401, 'the old password is refused');
    // Past authentication: registered here, or sent to its home in pool01 (fe1 may not be first in its sequence).
    const signedIn = await signIn(FE1, ANN, 'ann-pw-2');
    assert.ok(signedIn.status === 200 || (signedIn.status === 301 && contactHosts(signedIn).every((host) => POOL01.includes(host))), `${signedIn.status} ${signedIn.reason}`);
  });

  test('disable: the next REGISTER with the right password is refused (403)', async () => {
    await writer.updateUser(ANN, { disabled: true }, { by: 'test' });
    await allCaughtUp();
    const refused = await signIn(FE1, ANN, 'ann-pw-2');
    assert.equal(refused.status, 403);
    await writer.removeUser(ANN);
    await allCaughtUp();
    for (const server of servers) assert.equal(server.status().auth?.users, 0, 'a removed user leaves every server');
  });
});
