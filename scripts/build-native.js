#!/usr/bin/env node
// `npm install` / `npm ci` run this (package.json "install"): builds native/udp-batch with node-gyp
// against the Node headers on this machine. Without a C compiler the build fails; the install
// goes on and the DNS server answers UDP through node:dgram instead (it says so when it starts,
// and `npm test` fails, since the tests expect the batch engine where it can be built).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside npm's lifecycle npm_config_node_gyp points at npm's own node-gyp; by hand, the node-gyp
// bundled with the npm beside this node, else one on PATH.
const bundled = join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
const gyp = process.env.npm_config_node_gyp ?? (existsSync(bundled) ? bundled : undefined);
// Build against the headers installed with this node (Debian's nodejs, the official tarballs) so
// that no download is needed; npm's own nodedir setting wins when there is one.
const prefix = join(dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined);
const gypArgs = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const [command, args] = gyp ? [process.execPath, [gyp, ...gypArgs]] : ['node-gyp', gypArgs];
const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    '\ndnslb: could not build native/udp-batch (node-gyp failed, see above; it needs python3, make, a C compiler and Node\'s headers).\n' +
      'dnslb still works: the DNS server answers UDP through node:dgram, at about half the speed.\n' +
      'Install build-essential and run `npm rebuild dnslb` (or `node scripts/build-native.js`) to build it.\n',
  );
}
