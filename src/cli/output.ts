import { hostname } from 'node:os';
import { styleText } from 'node:util';
import { userName } from '../identity/users.ts';
import { checkLockDir } from '../lock/lock-dir.ts';
import { printable } from '../printable.ts';
import { holderText } from '../record/holder-text.ts';
import { since } from '../record/started-at.ts';
import type { LockInspection, PublicLockRecord } from '../types.ts';

interface Stream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Where the command line reads and writes: the process's own, or a test's. */
export interface CliIO {
  stdout: Stream;
  stderr: Stream;
  env: Record<string, string | undefined>;
  /** Overrides the streams' own `isTTY`, for colour and the live wait line. */
  isTTY?: boolean;
}

export type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'magenta';

/** Whether a stream gets colour: a terminal, no NO_COLOR, no --no-color, no --json. */
function colorFor(stream: Stream, io: CliIO, flags: { json: boolean; noColor: boolean }): boolean {
  if (flags.json || flags.noColor) return false;
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') return false;
  return io.isTTY ?? stream.isTTY === true;
}

/** Writes data to stdout and diagnostics to stderr, in colour only where allowed. */
export class Output {
  readonly io: CliIO;
  readonly json: boolean;
  readonly #flags: { json: boolean; noColor: boolean };
  // Decided on the first paint: a process's stdout is made when first read, and a refusal never
  // writes to it.
  #colorOut: boolean | undefined;
  #colorErr: boolean | undefined;

  constructor(io: CliIO, flags: { json: boolean; noColor: boolean }) {
    this.io = io;
    this.json = flags.json;
    this.#flags = flags;
  }

  /** Whether stderr is a terminal that a live line may be drawn on. */
  get liveErr(): boolean {
    return !this.json && (this.io.isTTY ?? this.io.stderr.isTTY === true);
  }

  paint(style: Style, text: string, stream: 'out' | 'err' = 'out'): string {
    if (stream === 'out') this.#colorOut ??= colorFor(this.io.stdout, this.io, this.#flags);
    else this.#colorErr ??= colorFor(this.io.stderr, this.io, this.#flags);
    if (!(stream === 'out' ? this.#colorOut : this.#colorErr)) return text;
    // Whether to colour was decided above, for this stream (which may be a test's) and these flags.
    return styleText(style, text, { validateStream: false });
  }

  out(line: string): void {
    this.io.stdout.write(`${line}\n`);
  }

  err(line: string): void {
    this.io.stderr.write(`${line}\n`);
  }

  /** One JSON document; `line` keeps it on one line, for a process that goes on writing after it. */
  document(value: unknown, options: { line?: boolean } = {}): void {
    this.io.stdout.write(`${JSON.stringify(value, null, options.line ? undefined : 2)}\n`);
  }

  /** An error: `{"error":{...}}` on stdout with --json, else `portlock: message` on stderr. */
  error(code: string, message: string, extra: Record<string, unknown> = {}, hint?: string): void {
    if (this.json) {
      this.document({ error: { code, message, ...(hint === undefined ? {} : { hint }), ...extra } });
      return;
    }
    this.err(`${this.paint('red', 'portlock:', 'err')} ${message}`);
    if (hint !== undefined) this.err(hint);
  }
}

/** `percy, pid 4242, user alice, on host devbox, up 5 min`: who a record says holds a lock. */
export function describeRecord(record: PublicLockRecord, options: { age?: 'up' | 'since' } = {}) {
  const command = holderText(record);
  // A holder that names its command is named by it (pid and user included).
  const parts = command === undefined ? [record.name ?? 'unnamed', `pid ${record.pid}`] : [command];
  if (record.user && command === undefined) parts.push(`user ${record.user}`);
  if (record.hostname && record.hostname !== hostname()) parts.push(`on host ${record.hostname}`);
  const age = since(record.startedAt);
  if (age !== undefined) parts.push(options.age === 'since' ? `taken ${age} ago` : `up ${age}`);
  // A record is anyone's to write: nothing in it reaches the terminal as a control character.
  return printable(parts.join(', '));
}

/** Aligns columns; colour is applied after padding so escape codes do not count as width. */
export function alignedTable(
  header: string[],
  rows: string[][],
  paint: (row: number, column: number, text: string) => string,
) {
  const widths = header.map((title) => title.length);
  for (const row of rows) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, cell.length);
    });
  }
  const render = (cells: string[], row: number) =>
    cells
      .map((cell, column) => {
        const padded = column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0);
        return row < 0 ? padded : paint(row, column, padded);
      })
      .join('  ')
      .trimEnd();
  return [render(header, -1), ...rows.map(render)];
}

/**
 * `record only (the kernel interlock was unavailable: …)`: said of a held lock whose holder asked
 * for the kernel interlock and fell back to the record alone; `socket file`: of one held through a
 * socket file (see the `interlock` option); undefined otherwise.
 */
export function interlockNote(lock: Pick<LockInspection, 'state' | 'record'>): string | undefined {
  const why = lock.state === 'held' ? lock.record?.interlockUnavailable : undefined;
  if (why === undefined)
    return lock.state === 'held' && lock.record?.interlockKind === 'socket-file' ? 'socket file' : undefined;
  return printable(`record only (the kernel interlock was unavailable: ${why})`);
}

/**
 * Checks the lock directory as `acquireLock` does, and says whose it is when root looks into
 * another user's: its records vouch only for that user's processes. Throws `LockDirectoryError`.
 */
export function checkDirFor(out: Output, dir: string): void {
  const where = checkLockDir(dir);
  if (where?.foreign && where.uid !== undefined && !out.json) {
    out.err(
      printable(
        `Lock directory ${dir} belongs to ${userName(where.uid)} (uid ${where.uid}): only that user's processes are trusted here.`,
      ),
    );
  }
}
