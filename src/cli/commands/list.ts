import { basename } from 'node:path';
import { heldThrough } from '../../lock/held-through.ts';
import { listLocks } from '../../lock/inspect.ts';
import { networkOfFileName, scopeOfFileName } from '../../options/resolve.ts';
import { printable } from '../../printable.ts';
import { commandText } from '../../record/holder-text.ts';
import { since } from '../../record/started-at.ts';
import type { LockInspection } from '../../types.ts';
import { UsageError } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import { alignedTable, checkDirFor, interlockNote, type Style } from '../output.ts';

const WORDS = { held: 'running', stale: 'STALE', free: 'free', unknown: 'unknown' } as const;
const COLOURS: Record<LockInspection['state'], Style> = {
  held: 'green',
  stale: 'yellow',
  free: 'dim',
  unknown: 'magenta',
};

/** The port, or the key, a lock file stands for. */
export function lockLabel(path: string): string {
  const scope = scopeOfFileName(basename(path));
  if (scope === undefined) return basename(path);
  // A network namespace's own record of a port (see record-path.ts): that namespace's port.
  const netns = networkOfFileName(basename(path));
  if (scope.kind === 'port' && netns !== undefined) return `${scope.port} (${netns})`;
  return scope.kind === 'port' ? String(scope.port) : scope.key;
}

export const list: Command = {
  name: 'list',
  aliases: ['ls'],
  usage: 'portlock list [options]',
  summary: 'show every lock in the lock directory, stale ones marked',
  description:
    'One row per lock file: the port (or key), its state, the application, pid, user and age, and what the\n' +
    'holder says it serves: its command, directory and URL. Stale locks\n' +
    "are marked STALE, with the reason; 'portlock clean' removes them. A port held through its kernel\n" +
    'interlock by processes no lock file names (a command that outlived its `portlock run`, a background\n' +
    "child that inherited the lock) is listed too, from the kernel's table; 'portlock stop' with its\n" +
    'force option stops them.',
  options: {},
  exitCodes: [
    [EXIT.ok, 'listed (also when there are no locks)'],
    [EXIT.failure, 'the lock directory cannot be read'],
    [EXIT.usage, 'usage error'],
  ],
  examples: [
    ['portlock list', 'every lock in ~/.portlock (or $PORTLOCK_DIR)'],
    ['portlock ls --dir /tmp/locks --json', 'the locks of another directory, as JSON'],
  ],
  async run({ positionals, out, dir, name }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    checkDirFor(out, dir);
    const locks = await listLocks({ dir });
    if (out.json) {
      out.document({ dir, locks: locks.map((lock) => ({ lock: lockLabel(lock.path), ...lock })) });
      return EXIT.ok;
    }
    if (locks.length === 0) {
      out.err(`No locks in ${dir}.`);
      return EXIT.ok;
    }
    const now = Date.now();
    // What the holders serve, in columns of their own once any of them says (portlock up, run, agent).
    const described = locks.some(({ record }) => record?.command ?? record?.argv ?? record?.cwd ?? record?.url);
    const header = [
      ...['LOCK', 'STATE', 'NAME', 'PID', 'USER', 'AGE'],
      ...(described ? ['COMMAND', 'CWD', 'URL'] : []),
      'NOTE',
    ];
    const rows = locks.map((lock) => {
      const record = lock.record;
      // Held orphaned: the reason is the kernel's account of who holds it and whence.
      const note = [
        // A port's holder may keep its record in another lock directory: name the file to act on.
        heldThrough(record, lock.path, name, 'cli'),
        interlockNote(lock) ??
          (lock.state === 'held' && lock.certainty === 'certain' && lock.claim === undefined && !lock.orphaned
            ? ''
            : lock.reason),
      ]
        .filter(Boolean)
        .join('; ');
      const state = lock.state === 'held' && record?.state !== undefined && record.state !== 'ready';
      // A squatter the kernel names, with no record to vouch for it: show it as the kernel does.
      const holder = record === undefined ? lock.holders?.[0] : undefined;
      return [
        lockLabel(lock.path),
        state ? `${WORDS[lock.state]} (${record?.state})` : WORDS[lock.state],
        printable(record?.name ?? (holder?.command === undefined ? '-' : (holder.command.split(' ')[0] ?? '-'))),
        record === undefined ? (holder === undefined ? '-' : String(holder.pid)) : String(record.pid),
        printable(record?.user ?? holder?.user ?? '-'),
        record === undefined ? '-' : (since(record.startedAt, now) ?? '-'),
        ...(described
          ? [
              // What it serves, else its own command line (a holder's answer tells it).
              commandText(record?.command ?? record?.argv ?? ['-']),
              record?.cwd === undefined ? '-' : printable(record.cwd),
              record?.url === undefined ? '-' : printable(record.url),
            ]
          : []),
        printable(note),
      ];
    });
    const states = locks.map((lock) => lock.state);
    const lines = alignedTable(header, rows, (row, column, text) =>
      column === 1
        ? out.paint(COLOURS[states[row] ?? 'free'], text)
        : column === header.length - 1
          ? out.paint('dim', text)
          : text,
    );
    out.io.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};
