import { randomBytes } from 'node:crypto';
import { closeSync, constants, linkSync, openSync, renameSync, writeSync } from 'node:fs';
import { unlinkQuietly } from './unlink-quietly.ts';

// Read-write: the holder re-reads its own record through this descriptor.
const CREATE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
// Errors by which a file system says it has no hard links.
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

// One random salt per process and a counter: temp names are unique across processes (even one
// that reuses a dead process's pid) without drawing random bytes for every file.
const SALT = randomBytes(4).toString('hex');
let counter = 0;

/** Temp files are named after their final path, so a crash leaves them next to it, recognisably. */
export function tempPathFor(path: string, pid = process.pid): string {
  counter = (counter + 1) & 0xffff;
  return `${path}.${pid}.${SALT}${counter.toString(16).padStart(4, '0')}.tmp`;
}

export const TEMP_SUFFIX = /\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Creates `path` with `bytes`, failing with EEXIST when it exists, and returns its descriptor,
 * still open. Never follows a symlink.
 */
function writeNew(path: string, bytes: Buffer): number {
  const fd = openSync(path, CREATE_FLAGS, 0o600);
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * Publishes `bytes` at `path` only if nothing is there, with its whole content at the instant it
 * appears: written to a temp file first, then hard-linked into place (link fails with EEXIST just
 * as O_EXCL does). Returns the published file's descriptor, left open for the caller (holding it
 * keeps the inode, and so its number, from being reused), or undefined when `path` exists.
 *
 * On a file system without hard links it creates the file with O_EXCL instead; a reader may then
 * see it empty for a moment, which the unreadable-record grace period covers.
 */
export function publishExclusive(path: string, bytes: Buffer): number | undefined {
  const temp = tempPathFor(path);
  const fd = writeNew(temp, bytes);
  try {
    linkSync(temp, path);
    unlinkQuietly(temp);
    return fd;
  } catch (error) {
    unlinkQuietly(temp);
    closeSync(fd);
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return undefined;
    if (!NO_HARD_LINKS.has(code)) throw error;
  }
  try {
    return writeNew(path, bytes);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw error;
  }
}

/**
 * Replaces whatever is at `path` with `bytes` in one step (rename never leaves the name absent).
 * Returns the new file's descriptor, left open for the caller.
 */
export function replaceAtomically(path: string, bytes: Buffer): number {
  const temp = tempPathFor(path);
  const fd = writeNew(temp, bytes);
  try {
    renameSync(temp, path);
    return fd;
  } catch (error) {
    unlinkQuietly(temp);
    closeSync(fd);
    throw error;
  }
}
