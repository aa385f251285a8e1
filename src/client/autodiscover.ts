// Lync 2013's first discovery step: the Autodiscover service through lyncdiscoverinternal.<domain>
// (internal DNS), then lyncdiscover.<domain>, over HTTPS to the Web services VIP. One GET of the root
// document (src/webservices/autodiscover.ts serves it), answering where the pool's SIP access is.
import { request } from 'node:https';
import { DnslbError } from '../shared/errors.ts';

/** Lync's path; the Web services of every Front End and Director server answer it. */
export const AUTODISCOVER_PATH = '/autodiscover/autodiscoverservice.svc/root';

export interface AutodiscoverOptions {
  /** PEM CA(s) that sign the servers' certificates (TLS passes through the HLB to a server); the system's when absent. */
  ca?: string | Buffer;
  /** The HTTPS port of the VIP; Lync clients use 443. */
  port?: number;
  /** For the whole GET (connect, TLS, answer). */
  timeoutMs?: number;
}

export interface SipAccessPoint {
  fqdn: string;
  port: number;
  transport: 'tls' | 'tcp';
}

/** What the client takes from the document: where to sign in, and who answered (behind the HLB). */
export interface AutodiscoverAnswer {
  accessLocation: 'Internal' | 'External';
  access: SipAccessPoint[];
  server: string | undefined;
}

const LARGEST_DOCUMENT_BYTES = 64 * 1024;

function isAccess(value: unknown): value is { fqdn: string; port: number } {
  const access = value as { fqdn?: unknown; port?: unknown } | null;
  return typeof access?.fqdn === 'string' && Number.isInteger(access.port);
}

/** The SIP access points a document names, the client's own transport first. Internal: the pool; External: the Access Edge (TLS). */
export function accessOf(document: unknown): AutodiscoverAnswer {
  const body = document as { AccessLocation?: unknown; SipAccess?: unknown; SipClientInternalAccess?: unknown; SipClientExternalAccess?: unknown; Server?: unknown } | null;
  if (body === null || typeof body !== 'object') throw new DnslbError('CLIENT_DISCOVERY', 'the autodiscover answer is not a JSON object');
  const location = body.AccessLocation === 'External' ? 'External' : 'Internal';
  const access: SipAccessPoint[] = [];
  if (location === 'External') {
    if (isAccess(body.SipClientExternalAccess)) access.push({ fqdn: body.SipClientExternalAccess.fqdn, port: body.SipClientExternalAccess.port, transport: 'tls' });
  } else {
    if (Array.isArray(body.SipAccess)) {
      for (const entry of body.SipAccess as unknown[]) {
        const transport = (entry as { transport?: unknown }).transport;
        if (isAccess(entry) && (transport === 'tls' || transport === 'tcp')) access.push({ fqdn: entry.fqdn, port: entry.port, transport });
      }
    }
    if (access.length === 0 && isAccess(body.SipClientInternalAccess)) access.push({ fqdn: body.SipClientInternalAccess.fqdn, port: body.SipClientInternalAccess.port, transport: 'tls' });
  }
  if (access.length === 0) throw new DnslbError('CLIENT_DISCOVERY', `the autodiscover answer names no SIP access for ${location.toLowerCase()} clients`);
  return { accessLocation: location, access, server: typeof body.Server === 'string' ? body.Server : undefined };
}

/**
 * GETs the autodiscover root from `address` as `host` (SNI and Host: the certificate must name it,
 * so the client checks it is talking to the deployment's Web services, not to whoever holds the address).
 */
export function fetchAutodiscover(address: string, host: string, domain: string, options: AutodiscoverOptions): Promise<AutodiscoverAnswer> {
  const port = options.port ?? 443;
  const timeoutMs = options.timeoutMs ?? 3000;
  return new Promise((resolve, reject) => {
    const fail = (why: string, cause?: unknown) => reject(new DnslbError('CLIENT_DISCOVERY', `https://${host}:${port} (${address}): ${why}`, { cause }));
    const outgoing = request(
      { host: address, port, path: `${AUTODISCOVER_PATH}?originalDomain=${encodeURIComponent(domain)}`, method: 'GET', servername: host, headers: { host, accept: 'application/json' }, agent: false, timeout: timeoutMs, ...(options.ca ? { ca: options.ca } : {}) },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > LARGEST_DOCUMENT_BYTES) {
            response.destroy();
            fail(`answer larger than ${LARGEST_DOCUMENT_BYTES} bytes`);
          } else chunks.push(chunk);
        });
        response.on('end', () => {
          if (response.statusCode !== 200) return fail(`HTTP ${response.statusCode}`);
          try {
            resolve(accessOf(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
          } catch (error) {
            fail(error instanceof DnslbError ? error.message : `not JSON (${(error as Error).message})`, error);
          }
        });
        response.on('error', (error) => fail(error.message, error));
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    outgoing.on('error', (error: NodeJS.ErrnoException) => fail(error.code && !error.message.includes(error.code) ? `${error.code} ${error.message}` : error.message, error));
    outgoing.end();
  });
}
