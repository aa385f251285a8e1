// A client of HAProxy's runtime API over its stats socket (HAProxy management guide §9.3): one
// command per connection, HAProxy answers and closes. What dnslb needs of it: set a server's admin
// state, and read the HLB's view of each server (`show servers state`, `show stat`).
import { createConnection } from 'node:net';
import { DnslbError } from '../shared/errors.ts';

/** The admin states dnslb sets (`set server <backend>/<server> state …`). */
export type HlbAdminState = 'ready' | 'drain' | 'maint';

/** srv_admin_state bits of `show servers state` (HAProxy's SRV_ADMF_*): forced by an operator, or inherited. */
const ADMIN_FORCED_MAINT = 0x01;
const ADMIN_INHERITED_MAINT = 0x02;
const ADMIN_CONFIG_MAINT = 0x04;
const ADMIN_FORCED_DRAIN = 0x08;
const ADMIN_INHERITED_DRAIN = 0x10;
const ADMIN_RESOLVER_MAINT = 0x20;
const ADMIN_HOSTNAME_MAINT = 0x40;
const ADMIN_ANY_MAINT = ADMIN_FORCED_MAINT | ADMIN_INHERITED_MAINT | ADMIN_CONFIG_MAINT | ADMIN_RESOLVER_MAINT | ADMIN_HOSTNAME_MAINT;

/** One row of `show servers state`: what the runtime API set, and what the checks found. */
export interface ServerState {
  backend: string;
  server: string;
  address: string;
  /** srv_op_state: 0 stopped (down), 1 starting, 2 running, 3 stopping. */
  operational: 'down' | 'starting' | 'up' | 'stopping';
  /** The admin state the bits amount to. */
  admin: HlbAdminState;
  adminBits: number;
}

/** One server row of `show stat`: HAProxy's own words for its status, sessions and last check. */
export interface ServerStat {
  backend: string;
  server: string;
  /** UP, DOWN, DRAIN, MAINT, NOLB, "UP 1/2" (going down), "DOWN 1/2" (coming up), "no check". */
  status: string;
  sessionsCurrent: number;
  sessionsTotal: number;
  /** L4OK, L7OK, L7STS (a status code HAProxy did not expect), L4CON (refused), SOCKERR, … */
  checkStatus: string;
}

const OPERATIONAL = ['down', 'starting', 'up', 'stopping'] as const;

export function adminStateOfBits(bits: number): HlbAdminState {
  if (bits & ADMIN_ANY_MAINT) return 'maint';
  if (bits & (ADMIN_FORCED_DRAIN | ADMIN_INHERITED_DRAIN)) return 'drain';
  return 'ready';
}

/** `show servers state` (format version 1): a version line, a "# name name …" header, rows split by spaces. */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const header = lines.find((line) => line.startsWith('#'));
  if (!header) throw new DnslbError('HLB_RUNTIME', `show servers state: no header in HAProxy's answer: ${text.slice(0, 200)}`);
  const names = header.replace(/^#\s*/, '').split(/\s+/);
  const at = (field: string): number => {
    const index = names.indexOf(field);
    if (index < 0) throw new DnslbError('HLB_RUNTIME', `show servers state: no ${field} column in ${header}`);
    return index;
  };
  const [backend, server, address, operational, admin] = ['be_name', 'srv_name', 'srv_addr', 'srv_op_state', 'srv_admin_state'].map(at) as [number, number, number, number, number];
  return lines
    .filter((line) => !line.startsWith('#') && line.includes(' '))
    .map((line) => {
      const fields = line.split(/\s+/);
      const bits = Number(fields[admin]);
      return {
        backend: fields[backend]!,
        server: fields[server]!,
        address: fields[address]!,
        operational: OPERATIONAL[Number(fields[operational])] ?? 'down',
        admin: adminStateOfBits(bits),
        adminBits: bits,
      };
    });
}

/** `show stat` CSV: the server rows (not FRONTEND/BACKEND), by the header's column names. */
export function parseStat(text: string): ServerStat[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const header = lines[0]?.replace(/^#\s*/, '').split(',');
  if (!header || !header.includes('svname')) throw new DnslbError('HLB_RUNTIME', `show stat: no CSV header in HAProxy's answer: ${text.slice(0, 200)}`);
  const column = (fields: string[], name: string): string => fields[header.indexOf(name)] ?? '';
  return lines
    .slice(1)
    .map((line) => line.split(','))
    .filter((fields) => !['FRONTEND', 'BACKEND'].includes(column(fields, 'svname')))
    .map((fields) => ({
      backend: column(fields, 'pxname'),
      server: column(fields, 'svname'),
      status: column(fields, 'status'),
      sessionsCurrent: Number(column(fields, 'scur')) || 0,
      sessionsTotal: Number(column(fields, 'stot')) || 0,
      checkStatus: column(fields, 'check_status').replace(/^\* ?/, ''),
    }));
}

export class HaproxyRuntime {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 2000,
  ) {}

  /** Sends one command and returns HAProxy's whole answer; HLB_RUNTIME when the socket cannot be reached. */
  command(line: string): Promise<string> {
    if (/[\n;]/.test(line)) throw new DnslbError('HLB_RUNTIME', `one command at a time, without ";" or a newline: ${JSON.stringify(line)}`);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = createConnection(this.socketPath);
      const fail = (why: string, cause?: unknown) => {
        socket.destroy();
        reject(new DnslbError('HLB_RUNTIME', `HAProxy runtime API ${this.socketPath}: ${line}: ${why}`, { cause }));
      };
      socket.setTimeout(this.timeoutMs, () => fail(`no answer within ${this.timeoutMs} ms`));
      socket.on('error', (error: NodeJS.ErrnoException) => fail(error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? `HAProxy is not running there (${error.code})` : error.message, error));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.end(`${line}\n`);
    });
  }

  /** `set server BACKEND/SERVER state STATE`; HAProxy answers nothing on success, a reason otherwise. */
  async setState(backend: string, server: string, state: HlbAdminState): Promise<void> {
    const answer = (await this.command(`set server ${backend}/${server} state ${state}`)).trim();
    if (answer !== '') throw new DnslbError('HLB_RUNTIME', `set server ${backend}/${server} state ${state}: HAProxy says: ${answer}`);
  }

  async serversState(backend?: string): Promise<ServerState[]> {
    return parseServersState(await this.command(backend === undefined ? 'show servers state' : `show servers state ${backend}`));
  }

  async stat(): Promise<ServerStat[]> {
    return parseStat(await this.command('show stat'));
  }
}
