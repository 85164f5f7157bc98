import { unlinkSync } from 'node:fs';
import { readRecordFile } from '../record/read-record.ts';
import type { LockHandle, LockRecord, StopRequestHandler } from '../types.ts';
import { ownTokens } from './own-tokens.ts';

/** Removes the lock file only while it still carries `token`: a replaced record is someone else's. */
function removeIfOwned(path: string, token: string): void {
  let file: ReturnType<typeof readRecordFile>;
  try {
    file = readRecordFile(path);
  } catch {
    // Something that is not our record sits there now; it is not ours to remove.
    return;
  }
  if (file?.record?.token !== token) return;
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

export class Lock implements LockHandle {
  readonly path: string;
  readonly record: Readonly<LockRecord>;
  onStopRequest: StopRequestHandler | undefined = undefined;
  readonly #token: string;
  #released = false;

  constructor(path: string, record: LockRecord, token: string) {
    this.path = path;
    this.record = Object.freeze({ ...record });
    this.#token = token;
  }

  /** Whether `release()` or `releaseSync()` has run. */
  get released(): boolean {
    return this.#released;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      removeIfOwned(this.path, this.#token);
    } finally {
      ownTokens.delete(this.#token);
    }
  }

  async release(): Promise<void> {
    this.#release();
  }

  releaseSync(): void {
    try {
      this.#release();
    } catch {
      // Called from exit handlers, where a throw would mask the real exit reason.
    }
  }
}
