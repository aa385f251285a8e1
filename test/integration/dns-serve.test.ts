// `dnslb dns serve` as a child process, queried with dig and kdig: every record kind, both views,
// every RCODE, EDNS, TC then TCP, rotation, and SIGTERM.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dig, kdig, REPO, startDns, type RunningDns } from '../helpers/dns-process.ts';

const INSIDE = '127.0.0.1'; // in 127.0.0.0/24: the internal view
const OUTSIDE = '127.0.4.2'; // elsewhere: the external view

describe('dnslb dns serve examples/contoso.yaml', () => {
  let dns: RunningDns;
  before(async () => {
    dns = await startDns(['examples/contoso.yaml', '--listen', '127.0.4.1:0']);
  });
  after(async () => {
    await dns?.stop();
  });

  const data = (result: { answer: { data: string }[] }): string[] => result.answer.map((record) => record.data).sort();

  test('internal view: pool, servers, Web services, edge internal pool, SRV, discovery, SOA, NS', async () => {
    const expected: [string, string, string[]][] = [
      ['pool01.contoso.com', 'A', ['127.0.0.11', '127.0.0.12', '127.0.0.13']],
      ['fe3.contoso.com', 'A', ['127.0.0.13']],
      ['dirpool.contoso.com', 'A', ['127.0.0.31', '127.0.0.32']],
      ['medpool.contoso.com', 'A', ['127.0.0.61', '127.0.0.62']],
      ['webint.contoso.com', 'A', ['127.0.0.21']],
      ['webext.contoso.com', 'A', ['127.0.0.22']],
      ['edgepool.contoso.com', 'A', ['127.0.0.41', '127.0.0.42']],
      ['lyncdiscoverinternal.contoso.com', 'A', ['127.0.0.21']],
      ['lyncdiscover.contoso.com', 'A', ['127.0.0.22']],
      ['pool02.contoso.com', 'A', ['127.0.0.17', '127.0.0.18', '127.0.0.19']],
      // The Directors first, as Lync publishes them; the Front End pools behind them.
      ['_sipinternaltls._tcp.contoso.com', 'SRV', ['0 0 5061 dirpool.contoso.com.', '10 0 5061 pool01.contoso.com.', '10 0 5061 pool02.contoso.com.']],
      ['_sipinternal._tcp.dublin.contoso.com', 'SRV', ['0 0 5060 dirpool.contoso.com.', '10 0 5060 pool01.contoso.com.', '10 0 5060 pool02.contoso.com.']],
      ['contoso.com', 'NS', ['dns1.contoso.com.']],
      ['dns1.contoso.com', 'A', ['127.0.0.1']],
    ];
    for (const [name, type, values] of expected) {
      const result = await dig(dns, [name, type], INSIDE);
      assert.equal(result.status, 'NOERROR', name);
      assert.ok(result.flags.includes('aa'), `${name}: AA`);
      assert.deepEqual(data(result), values, `${name} ${type}`);
    }
    const soa = await kdig(dns, ['contoso.com', 'SOA'], INSIDE);
    assert.match(soa.answer[0]?.data ?? '', /^dns1\.contoso\.com\. hostmaster\.contoso\.com\. \d+ 3600 600 604800 60$/);
  });

  test('external view: edge services, _sip._tls, federation SRV, external Web services; no inside names', async () => {
    const expected: [string, string, string[]][] = [
      ['sip.contoso.com', 'A', ['127.0.0.51', '127.0.0.52']],
      ['webconf.contoso.com', 'A', ['127.0.0.53', '127.0.0.54']],
      ['av.contoso.com', 'A', ['127.0.0.55', '127.0.0.56']],
      ['_sip._tls.contoso.com', 'SRV', ['0 0 4443 sip.contoso.com.']],
      ['_sipfederationtls._tcp.contoso.com', 'SRV', ['0 0 5061 sip.contoso.com.']],
      ['webext.contoso.com', 'A', ['127.0.0.22']],
      ['lyncdiscover.contoso.com', 'A', ['127.0.0.22']],
      ['www.contoso.com', 'A', ['127.0.0.80']],
    ];
    for (const [name, type, values] of expected) {
      const result = await kdig(dns, [name, type], OUTSIDE);
      assert.equal(result.status, 'NOERROR', name);
      assert.deepEqual(data(result), values, `${name} ${type}`);
    }
    for (const name of ['pool01.contoso.com', 'fe1.contoso.com', 'webint.contoso.com', 'lyncdiscoverinternal.contoso.com']) {
      assert.equal((await dig(dns, [name, 'A'], OUTSIDE)).status, 'NXDOMAIN', `${name} is not published outside`);
    }
    assert.equal((await dig(dns, ['sip.contoso.com', 'A'], INSIDE)).status, 'NXDOMAIN', 'and the edge services not inside');
  });

  test('RCODEs: NXDOMAIN and NODATA with the SOA in authority, REFUSED, FORMERR, NOTIMP', async () => {
    const nx = await dig(dns, ['nope.contoso.com', 'A'], INSIDE);
    assert.equal(nx.status, 'NXDOMAIN');
    assert.ok(nx.flags.includes('aa'));
    assert.deepEqual(nx.authority.map((record) => [record.name, record.type, record.ttl]), [['contoso.com.', 'SOA', 60]]);
    const nodata = await dig(dns, ['pool01.contoso.com', 'AAAA'], INSIDE);
    assert.equal(nodata.status, 'NOERROR');
    assert.equal(nodata.answer.length, 0);
    assert.equal(nodata.authority[0]?.type, 'SOA');
    assert.equal((await kdig(dns, ['example.org', 'A'], INSIDE)).status, 'REFUSED');
    assert.equal((await dig(dns, ['+header-only', 'pool01.contoso.com'], INSIDE)).status, 'FORMERR', 'QDCOUNT 0');
    assert.equal((await dig(dns, ['+opcode=2', 'pool01.contoso.com'], INSIDE)).status, 'NOTIMP');
  });

  test('names match in any case and the question comes back as asked', async () => {
    const result = await dig(dns, ['PoOl01.CoNtOsO.CoM', 'A'], INSIDE);
    assert.equal(result.question.split(/\s+/)[0], 'PoOl01.CoNtOsO.CoM.');
    assert.equal(result.answer.length, 3);
    assert.equal(result.answer[0]?.name, 'PoOl01.CoNtOsO.CoM.');
  });

  test('EDNS: OPT echoed with our payload size; version 1 → BADVERS; unknown options ignored; none without EDNS', async () => {
    const edns = await dig(dns, ['+bufsize=4096', 'pool01.contoso.com'], INSIDE);
    assert.match(edns.edns ?? '', /version: 0, flags:.*udp: 1232/);
    const badvers = await dig(dns, ['+edns=1', '+noednsnegotiation', 'pool01.contoso.com'], INSIDE);
    assert.equal(badvers.status, 'BADVERS');
    assert.match(badvers.edns ?? '', /version: 0/);
    const option = await dig(dns, ['+ednsopt=65001:abcd', 'pool01.contoso.com'], INSIDE);
    assert.equal(option.status, 'NOERROR');
    assert.equal(option.answer.length, 3);
    const plain = await dig(dns, ['+noedns', 'pool01.contoso.com'], INSIDE);
    assert.equal(plain.edns, undefined);
    assert.equal(plain.answer.length, 3);
  });

  test('ANY gets a minimal answer (RFC 8482)', async () => {
    const result = await dig(dns, ['pool01.contoso.com', 'ANY'], INSIDE);
    assert.equal(result.status, 'NOERROR');
    assert.deepEqual([...new Set(result.answer.map((record) => record.type))], ['A']);
  });

  test('rotate: consecutive answers start one server later', async () => {
    const firsts: string[] = [];
    for (let i = 0; i < 6; i++) firsts.push((await dig(dns, ['pool01.contoso.com', 'A'], INSIDE)).answer[0]!.data);
    assert.equal(new Set(firsts.slice(0, 3)).size, 3, 'three different servers lead');
    assert.deepEqual(firsts.slice(3), firsts.slice(0, 3), 'and the cycle repeats');
    const order = (await dig(dns, ['pool01.contoso.com', 'A'], INSIDE)).answer.map((record) => record.data);
    const next = (await dig(dns, ['pool01.contoso.com', 'A'], INSIDE)).answer.map((record) => record.data);
    assert.deepEqual(next, [...order.slice(1), order[0]], 'each answer is the previous one rotated by one');
  });

  test('kdig over TCP gets the same answers', async () => {
    const result = await kdig(dns, ['+tcp', 'pool01.contoso.com', 'A'], INSIDE);
    assert.equal(result.status, 'NOERROR');
    assert.equal(result.answer.length, 3);
  });
});

describe('dnslb dns serve: answers too large for UDP', () => {
  let dns: RunningDns;
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'dnslb-dns-'));
    // The example, with a 50-server pool whose AAAA answer outgrows 1232 bytes.
    const servers = Array.from({ length: 50 }, (_, i) => `      - { fqdn: big${i + 1}.contoso.com, ipv6: "fd00::${(i + 1).toString(16)}" }`).join('\n');
    const text = (await readFile(join(REPO, 'examples/contoso.yaml'), 'utf8')).replace(
      '  - fqdn: medpool.contoso.com',
      `  - fqdn: bigpool.contoso.com\n    kind: mediation\n    site: redmond\n    loadBalancing: dns\n    servers:\n${servers}\n\n  - fqdn: medpool.contoso.com`,
    );
    await writeFile(join(directory, 'big.yaml'), text);
    dns = await startDns([join(directory, 'big.yaml'), '--listen', '127.0.4.1:0']);
  });
  after(async () => {
    await dns?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  test('UDP sets TC; dig then retries over TCP and gets every record', async () => {
    const truncated = await dig(dns, ['+ignore', 'bigpool.contoso.com', 'AAAA'], INSIDE);
    assert.ok(truncated.flags.includes('tc'));
    assert.equal(truncated.answer.length, 0);
    const small = await dig(dns, ['+ignore', '+noedns', 'bigpool.contoso.com', 'AAAA'], INSIDE);
    assert.ok(small.flags.includes('tc'), 'no EDNS: 512 bytes');
    const full = await dig(dns, ['bigpool.contoso.com', 'AAAA'], INSIDE);
    assert.match(full.text, /Truncated, retrying in TCP mode/);
    assert.equal(full.answer.length, 50);
    assert.equal(full.flags.includes('tc'), false);
  });
});

describe('dnslb dns serve: signals', () => {
  test('SIGTERM closes cleanly with exit code 0', async () => {
    const dns = await startDns(['examples/contoso.yaml', '--listen', '127.0.4.1:0']);
    assert.equal((await dig(dns, ['pool01.contoso.com'], INSIDE)).status, 'NOERROR');
    assert.equal(await dns.stop(), 0);
  });
});
