// A real etcd server (Debian's etcd-server) for tests: one member on a loopback address, free
// client and peer ports, its own temporary data directory; stopped by PID and cleaned up.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { start, waitUntil, type Running } from './process.ts';

export interface EtcdServer {
  /** host:port of the client URL, as `--store etcd://…` takes it. */
  endpoint: string;
  /** `etcd://host:port`, or `etcds://host:port` when started with TLS. */
  url: string;
  dataDir: string;
  process: Running;
  /** Stops the member (SIGTERM, then SIGKILL); its data directory stays, so start() can bring it back. */
  stop(): Promise<void>;
  /** Starts the member again on the same ports and data directory (after stop()). */
  start(): Promise<void>;
  /** Stops it and removes the data directory. */
  dispose(): Promise<void>;
}

/** The address tests of the etcd backend use (127.0.30.x is reserved for them). */
export const ETCD_TEST_ADDRESS = '127.0.30.1';

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** TLS on the client URL: etcd's certificate, and with clientCertAuth the CA clients' certificates must be signed by. */
export interface EtcdTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** --client-cert-auth: a client must present a certificate signed by caFile (the health check uses certFile/keyFile). */
  clientCertAuth?: boolean;
}

/** GET /health over HTTPS, with the server's own certificate as the client's (it has clientAuth usage). */
async function healthOverTls(url: string, tls: EtcdTlsFiles): Promise<boolean> {
  const [ca, cert, key] = await Promise.all([readFile(tls.caFile), readFile(tls.certFile), readFile(tls.keyFile)]);
  return new Promise((resolve) => {
    const request = https.get(`${url}/health`, { ca, cert, key, timeout: 2000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(response.statusCode === 200 && /"health":\s*"true"/.test(body)));
    });
    request.on('error', () => resolve(false));
    request.on('timeout', () => request.destroy());
  });
}

/**
 * Starts etcd and resolves once it serves a request over its client URL. `netns`: inside that network
 * namespace (a test's own, fresh one: etcd's usual ports 2379/2380 are free there), on `address`.
 */
export async function startEtcd(options: { address?: string; tls?: EtcdTlsFiles; netns?: string } = {}): Promise<EtcdServer> {
  const address = options.address ?? ETCD_TEST_ADDRESS;
  const tls = options.tls;
  const dataDir = await mkdtemp(join(tmpdir(), 'dnslb-etcd-'));
  const clientPort = options.netns ? 2379 : await freePort(address);
  let peerPort = options.netns ? 2380 : await freePort(address);
  while (peerPort === clientPort) peerPort = await freePort(address);
  const clientUrl = `${tls ? 'https' : 'http'}://${address}:${clientPort}`;
  const peerUrl = `http://${address}:${peerPort}`;
  const args = [
    '--name', 'dnslb-test',
    '--data-dir', join(dataDir, 'member'),
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `dnslb-test=${peerUrl}`,
    '--initial-cluster-state', 'new',
    '--log-level', 'warn',
    // Keep the test member light on a shared machine: no periodic work of its own.
    '--auto-compaction-retention', '0',
    ...(tls ? ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile, ...(tls.clientCertAuth ? ['--client-cert-auth'] : [])] : []),
  ];
  let running: Running | undefined;
  const launch = async (): Promise<void> => {
    const child = start('etcd', args, options.netns ? { netns: options.netns } : {});
    running = child;
    server.process = child;
    // The client port accepting a connection is not enough: etcd answers /health once it serves.
    await waitUntil(
      `etcd on ${clientUrl}`,
      async () => {
        if (!(await answers(address, clientPort))) return false;
        if (tls) return healthOverTls(clientUrl, tls);
        const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
        return response.ok && ((await response.json()) as { health?: string }).health === 'true';
      },
      { process: child, timeoutMs: 30_000 },
    );
  };
  const server: EtcdServer = {
    endpoint: `${address}:${clientPort}`,
    url: `${tls ? 'etcds' : 'etcd'}://${address}:${clientPort}`,
    dataDir,
    process: undefined as unknown as Running,
    async stop() {
      await running?.stop();
      running = undefined;
    },
    async start() {
      if (running) return;
      await launch();
    },
    async dispose() {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await launch();
  } catch (error) {
    await server.dispose();
    throw error;
  }
  return server;
}
