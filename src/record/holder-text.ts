import { printable } from '../printable.ts';
import type { InterlockHolder, PublicLockRecord } from '../types.ts';

/** A command line is shortened to this many characters for a message; the record keeps it whole. */
const COMMAND_WIDTH = 80;

/** `node server.js`: argv as typed, quoted where a word has spaces, shortened for display. */
export function commandText(argv: readonly string[]): string {
  const text = printable(
    argv.map((word) => (/[\s'"]/.test(word) || word === '' ? JSON.stringify(word) : word)).join(' '),
  );
  return text.length <= COMMAND_WIDTH ? text : `${text.slice(0, COMMAND_WIDTH - 1)}…`;
}

/**
 * `node server.js (pid 4242, under portlock run pid 4240, user alice)`: the command a holder under
 * `portlock run` serves, and the process that runs it, which is what its user started. Undefined
 * for any other holder, which its application's name and pid describe as before.
 */
export function holderText(record: PublicLockRecord): string | undefined {
  if (record.command === undefined || record.command.length === 0) return undefined;
  if (record.commandPid === undefined && record.supervisorPid === undefined) return undefined;
  // Under `portlock run`, the command is a child of the holder, or has adopted the lock from it.
  const runPid = record.supervisorPid ?? (record.commandPid !== undefined ? record.pid : undefined);
  const pid = record.supervisorPid !== undefined ? record.pid : (record.commandPid ?? record.pid);
  const details = [
    `pid ${pid}`,
    ...(runPid !== undefined && runPid !== pid ? [`under portlock run pid ${runPid}`] : []),
    ...(record.user === undefined ? [] : [`user ${printable(record.user)}`]),
  ];
  return `${commandText(record.command)} (${details.join(', ')})`;
}

/** `pid 4711 (python3 squat.py, user nobody)`: a process as the kernel describes it, safe to print. */
export function describeHolder(holder: InterlockHolder): string {
  const parts = [holder.command, holder.user && `user ${holder.user}`].filter(Boolean) as string[];
  return printable(`pid ${holder.pid}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`);
}

/** `a`, `a and b`, `a, b and c`. */
export function listed(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** `pid 4711 (...) holds` or `pid 4711 (...) and pid 4712 (...) hold`: the processes, with the verb that agrees. */
export function holdersHold(holders: readonly InterlockHolder[]): string {
  return `${listed(holders.map(describeHolder))} ${holders.length === 1 ? 'holds' : 'hold'}`;
}
