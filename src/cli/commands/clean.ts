import { basename } from 'node:path';
import { cleanLocks } from '../../lock/clean.ts';
import { printable } from '../../printable.ts';
import type { LockInspection } from '../../types.ts';
import { UsageError } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import { checkDirFor, describeRecord } from '../output.ts';
import { lockLabel } from './list.ts';

function line(lock: LockInspection): string {
  const who = lock.record === undefined ? '' : ` (${describeRecord(lock.record, { age: 'since' })})`;
  return printable(`${basename(lock.path)}${who}: ${lock.reason}`);
}

export const clean: Command = {
  name: 'clean',
  usage: 'portlock clean [--dry-run] [options]',
  summary: 'remove stale lock files, never a live or unknown one',
  description:
    'Removes every lock file whose holder is gone, and says what it removed. A lock held by a live process,\n' +
    'or one that cannot be checked from here (another host, an odd file), is left alone. A removal is safe\n' +
    'against a process taking the same lock at that moment: it goes through the same claim as a reclaim.\n' +
    "A file with a lock's name that is not a lock record is listed as 'not a lock record, left alone', never\n" +
    "removed; portlock's own leftovers (temp and claim files of processes that died) are removed.",
  options: {
    'dry-run': { type: 'boolean', short: 'n', description: 'say what would be removed, and remove nothing' },
  },
  exitCodes: [
    [EXIT.ok, 'cleaned (also when there was nothing to remove)'],
    [EXIT.failure, 'the lock directory cannot be read or written'],
    [EXIT.usage, 'usage error'],
  ],
  examples: [
    ['portlock clean --dry-run', 'list the stale lock files that clean would remove'],
    ['portlock clean', 'remove them'],
  ],
  async run({ positionals, values, out, dir }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    checkDirFor(out, dir);
    const dryRun = values['dry-run'] === true;
    const { removed, kept, leftovers } = await cleanLocks({ dir, dryRun });
    if (out.json) {
      const label = (lock: LockInspection) => ({ lock: lockLabel(lock.path), ...lock });
      out.document({ dir, dryRun, removed: removed.map(label), kept: kept.map(label), leftovers: leftovers ?? [] });
      return EXIT.ok;
    }
    const verb = dryRun ? 'would remove' : 'removed';
    for (const lock of removed) out.out(`${verb} ${line(lock)}`);
    const unknown = kept.filter((lock) => lock.state === 'unknown');
    for (const lock of unknown) out.err(`${out.paint('magenta', 'kept', 'err')} ${line(lock)}`);
    for (const path of leftovers ?? []) out.out(`removed leftover ${printable(basename(path))}`);
    const running = kept.filter((lock) => lock.state === 'held').length;
    out.err(
      `${removed.length === 0 ? `Nothing to ${dryRun ? 'remove' : 'clean'} in ${dir}` : `${dryRun ? 'Would remove' : 'Removed'} ${removed.length} stale lock file${removed.length === 1 ? '' : 's'} in ${dir}`}; kept ${running} running and ${unknown.length} unknown.`,
    );
    return EXIT.ok;
  },
};
