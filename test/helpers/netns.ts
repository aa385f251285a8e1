// Hosts for multi-host tests (DESIGN §4): each host a network namespace of its own (`dnslbt-<name>`)
// with one veth `eth0` to a bridge that lives in a namespace of its own too (`dnslbt-sw`), addresses
// in 10.217.0.0/24; the test process joins the bridge through one veth in the root namespace
// (`dnslbt-host`, 10.217.0.1), so it can dig, sign users in and read etcd like any other host.
// Everything is created by name and removed by name at the end — also when the test fails or the
// process is killed by a signal — and nothing else on the machine is touched. Needs root and iproute2.
import { execFileSync } from 'node:child_process';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { start, type Running } from './process.ts';

const run = promisify(execFile);

/** Every namespace and root-namespace link this helper creates starts with this. */
export const NETNS_PREFIX = 'dnslbt-';
/** The test range (a /24 used by no one else on the machine). */
export const TEST_NET = '10.217.0';
const SWITCH = `${NETNS_PREFIX}sw`;
const ROOT_LINK = `${NETNS_PREFIX}host`;
const ROOT_ADDRESS = `${TEST_NET}.1`;

export interface TestHost {
  name: string;
  /** The namespace: `dnslbt-<name>`. */
  netns: string;
  address: string;
}

export interface TestNet {
  hosts: Map<string, TestHost>;
  /** The root namespace's address on the bridge (where the test process speaks from). */
  rootAddress: string;
  /** Starts `command` inside the host's namespace; stopped by PID by dispose() at the latest. */
  spawn(host: string, command: string, args: readonly string[], options?: { cwd?: string }): Running;
  /** The host vanishes without a word: its link goes down inside its namespace (no RST, no ICMP). */
  cut(host: string): Promise<void>;
  /** Its link comes back. */
  restore(host: string): Promise<void>;
  /** Stops every process started in a namespace and removes the namespaces and the root link. */
  dispose(): Promise<void>;
}

const ip = (...args: string[]) => run('ip', args);

/** Removes what a run of this helper may have left (by name only); never throws. */
function removeSync(names: readonly string[]): void {
  for (const netns of [...names.map((name) => `${NETNS_PREFIX}${name}`), SWITCH]) {
    try {
      execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
    } catch {
      // not there
    }
  }
  try {
    // Goes with its peer in dnslbt-sw; deleted here too in case the switch namespace was already gone.
    execFileSync('ip', ['link', 'del', ROOT_LINK], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

/** Creates one namespace per host (`names[i]` gets `addresses[i]`, in 10.217.0.0/24) on one bridge. */
export async function createTestNet(hosts: readonly { name: string; address: string }[]): Promise<TestNet> {
  for (const { name, address } of hosts) {
    if (!/^[a-z0-9]{1,8}$/.test(name)) throw new Error(`host name ${name}: 1–8 lower-case letters or digits`);
    if (!address.startsWith(`${TEST_NET}.`) || address === ROOT_ADDRESS) throw new Error(`host address ${address} is not in ${TEST_NET}.0/24 (or is the root's ${ROOT_ADDRESS})`);
  }
  const names = hosts.map((host) => host.name);
  const processes = new Set<Running>();
  let disposed = false;
  const killSync = () => {
    for (const process_ of processes) {
      try {
        process.kill(process_.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  // A test killed by a signal (the runner's timeout, Ctrl-C) still removes its namespaces.
  const onExit = () => {
    if (disposed) return;
    killSync();
    removeSync(names);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  removeSync(names);
  const net: TestNet = {
    hosts: new Map(hosts.map(({ name, address }) => [name, { name, netns: `${NETNS_PREFIX}${name}`, address }])),
    rootAddress: ROOT_ADDRESS,
    spawn(host, command, args, options = {}) {
      const entry = net.hosts.get(host);
      if (!entry) throw new Error(`no host ${host}`);
      const child = start(command, args, { ...options, netns: entry.netns });
      processes.add(child);
      return child;
    },
    async cut(host) {
      await ip('-n', `${NETNS_PREFIX}${host}`, 'link', 'set', 'eth0', 'down');
    },
    async restore(host) {
      await ip('-n', `${NETNS_PREFIX}${host}`, 'link', 'set', 'eth0', 'up');
    },
    async dispose() {
      if (disposed) return;
      await Promise.all([...processes].map((process_) => process_.stop(3000)));
      disposed = true;
      removeSync(names);
      process.off('exit', onExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
  try {
    await ip('netns', 'add', SWITCH);
    await ip('-n', SWITCH, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', SWITCH, 'link', 'set', 'br0', 'up');
    for (const { name, address } of hosts) {
      const netns = `${NETNS_PREFIX}${name}`;
      await ip('netns', 'add', netns);
      await ip('-n', netns, 'link', 'set', 'lo', 'up');
      await ip('link', 'add', 'eth0', 'netns', netns, 'type', 'veth', 'peer', 'name', name, 'netns', SWITCH);
      await ip('-n', SWITCH, 'link', 'set', name, 'master', 'br0', 'up');
      await ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', netns, 'link', 'set', 'eth0', 'up');
    }
    await ip('link', 'add', ROOT_LINK, 'type', 'veth', 'peer', 'name', 'root', 'netns', SWITCH);
    await ip('-n', SWITCH, 'link', 'set', 'root', 'master', 'br0', 'up');
    await ip('addr', 'add', `${ROOT_ADDRESS}/24`, 'dev', ROOT_LINK);
    await ip('link', 'set', ROOT_LINK, 'up');
  } catch (error) {
    await net.dispose();
    throw error;
  }
  return net;
}
