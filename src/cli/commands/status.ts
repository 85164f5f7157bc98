import { portInUseLine } from '../../listeners/describe.ts';
import { portHolders } from '../../listeners/port-holders.ts';
import { heldThrough } from '../../lock/held-through.ts';
import { inspectLock } from '../../lock/inspect.ts';
import { printable } from '../../printable.ts';
import { describeHolder, listed } from '../../record/holder-text.ts';
import type { LockInspection, PublicLockRecord } from '../../types.ts';
import { parsePort, UsageError } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import { checkDirFor, describeRecord, interlockNote, type Output } from '../output.ts';

const CODES = { held: EXIT.ok, stale: EXIT.stale, free: EXIT.notRunning, unknown: EXIT.unknown } as const;
const WORDS = { held: 'running', stale: 'stale', free: 'not running', unknown: 'unknown' } as const;

/** Where a holder serves and from which directory, as far as its record says. */
function servingDetails(record: PublicLockRecord): string[] {
  return [
    ...(record.url === undefined ? [] : [`at ${printable(record.url)}`]),
    ...(record.cwd === undefined ? [] : [`in ${printable(record.cwd)}`]),
  ];
}

/** One line: the state, who, and why. */
function statusLine(port: number, lock: LockInspection, out: Output, name?: string): string {
  const word = out.paint(
    lock.state === 'held' ? 'green' : lock.state === 'stale' ? 'yellow' : lock.state === 'unknown' ? 'magenta' : 'dim',
    WORDS[lock.state],
  );
  const why = printable(`${lock.certainty === 'likely' ? 'likely: ' : ''}${lock.reason}`);
  // A holder that says where it is in its life: `running (starting)`, `running (stopping)`.
  const state = lock.state === 'held' && lock.record?.state !== undefined && lock.record.state !== 'ready';
  const shown = state ? `${word} (${lock.record?.state})` : word;
  if (lock.state === 'free') return `port ${port}: ${word} (${why})`;
  const record = lock.record;
  const holders = lock.holders ?? [];
  const who: string[] = [];
  const named = holders.find((holder) => holder.pid === record?.pid);
  if (record === undefined && holders.length > 0) {
    // The kernel names who holds it, and no record of this directory vouches for it (a squatter,
    // an impostor): the reason says what it is.
    return `port ${port}: ${word}: ${why}`;
  }
  if (holders.length > 0 && named === undefined) {
    // The record's writer is gone, and a process it handed the lock to holds it.
    who.push(`held by ${listed(holders.map(describeHolder))} through the kernel interlock`);
    if (record !== undefined) {
      // The process that took it, by its own name: the command it ran is the holder named before.
      const { commandPid: _command, supervisorPid: _supervisor, ...taker } = record;
      who.push(`taken for it by ${describeRecord(taker, { age: 'since' })}, which no longer holds it`);
    }
  } else if (record !== undefined) {
    who.push(describeRecord(record, { age: lock.state === 'held' ? 'up' : 'since' }));
  }
  if (record !== undefined && lock.state === 'held') who.push(...servingDetails(record));
  // A port's holder may keep its record in another lock directory: name the file to act on.
  const through = heldThrough(record, lock.path, name, 'cli');
  if (through !== undefined) who.push(through);
  const fallback = interlockNote(lock);
  const next = lock.state === 'stale' ? "; the next start replaces it, or 'portlock clean' removes it" : '';
  return `port ${port}: ${shown}${who.length > 0 ? `: ${who.join('; ')}` : ''}${fallback ? `, ${fallback}` : ''} (${why})${next}`;
}

/** No lock, yet a program listens on the port: name it, for it is why a start would fail. */
async function inUseWithoutPortlock(port: number, lock: LockInspection, out: Output): Promise<number | undefined> {
  const listeners = await portHolders(port);
  if (listeners.length === 0) return undefined;
  if (out.json) out.document({ port, ...lock, holders: [], listeners });
  else out.out(portInUseLine(port, listeners));
  return EXIT.inUse;
}

export const status: Command = {
  name: 'status',
  usage: 'portlock status <port> [options]',
  summary: "tell whether a port's lock is held, in one line",
  description:
    'Reports the holder (application, pid, user, age) and whether it is alive, stale or unknown, and why.\n' +
    'A holder that answers through the kernel interlock is certain where the kernel confirms its answer; a\n' +
    "process on the lock's kernel name that the kernel contradicts is named as what it is. When the process\n" +
    'that took the lock is gone but a command it started still holds the interlock, that process is named.',
  arguments: [['<port>', 'the port whose lock to report (1-65535)']],
  options: {},
  exitCodes: [
    [EXIT.ok, 'running: a live process holds the lock'],
    [EXIT.stale, 'stale: a lock file is left by a process that is gone'],
    [EXIT.notRunning, 'not running: no lock file, and nothing listens on the port'],
    [EXIT.inUse, 'in use: no lock, but a program that does not use portlock listens on the port'],
    [EXIT.unknown, 'unknown: it cannot be checked from here (another host, an odd file)'],
    [EXIT.usage, 'usage error'],
  ],
  examples: [
    ['portlock status 5338', 'one line about the lock of port 5338'],
    ['portlock status 5338 --json', 'the same as a JSON document'],
  ],
  async run({ positionals, out, dir, name }) {
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const port = parsePort(positionals[0], '<port>');
    checkDirFor(out, dir);
    const lock = await inspectLock({ port, dir, name });
    if (lock.state === 'free') {
      const inUse = await inUseWithoutPortlock(port, lock, out);
      if (inUse !== undefined) return inUse;
    }
    if (out.json) out.document({ port, ...lock, holders: lock.holders ?? [] });
    else out.out(statusLine(port, lock, out, name));
    return CODES[lock.state];
  },
};
