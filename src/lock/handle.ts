import { unlinkSync } from 'node:fs';
import { LockLostError } from '../errors.ts';
import type { Interlock } from '../interlock/server.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import { publicRecord } from '../record/record.ts';
import type { LockHandle, LockRecord, StopRequestHandler } from '../types.ts';
import { ownTokens } from './own-tokens.ts';

/** Whether the record at `path` still carries this holder's token. */
function isOurs(path: string, token: string): boolean {
  return readRecordFileQuietly(path)?.record?.token === token;
}

/** Removes the lock file only while it is still ours: a replaced record is someone else's. */
function removeIfOwned(path: string, token: string): void {
  if (!isOurs(path, token)) return;
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

export interface LostWatch {
  target: string;
  intervalMs: number;
  onLost: (error: LockLostError) => void;
  /**
   * For a lock held through the interlock, which cannot be lost with its record: whether its
   * directory is still the one it was taken in (a key lock's directory may be moved or replaced).
   */
  dirStillThere?: () => boolean;
}

export class Lock implements LockHandle {
  readonly path: string;
  readonly record: Readonly<LockRecord>;
  onStopRequest: StopRequestHandler | undefined = undefined;
  readonly #token: string;
  readonly #interlock: Interlock | undefined;
  /** Kernel names held beside the interlock (a key's second name, a holder's presence). */
  readonly #companions: Interlock[];
  #recheck: NodeJS.Timeout | undefined;
  #released = false;

  constructor(
    path: string,
    record: LockRecord,
    token: string,
    interlock?: Interlock,
    lostWatch?: LostWatch,
    companions: Interlock[] = [],
  ) {
    this.path = path;
    this.#companions = companions;
    this.record = Object.freeze({ ...record });
    this.#token = token;
    this.#interlock = interlock;
    if (lostWatch !== undefined && (interlock === undefined || lostWatch.dirStillThere)) this.#watch(lostWatch);
  }

  get interlocked(): boolean {
    return this.#interlock !== undefined;
  }

  interlockFd(): number | undefined {
    return this.#released ? undefined : this.#interlock?.fd;
  }

  /** Looks at the record now and then; a record gone or replaced means the lock was lost. */
  #watch({ target, intervalMs, onLost, dirStillThere }: LostWatch): void {
    this.#recheck = setInterval(() => {
      if (dirStillThere ? dirStillThere() : isOurs(this.path, this.#token)) return;
      clearInterval(this.#recheck);
      this.#recheck = undefined;
      const now = readRecordFileQuietly(this.path)?.record;
      onLost(new LockLostError(target, this.path, now && publicRecord(now)));
    }, intervalMs);
    this.#recheck.unref();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#recheck);
    try {
      // The record goes before the interlock, so that a waiter woken by the interlock's release
      // never finds the record of a holder that has left.
      removeIfOwned(this.path, this.#token);
    } finally {
      this.#interlock?.close();
      for (const companion of this.#companions) companion.close();
      ownTokens.delete(this.#token);
    }
  }

  async release(): Promise<void> {
    this.#release();
    // Lets the event loop turn, so that a loop of acquire and release lets timers run.
    await new Promise((resolve) => setImmediate(resolve));
  }

  releaseSync(): void {
    try {
      this.#release();
    } catch {
      // Called from exit handlers, where a throw would mask the real exit reason.
    }
  }
}
