import type { LockLostError } from './errors.ts';

/**
 * Public types of portlock. Every option and field carries its documentation here, so that
 * editors show it and the README can point to one place.
 */

/** Options shared by every call that names a lock. */
export interface LockTarget {
  /**
   * The TCP port the lock stands for: an integer from 1 to 65535.
   * Exactly one of `port` and `key` must be given.
   */
  port?: number;
  /**
   * A named lock for anything that is not a port: letters, digits, `.`, `_` and `-`, at most 64
   * characters, not starting with `.` (a hidden file no listing would show). Exactly one of `port` and `key` must be given.
   */
  key?: string;
  /**
   * The application's name, shown in messages and used for the default directory.
   * Letters, digits, `.`, `_` and `-`, at most 64 characters.
   * @default 'portlock'
   */
  name?: string;
  /**
   * The directory that holds the lock files.
   * @default process.env.PORTLOCK_DIR, else `~/.<name>`
   */
  dir?: string;
}

/** Options of {@link acquireLock}. */
export interface AcquireOptions extends LockTarget {
  /**
   * Milliseconds to keep retrying while the lock is held by someone else. `0` fails fast;
   * `Infinity` waits until the lock is free or `signal` aborts.
   * @default 0
   */
  wait?: number;
  /** Aborts a waiting acquire; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * `auto`: hold a name that tells the moment its holder dies as well as the record, so that a
   * crashed holder can never leave a stale lock: an abstract Unix socket on Linux, a named pipe on
   * Windows, a listening socket file elsewhere (macOS, BSD). `socket-file`: the socket file on any
   * POSIX system (Linux included). `off`: the record alone decides.
   * @default process.env.PORTLOCK_INTERLOCK, else 'auto'
   */
  interlock?: InterlockOption;
  /**
   * Called once if the lock is lost while held: its record was removed or replaced by someone
   * else (only where the record alone decides: a kernel interlock cannot be lost), or, for a key
   * lock, its lock directory was removed, moved away or replaced.
   * Stop serving when it is called; another process may hold the lock now.
   */
  onLost?: (error: LockLostError) => void;
  /**
   * What the holder is, for the record and the `who` answer: its command, working directory,
   * state and URL. A lock adopted from `portlock run` keeps the command and directory it was
   * handed (see {@link HolderInfo}).
   */
  holder?: HolderInfo;
  /**
   * How often, in milliseconds, a holder re-reads its record (without an interlock) or looks at
   * its key lock's directory to notice a lost lock (only with `onLost`).
   * @default 1000
   */
  recheckInterval?: number;
}

/** Options of {@link inspectLock}. */
export interface InspectOptions extends LockTarget {
  /**
   * `auto`: ask the lock's kernel interlock first (a taken interlock means held, a free one means
   * any record of an interlocked holder is stale), the kind the record names where it names the
   * socket file. `socket-file`: ask the socket file. `off`: judge the record alone.
   * @default process.env.PORTLOCK_INTERLOCK, else 'auto'
   */
  interlock?: InterlockOption;
}

/** Which interlock to use: see {@link AcquireOptions.interlock}. */
export type InterlockOption = 'auto' | 'off' | 'socket-file';

/**
 * The kind of interlock a holder holds: a Linux abstract Unix socket, a Windows named pipe, or a
 * listening Unix socket bound to a file (macOS, BSD, or by choice).
 */
export type InterlockKind = 'abstract-socket' | 'named-pipe' | 'socket-file';

/** Options of {@link listLocks}: a directory, or the application name whose default directory to list. */
export interface ListOptions {
  /** As for {@link inspectLock}. @default process.env.PORTLOCK_INTERLOCK, else 'auto' */
  interlock?: InterlockOption;
  /** The directory to list. @default process.env.PORTLOCK_DIR, else `~/.<name>` */
  dir?: string;
  /** The application name whose default directory to list. @default 'portlock' */
  name?: string;
}

/**
 * What a lock file says about its holder. Records written by portlock carry every field; a record
 * in the older `{ pid, port, startedAt }` format carries only those three and is judged by them.
 */
export interface LockRecord {
  /** Format version of the record; absent in the older format. */
  portlock?: 1;
  /** The application that holds the lock. */
  name?: string;
  /** The holder's process id. */
  pid: number;
  /** The port the lock stands for (port locks). */
  port?: number;
  /** The key the lock stands for (key locks). */
  key?: string;
  /** When the lock was taken, ISO-8601. */
  startedAt: string;
  /** The host the holder runs on. A record from another host is never reclaimed. */
  hostname?: string;
  /** The holder's user name, where the OS tells it. */
  user?: string;
  /** The holder's process start time in clock ticks since boot (Linux, `/proc/<pid>/stat` field 22). */
  processStart?: string;
  /** The boot the holder runs in (Linux, `/proc/sys/kernel/random/boot_id`). */
  bootId?: string;
  /** The network namespace the holder runs in (Linux, `/proc/self/ns/net`); ports are per namespace. */
  netns?: string;
  /** The pid namespace the holder runs in (Linux, `/proc/self/ns/pid`); its pid means nothing outside it. */
  pidns?: string;
  /** The holder's thread within its process (`worker_threads.threadId`, 0 for the main thread). */
  thread?: number;
  /**
   * Linux, a holder without the interlock: the id of an abstract socket name it keeps bound while
   * it holds the lock (`portlock/holder-<id>`). The kernel frees it when the holder's thread or
   * process ends, so a free one means the holder is gone, in whatever pid namespace it ran.
   */
  presence?: string;
  /** True when the holder also holds the kernel interlock; then a free interlock means it is gone. */
  interlock?: true;
  /**
   * Which interlock it holds, with `interlock`. Absent in records written before it was said: those
   * held the platform's kernel name (`abstract-socket` on Linux, `named-pipe` on Windows).
   */
  interlockKind?: InterlockKind;
  /** The command line it serves (see {@link HolderInfo}). */
  command?: string[];
  /** The working directory its command was started from. */
  cwd?: string;
  /** Where it serves, once known. */
  url?: string;
  /** The file its output goes to, where there is one. */
  log?: string;
  /** `starting`, `ready` or `stopping`; absent when the holder does not say. */
  state?: HolderState;
  /** Under `portlock run`: the pid of the command it runs, which is what serves the port. */
  commandPid?: number;
  /** For a lock handed over by `portlock run` to the command it started: the pid of that `portlock run`. */
  supervisorPid?: number;
  /**
   * Set when the holder asked for the kernel interlock and could not bind it for a reason other
   * than its being taken: why. The lock is then held by the record alone.
   */
  interlockUnavailable?: string;
  /**
   * With the socket-file interlock: the device and inode (`dev:ino`) of the socket file its holder
   * linked at the lock's path. The record's token is sent in a stop request only to the file at
   * that path while it is still this one (a link another user put there in its place is not).
   */
  socketFile?: string;
  /**
   * In a holder's answer on its interlock only (Linux): the inode of the socket that answered, as
   * /proc/net/unix shows it. It tells that socket from look-alike names another process may bind
   * (the table shows a NUL and an `@` alike). Never in the record file.
   */
  socketInode?: string;
  /**
   * In a holder's answer on its interlock only: the lock file it holds, by its absolute path. A
   * port's kernel name is the same for every lock directory, so this names the record to act on
   * when it lies in another directory than the asker's. Never in the record file.
   */
  lockFile?: string;
  /**
   * In a holder's answer on its interlock only: the holder process's own command line
   * (`process.argv`, at most a few KB of it). Never in the record file.
   */
  argv?: string[];
  /**
   * A random value that only this holder's record carries. It proves ownership: release and
   * reclaim act only on a record that still carries the token they expect. Never shown to others.
   */
  token?: string;
}

/** Where a holder is in its life: starting, serving, or draining before it exits. */
export type HolderState = 'starting' | 'ready' | 'stopping';

/**
 * What a holder says about itself, besides who it is: the fields of the record and the `who`
 * answer that turn "something holds my port" into "is that my server?".
 */
export interface HolderInfo {
  /** The command line it serves, as argv (`['node', 'server.js']`). */
  command?: string[];
  /** The working directory the command was started from. */
  cwd?: string;
  /** Where it serves, once known (`http://localhost:3000`). */
  url?: string;
  /** The file its output goes to, where there is one (`portlock up`). */
  log?: string;
  /** `starting` while it starts, `ready` once it serves, `stopping` while it drains. */
  state?: HolderState;
}

/** A record as shown to anyone but its holder: the token is left out. */
export type PublicLockRecord = Omit<LockRecord, 'token'>;

/** How sure a verdict is. */
export type Certainty = 'certain' | 'likely';

/**
 * The state of a lock:
 * - `free`: no lock file;
 * - `held`: a live holder;
 * - `stale`: the holder is gone (or the file is unreadable garbage); the next acquire replaces it;
 * - `unknown`: portlock cannot tell from here (another host, a record being written, an odd file);
 *   it is never reclaimed automatically.
 */
export type LockState = 'free' | 'held' | 'stale' | 'unknown';

/** What {@link inspectLock} and {@link listLocks} report about one lock. */
export interface LockInspection {
  state: LockState;
  /** The lock file's path. */
  path: string;
  /** The holder's record, without its token, when the file could be read. */
  record?: PublicLockRecord;
  /** Why the state was judged so, in one sentence. */
  reason: string;
  /** How sure the verdict is. */
  certainty: Certainty;
  /** The processes the kernel says hold the lock's interlock (Linux), each as the kernel describes it. */
  holders?: InterlockHolder[];
  /**
   * What the process on the lock's interlock claimed to be, when the kernel contradicts it (a
   * squatter of the name): never to be taken for the holder's record.
   */
  claim?: PublicLockRecord;
  /**
   * Set when the processes holding the lock's kernel interlock hold it orphaned: no record names
   * them as its holder and none can answer a question (a command that outlived the `portlock run`
   * that took the lock, a background child that inherited its descriptor). `holders` names them,
   * `reason` says where the lock came from, and `record` is absent. `stopLock` with `force` stops them.
   */
  orphaned?: true;
  /**
   * Set when a live socket listens at the lock's socket file (the `socket-file` interlock) that
   * the kernel does not list in this network namespace: it was bound in another one (a container,
   * or a user's own, which any user may make), or under another name and linked there. Its answers
   * cannot be checked, so they are never believed (see `claim`): the kernel's word is its file,
   * that file's owner (`uid`, `user`), and `holders` where /proc shows them. `state` is `held`;
   * `stopLock` sends it neither a token nor a signal.
   */
  unlistedSocket?: UnlistedSocket;
  /**
   * Set when the record names a live process of another user than the lock file's owner: that
   * user's name. A record speaks only for its owner's processes, so `state` is `unknown`: the
   * process is neither believed to hold the lock nor signalled for it.
   */
  notOwners?: string;
}

/**
 * A live socket at a lock's socket file that this network namespace's /proc/net/unix does not list
 * at that path (see `LockInspection.unlistedSocket`): the file, and its owner from `lstat`.
 */
export interface UnlistedSocket {
  /** The socket file. */
  path: string;
  /** The socket file's owner: the user that bound it, or linked it there. */
  uid: number;
  /** That user's name, or `uid N`. */
  user: string;
  /**
   * Where this network namespace's table lists the socket under another path (a hard link, a
   * symbolic link or a bind mount on the way): that path. Unset where it is not listed here at
   * all: it was bound in another network namespace, or at a path not seen here.
   */
  listedAs?: string;
}

/** Called when another process asks the holder to stop (for example `portlock stop`). */
export type StopRequestHandler = () => void | Promise<void>;

/** A lock held by this process. */
export interface LockHandle {
  /** The lock file's path. */
  readonly path: string;
  /** The record this process published, token included. */
  readonly record: Readonly<LockRecord>;
  /** Whether a kernel interlock backs this lock (see the `interlock` option). */
  readonly interlocked: boolean;
  /** Removes the lock file if it still carries this holder's token. Idempotent. */
  release(): Promise<void>;
  /**
   * The synchronous twin of `release()`, for `process.on('exit')`: idempotent, and it never
   * throws.
   */
  releaseSync(): void;
  /**
   * What to do when another process, proving it may read this lock's record, asks the holder to
   * stop. Without a handler such requests are answered "not supported".
   */
  onStopRequest: StopRequestHandler | undefined;
  /**
   * The file descriptor of the lock's kernel interlock, to hand to a child process that will use
   * the port: `spawn(command, args, { stdio: ['inherit', 'inherit', 'inherit', lock.interlockFd()] })`.
   * The child then holds the kernel name too, so the lock stays held for as long as the child
   * lives, even if this process is killed with `SIGKILL`; {@link interlockHolders} names it then.
   * The child need not do anything with the descriptor, only keep it open (a program that closes
   * the descriptors it inherits gives this up). Undefined when no interlock backs the lock, where
   * the OS cannot pass it on (Windows), and after release.
   */
  interlockFd(): number | undefined;
  /**
   * Changes what the record and the `who` answer say about the holder (its state and URL, for
   * example `{ state: 'ready', url: 'http://localhost:3000' }`): the record is replaced in one
   * step, never half-written, and only while it still carries this holder's token; the `who`
   * answer changes at once. Throws {@link LockLostError} when the record is no longer this holder's.
   */
  update(changes: HolderUpdate): void;
}

/** What {@link LockHandle.update} may change. */
export interface HolderUpdate extends HolderInfo {
  /** The pid of the command this holder runs (as `portlock run` sets it). */
  commandPid?: number;
}

/** A process that holds a lock's kernel interlock; see {@link interlockHolders}. */
export interface InterlockHolder {
  pid: number;
  /** Its command line, where the OS tells it. */
  command: string | undefined;
  /** Its effective user id, as the kernel tells it. */
  uid?: number;
  /**
   * Set when its real or saved user id is not its effective one (a daemon that serves a user with
   * that user's effective uid while keeping its own): the user `uid` names cannot signal it, so it
   * is not that user's to vouch for.
   */
  mixedUids?: true;
  /** The name of that user, or `uid N` where it has none. */
  user?: string;
  /** Its start time in clock ticks since boot, as `LockRecord.processStart`. */
  startTime?: string;
  /** Its pid namespace, as `LockRecord.pidns`. */
  pidns?: string;
  /** Whether it may bind a port below 1024 (root, or CAP_NET_BIND_SERVICE). */
  canBindPrivileged?: boolean;
}

/** Options of {@link stopLock}. */
export interface StopLockOptions extends LockTarget {
  /**
   * Milliseconds to wait for the holder to release the lock after each step: the stop request,
   * and with `force` the SIGTERM and the SIGKILL. Never waits longer, questions to the holder
   * included, except that a question always gets at least 100 ms to be answered.
   * @default 10000
   */
  timeout?: number;
  /**
   * When the holder does not stop on request (it refused, does not answer, or the time ran out),
   * send it SIGTERM, then SIGKILL. Only the process the lock names, or the processes that hold its
   * kernel interlock, are signalled; never this process.
   * @default false
   */
  force?: boolean;
}

/** What {@link stopLock} did. */
export interface StopLockResult {
  /**
   * - `stopped`: the lock was held and is not any more;
   * - `not-running`: nothing held it (no lock file, or a stale one);
   * - `still-running`: it is still held: the holder refused, did not answer, or took too long;
   * - `unknown`: its holder cannot be checked from here (another host, an odd file); nothing was sent.
   */
  outcome: 'stopped' | 'not-running' | 'still-running' | 'unknown';
  /** What stopped it: the holder on request, or a signal (with `force`). */
  via?: 'request' | 'SIGTERM' | 'SIGKILL';
  /** The lock as found before anything was sent. */
  before: LockInspection;
  /** The processes that were sent a signal. */
  signalled: number[];
  /** Each process that was sent a signal: which signals, and what became of it. */
  processes: SignalledProcess[];
  /** Why, in one sentence a person can act on. */
  reason: string;
  /** Set when root stopped a lock in another user's directory: that user's uid, whose processes alone were trusted. */
  dirOwner?: number;
  /**
   * Set when another user's process holds the lock, which the caller may not ask or signal: that
   * user's name (`another user` where /proc does not tell). Only that user or root can stop it.
   */
  holderUser?: string;
  /**
   * Set (with `unknown`) when the lock's record names a live process of another user than the
   * lock file's owner: that user's name (see `LockInspection.notOwners`). Nothing was sent.
   */
  notOwners?: string;
}

/** A process {@link stopLock} signalled, and what became of it. */
export interface SignalledProcess {
  pid: number;
  /** The signals sent to it, in order. */
  signals: ('SIGTERM' | 'SIGKILL')[];
  /**
   * `exited`: it is gone; `let go`: it runs on but no longer holds the lock; `still holding`: it
   * still holds the lock.
   */
  outcome: 'exited' | 'let go' | 'still holding';
}

/** Options of {@link cleanLocks}. */
export interface CleanOptions extends ListOptions {
  /** Report what would be removed, and remove nothing. @default false */
  dryRun?: boolean;
}

/** What {@link cleanLocks} found. */
export interface CleanResult {
  /** Stale records removed (with `dryRun`, the ones that would be). */
  removed: LockInspection[];
  /**
   * Every other lock, left alone: held, unknown, changed while being cleaned, or a file with a
   * lock's name that is not a lock record (`unknown`, "not a lock record, left alone").
   */
  kept: LockInspection[];
  /** Portlock's own leftovers removed: temp files and claims of processes that died taking a lock. */
  leftovers?: string[];
}

/** What {@link removeStaleLock} did. */
export interface RemoveStaleResult extends LockInspection {
  /** True when this call removed the stale record. */
  removed: boolean;
}
