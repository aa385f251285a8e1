// dnslb certs issue: the pool CA and one certificate per SIP server (src/sip/certificates.ts, made with
// openssl), kept in DATA/tls. `dnslb up` makes them for every server when missing; in distributed mode
// the operator runs `dnslb certs issue --server FQDN` where the CA is (the admin machine's data dir:
// DATA/tls/ca.key never leaves it) and copies the three printed files to that server, which starts
// with `dnslb node --tls-cert … --tls-key … --tls-ca …`. Servers recognise each other by these
// certificates (mutual TLS between servers, frontend/peer-identity.ts): the subjectAltName carries the
// server's FQDN, which must match the published topology.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ensureCertificate, ensureCertificateAuthority } from '../../sip/certificates.ts';
import { DnslbError } from '../../shared/errors.ts';
import { canonicalServer } from '../../registrar/sequence.ts';
import { parseFile } from '../../topology/parse.ts';
import type { Pool, Server, Topology } from '../../topology/schema.ts';
import { dataDirOf, readPublished, withStoreOption } from './store-options.ts';

/** Pool kinds whose servers are SIP servers dnslb runs: all of them (an edge server also listens on its Access Edge address). */
export const RUNNABLE_KINDS: ReadonlySet<string> = new Set(['frontend', 'director', 'mediation', 'edge']);

export interface ServerCertificateFiles {
  server: string;
  certFile: string;
  keyFile: string;
  caFile: string;
}

/**
 * The names on a server's certificate: its FQDN first (what other servers match against the topology),
 * its pool's FQDN (clients reach it by the pool name), an edge server's Access Edge, Web Conferencing
 * and A/V FQDNs and addresses (remote clients and partners reach it there), with Web services their FQDNs and
 * lyncdiscover[internal].<domain> (TLS passes through the HLB to the server), and its addresses.
 */
function namesOf(topology: Topology, pool: Pool, server: Server): { names: string[]; ips: string[] } {
  const external = server.external;
  // An edge server's external interface: its Access Edge (and other service) addresses and FQDNs.
  const edgeIps = external ? [external.accessEdge, external.webConferencing, external.av].flatMap((pair) => [pair.ipv4, pair.ipv6]) : [];
  const ips = [server.ipv4, server.ipv6, ...edgeIps].filter((value): value is string => value !== undefined);
  const edgeNames = pool.edge ? [pool.edge.accessEdge.fqdn, pool.edge.webConferencing.fqdn, pool.edge.av.fqdn] : [];
  const web = pool.webServices ? [pool.webServices.internal?.fqdn, pool.webServices.external?.fqdn, ...topology.sipDomains.flatMap((domain) => [`lyncdiscoverinternal.${domain}`, `lyncdiscover.${domain}`])] : [];
  return { names: [server.fqdn, pool.fqdn, ...edgeNames, ...web.filter((name): name is string => name !== undefined)], ips };
}

/** The certificate of one SIP server of `topology` in DIR/tls (made with the pool CA there when missing or made for other names). */
export async function ensureServerCertificate(topology: Topology, dataDir: string, fqdn: string): Promise<ServerCertificateFiles> {
  const wanted = canonicalServer(fqdn);
  for (const pool of topology.pools) {
    const server = pool.servers.find((candidate) => candidate.fqdn === wanted);
    if (server === undefined) continue;
    if (!RUNNABLE_KINDS.has(pool.kind)) throw new DnslbError('CLI_USAGE', `${wanted} is in ${pool.kind} pool ${pool.fqdn}; dnslb runs the SIP servers of frontend, director, mediation and edge pools`);
    const dir = join(dataDir, 'tls');
    const issued = await ensureCertificate(dir, server.fqdn, namesOf(topology, pool, server));
    return { server: server.fqdn, certFile: issued.certFile, keyFile: issued.keyFile, caFile: join(dir, 'ca.pem') };
  }
  throw new DnslbError('CLI_USAGE', `${wanted} is not a server of the topology`);
}

/**
 * TLS out of the box for `dnslb up`: the pool CA in DATA/tls and one certificate per SIP server, made
 * the first time and kept. Clients trust DATA/tls/ca.pem; servers present theirs to each other.
 * `onReady` is told each server whose certificate exists, in topology order, as soon as it and every
 * server before it have theirs (`dnslb up` starts each server then, while the rest are being made).
 */
export async function ensurePoolCertificates(topology: Topology, dataDir: string, onReady: (fqdn: string) => void = () => undefined): Promise<void> {
  await ensureCertificateAuthority(join(dataDir, 'tls'));
  const servers = topology.pools.filter((pool) => RUNNABLE_KINDS.has(pool.kind)).flatMap((pool) => pool.servers.map((server) => server.fqdn));
  // A few openssl runs at a time: a first `dnslb up` of the example makes 14 certificates, which one
  // after another took about a second of its start.
  const workers = Math.min(servers.length, Math.max(2, availableParallelism() * 2));
  const made = new Set<number>();
  let announced = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < servers.length) {
        const index = next++;
        await ensureServerCertificate(topology, dataDir, servers[index]!);
        made.add(index);
        while (made.has(announced)) onReady(servers[announced++]!);
      }
    }),
  );
}

interface IssueOptions {
  server?: string;
  topology?: string;
  json?: boolean;
}

export function registerCerts(program: Command): void {
  const certs = program.command('certs').description('the pool CA and the servers\' certificates in DATA/tls (mutual TLS between servers, TLS for clients)');
  withStoreOption(
    certs
      .command('issue')
      .description('make (or keep) the certificate of one server, signed by the pool CA in DATA/tls (made when missing), and print the files to give `dnslb node`')
      .option('--server <fqdn>', 'the server (required); its names come from the published topology')
      .option('--topology <file>', 'take the server\'s names from this topology file instead of the store')
      .option('--json', 'print the files as JSON'),
  ).action(async (options: IssueOptions, command: Command) => {
    if (options.server === undefined) throw new DnslbError('CLI_USAGE', 'dnslb certs issue needs --server FQDN');
    const topology = options.topology !== undefined ? await parseFile(options.topology) : (await readPublished(command)).topology;
    const dataDir = dataDirOf(command);
    await ensureCertificateAuthority(join(dataDir, 'tls'));
    const files = await ensureServerCertificate(topology, dataDir, options.server);
    if (options.json) {
      console.log(JSON.stringify(files, null, 2));
      return;
    }
    console.log(`certificate of ${files.server} (signed by the pool CA ${files.caFile}):`);
    console.log(`  dnslb node --server ${files.server} --tls-cert ${files.certFile} --tls-key ${files.keyFile} --tls-ca ${files.caFile} …`);
    console.log('copy the three files to that server; the CA key stays here');
  });
}
