#!/usr/bin/env node
import { main } from './main.ts';

// A reader that stops early (`portlock list | head`) closes the pipe: the rest of the output is
// not wanted, which is no error of the command's. Anything else a stream reports is.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    stream.destroy();
  });
}

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// An exit code set while the agent handled a crash or a signal is the one that explains the run.
process.exitCode = process.exitCode || code;
