// dnslb server drain|resume|block|unblock|stop|start|decommission SERVER: admin actions on a running
// pool through its admin API (found through --data-dir), or with --store DIR|etcd://… on the store
// directly (distributed mode: the servers and DNS follow the store). Actions that take a server out
// of service are refused below the pool's quorum unless --force; drain --wait shows the drain until
// it ends.
import type { Command } from 'commander';
import { PoolAdmin, type Action } from '../../admin/pool-api.ts';
import { systemClock } from '../../shared/clock.ts';
import { DnslbError } from '../../shared/errors.ts';
import type { Store } from '../../store/store.ts';
import { adminCall, type PoolStatus, type ServerEntry } from './admin-client.ts';
import { stateOf } from './pool.ts';
import { defaultActor, openStoreOf, storeSpecOf, withStoreOption } from './store-options.ts';

const ACTIONS: [string, string][] = [
  ['drain', 'stop new connections and calls, hand the users over in batches, keep calls until they end'],
  ['resume', 'end a drain: accept again; the users come back in batches'],
  ['block', 'remove the server from its pool FQDN and its own FQDN in DNS (one serial)'],
  ['unblock', 'publish the server in DNS again'],
  ['stop', 'stop the server process (under dnslb up); it stays stopped until start'],
  ['start', 'start a server process stopped by hand'],
  ['decommission', 'publish a topology without the server: it drains and leaves server-to-server routing'],
];

interface ActionOptions {
  force?: boolean;
  reason?: string;
  wait?: boolean;
  json?: boolean;
}

function bar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((width * done) / total);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** Polls the pool status until the server is drained; one progress line, redrawn on a terminal. */
async function waitForDrain(command: Command, server: string): Promise<ServerEntry> {
  let startLeft: number | undefined;
  for (;;) {
    const status = (await adminCall(command, 'GET', '/status')) as PoolStatus;
    const entry = status.servers.find((candidate) => candidate.server === server);
    if (!entry) throw new DnslbError('ADMIN_NOT_FOUND', `${server} is no longer in the pool status`);
    const state = stateOf(entry);
    const bindings = entry.status?.bindings.bindings ?? 0;
    const dialogs = entry.status?.dialogs.active ?? 0;
    const left = bindings + dialogs;
    startLeft ??= Math.max(left, 1);
    const line = `${bar(startLeft - Math.min(left, startLeft), startLeft)} ${server} ${state}: ${bindings} bindings and ${dialogs} dialogs left`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}\u001b[K`);
    else console.log(line);
    if (state === 'drained') {
      if (process.stdout.isTTY) process.stdout.write('\n');
      return entry;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Distributed mode: waits until the server reports itself drained in the store (its liveness report). */
async function waitForDrainInStore(store: Store, server: string): Promise<void> {
  let last = '';
  for (;;) {
    const own = (await store.liveness()).filter((record) => record.server === server && record.reporter === server).sort((a, b) => b.atMs - a.atMs)[0];
    const line = `${server} ${own?.state ?? 'unknown (no report of its own)'}`;
    if (line !== last) console.log(line);
    last = line;
    if (own?.state === 'drained') return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export function registerServerAdmin(program: Command): void {
  const server = program.commands.find((command) => command.name() === 'server');
  if (!server) throw new Error('registerServerAdmin needs the server command registered first');
  for (const [action, description] of ACTIONS) {
    const command = server
      .command(action)
      .description(description)
      .argument('<server>', 'server FQDN')
      .option('--reason <text>', 'why (recorded in the store with who and when)')
      .option('--json', 'print the admin API answer as JSON');
    withStoreOption(command);
    if (['drain', 'block', 'stop', 'decommission'].includes(action)) command.option('--force', 'do it even below the pool quorum');
    if (action === 'drain') command.option('--wait', 'show the drain (bindings and dialogs left) until the server is drained');
    command.action(async (fqdn: string, options: ActionOptions, self: Command) => {
      const target = fqdn.toLowerCase();
      const body = { force: options.force === true, by: defaultActor(), reason: options.reason ?? `dnslb server ${action}` };
      const print = (result: { quorum?: { reason: string }; version?: number }): void => {
        if (options.json) console.log(JSON.stringify(result, null, 2));
        else console.log(`${action} ${target}: done${result.version ? ` (topology version ${result.version})` : ''}${result.quorum ? `; ${result.quorum.reason}` : ''}`);
      };
      if (storeSpecOf(self) !== undefined) {
        if (action === 'stop' || action === 'start') {
          throw new DnslbError('CLI_USAGE', `${action} --store: stop and start act on the processes of dnslb up (through its admin API); in distributed mode ${action} the node's own process on its machine, or use drain/resume`);
        }
        const store = await openStoreOf(self, { mustExist: true });
        try {
          print(await new PoolAdmin({ store, clock: systemClock }).act(action as Action, target, body));
          if (action === 'drain' && options.wait) await waitForDrainInStore(store, target);
        } finally {
          await store.close();
        }
        return;
      }
      print((await adminCall(self, 'POST', `/servers/${encodeURIComponent(target)}/${action}`, body)) as { quorum?: { reason: string }; version?: number });
      if (action === 'drain' && options.wait) {
        const entry = await waitForDrain(self, target);
        const drain = entry.status?.drain;
        console.log(`${target} drained${drain ? `: ${JSON.stringify(drain)}` : ''}`);
      }
    });
  }
}
