import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { type PresenceOwner, presenceBound } from '../interlock/presence.ts';

/** What the process table says about a pid. */
export type Existence = 'alive' | 'gone' | 'other-user';

/** What Linux tells about a live pid beyond its existence. */
export interface ProcessInfo {
  /**
   * Start time in clock ticks since boot (`/proc/<pid>/stat` field 22); where there is no /proc,
   * in whole seconds since the epoch as `ps` tells it (see `startedAtMs`).
   */
  startTime: string;
  /**
   * Where the OS tells a start time as a date rather than since boot (`ps -o lstart`, macOS and
   * BSD): that time, epoch milliseconds, to the second.
   */
  startedAtMs?: number;
  /** One-letter state: `Z` zombie, `X` dead, others alive. */
  state: string;
  /** The thread group id: differs from the pid when the pid names a thread, not a process. */
  tgid: number | undefined;
  /**
   * For a zombie, how many of its threads still exist. A multi-threaded process's main thread
   * turns zombie first; its files (sockets, ports) are closed only when the last thread is gone.
   */
  threads?: number;
  /**
   * Its effective user id, where the OS tells it cheaply (Linux, from /proc/<pid>/status): a
   * record vouches only for processes of its file's owner.
   */
  uid?: number;
}

/**
 * Everything the lock asks the operating system about processes, in one seam, so that tests can
 * stage PID reuse, reboots or another host without faking the file system.
 */
export interface ProcessProbe {
  /** This process's id. */
  readonly pid: number;
  hostname(): string;
  user(): string | undefined;
  /** Identifies this process's network namespace; undefined where the OS has none. */
  netns?(): string | undefined;
  /** Identifies this process's pid namespace; a pid means something only inside its own. */
  pidns?(): string | undefined;
  /** This thread's id within its process (`worker_threads.threadId`: 0 for the main thread). */
  readonly threadId?: number;
  /**
   * Whether a holder's presence name (see `interlock/presence.ts`) is bound in this network
   * namespace by a process `owner` may vouch for (false: not bound at all); undefined where the
   * OS cannot tell.
   */
  presenceBound?(id: string, owner?: PresenceOwner): boolean | undefined;
  /**
   * Linux: the process that is `pid` inside the pid namespace `pidns` (as `/proc/self/ns/pid`
   * names it), as the kernel shows it to this process: what it tells of it, `gone` when that
   * namespace has no such pid (or no longer exists), undefined where this process cannot see it
   * (a namespace that is not below its own, or other users' processes it may not inspect).
   */
  inPidNamespace?(pidns: string, pid: number): ProcessInfo | 'gone' | undefined;
  /** Identifies the current boot; undefined where the OS has no such notion. */
  bootId(): string | undefined;
  /** When the current boot began, epoch milliseconds; undefined where unknown. */
  bootTimeMs(): number | undefined;
  exists(pid: number): Existence;
  /** `gone` when the pid has no entry; undefined where the OS does not tell. */
  info(pid: number): ProcessInfo | 'gone' | undefined;
  /** This process's own start time, as `ProcessInfo.startTime`; undefined where unknown. */
  ownStartTime(): string | undefined;
  /** Clock ticks per second for `ProcessInfo.startTime`. */
  readonly ticksPerSecond: number;
  now(): number;
}

/**
 * A small file such as one under /proc, or undefined where it cannot be read (gone, another
 * user's, not Linux). latin1 by default: /proc/<pid>/stat carries a command name in raw bytes.
 */
export function readText(path: string, encoding: 'latin1' | 'utf8' = 'latin1'): string | undefined {
  try {
    return readFileSync(path, encoding);
  } catch {
    return undefined;
  }
}

/**
 * A process's open descriptors and what each points at (`socket:[4711]`, `anon_inode:[eventpoll]`,
 * a path), from /proc/<pid>/fd; undefined where /proc does not show them (the process is gone, or
 * another user's).
 */
export function descriptors(pid: number | string): { fd: string; link: string }[] | undefined {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  return fds.flatMap((fd) => {
    try {
      return [{ fd, link: readlinkSync(`/proc/${pid}/fd/${fd}`) }];
    } catch {
      // Closed while we looked.
      return [];
    }
  });
}

/** What a process's open descriptors point at; none where /proc does not show them (see {@link descriptors}). */
export function descriptorLinks(pid: number | string): string[] {
  return descriptors(pid)?.map(({ link }) => link) ?? [];
}

/**
 * The fields of a `/proc/<pid>/stat` line after the command name, from field 3 on (state, ppid,
 * pgrp, session, tty_nr, tpgid, ...): the name in parentheses may itself hold spaces and ')'.
 */
export function procStatFields(text: string): string[] | undefined {
  const end = text.lastIndexOf(')');
  return end < 0 ? undefined : text.slice(end + 2).split(' ');
}

/** Parses `/proc/<pid>/stat` for a process's state, parent and start time. */
export function parseProcStat(text: string): { state: string; ppid: number; startTime: string } | undefined {
  const fields = procStatFields(text);
  if (fields === undefined) return undefined;
  // fields[0] is field 3 (state), fields[1] field 4 (ppid), so field 22 (starttime) is fields[19].
  const [state, ppid] = fields;
  const startTime = fields[19];
  if (!state || !ppid || !/^\d+$/.test(ppid) || !startTime || !/^\d+$/.test(startTime)) return undefined;
  return { state, ppid: Number(ppid), startTime };
}

function parseTgid(status: string | undefined): number | undefined {
  const match = status === undefined ? null : /^Tgid:\s*(\d+)$/m.exec(status);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function once<T>(compute: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value;
  };
}

const isLinux = process.platform === 'linux';
/** Whether this OS has /proc to read processes from; elsewhere `ps` is asked (POSIX). */
const hasProc = isLinux && existsSync('/proc/self/stat');

/**
 * What `ps` tells of a pid, for systems without /proc (macOS, BSD): its start time from
 * `lstart` (a date to the second, in the C locale's format) and its state. `gone` when ps lists
 * no such pid; undefined where ps cannot be run or says something else. A process and a pipe
 * cost some milliseconds: the judge asks only for a record whose pid exists.
 */
export function psInfo(pid: number): ProcessInfo | 'gone' | undefined {
  let out: string;
  try {
    out = execFileSync('ps', ['-o', 'stat=', '-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' },
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
  } catch (error) {
    // ps exits 1 with nothing listed when the pid does not exist.
    const { status, stdout } = error as { status?: number; stdout?: string };
    return status === 1 && !stdout?.trim() ? 'gone' : undefined;
  }
  const match = /^\s*(\S+)\s+(\w{3} \w{3}\s+\d{1,2} \d{2}:\d{2}:\d{2} \d{4})\s*$/.exec(out);
  if (match?.[1] === undefined || match[2] === undefined) return out.trim() === '' ? 'gone' : undefined;
  const startedAtMs = Date.parse(`${match[2]} UTC`);
  if (Number.isNaN(startedAtMs)) return undefined;
  return { startTime: String(startedAtMs / 1000), startedAtMs, state: match[1].slice(0, 1), tgid: undefined };
}

export function processExists(pid: number): Existence {
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? 'other-user' : 'gone';
  }
}

function linuxInfo(pid: number): ProcessInfo | 'gone' | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (error) {
    // ENOENT: gone. Anything else (`/proc` mounted with hidepid): it exists, unseen.
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : undefined;
  }
  const parsed = parseProcStat(stat);
  if (parsed === undefined) return undefined;
  const { state, startTime } = parsed;
  const status = readText(`/proc/${pid}/status`);
  const uid = status === undefined ? null : /^Uid:\s+\d+\s+(\d+)/m.exec(status);
  const info: ProcessInfo = {
    state,
    startTime,
    tgid: parseTgid(status),
    ...(uid?.[1] !== undefined && { uid: Number(uid[1]) }),
  };
  if (state === 'Z' || state === 'X') {
    try {
      info.threads = readdirSync(`/proc/${pid}/task`).length;
    } catch {
      info.threads = 0;
    }
  }
  return info;
}

/** A process's pid in each pid namespace from this /proc's down to its own (`NSpid`). */
export function nsPids(pid: number | string): string[] | undefined {
  return /^NSpid:\s*([\d\s]+)$/m
    .exec(readText(`/proc/${pid}/status`) ?? '')?.[1]
    ?.trim()
    .split(/\s+/);
}

/**
 * Finds the process that is `pid` in pid namespace `pidns` among those this process can see:
 * `/proc/<p>/ns/pid` names its namespace, and the last `NSpid` of `/proc/<p>/status` is its pid
 * there. A namespace nested below this one shows all its processes here; one that is not (a
 * sibling container, the host seen from a container) shows none, which proves nothing.
 */
function linuxInPidNamespace(pidns: string, pid: number): ProcessInfo | 'gone' | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  let unseen = false;
  let members = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${entry}/ns/pid`);
    } catch (error) {
      // Not inspectable (another user's, or not dumpable): it may be in that namespace only if
      // its NSpid shows it nested in one below this /proc's own.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && nsPids(entry)?.length !== 1) unseen = true;
      continue;
    }
    if (ns !== pidns) continue;
    members++;
    if (nsPids(entry)?.at(-1) !== String(pid)) continue;
    const info = linuxInfo(Number(entry));
    // Its tgid is a host pid; in its own namespace it is the process itself.
    return info === 'gone' || info === undefined ? info : { ...info, tgid: pid };
  }
  // Not found: gone, provided every process could be looked at, and that namespace is one this
  // process sees into. Every pid namespace is nested in the initial one, so seen from there, a
  // namespace without a process has ended (a namespace ends with its last process).
  if (unseen) return undefined;
  return members > 0 || systemProbe.pidns?.() === INITIAL_PID_NAMESPACE ? 'gone' : undefined;
}

// The kernel's fixed inode number of the initial pid namespace (PROC_PID_INIT_INO).
const INITIAL_PID_NAMESPACE = 'pid:[4026531836]';

const ownThreadId = once(() => process.getBuiltinModule('node:worker_threads').threadId);

/** The probe of the machine this process runs on. */
export const systemProbe: ProcessProbe = {
  pid: process.pid,
  // Read on first use: node:worker_threads costs a start some milliseconds (it loads the stream
  // classes), which a refusal, needing no record of its own, would pay for nothing.
  get threadId() {
    return ownThreadId();
  },
  presenceBound,
  hostname: once(() => hostname()),
  user: once(() => {
    try {
      return userInfo().username;
    } catch {
      // No passwd entry (a container running as an arbitrary uid).
      return process.getuid === undefined ? undefined : `uid ${process.getuid()}`;
    }
  }),
  netns: once(() => {
    try {
      return isLinux ? readlinkSync('/proc/self/ns/net') : undefined;
    } catch {
      return undefined;
    }
  }),
  pidns: once(() => {
    try {
      return isLinux ? readlinkSync('/proc/self/ns/pid') : undefined;
    } catch {
      return undefined;
    }
  }),
  bootId: once(() => (isLinux ? readText('/proc/sys/kernel/random/boot_id')?.trim() || undefined : undefined)),
  bootTimeMs: once(() => {
    const match = isLinux ? /^btime (\d+)$/m.exec(readText('/proc/stat') ?? '') : null;
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1000;
  }),
  exists: processExists,
  inPidNamespace: (pidns, pid) => (isLinux ? linuxInPidNamespace(pidns, pid) : undefined),
  info: (pid) => (hasProc ? linuxInfo(pid) : process.platform === 'win32' ? undefined : psInfo(pid)),
  ownStartTime: once(() => {
    const stat = isLinux ? readText('/proc/self/stat') : undefined;
    return stat === undefined ? undefined : parseProcStat(stat)?.startTime;
  }),
  // USER_HZ is 100 on every Linux architecture Node runs on.
  ticksPerSecond: 100,
  now: () => Date.now(),
};
