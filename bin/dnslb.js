#!/usr/bin/env node
// The dnslb command: loads the TypeScript sources through tsx, so `npx dnslb` works right after `npm install`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
