#!/usr/bin/env node
import { main } from './main.ts';

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// An exit code set while the agent handled a crash or a signal is the one that explains the run.
process.exitCode = process.exitCode || code;
