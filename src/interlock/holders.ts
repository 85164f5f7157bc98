import { readdirSync, readlinkSync } from 'node:fs';
import { parseProcStat, readText } from '../identity/probe.ts';
import { resolveTarget } from '../options/resolve.ts';
import type { InterlockHolder, LockTarget } from '../types.ts';
import { interlockName, kernelForms, legacyForm } from './name.ts';

// __SO_ACCEPTCON in /proc/net/unix's Flags column: the socket is listening.
const LISTENING = 0x10000;
// CAP_NET_BIND_SERVICE, as a bit of /proc/<pid>/status's CapEff.
const CAP_NET_BIND_SERVICE = 10n;

/**
 * How /proc/net/unix shows an abstract name: every NUL byte as `@`. The table cannot tell a NUL
 * from an `@`, so names are compared in this form, whole: a name differing only by trailing NULs
 * is another name, never the same one.
 */
export function shownAs(name: string): string {
  return name.replaceAll('\0', '@');
}

/**
 * The listening sockets bound to abstract names, from the text of /proc/net/unix
 * (`Num RefCount Protocol Flags Type St Inode Path`): each name as the table shows it (see
 * {@link shownAs}), with the inodes of the sockets listening on it.
 */
export function listeningAbstractNames(table: string): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const flags = Number.parseInt(fields[3] ?? '', 16);
    const inode = fields[6];
    // A path never holds a space in our names; one that does is not ours, and stays whole anyway.
    const path = fields.slice(7).join(' ');
    if (inode === undefined || !path.startsWith('@') || (flags & LISTENING) === 0) continue;
    names.set(path, [...(names.get(path) ?? []), inode]);
  }
  return names;
}

/** The inode of the socket listening on exactly this abstract name, from the text of /proc/net/unix. */
export function listeningInode(name: string, table: string): string | undefined {
  return listeningAbstractNames(table).get(shownAs(name))?.[0];
}

/**
 * Which abstract names are bound right now (Linux), as the table shows them, for checking many
 * interlocks at once without connecting to each; undefined where the table cannot be read.
 */
export function boundAbstractNames(): Set<string> | undefined {
  if (process.platform !== 'linux') return undefined;
  const table = readText('/proc/net/unix', 'utf8');
  return table === undefined ? undefined : new Set(listeningAbstractNames(table).keys());
}

/** Whether a lock's name is bound under any of its forms, per a table read by {@link boundAbstractNames}. */
export function isBound(bound: Set<string>, name: string): boolean {
  return kernelForms(name).some((form) => bound.has(shownAs(form)));
}

/** Whether a process listens on the legacy form of a lock's name (Linux). */
export function legacyFormBound(name: string): boolean {
  const legacy = legacyForm(name);
  if (legacy === undefined || process.platform !== 'linux') return false;
  return boundAbstractNames()?.has(shownAs(legacy)) === true;
}

let users: Map<number, string> | undefined;

/** A user's name from /etc/passwd, or `uid N` where it has none. */
export function userName(uid: number): string {
  if (users === undefined) {
    users = new Map();
    for (const line of (readText('/etc/passwd', 'utf8') ?? '').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id && /^\d+$/.test(id) && !users.has(Number(id))) users.set(Number(id), name);
    }
  }
  return users.get(uid) ?? `uid ${uid}`;
}

function holdsSocket(pid: string, links: Set<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    // Gone, or another user's: not ours to see.
    return false;
  }
  for (const fd of fds) {
    try {
      if (links.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return true;
    } catch {
      // Closed while we looked.
    }
  }
  return false;
}

/**
 * Whether a process is wholly a user's: its real, effective and saved uids all that user's. Only
 * then may that user signal it, and so only then do that user's records vouch for it.
 */
export function runsWhollyAs(process: Pick<InterlockHolder, 'uid' | 'mixedUids'>, uid: number): boolean {
  return process.uid === uid && process.mixedUids !== true;
}

/** What the kernel tells of a live process, for deciding whether to believe or signal it. */
export function describeProcess(pid: number): InterlockHolder | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  const status = readText(`/proc/${pid}/status`);
  const parsed = stat === undefined ? undefined : parseProcStat(stat);
  // Real, effective, saved and file-system uids. The effective one is what the kernel checks for
  // binding a port and opening files; the real and saved ones, for who may signal the process.
  const uidMatch = status === undefined ? null : /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status);
  if (parsed === undefined || uidMatch?.[2] === undefined || parsed.state === 'Z' || parsed.state === 'X') {
    return undefined;
  }
  const uid = Number(uidMatch[2]);
  const mixedUids = uidMatch[1] !== uidMatch[2] || uidMatch[3] !== uidMatch[2];
  const capEff = status === undefined ? null : /^CapEff:\s+([0-9a-f]+)$/m.exec(status);
  let pidns: string | undefined;
  try {
    pidns = readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    pidns = undefined;
  }
  const command = readText(`/proc/${pid}/cmdline`, 'utf8')?.split('\0').filter(Boolean).join(' ');
  return {
    pid,
    command: command || undefined,
    uid,
    ...(mixedUids && { mixedUids: true as const }),
    user: userName(uid),
    startTime: parsed.startTime,
    ...(pidns !== undefined && { pidns }),
    ...(capEff?.[1] !== undefined && {
      canBindPrivileged: uid === 0 || ((BigInt(`0x${capEff[1]}`) >> CAP_NET_BIND_SERVICE) & 1n) === 1n,
    }),
  };
}

/**
 * Whether some process the kernel shows holding one of these sockets (inodes from /proc/net/unix)
 * is one that `accept`s: the pids in `first` are looked at before the rest of /proc. False where
 * none is, or /proc shows none (another user's, hidepid).
 */
export function someSocketHolder(
  inodes: string[],
  accept: (holder: InterlockHolder) => boolean,
  first: number[] = [],
): boolean {
  const links = new Set(inodes.map((inode) => `socket:[${inode}]`));
  const pids = [...first.map(String), ...readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))];
  const seen = new Set<string>();
  for (const pid of pids) {
    if (seen.has(pid)) continue;
    seen.add(pid);
    if (!holdsSocket(pid, links)) continue;
    const holder = describeProcess(Number(pid));
    if (holder !== undefined && accept(holder)) return true;
  }
  return false;
}

/** What the kernel says about who holds a name. */
export interface KernelHolders {
  /**
   * `free`: nobody listens on the name under any of its forms. `held`: someone does; `holders`
   * are the processes seen holding it (empty when /proc does not show them: another user's, or
   * hidepid). `unseen`: /proc cannot tell at all (another OS, no /proc/net/unix).
   */
  state: 'free' | 'held' | 'unseen';
  holders: InterlockHolder[];
  /** The pids among `holders` that hold the lock's own name (not its legacy form): who a question reaches. */
  onOwnName?: number[];
  /** Set when the name is held only in its legacy form: an older portlock, or a Node without padding. */
  legacy?: true;
}

/** Socket links (`socket:[inode]`) to the pids that hold them open: one scan of /proc for many names. */
export type SocketOwners = Map<string, number[]>;

/** Scans every process's descriptors once (Linux), for {@link kernelHolders} of many names. */
export function socketOwners(): SocketOwners {
  const owners: SocketOwners = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    const seen = new Set<string>();
    for (const fd of fds) {
      try {
        const link = readlinkSync(`/proc/${entry}/fd/${fd}`);
        if (!link.startsWith('socket:') || seen.has(link)) continue;
        seen.add(link);
        owners.set(link, [...(owners.get(link) ?? []), Number(entry)]);
      } catch {
        // Closed while we looked.
      }
    }
  }
  return owners;
}

/**
 * The one place that answers "which processes hold this exact kernel name": the inodes of the
 * sockets listening on exactly that name (and on its legacy form, which holds the lock too), and
 * the processes that have one of them open, each with its uid, user, start time, pid namespace
 * and command line. Linux only: `unseen` elsewhere.
 */
export function kernelHolders(name: string, owners?: () => SocketOwners): KernelHolders {
  if (process.platform !== 'linux' || !name.startsWith('\0')) return { state: 'unseen', holders: [] };
  const table = readText('/proc/net/unix', 'utf8');
  if (table === undefined) return { state: 'unseen', holders: [] };
  const listening = listeningAbstractNames(table);
  const [own, legacy] = kernelForms(name).map((form) => listening.get(shownAs(form)) ?? []);
  const inodes = [...(own ?? []), ...(legacy ?? [])];
  if (inodes.length === 0) return { state: 'free', holders: [] };
  const links = (list: string[] | undefined) => new Set((list ?? []).map((inode) => `socket:[${inode}]`));
  const ownLinks = links(own);
  const allLinks = links(inodes);
  const holders: InterlockHolder[] = [];
  const onOwnName: number[] = [];
  const add = (pid: number, own: boolean) => {
    const holder = describeProcess(pid);
    if (holder === undefined) return;
    holders.push(holder);
    if (own) onOwnName.push(holder.pid);
  };
  if (owners !== undefined) {
    // Many names at once: the scan of /proc is shared.
    const index = owners();
    const pids = new Set([...allLinks].flatMap((link) => index.get(link) ?? []));
    const own = new Set([...ownLinks].flatMap((link) => index.get(link) ?? []));
    for (const pid of pids) add(pid, own.has(pid));
  } else {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || !holdsSocket(entry, allLinks)) continue;
      add(Number(entry), ownLinks.size > 0 && holdsSocket(entry, ownLinks));
    }
  }
  return { state: 'held', holders, onOwnName, ...(own?.length === 0 && { legacy: true as const }) };
}

/** The processes that hold the listening socket of an abstract name (Linux), as the kernel tells. */
export function socketHolders(name: string): InterlockHolder[] {
  return kernelHolders(name).holders;
}

/**
 * The processes that hold a lock's kernel interlock right now: its holder, and any child the
 * holder handed it to ({@link LockHandle.interlockFd}), which keeps the lock held after the holder
 * is gone. Linux only (an empty list elsewhere), and only processes whose descriptors this user
 * may read. Changes nothing.
 */
export function interlockHolders(options: LockTarget): InterlockHolder[] {
  const { scope, dir } = resolveTarget(options, 'interlockHolders');
  const name = interlockName(scope, dir);
  return name === undefined ? [] : socketHolders(name);
}
