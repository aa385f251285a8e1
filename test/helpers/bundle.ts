// Bundles a TypeScript entry point into one ESM file that plain `node` starts in ~0.1 s instead of
// ~0.5–2 s through tsx: tests that spawn hundreds of children (the store crash test) need that.
// esbuild comes with tsx (it is what tsx transforms with), so it is always installed beside it.
import { build } from 'esbuild';
import { join } from 'node:path';

export async function bundleForNode(entry: string, outDirectory: string): Promise<string> {
  const outfile = join(outDirectory, 'bundle.mjs');
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'error',
    // Some bundled CommonJS dependencies call require() for node built-ins.
    banner: { js: "import { createRequire as bundleCreateRequire } from 'node:module'; const require = bundleCreateRequire(import.meta.url);" },
  });
  return outfile;
}
