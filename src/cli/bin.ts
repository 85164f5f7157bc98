#!/usr/bin/env node
import { lstatSync, mkdirSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliIO } from './output.ts';

/**
 * This user's own directory for the compile cache, or none: the cache holds code that Node runs,
 * so it must be a directory that no other user created or can write. Node's default,
 * <tmpdir>/node-compile-cache, is made by whoever runs a cache-enabled Node first, and another user
 * who made it could plant code there that the next root run would load.
 */
function ownCacheDir(): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  const dir = join(tmpdir(), `portlock-compile-cache-${uid}`);
  try {
    // Looked at first, made only where missing: on every start but the first it is there, and a
    // failed mkdir costs an exception (a stack trace) that a start refused in milliseconds notices.
    let found = lstatSync(dir, { throwIfNoEntry: false });
    if (found === undefined) {
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch {
        // Made by another start meanwhile, or not to be made: which it is, and whose, is checked below.
      }
      found = lstatSync(dir);
    }
    return found.isDirectory() && found.uid === uid && (found.mode & 0o077) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

// Where Node has it (22.1 and later), its compile cache keeps V8's compiled code for the modules
// that load after this line, so that the next start skips most of compiling the command: a second
// start that is refused because the port is held should cost little more than starting Node. It
// must run before the command loads, hence the dynamic import below. The cache is this user's:
// <tmpdir>/portlock-compile-cache-<uid>, mode 0700, used only if this user owns it (see the README).
// NODE_COMPILE_CACHE=<dir> chooses another directory, NODE_DISABLE_COMPILE_CACHE=1 turns it off; a
// directory that cannot be made or written (a read-only or full /tmp) only costs the saving.
const { enableCompileCache } = module as { enableCompileCache?: (dir?: string) => unknown };
if (enableCompileCache !== undefined && process.env.NODE_COMPILE_CACHE === undefined) {
  const dir = ownCacheDir();
  if (dir !== undefined) enableCompileCache(dir);
}

// A reader that stops early (`portlock list | head`) closes the pipe: the rest of the output is
// not wanted, which is no error of the command's. Anything else a stream reports is.
function endQuietlyOnEpipe<T extends NodeJS.WriteStream>(stream: T): T {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    stream.destroy();
  });
  return stream;
}

// Node makes process.stdout and process.stderr when they are first read, which for a pipe or a
// terminal loads stream classes: the command reads each only when it writes to it (a refusal
// writes to stderr alone).
let stdout: NodeJS.WriteStream | undefined;
let stderr: NodeJS.WriteStream | undefined;
const io: CliIO = {
  get stdout() {
    stdout ??= endQuietlyOnEpipe(process.stdout);
    return stdout;
  },
  get stderr() {
    stderr ??= endQuietlyOnEpipe(process.stderr);
    return stderr;
  },
  env: process.env,
};

const { main } = await import('./main.ts');
const code = await main(process.argv.slice(2), io);
// An exit code set while the agent handled a crash or a signal is the one that explains the run.
process.exitCode = process.exitCode || code;
