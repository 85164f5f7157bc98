import { closeSync, constants, linkSync, openSync, renameSync, writeSync } from 'node:fs';
import { crypto } from '../lazy-crypto.ts';
import { unlinkQuietly } from './unlink-quietly.ts';

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
// Errors by which a file system says it has no hard links.
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

// One random salt per process and a counter: temp names are unique across processes (even one
// that reuses a dead process's pid) without drawing random bytes for every file.
let salt: string | undefined;
let counter = 0;

/** Temp files are named after their final path, so a crash leaves them next to it, recognisably. */
export function tempPathFor(path: string, pid = process.pid): string {
  salt ??= crypto().randomBytes(4).toString('hex');
  counter = (counter + 1) & 0xffff;
  return `${path}.${pid}.${salt}${counter.toString(16).padStart(4, '0')}.tmp`;
}

export const TEMP_SUFFIX = /\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Creates `path` with `bytes`, failing with EEXIST when it exists. Never follows a symlink. A write
 * that fails (a full disk) removes the file it created: nothing is left half-written.
 */
function writeNew(path: string, bytes: Buffer): void {
  const fd = openSync(path, CREATE_FLAGS, 0o600);
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
  } catch (error) {
    try {
      closeSync(fd);
    } finally {
      unlinkQuietly(path);
    }
    throw error;
  }
  try {
    // Some file systems report a full disk only when the file is closed.
    closeSync(fd);
  } catch (error) {
    unlinkQuietly(path);
    throw error;
  }
}

/**
 * Publishes `bytes` at `path` only if nothing is there, with its whole content at the instant it
 * appears: written to a temp file first, then hard-linked into place (link fails with EEXIST just
 * as O_EXCL does). Returns false when `path` exists.
 *
 * On a file system without hard links it creates the file with O_EXCL instead; a reader may then
 * see it empty for a moment, which the unreadable-record grace period covers.
 */
export function publishExclusive(path: string, bytes: Buffer): boolean {
  const temp = tempPathFor(path);
  writeNew(temp, bytes);
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code)) throw error;
  } finally {
    unlinkQuietly(temp);
  }
  try {
    writeNew(path, bytes);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Replaces whatever is at `path` with `bytes` in one step (rename never leaves the name absent). */
export function replaceAtomically(path: string, bytes: Buffer): void {
  const temp = tempPathFor(path);
  writeNew(temp, bytes);
  try {
    renameSync(temp, path);
  } catch (error) {
    unlinkQuietly(temp);
    throw error;
  }
}
