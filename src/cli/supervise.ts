import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BoundedLog, DEFAULT_LOG_BYTES } from '../background/log-file.ts';
import { isReady, parseReadyCheck, type ReadyCheck, urlFor } from '../background/readiness.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import type { HolderInfo, LockHandle } from '../types.ts';
import { type OptionSpecs, stringValue, UsageError, type Values } from './args.ts';
import { Output } from './output.ts';

/** How long the log waits for the last output in the pipes after the command has exited. */
const LAST_OUTPUT_MS = 200;
const LOOK_EVERY_MS = 25;

/** `portlock run`'s options for running in the background, as `portlock up` starts it. */
export const superviseOptions: OptionSpecs = {
  log: {
    type: 'string',
    value: '<file>',
    description:
      "send the command's output, and portlock's own messages, to this file (mode 0600, rotated at --log-size)",
  },
  'log-size': {
    type: 'string',
    value: '<bytes>',
    description: 'with --log: the size at which the log is moved to <file>.1 and a new one begun',
    default: String(DEFAULT_LOG_BYTES),
  },
  ready: {
    type: 'string',
    value: '<check>',
    description:
      "when the command is ready: 'tcp' (its port accepts a connection), an http(s) URL answering 2xx/3xx, or 'log:<text>'; the lock's state says starting until then",
  },
};

export function parseLogSize(text: string): number {
  const bytes = /^\d{1,12}$/.test(text) ? Number(text) : Number.NaN;
  if (!(bytes >= 1)) throw new UsageError(`--log-size must be a number of bytes, at least 1, got '${text}'`);
  return bytes;
}

export function readyCheckOf(text: string | undefined): ReadyCheck | undefined {
  if (text === undefined) return undefined;
  const check = parseReadyCheck(text);
  if (check === undefined) {
    throw new UsageError(`--ready must be 'tcp', an http(s) URL or 'log:<text>', got '${text}'`);
  }
  return check;
}

/** Whether the command this process runs has adopted the lock (the record names it now). */
function adopted(lock: LockHandle): boolean {
  const now = readRecordFileQuietly(lock.path)?.record;
  return now?.token === lock.record.token && now?.pid !== lock.record.pid;
}

/**
 * What `run` does differently with --log and --ready: output to a bounded log, and the lock's
 * state set from a readiness check. Without them, every step does nothing.
 */
class Supervisor {
  readonly out: Output;
  readonly holder: HolderInfo;
  readonly #log: BoundedLog | undefined;
  readonly #check: ReadyCheck | undefined;
  readonly #abort = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(values: Values, command: string[], out: Output) {
    const logPath = stringValue(values, 'log');
    const size = parseLogSize(stringValue(values, 'log-size') ?? String(DEFAULT_LOG_BYTES));
    this.#check = readyCheckOf(stringValue(values, 'ready'));
    this.#log = logPath === undefined ? undefined : new BoundedLog(resolve(logPath), size);
    const log = this.#log;
    this.out =
      log === undefined
        ? out
        : new Output(
            { stdout: { write: (text) => log.write(text) }, stderr: { write: (text) => log.write(text) }, env: {} },
            { json: out.json, noColor: true },
          );
    this.holder = {
      command,
      cwd: process.cwd(),
      ...(log !== undefined && { log: log.path }),
      ...(this.#check !== undefined && { state: 'starting' as const }),
    };
  }

  get logged(): boolean {
    return this.#log !== undefined;
  }

  /** The command runs: its output goes to the log, and its readiness is watched. */
  started(lock: LockHandle, child: ChildProcess, port: number): void {
    const log = this.#log;
    if (log !== undefined) {
      // Listened for now: by the time the exit is handled, the pipes may have closed already.
      this.#closed = once(child, 'close').then(() => {});
      child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
      child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    }
    try {
      if (child.pid !== undefined) lock.update({ commandPid: child.pid });
    } catch {
      // Only a description; the lock itself is unaffected.
    }
    if (this.#check !== undefined) void this.#watch(lock, this.#check, port).catch(() => {});
  }

  /** Looks until the command is ready, unless it adopted the lock: then its own state says so. */
  async #watch(lock: LockHandle, check: ReadyCheck, port: number): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      if (adopted(lock)) return;
      if (await isReady(check, port, this.#log?.path)) {
        if (!adopted(lock) && !signal.aborted) lock.update({ state: 'ready', url: urlFor(check, port) });
        return;
      }
      await sleep(LOOK_EVERY_MS, undefined, { signal }).catch(() => {});
    }
  }

  stopping(lock: LockHandle): void {
    this.#abort.abort();
    try {
      if (!adopted(lock)) lock.update({ state: 'stopping' });
    } catch {
      // As above: a description.
    }
  }

  /** The command has exited: its last output is taken from the pipes (unless they stay open). */
  async ended(): Promise<void> {
    this.#abort.abort();
    if (this.#log === undefined || this.#closed === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#closed, new Promise((resolve) => (timer = setTimeout(resolve, LAST_OUTPUT_MS)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.#abort.abort();
    this.#log?.close();
  }
}

export function supervisor(values: Values, command: string[], out: Output): Supervisor {
  return new Supervisor(values, command, out);
}
