import { lstatSync, mkdirSync, realpathSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
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

/** Why another user could change the directory at `path`, or undefined when none can. */
function unsafeBecause(path: string, uid: number): string | undefined {
  let stat: Stats;
  try {
    stat = lstatSync(path);
  } catch {
    // Not there (yet): nothing to check; it will be created by this user, mode 0700.
    return undefined;
  }
  // A symbolic link's own mode means nothing: its directory is checked, and so is where it leads.
  if (stat.isSymbolicLink()) return undefined;
  if (stat.uid !== 0 && stat.uid !== uid) return `${path} is owned by uid ${stat.uid}`;
  // The sticky bit (as on /tmp) lets others add entries but not move or remove this user's.
  if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
    return `${path} is writable by group or others (mode 0${(stat.mode & 0o7777).toString(8)})`;
  }
  return undefined;
}

/**
 * Every directory above the lock directory, up to `/`, must be owned by root or this user and not
 * writable by group or others unless sticky, as OpenSSH demands of the path to `authorized_keys`:
 * otherwise another user could move the lock directory away or replace it with one of their own
 * while a lock in it is held, and take the lock too. Checked along the path as given and along
 * the real path it leads to (through any symbolic links).
 */
function checkParents(dir: string): void {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const given = resolve(dir);
  const chains = [given];
  try {
    chains.push(realpathSync(dirname(given)));
  } catch {
    // Some of it does not exist yet: the path as given is all there is to check.
  }
  for (const start of chains) {
    for (let path = start === given ? dirname(given) : start; ; path = dirname(path)) {
      const why = unsafeBecause(path, uid);
      if (why !== undefined) throw new LockDirectoryError(dir, 'unsafe-parent', why, path);
      if (dirname(path) === path) break;
    }
  }
}

/**
 * Makes sure the lock directory exists (like `mkdir -p`, mode 0700) and that nobody else can
 * replace the files in it: it must be a real directory, owned by this user, not writable by group
 * or others, below directories that only root or this user can change (or sticky ones).
 */
export function ensureLockDir(dir: string): void {
  if (!isWindows) checkParents(dir);
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
