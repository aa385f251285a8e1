// Health that tells the truth, under a real `dnslb up` of the example (127.0.45.x): from the moment
// DNS listens, `dig pool01` four times a second never shows a healthy server missing (start-up:
// unknown is not down); a drain leaves the answer like a block does, and no answer after that names
// the draining server again; under a partition of one pair (loopback DROP rules both ways) no healthy
// server leaves the answer, and a server cut off from all its peers leaves it while the others stay.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PoolStatus } from '../../src/cli/commands/admin-client.ts';
import { dig, REPO } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { freePort } from '../helpers/free-port.ts';
import { runDnslb } from '../helpers/cli.ts';
import { start, waitUntil, type Running } from '../helpers/process.ts';
import { exampleTopology, tcpBetweenServers } from '../helpers/up.ts';

const run = promisify(execFile);
const NET = '127.0.45';
const FRONTENDS = [`${NET}.11`, `${NET}.12`, `${NET}.13`];

interface Sample {
  atMs: number;
  addresses: string[];
}

/** Asks DNS for the pool answer four times a second, from before it listens; keeps the answers it got. */
class Digger {
  readonly samples: Sample[] = [];
  /** The last dig that brought no answer (diagnostics). */
  lastFailure = '';
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly server: { address: string; port: number }) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const startedMs = Date.now();
      try {
        const result = await dig(this.server, ['pool01.contoso.com', 'A']);
        if (result.status === 'NOERROR') this.samples.push({ atMs: Date.now(), addresses: result.answer.map((record) => record.data).sort() });
        else this.lastFailure = `${new Date().toISOString()} ${result.status}`;
      } catch (error) {
        // Not listening yet, or a lost datagram: no answer is not an answer without a server.
        this.lastFailure = `${new Date().toISOString()} ${(error as Error).message.split('\n')[0]}`;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 250 - (Date.now() - startedMs))));
    }
  }

  /** Waits for answers dug after `atMs`; says what went wrong when none come. */
  async waitPast(atMs: number): Promise<void> {
    await eventually(() => assert.ok(this.since(atMs).length > 0, `no answer since ${new Date(atMs).toISOString()}; ${this.samples.length} in all, last failure: ${this.lastFailure}`), { timeoutMs: 20_000 });
  }

  since(atMs: number): Sample[] {
    return this.samples.filter((sample) => sample.atMs >= atMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/**
 * Drops every packet between two loopback addresses, both ways, until the returned function is called;
 * the rules are removed one by one, exactly as they were inserted.
 */
async function partition(pairs: readonly (readonly [string, string])[]): Promise<() => Promise<void>> {
  const rules: string[][] = [];
  const remove = async (): Promise<void> => {
    for (const rule of rules.splice(0)) await run('iptables', ['-D', ...rule]);
  };
  try {
    for (const [a, b] of pairs) {
      for (const [from, to] of [[a, b], [b, a]] as const) {
        assert.ok(from.startsWith('127.') && to.startsWith('127.'), 'partitions only on loopback');
        const rule = ['INPUT', '-s', `${from}/32`, '-d', `${to}/32`, '-j', 'DROP'];
        await run('iptables', ['-I', ...rule]);
        rules.push(rule);
      }
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return remove;
}

describe('health by consensus under dnslb up', () => {
  let dataDir: string;
  let up: Running;
  let digger: Digger;
  const cli = (...args: string[]) => runDnslb(['--data-dir', dataDir, ...args]);
  const status = async (): Promise<PoolStatus> => {
    const result = await cli('pool', 'status', '--json');
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PoolStatus;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'dnslb-health-'));
    const dnsPort = await freePort(`${NET}.1`);
    const topologyFile = join(dataDir, 'topology.yaml');
    await writeFile(topologyFile, await exampleTopology(NET, dnsPort, tcpBetweenServers));
    const adminPort = await freePort('127.0.0.1');
    digger = new Digger({ address: `${NET}.1`, port: dnsPort });
    up = start(process.execPath, ['bin/dnslb.js', '--data-dir', dataDir, 'up', topologyFile, '--no-tls', '--admin-listen', `127.0.0.1:${adminPort}`], { cwd: REPO });
    await waitUntil('dnslb up running', () => up.output().includes('dnslb up: running'), { process: up, timeoutMs: 90_000 });
  });
  after(async () => {
    await digger?.stop();
    await up?.stop(10_000);
  });

  test('start-up: from the first answer DNS gives, no answer leaves out a healthy server', async () => {
    // Until every frontend has been seen up by both of its peers (the pool's consensus is settled), and 3 s more.
    await eventually(async () => {
      const servers = (await status()).servers.filter((entry) => entry.pool === 'pool01.contoso.com');
      for (const entry of servers) assert.ok(entry.health?.alive === 'up' && entry.health.up === 3, `${entry.server}: ${JSON.stringify(entry.health)}`);
    }, { timeoutMs: 30_000 });
    const settledMs = Date.now();
    await digger.waitPast(settledMs + 3000);
    assert.ok(digger.samples.length >= 8, `${digger.samples.length} answers`);
    const short = digger.samples.filter((sample) => sample.addresses.join(' ') !== FRONTENDS.join(' '));
    console.log(`# start-up: ${digger.samples.length} answers over ${Math.round((Date.now() - digger.samples[0]!.atMs) / 1000)} s from the first, ${short.length} without every frontend`);
    assert.deepEqual(short, [], 'every answer names the three frontends');
  });

  test('a drain leaves the answer as a block does, and no later answer names the draining server', async () => {
    for (const [action, undo, server, address] of [['block', 'unblock', 'fe3.contoso.com', FRONTENDS[2]!], ['drain', 'resume', 'fe2.contoso.com', FRONTENDS[1]!]] as const) {
      const result = await cli('server', action, server);
      assert.equal(result.code, 0, result.stderr);
      const returnedMs = Date.now();
      let leftMs = 0;
      await eventually(() => {
        const gone = digger.since(returnedMs).find((sample) => !sample.addresses.includes(address));
        assert.ok(gone, `${server} still answered after ${action}`);
        leftMs = gone.atMs;
      }, { timeoutMs: 20_000 });
      // A second of answers after it left: none names it again.
      await digger.waitPast(leftMs + 1000);
      const back = digger.since(leftMs).filter((sample) => sample.addresses.includes(address));
      console.log(`# ${action} ${server}: out of the answer ${leftMs - returnedMs} ms after the command returned (dig every 250 ms)`);
      assert.deepEqual(back, [], `after ${action}, no answer names ${server}`);
      assert.equal((await cli('server', undo, server)).code, 0);
      const undoneMs = Date.now();
      await eventually(() => assert.ok(digger.since(undoneMs).some((sample) => sample.addresses.includes(address))), { timeoutMs: 20_000 });
    }
  });

  /** What reporter says of server in the store, through pool status. */
  const reported = async (reporter: string, server: string): Promise<string | undefined> =>
    (await status()).servers.find((entry) => entry.server === server)?.liveness.find((record) => record.reporter === reporter)?.state;
  const everyoneSeesAllUp = () => eventually(async () => {
    const servers = (await status()).servers.filter((entry) => entry.pool === 'pool01.contoso.com');
    for (const entry of servers) assert.ok(entry.health?.alive === 'up' && entry.health.down === 0, `${entry.server}: ${JSON.stringify(entry.health)}`);
  }, { timeoutMs: 30_000 });

  test('a partition of one pair (fe1 ⟷ fe2, fe3 sees both): each reports the other down, no server leaves the answer', async () => {
    await everyoneSeesAllUp();
    const cutMs = Date.now();
    const heal = await partition([[FRONTENDS[0]!, FRONTENDS[1]!]]);
    try {
      await eventually(async () => {
        assert.equal(await reported('fe1.contoso.com', 'fe2.contoso.com'), 'down');
        assert.equal(await reported('fe2.contoso.com', 'fe1.contoso.com'), 'down');
      }, { timeoutMs: 30_000 });
      const bothDownMs = Date.now();
      // Two more seconds of answers with the pair reporting each other down.
      await digger.waitPast(bothDownMs + 2000);
    } finally {
      await heal();
    }
    const partial = digger.since(cutMs).filter((sample) => sample.addresses.join(' ') !== FRONTENDS.join(' '));
    console.log(`# pair partition: ${digger.since(cutMs).length} answers, ${partial.length} without every frontend`);
    assert.deepEqual(partial, [], 'every answer names the three frontends');
    await everyoneSeesAllUp();
  });

  test('a partition of one server from all (fe3): it leaves the answer, fe1 and fe2 never do', async () => {
    const cutMs = Date.now();
    const heal = await partition([[FRONTENDS[2]!, FRONTENDS[0]!], [FRONTENDS[2]!, FRONTENDS[1]!]]);
    let outMs = 0;
    try {
      await eventually(async () => {
        const out = digger.since(cutMs).find((sample) => !sample.addresses.includes(FRONTENDS[2]!));
        assert.ok(out, `fe3 still in the answer: ${JSON.stringify((await status()).servers.filter((entry) => entry.pool === 'pool01.contoso.com').map((entry) => [entry.server, entry.health, entry.liveness]))}`);
        outMs = out.atMs;
      }, { timeoutMs: 30_000 });
      // fe3, cut off, reports both others down meanwhile: a minority of one.
      await eventually(async () => {
        assert.equal(await reported('fe3.contoso.com', 'fe1.contoso.com'), 'down');
        assert.equal(await reported('fe3.contoso.com', 'fe2.contoso.com'), 'down');
      }, { timeoutMs: 30_000 });
      const reportedMs = Date.now();
      await digger.waitPast(reportedMs + 2000);
    } finally {
      await heal();
    }
    console.log(`# fe3 cut off from all: out of the answer ${outMs - cutMs} ms after the cut (heartbeat 1000 ms × failAfter 3)`);
    const missingHealthy = digger.since(cutMs).filter((sample) => !sample.addresses.includes(FRONTENDS[0]!) || !sample.addresses.includes(FRONTENDS[1]!));
    assert.deepEqual(missingHealthy, [], 'fe1 and fe2 are in every answer');
    const backIn = digger.since(outMs).filter((sample) => sample.addresses.includes(FRONTENDS[2]!) && sample.atMs < outMs + 2000);
    assert.deepEqual(backIn, [], 'fe3 does not flap back while cut off');
    await everyoneSeesAllUp();
  });
});
