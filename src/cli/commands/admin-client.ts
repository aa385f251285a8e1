// How CLI verbs reach a running system: the admin endpoint and token recorded in --data-dir.
import type { Command } from 'commander';
import { readEndpoint, readToken } from '../../admin/credentials.ts';
import { callAdmin } from '../../admin/http-api.ts';
import { dataDirOf } from './store-options.ts';
import type { HlbServerView } from '../../hlb/follower.ts';

export async function adminCall(command: Command, method: string, path: string, body?: unknown): Promise<unknown> {
  const dataDir = dataDirOf(command);
  // One after the other: read together, whichever missing file failed first named the problem, so
  // the same empty data dir got one of two messages at random. No admin.json says it best: not running.
  const endpoint = await readEndpoint(dataDir);
  const token = await readToken(dataDir);
  return callAdmin(endpoint.url, token, method, path, body);
}

/** A server's entry in the pool admin API's GET /status. */
export interface ServerEntry {
  server: string;
  pool: string;
  kind: string;
  address: string;
  /** Edge servers: the Access Edge address (the external interface). */
  accessEdge?: string;
  adminState: { state: string; by: string; reason: string; atMs: number } | null;
  available: boolean;
  process: { state: string; pid: number | undefined; restarts: number; lastExit: string | undefined } | null;
  liveness: { reporter: string; state: string; atMs: number }[];
  /** The pool's consensus about the server (src/pool/health.ts); absent from an older admin API. */
  health?: { alive: 'up' | 'down' | 'unknown'; own: string | null; up: number; down: number; reason: string };
  status?: {
    state: string;
    topologyVersion: number;
    bindings: { users: number; bindings: number; bindingsPrimary: number; bindingsBackup: number };
    dialogs: { active: number };
    drain?: Record<string, unknown> | null;
    /** The server's own drain record while it drains or after (handed over so far, what is left). */
    resilience?: { drain?: { phase: string; handedOver: number; bindingsLeft: number; dialogsLeft: number } | null };
    /** Edge servers (src/edge/README.md "Status"): remote users connected through it. */
    edge?: { remoteUsers: number } | null;
  };
  /** The Web services HLB's view (`webServices.hlb: haproxy`); null for servers behind none. */
  hlb?: HlbServerView | null;
  error?: string;
}

export interface PoolStatus {
  topologyVersion: number;
  revision: number;
  dns: { state: string; pid: number | undefined } | null;
  /** Every pool of the published topology, in its order (older APIs: absent). */
  pools?: PoolEntry[];
  servers: ServerEntry[];
}

/** A pool in GET /status: `runs` is false for pools dnslb runs no process of (none now; older APIs said so of Edge pools). */
export interface PoolEntry {
  pool: string;
  kind: string;
  site: string;
  servers: string[];
  runs: boolean;
  hlb: string | null;
}
