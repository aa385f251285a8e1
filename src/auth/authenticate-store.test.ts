// The authenticate step on a real file store, as two servers of a pool would run it: both take the
// pool secret from the store (the first one's wins), hold its users in memory (kept current by its
// watch), and accept each other's nonces; the store's files for users and the secret are readable by their owner only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FakeClock } from '../../test/helpers/fake-clock.ts';
import { tempFileStore } from '../../test/helpers/temp-store.ts';
import { parseMessage } from '../sip/parse.ts';
import type { SipRequest } from '../sip/message.ts';
import { openFileStore } from '../store/file-store.ts';
import { answerChallenge, parseChallenge } from './answer.ts';
import { Authenticator } from './authenticate.ts';
import { credentialFor } from './user-credential.ts';
import { UserTable } from './user-table.ts';
import { eventually } from '../../test/helpers/eventually.ts';

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const step of cleanup) await step();
});

function register(authorization?: string): SipRequest {
  const text = ['REGISTER sip:contoso.com SIP/2.0', 'Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1', 'From: <sip:alice@contoso.com>;tag=a', 'To: <sip:alice@contoso.com>', 'Call-ID: c', 'CSeq: 1 REGISTER', 'Max-Forwards: 70', ...(authorization ? [`Authorization: ${authorization}`] : []), 'Content-Length: 0', '', ''].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

test('fe1 challenges, alice answers at fe2 (redirected): both hold the same secret and the same users through the store', async () => {
  const clock = new FakeClock();
  const fe1Store = await tempFileStore(clock);
  cleanup.push(async () => {
    await fe1Store.close();
    await rm(fe1Store.dataDir, { recursive: true, force: true });
  });
  const fe2Store = await openFileStore({ dataDir: fe1Store.dataDir, clock });
  cleanup.push(() => fe2Store.close());
  await fe1Store.addUser({ uri: 'sip:alice@contoso.com', disabled: false, credential: credentialFor('sip:alice@contoso.com', 'alice-pw', { md5: false }) }, { by: 'test' });
  const [secret1, secret2] = await Promise.all([fe1Store.authSecret('pool01.contoso.com', randomBytes(32)), fe2Store.authSecret('pool01.contoso.com', randomBytes(32))]);
  // Each server holds the directory in memory: read whole, then followed by the store's 'user' events.
  const tables = [new UserTable(), new UserTable()] as const;
  tables[0].replace(await fe1Store.users());
  tables[1].replace(await fe2Store.users());
  const controller = new AbortController();
  cleanup.push(async () => controller.abort());
  const applied: number[] = [];
  const following = (async () => {
    for await (const event of fe2Store.watch({ afterRevision: (await fe2Store.snapshot()).revision, signal: controller.signal })) {
      if (event.kind === 'user') tables[1].set(event.uri, event.record);
      applied.push(event.revision);
    }
  })();
  const options = { realms: ['contoso.com'], clock, randomBytes };
  const fe1 = new Authenticator({ ...options, directory: tables[0], secret: secret1 as Buffer });
  const fe2 = new Authenticator({ ...options, directory: tables[1], secret: secret2 as Buffer });
  const challenge = fe1.authenticate(register(), { id: 'f1', remoteAddress: '192.0.2.1' });
  assert.equal(challenge.kind === 'answer' && challenge.status, 401);
  const header = challenge.kind === 'answer' ? challenge.headers[0]?.value : undefined;
  assert.ok(header);
  const authorization = answerChallenge({ challenge: parseChallenge(header), username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com', cnonce: 'x', nc: 1 });
  assert.deepEqual(fe2.authenticate(register(authorization), { id: 'f2', remoteAddress: '192.0.2.1' }), { kind: 'authenticated', identity: 'sip:alice@contoso.com', via: 'digest' });
  // A user disabled through the store (another instance: another process) is refused at fe2 once
  // fe2 has applied that one change: no re-read of the directory, no waiting beyond the event.
  await fe1Store.updateUser('sip:alice@contoso.com', { disabled: true }, { by: 'test' });
  await eventually(() => assert.ok(applied.length >= 1, 'the change is applied'));
  const next = answerChallenge({ challenge: parseChallenge(header), username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: 'sip:contoso.com', cnonce: 'x', nc: 2 });
  const refused = fe2.authenticate(register(next), { id: 'f3', remoteAddress: '192.0.2.1' });
  assert.equal(refused.kind === 'answer' && refused.status, 403);
  controller.abort();
  await following;

  const storeDirectory = join(fe1Store.dataDir, 'store');
  const files = [...(await readdir(join(storeDirectory, 'users'), { recursive: true })).filter((name) => name.endsWith('.json')).map((name) => join(storeDirectory, 'users', name)), join(storeDirectory, 'secrets', 'pool01.contoso.com.json')];
  assert.ok(files.length >= 2);
  for (const file of files) assert.equal((await stat(file)).mode & 0o777, 0o600, `${file} is readable by its owner only`);
});
