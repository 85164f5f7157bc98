import { lstatSync, mkdirSync, type Stats } from 'node:fs';
import { LockDirectoryError } from '../errors.ts';

const isWindows = process.platform === 'win32';

function lstatOrUndefined(dir: string): Stats | undefined {
  try {
    return lstatSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new LockDirectoryError(dir, 'not-directory', 'a parent is a file');
    if (code === 'EACCES') throw new LockDirectoryError(dir, 'unwritable', code);
    throw error;
  }
}

/** Errors that mean "this process may not write here", as opposed to a fault. */
export const UNWRITABLE_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * Makes sure the lock directory exists (like `mkdir -p`, mode 0700) and that nobody else can
 * replace the files in it: it must be a real directory, owned by this user, not writable by group
 * or others.
 */
export function ensureLockDir(dir: string): void {
  let stat = lstatOrUndefined(dir);
  if (stat === undefined) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (UNWRITABLE_CODES.has(code)) throw new LockDirectoryError(dir, 'unwritable', code);
      if (code === 'ENOTDIR') throw new LockDirectoryError(dir, 'not-directory', 'a parent is a file');
      throw error;
    }
    stat = lstatSync(dir);
  }
  if (stat.isSymbolicLink()) throw new LockDirectoryError(dir, 'symlink');
  if (!stat.isDirectory()) throw new LockDirectoryError(dir, 'not-directory');
  if (isWindows) return;
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new LockDirectoryError(dir, 'foreign-owner', `owner uid ${stat.uid}, this process runs as uid ${uid}`);
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new LockDirectoryError(dir, 'shared-writable', `mode 0${(stat.mode & 0o777).toString(8)}`);
  }
}

/** A lock directory as found by a command that only looks (or cleans): whose it is. */
export interface LockDirOwner {
  /** The directory owner's uid; undefined where the OS has none (Windows). */
  uid: number | undefined;
  /** Set when the caller is root looking into another user's directory. */
  foreign?: true;
}

/**
 * Checks an existing lock directory as {@link ensureLockDir} does, for `list`, `status`, `clean`
 * and `stop`, without creating it: undefined when it does not exist. Root may look into another
 * user's directory, and is told whose it is: every record in it vouches only for that user's
 * processes.
 */
export function checkLockDir(dir: string): LockDirOwner | undefined {
  const stat = lstatOrUndefined(dir);
  if (stat === undefined) return undefined;
  if (stat.isSymbolicLink()) throw new LockDirectoryError(dir, 'symlink');
  if (!stat.isDirectory()) throw new LockDirectoryError(dir, 'not-directory');
  if (isWindows) return { uid: undefined };
  if ((stat.mode & 0o022) !== 0) {
    throw new LockDirectoryError(dir, 'shared-writable', `mode 0${(stat.mode & 0o777).toString(8)}`);
  }
  const uid = process.getuid?.();
  if (uid === undefined || stat.uid === uid) return { uid: stat.uid };
  if (uid === 0) return { uid: stat.uid, foreign: true };
  throw new LockDirectoryError(dir, 'foreign-owner', `owner uid ${stat.uid}, this process runs as uid ${uid}`);
}
