import {
  type BigIntStats,
  chmodSync,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  type Stats,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { connect } from 'node:net';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { SocketDirectoryError } from '../errors.ts';
import type { Verdict } from '../identity/judge.ts';
import { readText } from '../identity/probe.ts';
import { crypto } from '../lazy-crypto.ts';
import { actOnStale } from '../lock/claim-chain.ts';
import type { LockScope } from '../options/validate.ts';
import type { RecordFile } from '../record/read-record.ts';
import { unlinkQuietly } from '../record/unlink-quietly.ts';
import type { LockRecord } from '../types.ts';
import { listeningAtSocketFile } from './holders.ts';
import { Interlock } from './server.ts';
import { besidePath, digest, fits, portSocketDir, shortPath, socketFileBase, uid } from './socket-file-path.ts';

/**
 * The socket-file interlock (macOS, the BSDs, other POSIX systems; on Linux with
 * `interlock: 'socket-file'`): holding the lock is having a listening Unix socket at a path that
 * stands for it. A dead holder's socket file stays behind, but connecting to it fails at once
 * (ECONNREFUSED): the kernel, not a pid, says the holder is gone.
 *
 * - A socket is bound under a hidden temp name, and only once it listens is it linked (`link(2)`,
 *   which fails if the name exists) at the lock's path: the path never names a socket that does
 *   not answer yet, so "refused" always means "dead".
 * - A dead socket file is taken over through the record layer's claim chain (`claim-chain.ts`),
 *   claiming the dead file's identity (device, inode, times), then renaming the new socket over
 *   it: unlink-then-bind would let a slow taker remove a fast one's fresh socket.
 * - Port sockets are host-wide, in one sticky directory (`/tmp/.portlock`, or `PORTLOCK_SOCKET_DIR`),
 *   mode 0666 so that any user's portlock can ask them. A dead socket of another user there cannot
 *   be removed, so a port has numbered slots (`port-5338.sock`, `port-5338.1.sock`, ...): a taker
 *   binds the lowest slot it can use when none is live, then looks at every other slot, and
 *   backs off if one is live. Of two takers, the later to listen sees the earlier: never two.
 * - `sun_path` holds 108 bytes on Linux and 104 on macOS: a key lock whose directory's path is too
 *   long for `<dir>/<key>.sock` gets a short hashed name in a private per-user directory, and a
 *   symbolic link from `<dir>/<key>.sock` points to it.
 * - A key lock holds a second socket, host-wide in the sticky directory, named from its
 *   directory's real path (`keypath-<hash>.sock`, in slots as a port's): a directory moved away,
 *   or deleted and made anew, still meets its holder (see `keyPathSocket`).
 * - A taker killed between its bind and its link leaves its temp name: swept once it is old and
 *   refuses connections (see `sweepDeadTemps`).
 */

/** Slots of one port: enough for a few users' dead sockets, few enough to look at all of them. */
export const MAX_SLOTS = 16;

/** Slot `n` of a port's socket: the base path itself, then `port-<port>.<n>.sock`. */
export function slotPath(base: string, n: number): string {
  return n === 0 ? base : base.replace(/\.sock$/, `.${n}.sock`);
}

/** The names in a socket directory now; none where it cannot be read. */
function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The slots of a port's socket that exist now (of `names`, the directory read once), lowest first. */
function existingSlots(base: string, names: readonly string[] = namesIn(dirname(base))): string[] {
  const stem = basename(base).replace(/\.sock$/, '');
  const slot = new RegExp(`^${stem.replaceAll('.', '\\.')}(?:\\.(\\d{1,2}))?\\.sock$`);
  return names
    .flatMap((name) => {
      const match = slot.exec(name);
      return match === null ? [] : [{ n: Number(match[1] ?? 0), name }];
    })
    .sort((a, b) => a.n - b.n)
    .map(({ name }) => join(dirname(base), name));
}

/**
 * What a socket path holds now: `live` (something listens; a full backlog counts), `dead` (a
 * socket nobody listens on), `missing`, or `foreign`: not a socket file at all (a symbolic link,
 * a regular file), which no holder ever leaves there, and which is never connected to (a link
 * planted in the shared directory could point at any socket on the host). A socket that refuses
 * this user (not portlock's: its port sockets are open to all) is dead only where the kernel shows
 * nothing listening on that path (Linux); elsewhere it counts as live.
 */
export function knock(path: string): Promise<'live' | 'dead' | 'missing' | 'foreign'> {
  const kind = fileKind(path);
  if (kind !== 'socket') return Promise.resolve(kind);
  return new Promise((settle) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      settle('live');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      if (error.code === 'ENOENT') settle('missing');
      else if (error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK') settle('dead');
      else if (error.code === 'EACCES') settle(listeningOnPath(path) === false ? 'dead' : 'live');
      else settle('live');
    });
  });
}

/** What is at a socket path, without following a symbolic link: a socket, nothing, or something else. */
function fileKind(path: string): 'socket' | 'missing' | 'foreign' {
  try {
    return lstatSync(path).isSocket() ? 'socket' : 'foreign';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'foreign';
  }
}

/** Whether /proc/net/unix shows a socket listening on exactly this path; undefined where it cannot tell. */
function listeningOnPath(path: string): boolean | undefined {
  if (process.platform !== 'linux') return undefined;
  const table = readText('/proc/net/unix', 'utf8');
  if (table === undefined) return undefined;
  return table.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    return (Number.parseInt(fields[3] ?? '', 16) & 0x10000) !== 0 && fields.slice(7).join(' ') === path;
  });
}

/**
 * A socket that still listens under a name of this lock's (a slot, or the temp name a holder bound
 * before linking it) whose file is gone (Linux, from /proc/net/unix): a holder whose link a cleaner
 * of /tmp removed. It holds the lock still; a new link at the slot would grant it twice. A temp
 * name whose file is still there is a taker that has not linked yet: the slots decide between them.
 * Returns the path of the slot it was linked at.
 */
function unlinkedHolder(base: string): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const table = readText('/proc/net/unix', 'utf8');
  if (table === undefined) return undefined;
  const dir = dirname(base);
  const stem = basename(base)
    .replace(/\.sock$/, '')
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ours = new RegExp(`^\\.?${stem}(?:\\.\\d{1,2})?\\.sock(?:\\.[0-9a-f]{8})?$`);
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if ((Number.parseInt(fields[3] ?? '', 16) & 0x10000) === 0) continue;
    const path = fields.slice(7).join(' ');
    if (dirname(path) !== dir || !ours.test(basename(path)) || fileKind(path) !== 'missing') continue;
    // Named by its slot, as the kernel's table is read for a socket file (see listeningAtSocketFile).
    return join(
      dir,
      basename(path)
        .replace(/^\./, '')
        .replace(/\.[0-9a-f]{8}$/, ''),
    );
  }
  return undefined;
}

/** The lowest live slot of a port's socket, other than `except`; undefined when none is live. */
async function liveSlot(base: string, except?: string, names?: readonly string[]): Promise<string | undefined> {
  for (const path of existingSlots(base, names)) {
    if (path !== except && (await knock(path)) === 'live') return path;
  }
  return undefined;
}

/**
 * A temp socket this old that refuses connections was left by a process that died between binding
 * it and linking it at its lock's path (or removing it after). A live taker binds, listens, links
 * and removes it within microseconds, but between its bind and its listen a connection is refused
 * too: the age tells that moment apart from a death.
 */
const TEMP_SOCKET_MAX_AGE_MS = 5000;

/** The temp names (`.<socket name>.<8 hex>`) of a lock's socket, or of any slot of a port's. */
function tempNamesOf(base: string, names: readonly string[]): string[] {
  const stem = basename(base)
    .replace(/\.sock$/, '')
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const temp = new RegExp(`^\\.${stem}(?:\\.\\d{1,2})?\\.sock\\.[0-9a-f]{8}$`);
  return names.filter((name) => temp.test(name));
}

/** Whether this user owns `dir` (on a system without users, yes). */
function ownedByMe(dir: string): boolean {
  try {
    return uid() === undefined || lstatSync(dir).uid === uid();
  } catch {
    return false;
  }
}

// A key's socket directory (its lock directory, or this user's private one) is read for temp
// sockets once per process, as the lock directory is for other leftovers (see `leftovers.ts`);
// a port's temp names come with the read of its slots, on every acquire.
const sweptDirs = new Set<string>();

function firstInSocketDir(dir: string): boolean {
  if (sweptDirs.has(dir)) return false;
  if (sweptDirs.size >= 64) sweptDirs.clear();
  sweptDirs.add(dir);
  return true;
}

/**
 * Removes the temp sockets of this lock (of `names`, its socket directory's) that provably belong
 * to a dead process: a socket file, older than any live taker's, that refuses connections (or is
 * gone by then), and this user's own; in a private directory (`shared` false: the lock directory
 * or this user's socket directory), any owner's. Never another user's in the shared directory,
 * which the sticky bit keeps theirs. Returns the paths removed.
 */
export async function sweepDeadTemps(base: string, names: readonly string[], shared: boolean): Promise<string[]> {
  const removed: string[] = [];
  const me = uid();
  for (const name of tempNamesOf(base, names)) {
    const path = join(dirname(base), name);
    let stat: BigIntStats;
    try {
      stat = lstatSync(path, { bigint: true });
    } catch {
      continue;
    }
    if (!stat.isSocket() || Date.now() - Number(stat.mtimeMs) < TEMP_SOCKET_MAX_AGE_MS) continue;
    if (shared && me !== undefined && Number(stat.uid) !== me) continue;
    const state = await knockOnce(path);
    if (state !== 'refused') continue;
    // Still the same dead file: unlinked only if nobody replaced it meanwhile.
    if (sameFile(path, stat.dev, stat.ino)) {
      unlinkQuietly(path);
      removed.push(path);
    }
  }
  return removed;
}

/** Connects once: `refused` only for ECONNREFUSED, the kernel's word that nothing listens there. */
function knockOnce(path: string): Promise<'refused' | 'other'> {
  return new Promise((settle) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      settle('other');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      settle(error.code === 'ECONNREFUSED' ? 'refused' : 'other');
    });
  });
}

/**
 * The socket path to ask about a lock: for a port, its lowest live slot (else its first); for a
 * key, the path beside the record, or where the holder left a link there (a long directory), its
 * target.
 */
export async function liveSocketFile(scope: LockScope, dir: string): Promise<string> {
  if (scope.kind === 'port') {
    const base = socketFileBase(scope, dir);
    return (await liveSlot(base)) ?? base;
  }
  return keySocketPath(scope.key, dir);
}

/** A key's socket path: beside its record, or where the holder left a link there (a long directory), its target. */
function keySocketPath(key: string, dir: string): string {
  const beside = besidePath(dir, key);
  if (fits(beside)) return beside;
  try {
    const target = readlinkSync(beside);
    if (isAbsolute(target) && fits(target)) return target;
  } catch {
    // No link: nobody has held it yet, or not from here.
  }
  return shortPath(dir, key);
}

/** What makes a socket file this file: a dead one is taken over only while it is still the same. */
export function identityOf(path: string): { identity: string; uid: number } | undefined {
  let stat: Stats & { birthtimeNs?: bigint };
  try {
    stat = lstatSync(path, { bigint: true }) as unknown as Stats & { birthtimeNs?: bigint };
  } catch {
    return undefined;
  }
  const big = stat as unknown as { dev: bigint; ino: bigint; ctimeNs: bigint; birthtimeNs: bigint; uid: bigint };
  return {
    identity: digest(`${big.dev}:${big.ino}:${big.ctimeNs}:${big.birthtimeNs}`),
    uid: Number(big.uid),
  };
}

/** Whether the file at `path` is still the inode `ino` of device `dev`. */
function sameFile(path: string, dev: bigint, ino: bigint): boolean {
  try {
    const stat = lstatSync(path, { bigint: true });
    return stat.dev === dev && stat.ino === ino;
  } catch {
    return false;
  }
}

/**
 * Makes sure a socket directory is safe to bind in, creating it if missing: a real directory (not
 * a link), owned by root or this user, and either sticky (`shared`, the host-wide port directory,
 * created 1777) or closed to everyone else (created 0700). Throws {@link SocketDirectoryError}.
 */
export function ensureSocketDir(dir: string, shared: boolean): void {
  const mode = shared ? 0o1777 : 0o700;
  let stat: Stats | undefined;
  try {
    stat = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (stat === undefined) {
    // Made aside and renamed into place with its mode set (the umask takes bits away), so that
    // nobody ever finds it with the wrong mode.
    const temp = `${dir}.${crypto().randomBytes(4).toString('hex')}`;
    mkdirSync(temp, { mode });
    try {
      chmodSync(temp, mode);
      renameSync(temp, dir);
    } catch (error) {
      rmdirSync(temp);
      // Made by another process meanwhile: judged below like any other.
      if (!['EEXIST', 'ENOTEMPTY'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
    stat = lstatSync(dir);
  }
  const me = uid();
  let why: string | undefined;
  if (!stat.isDirectory()) why = stat.isSymbolicLink() ? 'it is a symbolic link' : 'it is not a directory';
  else if (me !== undefined && stat.uid !== 0 && stat.uid !== me) why = `it is owned by uid ${stat.uid}`;
  else if (shared && (stat.mode & 0o1000) === 0) why = `it is not sticky (mode 0${(stat.mode & 0o7777).toString(8)})`;
  else if (!shared && (stat.mode & 0o077) !== 0)
    why = `it is open to others (mode 0${(stat.mode & 0o7777).toString(8)})`;
  if (why !== undefined) throw new SocketDirectoryError(dir, why, shared);
}

/**
 * Why the socket file at `path` is not the one a holder's record says it linked there (its
 * `socketFile`), or undefined where it is, or the record does not say: the record's token goes
 * only to that file, never to a socket another user linked at the path once the holder's was gone.
 */
export function notHoldersSocketFile(
  path: string,
  record: Pick<LockRecord, 'socketFile'> | undefined,
): string | undefined {
  if (record?.socketFile === undefined || !path.startsWith('/')) return undefined;
  let found: string;
  try {
    const stat = lstatSync(path, { bigint: true });
    found = `${stat.dev}:${stat.ino}`;
  } catch {
    return `the holder's socket file ${path} is gone (removed while the holder still listens)`;
  }
  return found === record.socketFile
    ? undefined
    : `the socket file at ${path} is not the one its holder linked there (its link was removed, and another file put in its place)`;
}

/**
 * Whether descriptor `fd` is the listening socket whose file is a lock's socket file now (a lock
 * handed to this process by `portlock run`): the file there must be the one the holder's record
 * names (`socketFile`), and the kernel must list `fd`'s socket as listening on it (Linux, from
 * /proc/net/unix: a socket file's holder bound it under its temp name, then linked it at the path).
 * False where the kernel cannot tell: the environment alone never hands a lock over.
 */
export function isLocksSocketFile(fd: number, scope: LockScope, dir: string, socketFile: string | undefined): boolean {
  if (socketFile === undefined || process.platform !== 'linux') return false;
  let inode: string;
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (!stat.isSocket()) return false;
    inode = String(stat.ino);
  } catch {
    return false;
  }
  const base = socketFileBase(scope, dir);
  const paths = scope.kind === 'port' ? existingSlots(base) : [keySocketPath(scope.key, dir)];
  const path = paths.find((candidate) => {
    try {
      const { dev, ino } = lstatSync(candidate, { bigint: true });
      return `${dev}:${ino}` === socketFile;
    } catch {
      return false;
    }
  });
  const table = path === undefined ? undefined : readText('/proc/net/unix', 'utf8');
  return path !== undefined && table !== undefined && listeningAtSocketFile(table, path).includes(inode);
}

/** Points `link` at `target` (a key lock's long directory to its short socket), replacing an old link. */
function pointTo(link: string, target: string): void {
  try {
    if (readlinkSync(link) === target) return;
  } catch {
    // No link yet, or something else: replaced below.
  }
  const temp = join(dirname(link), `.${basename(link)}.${crypto().randomBytes(4).toString('hex')}`);
  try {
    symlinkSync(target, temp);
    renameSync(temp, link);
  } catch {
    // Only a pointer for readers; the lock does not depend on it.
    unlinkQuietly(temp);
  }
}

/** What a taker writes as its claim on a dead socket file, and how it judges others' claims. */
export interface SocketFileTaker {
  /** The claim's content: this holder's record, so that a claimer that dies is judged stale. */
  claim(): Buffer;
  judge(file: RecordFile): Verdict;
}

/**
 * The outcome of binding a lock's socket file: held (`first`), the path of the live socket that
 * holds it (a string), or why it could not be bound.
 */
export type SocketFileBound = { first: Interlock; file: string; second?: Interlock } | string | { unavailable: string };

/**
 * Binds a lock's socket file: for a key, its own path, then its second socket (from its
 * directory's real path); for a port, the lowest usable slot when no slot is live, checked
 * against every other slot once bound (see the opening comment).
 */
export async function bindSocketFile(scope: LockScope, dir: string, taker: SocketFileTaker): Promise<SocketFileBound> {
  const base = socketFileBase(scope, dir);
  if (scope.kind === 'port') return bindHostWide(base, taker, 'port');
  const first = await bindKeySocket(scope.key, dir, base, taker);
  if (typeof first !== 'object' || !('first' in first)) return first;
  // Its second name, from the directory's real path (see `keyPathSocket`): held only with both.
  const pathBase = keyPathSocket(scope.key, dir);
  if (pathBase === undefined) return first;
  let second: SocketFileBound;
  try {
    second = await bindHostWide(pathBase, taker, 'key');
  } catch (error) {
    // A shared directory that is refused (see ensureSocketDir) fails a port's lock; a key's own
    // socket needs none of it.
    if (!(error instanceof SocketDirectoryError)) throw error;
    second = { unavailable: error.message };
  }
  if (typeof second === 'string') {
    first.first.close();
    return second;
  }
  // Not bindable (the shared directory refused, or its slots are all other users' dead sockets):
  // the key is held by its first name alone, as where there is no second name.
  return 'first' in second ? { ...first, second: second.first } : first;
}

/**
 * A key lock's second socket, host-wide in the shared socket directory, named from its directory's
 * real path: a directory moved away, or deleted and created anew at the same path, has new
 * contents (the first socket, `<dir>/<key>.sock`, went with the old one, or is gone) but the same
 * path, so a lock taken in the new one still meets the holder of the old one. As the abstract
 * socket's second name (`keyPathName`), where no /proc shows a holder whose file is gone.
 * Undefined where the directory cannot be resolved.
 */
export function keyPathSocket(key: string, dir: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return undefined;
  }
  return join(portSocketDir(), `keypath-${digest(`${real}\0${key}`)}.sock`);
}

/** Binds a key's own socket: its one path, beside its record or (a long directory) a short name. */
async function bindKeySocket(key: string, dir: string, base: string, taker: SocketFileTaker): Promise<SocketFileBound> {
  if (dirname(base) !== dir) {
    // A directory moved here keeps its link to the socket its holder bound under the old path.
    const pointed = keySocketPath(key, dir);
    if (pointed !== base && (await knock(pointed)) === 'live') return pointed;
    ensureSocketDir(dirname(base), false);
    pointTo(besidePath(dir, key), base);
  }
  if (firstInSocketDir(dirname(base))) {
    // A lock directory of another user's (shared with this one) is no private directory.
    await sweepDeadTemps(base, namesIn(dirname(base)), !ownedByMe(dirname(base)));
  }
  // A holder may still listen whose link is gone: its name is the one held.
  const unlinked = unlinkedHolder(base);
  if (unlinked !== undefined && (await knock(base)) !== 'live') return unlinked;
  const bound = await bindAt(base, false, taker);
  return bound === 'foreign' ? { unavailable: `${base} is not a socket file` } : bound;
}

/**
 * Binds a host-wide socket in the shared directory (a port's, or a key's second one), in numbered
 * slots: the lowest usable slot when no slot is live, checked against every other slot once bound
 * (see the opening comment).
 */
async function bindHostWide(base: string, taker: SocketFileTaker, what: 'port' | 'key'): Promise<SocketFileBound> {
  ensureSocketDir(dirname(base), true);
  const names = namesIn(dirname(base));
  await sweepDeadTemps(base, names, true);
  const live = await liveSlot(base, undefined, names);
  if (live !== undefined) return live;
  // No live slot, yet a holder may still listen whose link is gone: its name is the one held.
  const unlinked = unlinkedHolder(base);
  if (unlinked !== undefined) return unlinked;
  for (let n = 0; n < MAX_SLOTS; n++) {
    const path = slotPath(base, n);
    const bound = await bindAt(path, true, taker);
    if (bound === 'foreign') continue;
    if (typeof bound !== 'object' || !('first' in bound)) return bound;
    // Another taker may have bound another slot meanwhile: whichever listened later sees it.
    const rival = await liveSlot(base, path);
    if (rival === undefined) return bound;
    bound.first.close();
    return rival;
  }
  return {
    unavailable: `the first ${MAX_SLOTS} socket files of this ${what} in ${dirname(base)} are other users' dead sockets (or links and files that are not sockets), which only they or root can remove`,
  };
}

/**
 * Binds one socket path: a new socket under a temp name, linked at `path` if it is free, renamed
 * over it if a dead socket of this user's is there (through the claim chain). `foreign`: a dead
 * socket this user cannot remove (another user's, in the sticky directory), or in the shared
 * directory anything that is not a socket (a link or file planted there): skipped, never followed.
 */
async function bindAt(
  path: string,
  shared: boolean,
  taker: SocketFileTaker,
): Promise<{ first: Interlock; file: string } | string | 'foreign' | { unavailable: string }> {
  const temp = join(dirname(path), `.${basename(path)}.${crypto().randomBytes(4).toString('hex')}`);
  const bound = await Interlock.bind(temp, { shared });
  if (bound === 'taken' || bound === 'unavailable') return { unavailable: `binding a socket at ${temp} failed` };
  const { dev, ino } = lstatSync(temp, { bigint: true });
  // The socket file's own identity: a link at the path and a rename over it both keep it.
  const file = `${dev}:${ino}`;
  const held = (): { first: Interlock; file: string } => {
    unlinkQuietly(temp);
    // Released while it still listens, so the path cannot have passed to anyone else: ours to remove.
    bound.beforeClose(() => {
      if (sameFile(path, dev, ino)) unlinkSync(path);
    });
    return { first: bound, file };
  };
  try {
    // A few turns: each means another process changed the path in between, which is rare.
    for (let turn = 0; turn < 8; turn++) {
      try {
        linkSync(temp, path);
        return held();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') {
          bound.close();
          return { unavailable: `linking the socket file ${path} failed (${code})` };
        }
      }
      const found = identityOf(path);
      if (found === undefined) continue;
      const state = await knock(path);
      if (state === 'missing') continue;
      if (state === 'live') {
        bound.close();
        return path;
      }
      // Not a socket (a link or file another user put in the shared directory): a slot it squats.
      if (state === 'foreign' && shared) {
        bound.close();
        return 'foreign';
      }
      const me = uid();
      if (me !== undefined && me !== 0 && found.uid !== me) {
        bound.close();
        return 'foreign';
      }
      const outcome = actOnStale(
        path,
        found,
        taker.claim(),
        taker.judge,
        () => renameSync(temp, path),
        () => identityOf(path)?.identity === found.identity,
      );
      if (outcome.kind === 'done') return held();
      if (outcome.kind === 'busy') {
        // Another process is taking it over right now: as good as taken; the caller looks again.
        bound.close();
        return path;
      }
    }
    bound.close();
    return path;
  } catch (error) {
    bound.close();
    throw error;
  }
}
