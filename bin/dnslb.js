#!/usr/bin/env node
// The dnslb command: runs dist/dnslb.cjs, the JavaScript that scripts/build-js.js compiles from src/
// (at `npm install`), so neither the CLI nor any process it starts loads a TypeScript transpiler.
// When an input of that build changed since (a developer's edit, a checkout), it rebuilds first
// (well under a second of CPU), so what runs is always what src/ says. scripts/run-bundle.js loads
// it with V8's code cache, and maps stack traces to src/….ts lines.
import { fileURLToPath } from 'node:url';
import { BUNDLE, buildJs, buildStaleness } from '../scripts/build-js.js';
import { runBundle } from '../scripts/run-bundle.js';

// A process started by a dnslb supervisor (`dnslb up`, `dnslb node`) runs the build its parent checked:
// all children run the same code, and each start saves the stat of every source file.
if (process.env.DNSLB_BUILD_CHECKED !== '1' && buildStaleness() !== undefined) await buildJs();
const { main } = runBundle(fileURLToPath(new URL(`../${BUNDLE}`, import.meta.url))).exports;
process.exitCode = await main(process.argv);
