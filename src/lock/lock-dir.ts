import { lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { LockDirectoryError } from '../errors.ts';

const isWindows = process.platform === 'win32';

/** Errors that mean "this process may not write here", as opposed to a fault. */
const UNWRITABLE_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * A system call's failure in the lock directory `dir`, as the {@link LockDirectoryError} it means
 * (this process may not write there, or a parent is a file); any other error as it is.
 */
export function asLockDirectoryError(dir: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (UNWRITABLE_CODES.has(code)) return new LockDirectoryError(dir, 'unwritable', code);
  if (code === 'ENOTDIR') return new LockDirectoryError(dir, 'not-directory', 'a parent is a file');
  return error;
}

function lstatOrUndefined(dir: string): Stats | undefined {
  try {
    return lstatSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // Looking it up is refused: a directory on the way may not be searched by this user.
    if (code === 'EACCES') throw new LockDirectoryError(dir, 'unreachable', code);
    throw asLockDirectoryError(dir, error);
  }
}

/** Why another user could change the entry at `path` (a directory, or a link being followed), or undefined when none can. */
function unsafeBecause(path: string, stat: Stats, owners: ReadonlySet<number>): string | undefined {
  // A link's own mode means nothing, but its owner can point it elsewhere at any moment, as
  // OpenSSH's safe_path requires of every component on the way to authorized_keys.
  if (!owners.has(stat.uid)) {
    return `${path} is ${stat.isSymbolicLink() ? 'a symbolic link ' : ''}owned by uid ${stat.uid}`;
  }
  if (stat.isSymbolicLink()) return undefined;
  // The sticky bit (as on /tmp) lets others add entries but not move or remove this user's.
  if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
    return `${path} is writable by group or others (mode 0${(stat.mode & 0o7777).toString(8)})`;
  }
  return undefined;
}

/** How many symbolic links one path may pass through, as Linux allows (beyond it: ELOOP). */
const MAX_LINKS = 40;

const components = (path: string): string[] => path.split('/').filter((part) => part !== '' && part !== '.');

/**
 * Every directory above the lock directory, up to `/`, must be owned by root or `owner` and not
 * writable by group or others unless sticky, as OpenSSH demands of the path to `authorized_keys`:
 * otherwise another user could move the lock directory away or replace it with one of their own
 * while a lock in it is held, and take the lock too. The path is walked as the kernel resolves
 * it, one component at a time, so every directory it passes through is checked, and so is every
 * symbolic link it follows: another user's link could be pointed at another directory between
 * two acquires, and both would hold the lock. The lock directory itself is judged by the caller.
 */
function checkParents(dir: string, owner: number): void {
  const owners = new Set([0, owner]);
  const absolute = dir.startsWith('/') ? dir : `${process.cwd()}/${dir}`;
  const at = (parts: readonly string[]) => `/${parts.join('/')}`;
  const refuse = (why: string, path: string) => new LockDirectoryError(dir, 'unsafe-parent', why, path);
  const root = unsafeBecause('/', lstatSync('/'), owners);
  if (root !== undefined) throw refuse(root, '/');
  const resolved: string[] = [];
  const todo = components(absolute);
  let links = 0;
  for (let name = todo.shift(); name !== undefined; name = todo.shift()) {
    if (name === '..') {
      // The kernel's `..`: the parent of where the path has led so far, already checked.
      resolved.pop();
      continue;
    }
    if (todo.length === 0) return;
    const path = at([...resolved, name]);
    let stat: Stats;
    try {
      stat = lstatSync(path);
    } catch {
      // Not there (the rest is created by this user, mode 0700), or not reachable by this user:
      // creating or reading the lock directory reports that.
      return;
    }
    const why = unsafeBecause(path, stat, owners);
    if (why !== undefined) throw refuse(why, path);
    if (stat.isSymbolicLink()) {
      if (++links > MAX_LINKS) return;
      const target = readlinkSync(path);
      if (target.startsWith('/')) resolved.length = 0;
      todo.unshift(...components(target));
      continue;
    }
    // A file where a directory should be: creating or reading the lock directory reports it.
    if (!stat.isDirectory()) return;
    resolved.push(name);
  }
}

/**
 * Makes sure the lock directory exists (like `mkdir -p`, mode 0700) and that nobody else can
 * replace the files in it: it must be a real directory, owned by this user, not writable by group
 * or others, below directories that only root or this user can change (or sticky ones).
 */
export function ensureLockDir(dir: string): void {
  if (checkOwnLockDir(dir)) return;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw asLockDirectoryError(dir, error);
  }
  judgeOwnLockDir(dir, lstatSync(dir));
}

/**
 * Checks the lock directory as {@link ensureLockDir} does, without creating it: true when it
 * exists (and may be used), false when it does not exist yet (the directories above it checked).
 * A lock that may be refused is taken this way, so that a refusal leaves no new directory behind.
 */
export function checkOwnLockDir(dir: string): boolean {
  const caller = process.getuid?.();
  if (!isWindows && caller !== undefined) checkParents(dir, caller);
  const stat = lstatOrUndefined(dir);
  if (stat === undefined) return false;
  judgeOwnLockDir(dir, stat);
  return true;
}

/** Throws `LockDirectoryError` unless the existing directory `dir` is this user's alone. */
function judgeOwnLockDir(dir: string, stat: Stats): void {
  const caller = process.getuid?.();
  if (stat.isSymbolicLink()) throw new LockDirectoryError(dir, 'symlink');
  if (!stat.isDirectory()) throw new LockDirectoryError(dir, 'not-directory');
  if (isWindows) return;
  if (caller !== undefined && stat.uid !== caller) {
    throw new LockDirectoryError(dir, 'foreign-owner', `owner uid ${stat.uid}, this process runs as uid ${caller}`);
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new LockDirectoryError(dir, 'shared-writable', `mode 0${(stat.mode & 0o777).toString(8)}`);
  }
}

/** A lock directory as found by a command that only looks (or cleans): whose it is. */
interface LockDirOwner {
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
  const caller = process.getuid?.();
  const stat = lstatOrUndefined(dir);
  // Root looking into another user's directory trusts the directories above it if that user or
  // root owns them (as sshd reads a user's authorized_keys); anyone else, as acquireLock would.
  if (!isWindows && caller !== undefined) checkParents(dir, caller === 0 && stat?.isDirectory() ? stat.uid : caller);
  if (stat === undefined) return undefined;
  if (stat.isSymbolicLink()) throw new LockDirectoryError(dir, 'symlink');
  if (!stat.isDirectory()) throw new LockDirectoryError(dir, 'not-directory');
  if (isWindows) return { uid: undefined };
  if ((stat.mode & 0o022) !== 0) {
    throw new LockDirectoryError(dir, 'shared-writable', `mode 0${(stat.mode & 0o777).toString(8)}`);
  }
  if (caller === undefined || stat.uid === caller) return { uid: stat.uid };
  if (caller === 0) return { uid: stat.uid, foreign: true };
  throw new LockDirectoryError(dir, 'foreign-owner', `owner uid ${stat.uid}, this process runs as uid ${caller}`);
}
