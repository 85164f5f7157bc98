#!/usr/bin/env node
import module from 'node:module';
import type { CliIO } from './output.ts';

// Where Node has it (22.1 and later), its compile cache keeps V8's compiled code for the modules
// that load after this line, so that the next start skips most of compiling the command: a second
// start that is refused because the port is held should cost little more than starting Node. It
// must run before the command loads, hence the dynamic import below. Node keeps the cache in
// <os.tmpdir()>/node-compile-cache unless NODE_COMPILE_CACHE names another directory;
// NODE_DISABLE_COMPILE_CACHE=1 turns it off. A cache directory it cannot create or write (a
// read-only or full /tmp) only costs the saving, and an entry that does not match its source or
// this Node is not used.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

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
