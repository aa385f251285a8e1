#!/usr/bin/env node
// `npm install` / `npm ci` run this (package.json "install"): builds native/udp-batch with node-gyp
// against the Node headers on this machine. Without a C compiler the build fails; the install
// goes on and the DNS server answers UDP through node:dgram instead (it says so when it starts,
// and `npm test` fails, since the tests expect the batch engine where it can be built).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside npm's lifecycle npm_config_node_gyp points at npm's own node-gyp; by hand, the one on PATH.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    '\ndnslb: could not build native/udp-batch (needs python3, make and a C compiler).\n' +
      'dnslb still works: the DNS server answers UDP through node:dgram, several times slower.\n' +
      'Install build-essential and run `npm rebuild dnslb` (or `node scripts/build-native.js`) to build it.\n',
  );
}
