// Certificates made with the real openssl: many at once under one CA (as `dnslb up` makes them) get
// distinct serials and verify; a key left without its certificate (a process killed half-way) is made
// again rather than trusted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ensureCertificate, ensureCertificateAuthority } from './certificates.ts';

const run = promisify(execFile);

async function serialOf(file: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', file, '-noout', '-serial']);
  return stdout.trim();
}

test('certificates made in parallel under one CA have distinct serials and verify against it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dnslb-certs-'));
  try {
    // Callers that ask for the CA at once share one: every certificate below verifies against it.
    const authorities = await Promise.all([ensureCertificateAuthority(dir), ensureCertificateAuthority(dir)]);
    assert.equal(authorities[0].caFile, authorities[1].caFile);
    const names = Array.from({ length: 6 }, (_, index) => `fe${index + 1}.contoso.com`);
    const issued = await Promise.all(names.map((name, index) => ensureCertificate(dir, name, { names: [name], ips: [`127.0.0.${11 + index}`] })));
    const serials = await Promise.all(issued.map((certificate) => serialOf(certificate.certFile)));
    assert.equal(new Set(serials).size, names.length, `serials: ${serials.join(' ')}`);
    const { stdout } = await run('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), ...issued.map((certificate) => certificate.certFile)]);
    assert.equal(stdout.match(/: OK$/gm)?.length, names.length, stdout);
    // A second call keeps what exists.
    const before = await readFile(issued[0]!.certFile, 'utf8');
    await ensureCertificate(dir, names[0]!, { names: [names[0]!], ips: ['127.0.0.11'] });
    assert.equal(await readFile(issued[0]!.certFile, 'utf8'), before);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a key without its certificate is not kept: both are made again and match', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dnslb-certs-'));
  try {
    const first = await ensureCertificate(dir, 'fe1.contoso.com', { names: ['fe1.contoso.com'], ips: [] });
    const oldKey = await readFile(first.keyFile, 'utf8');
    await unlink(first.certFile);
    const again = await ensureCertificate(dir, 'fe1.contoso.com', { names: ['fe1.contoso.com'], ips: [] });
    assert.notEqual(await readFile(again.keyFile, 'utf8'), oldKey);
    const publicOf = async (args: string[]) => (await run('openssl', args)).stdout;
    assert.equal(await publicOf(['x509', '-in', again.certFile, '-noout', '-pubkey']), await publicOf(['pkey', '-in', again.keyFile, '-pubout']));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
