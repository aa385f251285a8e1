// Certificates for SIP over TLS made with the real `openssl` binary: a private CA and one server
// certificate per host (subjectAltName: its DNS names and IP addresses). `dnslb up` keeps them in the
// data dir so that a pool runs TLS out of the box; tests make throw-away ones the same way.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DnslbError } from '../shared/errors.ts';

const run = promisify(execFile);

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    const why = failure.code === 'ENOENT' ? 'the openssl command is not installed' : (failure.stderr ?? failure.message).trim().split('\n')[0];
    throw new DnslbError('SIP_CERTIFICATE', `openssl ${args[0]} failed in ${cwd}: ${why}`, { cause: error });
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** CAs being made, by directory: callers in one process that ask at once share one openssl run. */
const makingAuthority = new Map<string, Promise<void>>();

/**
 * The CA in `dir` (ca.pem, ca.key), created when absent. EC P-256: fast to make, fast handshakes. Both
 * files are written under temporary names and renamed, the certificate last, so a process killed
 * half-way leaves no CA that looks whole.
 */
export async function ensureCertificateAuthority(dir: string, options: { name?: string; days?: number } = {}): Promise<{ caFile: string; keyFile: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'ca.key');
  if (!(await exists(caFile)) || !(await exists(keyFile))) {
    let making = makingAuthority.get(dir);
    if (making === undefined) {
      making = (async () => {
        const temporary = `.${process.pid}.tmp`;
        await openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `ca.key${temporary}`, '-subj', `/CN=${options.name ?? 'dnslb CA'}`, '-days', String(options.days ?? 3650), '-out', `ca.pem${temporary}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
        await unlink(caFile).catch(() => undefined);
        await rename(join(dir, `ca.key${temporary}`), keyFile);
        await rename(join(dir, `ca.pem${temporary}`), caFile);
      })().finally(() => makingAuthority.delete(dir));
      makingAuthority.set(dir, making);
    }
    await making;
  }
  return { caFile, keyFile };
}

/** A certificate for `name` signed by the CA of `dir`, valid for `names` and `ips`; kept when it exists. */
export async function ensureCertificate(dir: string, name: string, options: { names: string[]; ips: string[]; days?: number }): Promise<IssuedCertificate> {
  await ensureCertificateAuthority(dir);
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const san = [...options.names.map((value) => `DNS:${value}`), ...options.ips.map((value) => `IP:${value}`)].join(',');
  // serverAuth and clientAuth: the same certificate serves clients and the server-to-server links.
  const extensions = `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n`;
  // Kept while it was made for the same names; a certificate made before a name was added (a Web
  // services FQDN, say) is made again, or clients checking that name would refuse it.
  const madeFor = await readFile(join(dir, `${name}.ext`), 'utf8').catch(() => undefined);
  if ((await exists(certFile)) && (await exists(keyFile)) && (madeFor === undefined || madeFor === extensions)) return { certFile, keyFile };
  // Made under temporary names, then the old certificate removed, the key renamed and the certificate
  // renamed last: a process killed at any point leaves either the old pair, or a key without a
  // certificate (made again at the next start), never a certificate with another key. The serial is
  // random (128 bits, RFC 5280 §4.1.2.2 allows 20 octets), not a counter file next to the CA, so
  // certificates can be made in parallel without two of them sharing one.
  const temporary = `.${process.pid}.tmp`;
  await writeFile(join(dir, `${name}.ext`), extensions);
  const serialBytes = randomBytes(16);
  serialBytes[0] = serialBytes[0]! & 0x7f; // a positive INTEGER
  const serial = `0x${serialBytes.toString('hex')}`;
  // One openssl run makes the key and the certificate signed by the CA (`req -CA`, OpenSSL 3):
  // half the processes of a CSR then `x509 -req`, ~0.1 s of CPU on a first `dnslb up` of the example.
  // Its own configuration, so that the system's (v3_ca: CA:TRUE) adds nothing to the certificate.
  const config = `${name}.cnf${temporary}`;
  await writeFile(join(dir, config), `[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n[server]\n${extensions}`);
  try {
    await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key${temporary}`, '-subj', `/CN=${options.names[0] ?? name}`, '-config', config, '-extensions', 'server', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial, '-days', String(options.days ?? 825), '-out', `${name}.pem${temporary}`], dir);
  } finally {
    await unlink(join(dir, config)).catch(() => undefined);
  }
  await unlink(certFile).catch(() => undefined);
  await rename(join(dir, `${name}.key${temporary}`), keyFile);
  await rename(join(dir, `${name}.pem${temporary}`), certFile);
  return { certFile, keyFile };
}

/** PEM text of the CA of `dir`, for clients to trust. */
export function readCertificateAuthority(dir: string): Promise<string> {
  return readFile(join(dir, 'ca.pem'), 'utf8');
}
