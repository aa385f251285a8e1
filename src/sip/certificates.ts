// Certificates for SIP over TLS made with the real `openssl` binary: a private CA and one server
// certificate per host (subjectAltName: its DNS names and IP addresses). `dnslb up` keeps them in the
// data dir so that a pool runs TLS out of the box; tests make throw-away ones the same way.
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
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

/** The CA in `dir` (ca.pem, ca.key), created when absent. EC P-256: fast to make, fast handshakes. */
export async function ensureCertificateAuthority(dir: string, options: { name?: string; days?: number } = {}): Promise<{ caFile: string; keyFile: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'ca.key');
  if (!(await exists(caFile)) || !(await exists(keyFile))) {
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
    await openssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', `/CN=${options.name ?? 'dnslb CA'}`, '-days', String(options.days ?? 3650), '-out', 'ca.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
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
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${options.names[0] ?? name}`, '-out', `${name}.csr`], dir);
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', String(options.days ?? 825), '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
  return { certFile, keyFile };
}

/** PEM text of the CA of `dir`, for clients to trust. */
export function readCertificateAuthority(dir: string): Promise<string> {
  return readFile(join(dir, 'ca.pem'), 'utf8');
}
