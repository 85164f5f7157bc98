#!/usr/bin/env node
import module from 'node:module';

// Where Node has it (22.1 and later), its compile cache keeps V8's compiled code for the modules
// that load after this line, so that the next start skips most of compiling the command: a second
// start that is refused because the port is held should cost little more than starting Node. It
// must run before the command loads, hence the dynamic import below. NODE_DISABLE_COMPILE_CACHE=1
// turns it off; a cache directory it cannot write only costs the saving.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

// A reader that stops early (`portlock list | head`) closes the pipe: the rest of the output is
// not wanted, which is no error of the command's. Anything else a stream reports is.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    stream.destroy();
  });
}

const { main } = await import('./main.ts');
const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// An exit code set while the agent handled a crash or a signal is the one that explains the run.
process.exitCode = process.exitCode || code;
