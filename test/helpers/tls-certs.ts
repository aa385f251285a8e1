// Creates a throw-away CA and certificates signed by it with the real `openssl` binary, for TLS tests.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  /** PEM of the CA certificate: pass as `ca` to trust the others. */
  readonly ca: string;
  /** Server certificate + key (subjectAltName: the names and IPs asked for). */
  readonly cert: string;
  readonly key: string;
  /** The temp dir holding the files; removed by cleanup(). */
  readonly dir: string;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Makes a CA and one certificate for `names` (DNS names) and `ips` (IP addresses), valid one day.
 * EC P-256 keys keep it fast (tens of milliseconds).
 */
export function createTestCertificates(options: { names?: string[]; ips?: string[] } = {}): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'dnslb-tls-'));
  const names = options.names ?? ['localhost'];
  const ips = options.ips ?? ['127.0.0.1'];
  const san = [...names.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=dnslb test CA', '-days', '1', '-out', 'ca.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key'], dir);
  openssl(['req', '-new', '-key', 'server.key', '-subj', `/CN=${names[0] ?? 'server'}`, '-out', 'server.csr'], dir);
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n`);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'server.pem'], dir);
  return {
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
