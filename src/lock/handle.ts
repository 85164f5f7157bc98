import { unlinkSync } from 'node:fs';
import { LockLostError } from '../errors.ts';
import type { Interlock } from '../interlock/server.ts';
import { validateHolder } from '../options/holder.ts';
import { replaceAtomically } from '../record/publish.ts';
import { holdsExactly, readRecordFileQuietly } from '../record/read-record.ts';
import { holderFields, publicRecord, serializeRecord } from '../record/record.ts';
import type { HolderUpdate, LockHandle, LockRecord, PublicLockRecord, StopRequestHandler } from '../types.ts';
import { ownTokens } from './own-tokens.ts';

/** Whether the record at `path` still carries this holder's token. */
function isOurs(path: string, token: string): boolean {
  return readRecordFileQuietly(path)?.record?.token === token;
}

/**
 * Removes the lock file only while it is still ours: a replaced record is someone else's. Still
 * exactly what this holder wrote there (`written`), it is not parsed: at a release the lock stands
 * free to nobody until its name is let go, and parsing and checking a record cost most of that time
 * in a process that does it for the first time.
 */
export function removeIfOwned(path: string, token: string, written?: Buffer): void {
  if (!(written !== undefined && holdsExactly(path, written)) && !isOurs(path, token)) return;
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

interface LostWatch {
  target: string;
  intervalMs: number;
  onLost: (error: LockLostError) => void;
  /**
   * For a lock held through the interlock, which cannot be lost with its record: whether its
   * directory is still the one it was taken in (a key lock's directory may be moved or replaced).
   */
  dirStillThere?: () => boolean;
}

/** How a lock was handed to a child process (see `src/lock/handoff.ts`). */
type HandedOff = 'no' | 'staying' | 'leaving';

export class Lock implements LockHandle {
  readonly path: string;
  /** The record's bytes as this holder last wrote them at `path`. */
  #written: Buffer;
  onStopRequest: StopRequestHandler | undefined = undefined;
  readonly #token: string;
  readonly #interlock: Interlock | undefined;
  /** Kernel names held beside the interlock (a key's second name, a holder's presence). */
  readonly #companions: Interlock[];
  #record: Readonly<LockRecord>;
  #recheck: NodeJS.Timeout | undefined;
  #released = false;
  #handedOff: HandedOff = 'no';

  constructor(
    { path, written }: { path: string; written: Buffer },
    record: LockRecord,
    token: string,
    interlock?: Interlock,
    lostWatch?: LostWatch,
    companions: Interlock[] = [],
  ) {
    this.path = path;
    this.#written = written;
    this.#companions = companions;
    this.#record = Object.freeze({ ...record });
    this.#token = token;
    this.#interlock = interlock;
    if (lostWatch !== undefined && (interlock === undefined || lostWatch.dirStillThere)) this.#watch(lostWatch);
  }

  get record(): Readonly<LockRecord> {
    return this.#record;
  }

  update(changes: HolderUpdate): void {
    validateHolder(changes, 'update');
    const target = this.#record.port === undefined ? `key ${this.#record.key}` : `port ${this.#record.port}`;
    const current = this.#released ? undefined : readRecordFileQuietly(this.path)?.record;
    if (current?.token !== this.#token) {
      throw new LockLostError(target, this.path, current && publicRecord(current));
    }
    // Read, then replaced in one rename: nobody else writes a record that carries this token while
    // its holder lives (a reclaim needs the holder judged gone), so nothing is lost in between.
    const written = serializeRecord({ ...current, ...holderFields(changes) });
    replaceAtomically(this.path, written);
    this.#written = written;
    this.#record = Object.freeze({ ...this.#record, ...holderFields(changes) });
    this.#answer();
  }

  /**
   * Marks the lock as handed to a child process that may adopt it. From then on the interlock
   * answers with the record as the file has it (the child rewrites it to name itself); `leaving`
   * means this process goes away once the child has adopted it, so its release leaves a record
   * that names the child alone.
   */
  handOff(how: Exclude<HandedOff, 'no'>): void {
    this.#handedOff = how;
    // The child holds the same socket: a socket file stays in place when this process lets go
    // (once every holder has closed it, it is a dead socket file, which the next taker takes over).
    this.#interlock?.beforeClose(undefined);
    this.#answer();
  }

  /** What the interlock says to `who`: this record, or once handed off, the record on file. */
  #answer(): void {
    const own = () => publicRecord(this.#record);
    const onFile = (): PublicLockRecord => {
      const now = readRecordFileQuietly(this.path)?.record;
      return now?.token === this.#token ? publicRecord(now) : own();
    };
    const followFile = this.#handedOff !== 'no';
    const answers = {
      // Read at every request: a getter, so that a child's adoption shows at once.
      get record() {
        return followFile ? onFile() : own();
      },
      lockFile: this.path,
      token: this.#token,
      stopHandler: () => this.onStopRequest,
    };
    this.#interlock?.answerWith(answers);
    // A key's second name answers as its first (a presence name, held without an interlock, never does).
    if (this.#interlock !== undefined) for (const companion of this.#companions) companion.answerWith(answers);
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
      // A lock handed to a child that adopted it is the child's to remove, when this process leaves.
      if (this.#handedOff !== 'leaving' || readRecordFileQuietly(this.path)?.record?.pid === this.#record.pid) {
        removeIfOwned(this.path, this.#token, this.#written);
      }
    } finally {
      // The lock's own name goes last: a waiter woken by its closing finds every other name free.
      for (const companion of this.#companions) companion.close();
      this.#interlock?.close();
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
