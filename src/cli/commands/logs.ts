import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rotatedPath } from '../../background/log-file.ts';
import { lastLines } from '../../background/tail.ts';
import { inspectLock } from '../../lock/inspect.ts';
import { recordPathHere } from '../../lock/record-path.ts';
import { lockPathFor } from '../../options/resolve.ts';
import { readRecordFileQuietly } from '../../record/read-record.ts';
import { parsePort, stringValue, UsageError } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import type { Output } from '../output.ts';

/** How often a followed log is looked at for new lines, and its server for whether it still runs. */
const FOLLOW_EVERY_MS = 100;

function exists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Prints what is written to the log from `offset` on; a log that was rotated is read from its start. */
function printFrom(path: string, offset: number, ino: number, out: Output): { offset: number; ino: number } {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    return { offset, ino };
  }
  let from = stat.ino === ino && stat.size >= offset ? offset : 0;
  if (stat.size <= from) return { offset: from, ino: stat.ino };
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(Math.min(stat.size - from, 1024 * 1024));
    while (from < stat.size) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, stat.size - from), from);
      if (read === 0) break;
      out.io.stdout.write(buffer.subarray(0, read).toString('utf8'));
      from += read;
    }
  } finally {
    closeSync(fd);
  }
  return { offset: from, ino: stat.ino };
}

export const logs: Command = {
  name: 'logs',
  usage: 'portlock logs <port> [-f] [-n <lines>] [options]',
  summary: 'print the log of a server that portlock up started',
  description:
    "Prints the last lines of the log of the server on the port (the file 'portlock up' gave it, or\n" +
    '<dir>/agent-<port>.log). With -f, goes on printing what it writes until Ctrl-C, or until it stops.',
  arguments: [['<port>', 'the port of the server whose log to print (1-65535)']],
  options: {
    follow: { type: 'boolean', short: 'f', description: 'keep printing new lines until the server stops' },
    lines: { type: 'string', short: 'n', value: '<lines>', description: 'how many of the last lines', default: '100' },
  },
  exitCodes: [
    [EXIT.ok, 'printed (with -f: the server has stopped)'],
    [EXIT.failure, 'there is no log for the port'],
    [EXIT.usage, 'usage error'],
  ],
  examples: [
    ['portlock logs 3000', 'the last 100 lines of the server on port 3000'],
    ['portlock logs 3000 -f -n 0', 'only what it writes from now on, until it stops'],
  ],
  async run({ positionals, values, out, dir, name }) {
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const port = parsePort(positionals[0], '<port>');
    const text = stringValue(values, 'lines') ?? '100';
    if (!/^\d{1,7}$/.test(text)) throw new UsageError(`-n must be a number of lines, got '${text}'`);
    const count = Number(text);
    // Checks the name and directory as every command does; the record read is this network
    // namespace's own, which names its log (see record-path.ts).
    lockPathFor({ port, dir, name });
    const record = readRecordFileQuietly(recordPathHere(dir, { kind: 'port', port }))?.record;
    const path = record?.log ?? join(dir, `agent-${port}.log`);
    if (!exists(path) && !exists(rotatedPath(path))) {
      out.error(
        'ENOLOG',
        `port ${port} has no log: ${path} does not exist.\nNext step: start the server with 'portlock up' (it writes one), or pass the --dir it was started with.`,
      );
      return EXIT.failure;
    }
    for (const line of lastLines(path, count)) out.out(line);
    if (values.follow !== true) return EXIT.ok;
    let at = (() => {
      try {
        const stat = statSync(path);
        return { offset: stat.size, ino: stat.ino };
      } catch {
        return { offset: 0, ino: 0 };
      }
    })();
    for (;;) {
      const running = (await inspectLock({ port, dir, name })).state === 'held';
      at = printFrom(path, at.offset, at.ino, out);
      if (!running) return EXIT.ok;
      await sleep(FOLLOW_EVERY_MS);
    }
  },
};
