import { lstatSync, statSync } from 'node:fs';
import { currentReader } from './listeners/describe.ts';
import { elsewhereNote, lockFileElsewhere } from './lock/held-through.ts';
import { printable } from './printable.ts';
import { commandText, describeHolder, holderText } from './record/holder-text.ts';
import { since } from './record/started-at.ts';
import type { Certainty, InterlockHolder, PublicLockRecord, UnlistedSocket } from './types.ts';

/** What a refusal is based on: the verdict about the holder. */
interface HeldVerdict {
  state: 'held' | 'unknown';
  certainty: Certainty;
  reason: string;
}

interface HeldDetails extends HeldVerdict {
  /** The name of the application asking, used when the record does not name its own. */
  name: string;
  /** `port 5338` or `key build-cache`. */
  target: string;
  /** The lock file the asker looked at (the holder's own may lie in another directory: see `meta.lockFile`). */
  lockPath: string;
  meta: PublicLockRecord | undefined;
  now: number;
  /** The processes that hold the kernel interlock, where they are not the one the record names. */
  holders?: InterlockHolder[];
  /** The kernel says the interlock is held, by a process /proc does not show the reader (another user's). */
  hidden?: true;
  /** With `hidden`: the holder runs in another pid or network namespace (a container, or the host), not shown here. */
  outOfSight?: 'pid-namespace' | 'network-namespace';
  /** What the process on the interlock claims to be, where the kernel cannot show it. */
  claim?: PublicLockRecord | undefined;
  /** The lock file whose record names the claiming process: the holder's own account, not proof. */
  claimedFile?: string | undefined;
  /** Set when those hold it orphaned: no record names them and none can answer (see `LockInspection.orphaned`). */
  orphaned?: true;
  /** A live socket at the lock's socket file that the kernel here does not list (see `LockInspection.unlistedSocket`). */
  unlisted?: UnlistedSocket;
  /** Set when the record names a live process of another user than its file's owner: that user. */
  notOwners?: string;
}

function age(startedAt: string, now: number): string {
  const ago = since(startedAt, now);
  return ago === undefined ? '' : ` (${ago} ago)`;
}

function fileExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The message of a refusal: every line made safe to print, for records and answers are anyone's to write. */
function heldMessage(d: HeldDetails, wording: Wording): string {
  return heldLines(d, wording).map(printable).join('\n');
}

/**
 * `Next step: ...` for a holder that runs as another user than the reader (`user`, or one /proc
 * does not name), who can neither signal it nor remove its file: whose it is, and who can stop it.
 */
function othersNextStep(target: string, user: string | undefined): string {
  const whose = user === undefined ? 'the holder runs as another user' : `it runs as user ${user}`;
  const who = user === undefined ? 'that user or root' : user === 'root' ? 'root' : `${user} or root`;
  const instead = target.startsWith('port ') ? ', or use another port' : '';
  return `Next step: ${whose}, and only ${who} can stop it: ask them, wait for it to exit${instead}.`;
}

/** Whether a holder's user is another than the reader's, who then cannot stop it (root can). */
function othersUser(user: string | undefined): boolean {
  const reader = currentReader();
  return user !== undefined && !reader.root && user !== reader.user;
}

/**
 * `Next step: ...` for a lock held by a socket the kernel here does not list at its socket file
 * (another network namespace's, or bound at another path): neither its answers nor a token nor a
 * signal reach it from here, so it is stopped where it runs. Its live socket file is never offered
 * for removal: a socket that listens there holds the lock, and the next start beside it would
 * share the port. Each process is labelled with its own user; one the reader may not signal is
 * left to its user (or root) to stop, as is a holder /proc does not show (the file's owner's).
 */
export function unlistedNextStep(
  unlisted: UnlistedSocket,
  holders: readonly InterlockHolder[] | undefined,
  target: string,
): string {
  const reader = currentReader();
  const mayStop = (user: string | undefined) => reader.root || (user !== undefined && user === reader.user);
  const askWhom = (user: string | undefined) =>
    user === undefined ? 'its user or root' : user === 'root' ? 'root' : `${user} or root`;
  const where =
    unlisted.listedAs === undefined
      ? 'in another network namespace, or bound at another path'
      : `listening at ${unlisted.listedAs}`;
  const shown = holders ?? [];
  const pids = shown.map((holder) => holder.pid);
  const whose = [...new Set(shown.map((holder) => holder.user ?? `uid ${holder.uid}`))];
  const label = shown.map((holder) => `pid ${holder.pid} (${holder.user ?? `uid ${holder.uid}`}'s)`).join(', ');
  const stop =
    shown.length === 0
      ? mayStop(unlisted.user)
        ? `stop the process that listens on ${unlisted.path} where it runs (it is ${unlisted.user}'s, ${where})`
        : `ask ${askWhom(unlisted.user)} (the socket file's owner) to stop the process that listens on ${unlisted.path} where it runs (${where})`
      : shown.every((holder) => mayStop(holder.user))
        ? `stop ${label}, ${where}: kill ${pids.join(' ')}`
        : `ask ${whose.length === 1 ? askWhom(whose[0]) : 'their users or root'} to stop ${label}, ${where}`;
  const instead = target.startsWith('port ') ? '; or use another port' : '';
  return `Next step: ${stop}${instead}.`;
}

/**
 * `Next step: ...` for a record naming a live process of another user than its file's owner (see
 * `LockInspection.notOwners`): that process may be the holder, having changed its user after
 * taking the lock, so its record is not to be removed while it may be; portlock never signals it.
 */
export function notOwnersNextStep(pid: number, user: string, lockPath: string): string {
  const reader = currentReader();
  const stop =
    reader.root || reader.user === user
      ? `stop it yourself (kill ${pid})`
      : `ask ${user === 'root' ? 'root' : `${user} or root`} to stop it`;
  return `Next step: pid ${pid} now runs as ${user}: if it is the holder (it changed its user after taking the lock), ${stop}; otherwise remove ${lockPath}.`;
}

function heldLines(d: HeldDetails, wording: Wording): string[] {
  const app = d.meta?.name ?? d.name;
  // The file the holder itself names, where the kernel vouches for it: it may be in another directory.
  const elsewhere = lockFileElsewhere(d.meta, d.lockPath);
  const lockPath = elsewhere ?? d.lockPath;
  const fileLine =
    elsewhere === undefined || d.meta === undefined
      ? `Lock file: ${lockPath}`
      : `Lock file: ${lockPath} ${elsewhereNote(elsewhere, d.meta, d.name, wording)}`;
  const lines: string[] = [];
  const [squatter] = d.holders ?? [];
  // Signalled as the reader: only where they are all the reader's own (another's is theirs to stop).
  const own = (d.holders ?? []).every((holder) => holder.uid === process.getuid?.());
  if (d.orphaned && squatter !== undefined && own) {
    // Processes of its own user hold it with nothing to ask: the reason says who and whence.
    const pids = (d.holders ?? []).map((holder) => holder.pid).join(' ');
    lines.push(`${app} cannot take the lock for ${d.target}: ${d.reason}.`);
    if (fileExists(d.lockPath)) lines.push(`Lock file: ${d.lockPath} (the process it names no longer holds the lock)`);
    lines.push(
      `Next step: stop ${pids.includes(' ') ? 'them' : 'it'} (kill ${pids}; none answers a stop request, so it must be signalled), then try again.`,
    );
    return lines;
  }
  if (d.meta === undefined && d.unlisted !== undefined) {
    // A socket of another network namespace at the lock's socket file: the kernel's word alone.
    lines.push(`${app} cannot take the lock for ${d.target}: ${d.reason}.`);
    lines.push(`Socket file: ${d.unlisted.path} (owned by ${d.unlisted.user}, uid ${d.unlisted.uid})`);
    lines.push(unlistedNextStep(d.unlisted, d.holders, d.target));
    return lines;
  }
  if (d.meta === undefined && squatter !== undefined) {
    // The kernel names who holds the name, and no record vouches for it: say who it is.
    lines.push(`${app} cannot take the lock for ${d.target}: ${d.reason}.`);
    lines.push(`Lock file: ${d.lockPath}`);
    lines.push(
      `Next step: stop ${describeHolder(squatter)}, or ask whoever runs it to; portlock will not stop it for you.`,
    );
    return lines;
  }
  if (d.meta === undefined && d.outOfSight) {
    // Root sees every process of its own pid namespace, /proc/net/unix every socket of its own
    // network namespace: this holder runs outside them, as any user.
    lines.push(`${app} cannot take the lock for ${d.target}: ${d.reason}.`);
    lines.push(
      d.claimedFile === undefined
        ? 'Lock file: not known (no record here names the process that answers on the interlock)'
        : `Lock file: ${d.claimedFile} (its record names the process that answers on the interlock, as its holder reports; neither can be checked from here)`,
    );
    const which = d.claim === undefined ? '' : ` (pid ${d.claim.pid} there, by its own account)`;
    const instead = d.target.startsWith('port ') ? ', or use another port' : '';
    lines.push(
      `Next step: stop it where it runs${which}, in its container or on the host: it cannot be signalled from here; or wait for it to exit${instead}.`,
    );
    return lines;
  }
  if (d.meta === undefined && d.hidden) {
    // Another user's process: its record and its claims cannot be checked, and it cannot be signalled.
    lines.push(`${app} cannot take the lock for ${d.target}: ${d.reason}.`);
    lines.push(`Lock file: not known (the holder keeps its record where this user cannot check it)`);
    lines.push(othersNextStep(d.target, undefined));
    return lines;
  }
  if (d.meta === undefined && !fileExists(d.lockPath)) {
    // No file to read or remove: the kernel interlock alone is held, by a process not shown here.
    lines.push(`${app} cannot take the lock for ${d.target}: ${d.reason}.`);
    lines.push(
      "Next step: it is held through the kernel interlock by a process you cannot see (another user's, or hidden): ask whoever runs it, or root, to stop it.",
    );
    return lines;
  }
  if (d.meta === undefined) {
    lines.push(`${app} cannot take the lock for ${d.target}: ${d.reason}.`);
    lines.push(`Lock file: ${d.lockPath}`);
    lines.push(`Next step: retry in a moment; if the file stays unreadable, remove ${d.lockPath}.`);
    return lines;
  }
  // Its own command line, as its answer told it where the kernel vouches for that answer.
  const about = [d.meta.argv && commandText(d.meta.argv), d.meta.user && `user ${d.meta.user}`].filter(Boolean);
  const who = `pid ${d.meta.pid}${about.length > 0 ? ` (${about.join(', ')})` : ''}${
    d.meta.hostname ? ` on ${d.meta.hostname}` : ''
  }`;
  const command = holderText(d.meta);
  const since = `since ${d.meta.startedAt}${age(d.meta.startedAt, d.now)}`;
  // A holder that names its command is named by it: that is what the reader started.
  if (command !== undefined) {
    const where = d.meta.cwd === undefined ? '' : ` in ${printable(d.meta.cwd)}`;
    lines.push(`${d.target} is held by ${command}${where} ${since}.`);
  } else lines.push(`${app} is already running on ${d.target}: held by ${who} ${since}.`);
  lines.push(`Verdict: ${d.state === 'held' ? `alive, ${d.certainty}` : 'cannot be checked from here'}: ${d.reason}.`);
  lines.push(fileLine);
  const [heir] = d.holders ?? [];
  if (heir !== undefined) {
    // The recorded holder handed the lock on (to a command it ran) and is gone: name who has it.
    const heirs = (d.holders ?? []).map(describeHolder).join(', ');
    lines.push(`Held now by: ${heirs}, through the kernel interlock.`);
    lines.push(`Next step: stop that process first (for example: kill ${heir.pid}), or wait for it to exit.`);
  } else if (d.state === 'unknown' && d.notOwners !== undefined) {
    lines.push(notOwnersNextStep(d.meta.pid, d.notOwners, lockPath));
  } else if (d.state === 'unknown') {
    lines.push(`Next step: stop ${app} where it runs; if it is not running there, remove ${lockPath}.`);
  } else if (othersUser(d.meta.user)) {
    lines.push(othersNextStep(d.target, d.meta.user));
  } else if (d.certainty === 'certain') {
    lines.push(`Next step: stop that process first (for example: kill ${d.meta.pid}), or wait for it to exit.`);
  } else {
    lines.push(
      `Next step: stop that process first (for example: kill ${d.meta.pid}); if pid ${d.meta.pid} is not ${app}, remove ${lockPath}.`,
    );
  }
  return lines;
}

/** What each refusal was made of, to say it again in the command line's words. */
const heldDetails = new WeakMap<LockHeldError, HeldDetails>();

/** The message of a refusal in the reader's words: `--dir` at the command line, the `dir` option in a program. */
export function lockHeldMessage(error: LockHeldError, wording: Wording): string {
  const details = heldDetails.get(error);
  return details === undefined ? error.message : heldMessage(details, wording);
}

/** The lock is held by a live process, or by one portlock cannot check. */
export class LockHeldError extends Error {
  override readonly name = 'LockHeldError';
  readonly code = 'ELOCKED';
  /** The holder's record (without its token); undefined when the file could not be read. */
  readonly meta: PublicLockRecord | undefined;
  /**
   * The holder's lock file: the one looked at, or, where the holder named another (a port held
   * through another lock directory, see `meta.lockFile`), that one.
   */
  readonly lockPath: string;
  /** `held`: a live holder; `unknown`: portlock cannot tell (another host, a record being written). */
  readonly state: 'held' | 'unknown';
  readonly certainty: Certainty;
  readonly reason: string;
  /**
   * Set when processes with no record hold the lock's kernel interlock and cannot answer (a
   * command that outlived `portlock run`, a child that inherited its descriptor): who they are.
   */
  readonly holders?: InterlockHolder[];

  constructor(details: HeldDetails) {
    super(heldMessage(details, 'library'));
    heldDetails.set(this, details);
    this.meta = details.meta;
    this.lockPath = lockFileElsewhere(details.meta, details.lockPath) ?? details.lockPath;
    this.state = details.state;
    this.certainty = details.certainty;
    this.reason = details.reason;
    if (details.orphaned) this.holders = details.holders;
  }
}

export type LockDirectoryProblem =
  | 'symlink'
  | 'not-directory'
  | 'foreign-owner'
  | 'shared-writable'
  | 'unwritable'
  | 'unreachable'
  | 'unsafe-parent';

const DIRECTORY_PROBLEMS: Record<LockDirectoryProblem, string> = {
  symlink: 'it is a symbolic link, and a lock directory must be a real directory',
  'not-directory': 'it exists and is not a directory',
  'foreign-owner': 'it is owned by another user, who could replace any lock in it',
  'shared-writable': 'it is writable by group or others, who could replace any lock in it',
  unwritable: 'this process cannot create files in it',
  unreachable: 'this process cannot reach it: a directory above it is closed to this user',
  'unsafe-parent':
    'a directory above it can be changed by another user, who could move it away or replace it with one of their own',
};

const UNSAFE_LINK =
  'a symbolic link on the way to it belongs to another user, who could point it at another directory at any moment';

/** Whether `path` is a symbolic link, looked up for a message only. */
function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Who reads a next step: a program using the library (the `dir` option) or a person at the command line (`--dir`). */
export type Wording = 'library' | 'cli';

const USE_PRIVATE: Record<Wording, string> = {
  library: 'set PORTLOCK_DIR or pass the `dir` option to a private directory of your own (mode 0700)',
  cli: 'pass --dir (or set PORTLOCK_DIR) to a private directory of your own (mode 0700)',
};

/**
 * The mode of a directory every user shares by design, world-writable and sticky like /tmp, or
 * undefined for any other. Its mode is right for what it is, so the advice is never to chmod it.
 * Looked up here, once, for a message only.
 */
function sharedSystemMode(dir: string): string | undefined {
  try {
    const { mode } = statSync(dir);
    return (mode & 0o1002) === 0o1002 ? `mode ${(mode & 0o7777).toString(8)}` : undefined;
  } catch {
    return undefined;
  }
}

/** The message of a {@link LockDirectoryError}, in the reader's words. */
export function lockDirectoryMessage(
  dir: string,
  problem: LockDirectoryProblem,
  detail: string,
  wording: Wording = 'library',
  parent?: string,
): string {
  const shared = problem === 'shared-writable' ? sharedSystemMode(dir) : undefined;
  if (shared !== undefined) {
    const example = wording === 'cli' ? ', such as --dir ~/.portlock (created for you)' : '';
    return (
      `Lock directory ${dir} cannot be used: it is a shared system directory (writable by every user, sticky: ${shared}), where any user could take or fake a lock.\n` +
      `Next step: ${USE_PRIVATE[wording]}${example}; a shared directory stays shared.`
    );
  }
  // Another user's symbolic link in the path: no mode makes it safe, only a path without it.
  const link = problem === 'unsafe-parent' && parent !== undefined && isSymlink(parent);
  const fix =
    problem === 'shared-writable'
      ? `, or run: chmod 700 ${dir}`
      : parent === undefined
        ? ''
        : link
          ? `, or reach it by a path without ${parent} (remove that link if you did not make it)`
          : `, or make ${parent} writable by its owner alone (chmod go-w ${parent}, or chmod +t ${parent} for a shared directory such as /tmp)`;
  const what = link ? UNSAFE_LINK : DIRECTORY_PROBLEMS[problem];
  return (
    `Lock directory ${dir} cannot be used: ${what}${detail ? ` (${detail})` : ''}.\n` +
    `Next step: ${USE_PRIVATE[wording]}${fix}.`
  );
}

/** The lock directory cannot be used safely: nothing was written. */
export class LockDirectoryError extends Error {
  override readonly name = 'LockDirectoryError';
  readonly code = 'ELOCKDIR';
  readonly dir: string;
  readonly problem: LockDirectoryProblem;
  /** What was found: the mode, the owner, the error code. */
  readonly detail: string;

  /** For `unsafe-parent`: the directory above the lock directory that another user can change. */
  readonly parent: string | undefined;

  constructor(dir: string, problem: LockDirectoryProblem, detail = '', parent?: string) {
    super(lockDirectoryMessage(dir, problem, detail, 'library', parent));
    this.dir = dir;
    this.problem = problem;
    this.detail = detail;
    this.parent = parent;
  }
}

type LockPathProblem = 'symlink' | 'directory' | 'special' | 'unreadable';

/** What is wrong at the lock path, as a clause after its name. */
export const PATH_PROBLEMS: Record<LockPathProblem, string> = {
  symlink: 'is a symbolic link; portlock never follows one',
  directory: 'is a directory, not a lock file',
  special: 'is not a regular file',
  unreadable: 'cannot be read by this process (it belongs to another user)',
};

/** The message of a {@link LockPathError}, in the reader's words. */
export function lockPathMessage(lockPath: string, problem: LockPathProblem, wording: Wording = 'library'): string {
  const own = wording === 'cli' ? '--dir or PORTLOCK_DIR' : 'PORTLOCK_DIR or `dir`';
  return `Lock path ${lockPath} ${PATH_PROBLEMS[problem]}.\nNext step: ${
    problem === 'unreadable'
      ? `use a lock directory of your own (${own}), or ask its owner`
      : 'if you did not put it there, remove it and start again'
  }.`;
}

/** Something other than a lock file sits at the lock path: nothing was written through it. */
export class LockPathError extends Error {
  override readonly name = 'LockPathError';
  readonly code = 'ELOCKPATH';
  readonly lockPath: string;
  readonly problem: LockPathProblem;

  constructor(lockPath: string, problem: LockPathProblem) {
    super(lockPathMessage(lockPath, problem));
    this.lockPath = lockPath;
    this.problem = problem;
  }
}

/** A lock held without an interlock was taken away: its record was removed or replaced. */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';
  readonly code = 'ELOCKLOST';
  readonly lockPath: string;
  /** The record now at the lock path (without its token), if any. */
  readonly meta: PublicLockRecord | undefined;

  constructor(target: string, lockPath: string, meta: PublicLockRecord | undefined) {
    super(
      `The lock for ${target} was lost: its record at ${lockPath} was ${
        meta === undefined ? 'removed' : `replaced by pid ${meta.pid}`
      }.\nNext step: stop serving ${target}; another process may hold it now.`,
    );
    this.lockPath = lockPath;
    this.meta = meta;
  }
}

/** Every port of `acquirePort`'s range was held, by portlock callers or by other programs. */
export class PortRangeExhaustedError extends Error {
  override readonly name = 'PortRangeExhaustedError';
  readonly code = 'EPORTRANGE';
  /** The range searched, inclusive. */
  readonly range: readonly [number, number];
  /** Ports whose portlock another process holds. */
  readonly heldByPortlock: number;
  /** Ports that could not be bound: another program (one that does not use portlock) has them. */
  readonly heldByOthers: number;

  constructor(range: readonly [number, number], heldByPortlock: number, heldByOthers: number) {
    const [low, high] = range;
    super(
      `No free port in ${low}-${high}: ${heldByPortlock} held through portlock, ${heldByOthers} in use by other programs.\n` +
        'Next step: stop servers you no longer need (`portlock list` names the portlock holders), or pass a wider `range`.',
    );
    this.range = range;
    this.heldByPortlock = heldByPortlock;
    this.heldByOthers = heldByOthers;
  }
}

/** Errors by which a file system says it has no room left (a full disk, a used-up quota). */
export const DISK_FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/** The disk holding the lock directory is full: nothing was left half-written. */
export class DiskFullError extends Error {
  override readonly name = 'DiskFullError';
  readonly code = 'EDISKFULL';
  readonly dir: string;

  /** `what`: what could not be done, as the end of "the disk holding <dir> is full: ...". */
  constructor(dir: string, what: string) {
    super(
      `The disk holding ${dir} is full: ${what}.\nNext step: free some space on that disk (df ${dir}), then try again.`,
    );
    this.dir = dir;
  }
}

/** The directory that holds socket-file interlocks cannot be used safely: no socket was bound in it. */
export class SocketDirectoryError extends Error {
  override readonly name = 'SocketDirectoryError';
  readonly code = 'ESOCKETDIR';
  readonly dir: string;
  /** What is wrong with it: its owner, its mode, or what it is. */
  readonly detail: string;

  /** `shared`: the host-wide directory of port sockets (sticky); else this user's private one. */
  constructor(dir: string, detail: string, shared: boolean) {
    const fix = shared
      ? `if you did not make it, remove it (root: rm -r ${dir}) so that portlock creates it with mode 1777 owned by you or root; or set PORTLOCK_SOCKET_DIR to a sticky directory owned by root or you`
      : `remove it (rm -r ${dir}) so that portlock creates it with mode 0700, owned by you`;
    super(
      `Socket directory ${dir} cannot be used: ${detail}; it must be a real directory owned by root or you${
        shared ? ', with the sticky bit (mode 1777, like /tmp)' : ', open to nobody else (mode 0700)'
      }.\nNext step: ${fix}.`,
    );
    this.dir = dir;
    this.detail = detail;
  }
}
