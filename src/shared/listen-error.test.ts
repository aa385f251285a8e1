// Listen errors that name the busy address and its holder: ss output parsed from a table, and a real
// port held by this very process named with its pid.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { describeListenError, holderFromSs } from './listen-error.ts';

const SS = [
  'LISTEN 0      511        127.0.0.1:7300       0.0.0.0:*    users:(("node",pid=4242,fd=20))',
  'LISTEN 0      4096         0.0.0.0:5060       0.0.0.0:*    users:(("kamailio",pid=77,fd=9),("kamailio",pid=78,fd=9))',
  'LISTEN 0      511            [::1]:8080          [::]:*    users:(("haproxy",pid=900,fd=5))',
  'LISTEN 0      511                *:9090             *:*    users:(("etcd",pid=12,fd=7))',
  'LISTEN 0      511      127.0.0.11:5061       0.0.0.0:*',
  'UNCONN 0      0      127.0.0.1%lo:5300       0.0.0.0:*    users:(("knotd",pid=31,fd=3))',
].join('\n');

test('holderFromSs: the exact address, a wildcard covering it, or nothing', () => {
  const cases: [string, number, string | undefined][] = [
    ['127.0.0.1', 7300, 'node (pid 4242)'],
    ['127.0.0.2', 7300, undefined], // another address on the same port is not the holder
    ['127.0.0.1', 730, undefined], // a port that is a prefix of another
    ['127.0.0.11', 5060, 'kamailio (pid 77), kamailio (pid 78)'], // 0.0.0.0 covers every IPv4 address
    ['::1', 8080, 'haproxy (pid 900)'],
    ['[::1]', 8080, 'haproxy (pid 900)'],
    ['10.1.1.1', 9090, 'etcd (pid 12)'],
    ['127.0.0.11', 5061, undefined], // ss shows no process (another user's, not root)
    ['127.0.0.1', 5300, 'knotd (pid 31)'], // interface suffix dropped
  ];
  for (const [host, port, expected] of cases) assert.equal(holderFromSs(SS, host, port), expected, `${host}:${port}`);
  assert.equal(holderFromSs('', '127.0.0.1', 7300), undefined);
});

test('describeListenError: a port this process holds is named with its pid (real ss)', async () => {
  const holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const { port } = holder.address() as AddressInfo;
  const second = createServer();
  second.listen(port, '127.0.0.1');
  const [error] = (await once(second, 'error')) as [NodeJS.ErrnoException];
  try {
    assert.equal(error.code, 'EADDRINUSE');
    const text = await describeListenError(error, 'tcp', '127.0.0.1', port);
    assert.equal(text, `127.0.0.1:${port} (tcp): address in use by node (pid ${process.pid})`);
  } finally {
    holder.close();
  }
});

test('describeListenError: an address that is not ours, a privileged port, anything else in the system\'s words', async () => {
  const error = (code: string, message = code) => Object.assign(new Error(message), { code });
  assert.equal(await describeListenError(error('EADDRNOTAVAIL'), 'tcp', '192.0.2.1', 5060), '192.0.2.1:5060 (tcp): 192.0.2.1 is not an address of this machine');
  assert.equal(await describeListenError(error('EADDRNOTAVAIL'), 'udp', '2001:db8::1', 53), '[2001:db8::1]:53 (udp): 2001:db8::1 is not an address of this machine');
  assert.match(await describeListenError(error('EACCES'), 'tcp', '127.0.0.1', 443), /^127\.0\.0\.1:443 \(tcp\): port 443 needs privileges/);
  assert.equal(await describeListenError(error('EMFILE', 'too many open files'), 'tcp', '127.0.0.1', 80), '127.0.0.1:80 (tcp): too many open files');
});
