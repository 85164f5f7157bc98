import { servingPid } from '../../background/identity.ts';
import { listLocks } from '../../lock/inspect.ts';
import { stopLock } from '../../lock/stop.ts';
import { commandText } from '../../record/holder-text.ts';
import { parseSeconds, stringValue } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import { stop } from './stop.ts';

export const down: Command = {
  name: 'down',
  usage: 'portlock down [<port>] [--timeout <seconds>] [--force] [options]',
  summary: 'stop a server that portlock up started (without a port: those started from here)',
  description:
    "With a port: 'portlock stop' for what 'portlock up' started, with the same guarantees and exit codes.\n" +
    "Without one: lists the servers that 'portlock up' started from this working directory, then stops each.",
  arguments: [['<port>', 'the port whose server to stop (1-65535); none: every server started from here']],
  options: stop.options,
  exitCodes: [
    [EXIT.ok, 'stopped, or nothing was running'],
    [EXIT.failure, 'still running: a server refused, does not answer, or took too long'],
    [EXIT.unknown, 'unknown: the holder cannot be checked from here; nothing was sent'],
    [EXIT.usage, 'usage error'],
  ],
  examples: [
    ['portlock down 3000', 'stop the server on port 3000 and wait until it is gone'],
    ['portlock down', "stop every server 'portlock up' started from this directory"],
  ],
  async run(context) {
    const { positionals, values, out, dir, name } = context;
    if (positionals.length > 0) return stop.run(context);
    const timeout = parseSeconds(stringValue(values, 'timeout') ?? '10', '--timeout');
    const cwd = process.cwd();
    const servers = (await listLocks({ dir, name })).filter(
      (lock) =>
        lock.state === 'held' &&
        lock.record?.port !== undefined &&
        lock.record.cwd === cwd &&
        // A log is what `up` gives every server it starts.
        lock.record.log !== undefined &&
        lock.record.command !== undefined,
    );
    if (servers.length === 0) {
      if (out.json) out.document({ cwd, stopped: [] });
      else out.out(`No servers started by portlock up from ${cwd}.`);
      return EXIT.ok;
    }
    if (!out.json) {
      out.out(`Stopping ${servers.length === 1 ? 'the server' : `${servers.length} servers`} started from ${cwd}:`);
      for (const { record } of servers) {
        if (record?.command !== undefined) {
          out.out(`  port ${record.port}: ${commandText(record.command)} (pid ${servingPid(record)})`);
        }
      }
    }
    const results = await Promise.all(
      servers.map(async ({ record }) => {
        const port = record?.port ?? 0;
        return { port, ...(await stopLock({ port, dir, name, timeout, force: values.force === true })) };
      }),
    );
    if (out.json) out.document({ cwd, stopped: results });
    let code: number = EXIT.ok;
    for (const result of results) {
      if (!out.json) out.out(`port ${result.port}: ${result.outcome.replace('-', ' ')}: ${result.reason}`);
      if (result.outcome === 'still-running') code = EXIT.failure;
    }
    if (code !== EXIT.ok && !out.json && values.force !== true) {
      out.err('Next step: portlock down --force (SIGTERM, then SIGKILL).');
    }
    return code;
  },
};
