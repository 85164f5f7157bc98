import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Node options that load code, and so must reach the supervisor too (tsx in development).
const LOADERS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/** A bare specifier is resolved here: the supervisor runs in the server's directory, not ours. */
function resolved(specifier: string): string {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.includes(':')) return specifier;
  try {
    return import.meta.resolve(specifier);
  } catch {
    return specifier;
  }
}

/** The loader options this process was started with, resolved, and nothing else (no --inspect). */
function loaderArgs(execArgv: readonly string[]): string[] {
  const args: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] ?? '';
    const [flag = '', inline] = arg.split(/=(.*)/s);
    if (!LOADERS.has(flag)) continue;
    const value = inline ?? execArgv[++i];
    if (value !== undefined) args.push(flag, resolved(value));
  }
  return args;
}

/**
 * How to start this very `portlock` again: the bin of the package this file is bundled in
 * (a bundle in dist/cli or dist/chunks, beside dist/cli/bin.js), or the source's.
 */
export function portlockCommand(): { file: string; args: string[] } {
  const here = dirname(fileURLToPath(import.meta.url));
  const bin = [join(here, '../cli/bin.js'), join(here, '../cli/bin.ts')].find((path) => existsSync(path));
  if (bin === undefined) throw new Error(`the portlock command cannot be found beside ${here}`);
  return { file: process.execPath, args: [...loaderArgs(process.execArgv), bin] };
}
