// A throw-away CA and a certificate signed by it, for TLS tests: the product's own openssl-based
// certificate code (src/sip/certificates.ts) in a temporary directory, valid one day.
import { readFile, rm } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
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

/** The test process's pool CA: one temp dir for the whole run, removed at exit. */
let poolDir: string | undefined;
let issuing: Promise<unknown> = Promise.resolve();

export interface ServerCertificateFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/**
 * A server's certificate from the test run's pool CA, as `dnslb up` gives every server: subjectAltName
 * its FQDN first, then `names` (its pool FQDN), and its addresses. Made once per FQDN and names.
 */
export function serverCertificateFiles(fqdn: string, options: { names?: readonly string[]; ips?: readonly string[] } = {}): Promise<ServerCertificateFiles> {
  if (poolDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'dnslb-pool-ca-'));
    poolDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const dir = poolDir;
  // One at a time: two first calls at once would both make the CA.
  const issued = issuing.then(() => ensureCertificate(dir, fqdn, { names: [fqdn, ...(options.names ?? [])], ips: [...(options.ips ?? [])], days: 2 }));
  issuing = issued.catch(() => undefined);
  return issued.then((files) => ({ certFile: files.certFile, keyFile: files.keyFile, caFile: join(dir, 'ca.pem') }));
}

/** The same, read: the `tls` option of an in-process FrontEndServer (its identity on mutual TLS links). */
export async function serverTls(fqdn: string, options: { names?: readonly string[]; ips?: readonly string[] } = {}): Promise<{ cert: string; key: string; ca: string }> {
  const files = await serverCertificateFiles(fqdn, options);
  return { cert: await readFile(files.certFile, 'utf8'), key: await readFile(files.keyFile, 'utf8'), ca: await readFile(files.caFile, 'utf8') };
}
