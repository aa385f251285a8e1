// The PEM files of `dnslb server --tls-cert/--tls-key/--tls-ca`, read into the TLS options of FrontEndServer.
import { readFile } from 'node:fs/promises';
import { DnslbError } from '../shared/errors.ts';

export interface TlsFiles {
  cert: string | Buffer;
  key: string | Buffer;
  /** Verifies peers on server-to-server TLS. */
  ca?: string | Buffer;
}

/** Reads PEM files for the TLS options; FRONTEND_TLS when one cannot be read. */
export async function readTlsFiles(files: { cert?: string; key?: string; ca?: string }): Promise<TlsFiles | undefined> {
  if (files.cert === undefined && files.key === undefined) return undefined;
  if (files.cert === undefined || files.key === undefined) throw new DnslbError('FRONTEND_TLS', '--tls-cert and --tls-key go together');
  const read = async (file: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new DnslbError('FRONTEND_TLS', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
    }
  };
  return { cert: await read(files.cert), key: await read(files.key), ca: files.ca === undefined ? undefined : await read(files.ca) };
}
