// A throw-away CA and a certificate signed by it, for TLS tests: the product's own openssl-based
// certificate code (src/sip/certificates.ts) in a temporary directory, valid one day.
import { readFile, rm } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCertificate, readCertificateAuthority } from '../../src/sip/certificates.ts';

export interface TestCertificates {
  /** PEM of the CA certificate: pass as `ca` to trust the others. */
  readonly ca: string;
  /** Server certificate + key (subjectAltName: the names and IPs asked for). */
  readonly cert: string;
  readonly key: string;
  /** The temp dir holding the files; removed by cleanup(). */
  readonly dir: string;
  cleanup(): Promise<void>;
}

/** Makes a CA and one certificate for `names` (DNS names) and `ips` (IP addresses). */
export async function createTestCertificates(options: { names?: string[]; ips?: string[] } = {}): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), 'dnslb-tls-'));
  const issued = await ensureCertificate(dir, 'server', { names: options.names ?? ['localhost'], ips: options.ips ?? ['127.0.0.1'], days: 1 });
  return {
    ca: await readCertificateAuthority(dir),
    cert: await readFile(issued.certFile, 'utf8'),
    key: await readFile(issued.keyFile, 'utf8'),
    dir,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
