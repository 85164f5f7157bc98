// Bundles the `portlock` command into dist/cli: one file for the entry, one per command, and the
// shared code in chunks, all directly in dist/cli so that each finds ../../package.json.
//
// Why a bundle when the library is plain tsc output: Node 20 loads an ES module file in about a
// millisecond on a small machine, and `portlock run` refusing a held port crossed some 30 of them,
// a third of its time over a bare `node` start. The command's whole point there is to answer fast.
// The library itself stays one file per module, as tsc writes it, with its declarations.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/bin.ts'],
  outdir: 'dist/cli',
  // Flat, beside the entry: src/cli/version.ts finds package.json two levels up from any of them.
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  logLevel: 'warning',
});
