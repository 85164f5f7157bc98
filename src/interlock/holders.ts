import { closeSync, fstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { descriptorLinks, parseProcStat, readText } from '../identity/probe.ts';
import { userName } from '../identity/users.ts';
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
 * The sockets /proc/net/unix shows listening (`Num RefCount Protocol Flags Type St Inode Path`):
 * each one's inode, and the name or path it was bound at as the table shows it (see {@link shownAs}).
 */
function listeningSockets(table: string): { inode: string; path: string }[] {
  const sockets: { inode: string; path: string }[] = [];
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const flags = Number.parseInt(fields[3] ?? '', 16);
    const inode = fields[6];
    // A path never holds a space in our names; one that does is not ours, and stays whole anyway.
    const path = fields.slice(7).join(' ');
    if (inode !== undefined && (flags & LISTENING) !== 0) sockets.push({ inode, path });
  }
  return sockets;
}

/**
 * The listening sockets bound to abstract names, from the text of /proc/net/unix: each name as
 * the table shows it (see {@link shownAs}), with the inodes of the sockets listening on it.
 */
export function listeningAbstractNames(table: string): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const { inode, path } of listeningSockets(table)) {
    if (path.startsWith('@')) names.set(path, [...(names.get(path) ?? []), inode]);
  }
  return names;
}

/**
 * The inodes of the sockets listening at a socket file's path, from the text of /proc/net/unix.
 * The table shows the path a socket was bound at: a portlock socket is bound under a hidden temp
 * name beside the path (`.<name>.<hex>`) and then linked at it, so those count too; which one the
 * path names, its holder's answer tells (its `socketInode`).
 */
export function listeningAtSocketFile(table: string, path: string): string[] {
  return atSocketFile(listeningSockets(table), path);
}

/** Of `sockets`, the inodes of those bound at `path` or under its temp name beside it (see {@link listeningAtSocketFile}). */
export function atSocketFile(sockets: readonly { inode: string; path: string }[], path: string): string[] {
  const slash = path.lastIndexOf('/');
  const temp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.`;
  return sockets
    .filter(
      ({ path: bound }) => bound === path || (bound.startsWith(temp) && /^[0-9a-f]{8}$/.test(bound.slice(temp.length))),
    )
    .map(({ inode }) => inode);
}

/**
 * Of `inodes`, those shown on more than one line of /proc/net/unix. A socket has one line; the
 * table prints a name's bytes raw, newlines too, so a name may carry a forged line after its own,
 * giving a lock's name with the inode of some other socket. Such an inode is not taken as the
 * name's socket: its processes are no holders.
 */
export function repeatedInodes(table: string, inodes: readonly string[]): Set<string> {
  const wanted = new Set(inodes);
  const seen = new Set<string>();
  const repeated = new Set<string>();
  if (wanted.size === 0) return repeated;
  for (const line of table.split('\n')) {
    const inode = line.trim().split(/\s+/)[6];
    if (inode === undefined || !wanted.has(inode)) continue;
    if (seen.has(inode)) repeated.add(inode);
    seen.add(inode);
  }
  return repeated;
}

// The tables of a network namespace's other kinds of socket, each with the column of its inode.
const OTHER_SOCKET_TABLES: readonly (readonly [string, number])[] = [
  ...['tcp', 'tcp6', 'udp', 'udp6', 'udplite', 'udplite6', 'raw', 'raw6', 'icmp', 'icmp6', 'netlink'].map(
    (table) => [table, 9] as const,
  ),
  ['packet', 8],
];

/**
 * Of `inodes`, those of sockets that are no Unix sockets: shown in a table of TCP, UDP, raw, ping,
 * netlink or packet sockets of the network namespace whose /proc/.../net is `netDir`. Such an inode
 * has no line of its own in /proc/net/unix, so a forged line giving it is shown once there, and
 * {@link repeatedInodes} cannot tell it: its processes are no holders of a Unix name either.
 */
export function otherKindInodes(netDir: string, inodes: readonly string[]): Set<string> {
  const wanted = new Set(inodes);
  const found = new Set<string>();
  if (wanted.size === 0) return found;
  for (const [table, column] of OTHER_SOCKET_TABLES) {
    for (const line of (readText(`${netDir}/${table}`) ?? '').split('\n')) {
      const inode = line.trim().split(/\s+/)[column];
      if (inode !== undefined && wanted.has(inode)) found.add(inode);
    }
  }
  return found;
}

/**
 * One reading of /proc/net/unix, parsed once, for looks at many names in a row (`listLocks`): each
 * look would otherwise read and parse the whole table again, which holds every lock's sockets.
 */
export interface UnixTable {
  sockets: { inode: string; path: string }[];
  listening: Map<string, string[]>;
  /** The inodes shown on more than one line (see {@link repeatedInodes}). */
  repeated: Set<string>;
}

/** Reads and parses /proc/net/unix once; undefined where it cannot be read. */
export function parsedUnixTable(): UnixTable | undefined {
  const text = process.platform === 'linux' ? readText('/proc/net/unix', 'utf8') : undefined;
  if (text === undefined) return undefined;
  const sockets = listeningSockets(text);
  const listening = new Map<string, string[]>();
  for (const { inode, path } of sockets) {
    if (path.startsWith('@')) listening.set(path, [...(listening.get(path) ?? []), inode]);
  }
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const line of text.split('\n')) {
    const inode = line.trim().split(/\s+/)[6];
    if (inode === undefined) continue;
    if (seen.has(inode)) repeated.add(inode);
    seen.add(inode);
  }
  return { sockets, listening, repeated };
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

/** The inode of a socket this process holds open (as /proc/net/unix shows it); undefined where unknown. */
export function socketInode(fd: number | undefined): string | undefined {
  if (fd === undefined || process.platform !== 'linux') return undefined;
  try {
    return String(fstatSync(fd, { bigint: true }).ino);
  } catch {
    return undefined;
  }
}

/**
 * Whether a lock's name is bound under any of its forms, per a table read by {@link boundAbstractNames}.
 * A socket file's path is not in that table: it counts as bound, to be asked.
 */
export function isBound(bound: Set<string>, name: string): boolean {
  if (!name.startsWith('\0')) return true;
  return kernelForms(name).some((form) => bound.has(shownAs(form)));
}

/** Where /proc/net/unix is read into, kept between reads (it grows to the largest table seen). */
let tableBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * The bytes of /proc/net/unix, read in as few calls as the buffer allows (the kernel walks its
 * socket table again on every read call); undefined where it cannot be read.
 */
function readUnixTable(): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync('/proc/net/unix', 'r');
  } catch {
    return undefined;
  }
  try {
    let length = 0;
    for (;;) {
      if (length === tableBuffer.length) {
        const bigger = Buffer.allocUnsafe(tableBuffer.length * 2);
        tableBuffer.copy(bigger, 0, 0, length);
        tableBuffer = bigger;
      }
      const read = readSync(fd, tableBuffer, length, tableBuffer.length - length, null);
      if (read === 0) return tableBuffer.subarray(0, length);
      length += read;
    }
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether a process listens on the legacy form of a lock's name (Linux). On the path of every
 * acquire that binds a name under a Node that cannot bind the legacy form itself (Node 20), so it
 * does not parse the whole table: it looks for the name's bytes at the end of a line, and parses
 * only the lines found, exactly as {@link listeningAbstractNames} would.
 */
export function legacyFormBound(name: string): boolean {
  const legacy = legacyForm(name);
  if (legacy === undefined || process.platform !== 'linux') return false;
  const table = readUnixTable();
  if (table === undefined) return false;
  const shown = shownAs(legacy);
  // Every line ends in a newline; one more at the end lets the last line be found the same way.
  const text = table.at(-1) === 0x0a ? table : Buffer.concat([table, Buffer.from('\n')]);
  const needle = Buffer.from(` ${shown}\n`, 'utf8');
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const start = text.lastIndexOf(0x0a, at) + 1;
    const line = text.toString('utf8', start, at + needle.length - 1);
    if (listeningAbstractNames(line).has(shown)) return true;
  }
  return false;
}

/** Which of `links` (`socket:[inode]`) a process holds open; none where /proc does not show its descriptors. */
function socketsHeldBy(pid: string, links: Set<string>): Set<string> {
  return new Set(descriptorLinks(pid).filter((link) => links.has(link)));
}

const holdsSocket = (pid: string, links: Set<string>): boolean => socketsHeldBy(pid, links).size > 0;

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

/** A socket listening on a lock's name, as /proc/net/unix shows it. */
interface KernelSocket {
  inode: string;
  /** Under the lock's own name, or its legacy form (see `legacyForm`). */
  form: 'own' | 'legacy';
  /** The processes holding it, among those /proc shows. */
  pids: number[];
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
  /** The sockets behind `holders`, each with its form and its processes. */
  sockets?: KernelSocket[];
  /**
   * Processes that hold a look-alike of the name: another name that /proc/net/unix shows the same
   * way (it shows a NUL and an `@` alike). Never holders of the lock.
   */
  lookAlikes?: InterlockHolder[];
  /** Set when several sockets show as the lock's own name and which one is it is not known. */
  ambiguous?: true;
}

/** Socket links (`socket:[inode]`) to the pids that hold them open: one scan of /proc for many names. */
export type SocketOwners = Map<string, number[]>;

/** Scans every process's descriptors once (Linux), for {@link kernelHolders} of many names. */
export function socketOwners(): SocketOwners {
  const owners: SocketOwners = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (const link of new Set(descriptorLinks(entry))) {
      if (link.startsWith('socket:')) owners.set(link, [...(owners.get(link) ?? []), Number(entry)]);
    }
  }
  return owners;
}

/**
 * The one place that answers "which processes hold this exact kernel name": the inodes of the
 * sockets listening on exactly that name (and on its legacy form, which holds the lock too), and
 * the processes that have one of them open, each with its uid, user, start time, pid namespace
 * and command line. Linux only: `unseen` elsewhere.
 *
 * /proc/net/unix shows a NUL and an `@` alike, so anyone may bind a look-alike that shows as the
 * lock's name. `real`, where the caller knows it, is the inode of the name's own socket (the one
 * its holder reported on the name itself), or null when nothing listens on the exact name: the
 * other sockets that show as the name are look-alikes (see {@link setApartLookAlikes}). Without
 * it, several sockets showing as the name leave it `ambiguous`.
 */
export function kernelHolders(
  name: string,
  owners?: () => SocketOwners,
  real?: string | null,
  unixTable: () => UnixTable | undefined = parsedUnixTable,
): KernelHolders {
  const socketFile = name.startsWith('/');
  if (process.platform !== 'linux' || !(name.startsWith('\0') || socketFile)) return { state: 'unseen', holders: [] };
  const table = unixTable();
  if (table === undefined) return { state: 'unseen', holders: [] };
  const [own = [], legacy = []] = socketFile
    ? [atSocketFile(table.sockets, name)]
    : kernelForms(name).map((form) => table.listening.get(shownAs(form)) ?? []);
  if (own.length + legacy.length === 0) return { state: 'free', holders: [] };
  const forged = new Set([...own, ...legacy].filter((inode) => table.repeated.has(inode)));
  const found = socketPids(
    [...own, ...legacy].filter((inode) => !forged.has(inode)).map((inode) => `socket:[${inode}]`),
    owners,
  );
  const pidsOf = (inode: string) => (forged.has(inode) ? [] : found(inode));
  const sockets: KernelSocket[] = [
    ...own.map((inode) => ({ inode, form: 'own' as const, pids: pidsOf(inode) })),
    ...legacy.map((inode) => ({ inode, form: 'legacy' as const, pids: pidsOf(inode) })),
  ];
  const described = new Map<number, InterlockHolder>();
  for (const pid of new Set(sockets.flatMap((socket) => socket.pids))) {
    const holder = describeProcess(pid);
    if (holder !== undefined) described.set(pid, holder);
  }
  const kernel = fromSockets(sockets, described, own.length > 1 ? { ambiguous: true } : {});
  return real === undefined ? kernel : setApartLookAlikes(kernel, real);
}

/**
 * {@link kernelHolders} looking at `pids` alone, not at every process in /proc: what it tells
 * where the kernel shows every socket listening on the name (under either form) held by one of
 * them; undefined where one is held by none of them, nothing listens, or /proc cannot tell (ask
 * {@link kernelHolders} then). Processes outside `pids` may hold the same sockets too (a child
 * the holder handed its socket to): `holders` names only those among `pids` that do. Each pid's
 * descriptors are read once.
 */
export function kernelHoldersAmong(name: string, pids: readonly number[]): KernelHolders | undefined {
  if (process.platform !== 'linux' || !name.startsWith('\0') || pids.length === 0) return undefined;
  const table = readText('/proc/net/unix', 'utf8');
  if (table === undefined) return undefined;
  const listening = listeningAbstractNames(table);
  const [own = [], legacy = []] = kernelForms(name).map((form) => listening.get(shownAs(form)) ?? []);
  if (own.length + legacy.length === 0) return undefined;
  // A socket shown on several lines is not known to be the name's: the full look tells.
  if (repeatedInodes(table, [...own, ...legacy]).size > 0) return undefined;
  const links = new Set([...own, ...legacy].map((inode) => `socket:[${inode}]`));
  const heldBy = new Map<string, number[]>();
  for (const pid of new Set(pids)) {
    for (const link of socketsHeldBy(String(pid), links)) heldBy.set(link, [...(heldBy.get(link) ?? []), pid]);
  }
  if (heldBy.size < links.size) return undefined;
  const pidsOf = (inode: string) => heldBy.get(`socket:[${inode}]`) ?? [];
  const sockets: KernelSocket[] = [
    ...own.map((inode) => ({ inode, form: 'own' as const, pids: pidsOf(inode) })),
    ...legacy.map((inode) => ({ inode, form: 'legacy' as const, pids: pidsOf(inode) })),
  ];
  const described = new Map<number, InterlockHolder>();
  for (const pid of new Set([...heldBy.values()].flat())) {
    const holder = describeProcess(pid);
    if (holder !== undefined) described.set(pid, holder);
  }
  return fromSockets(sockets, described, own.length > 1 ? { ambiguous: true } : {});
}

/** For each socket link, the pids holding it open: from a shared scan, or by reading /proc now. */
function socketPids(links: string[], owners: (() => SocketOwners) | undefined): (inode: string) => number[] {
  let index: SocketOwners;
  if (owners !== undefined) index = owners();
  else {
    index = new Map();
    const wanted = new Set(links);
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      for (const link of socketsHeldBy(entry, wanted)) index.set(link, [...(index.get(link) ?? []), Number(entry)]);
    }
  }
  return (inode) => index.get(`socket:[${inode}]`) ?? [];
}

function fromSockets(
  sockets: KernelSocket[],
  described: Map<number, InterlockHolder>,
  extra: Pick<KernelHolders, 'ambiguous' | 'lookAlikes'>,
): KernelHolders {
  const pids = (list: KernelSocket[]) => [...new Set(list.flatMap((socket) => socket.pids))];
  const own = sockets.filter((socket) => socket.form === 'own');
  const holders = pids(sockets).flatMap((pid) => described.get(pid) ?? []);
  const onOwnName = pids(own).filter((pid) => described.has(pid));
  if (sockets.length === 0) return { state: 'free', holders: [], ...extra };
  return {
    state: 'held',
    holders,
    onOwnName,
    sockets,
    ...(own.length === 0 && { legacy: true as const }),
    ...extra,
  };
}

/**
 * The kernel's holders once it is known which socket showing as the lock's own name is the name's
 * own: `real` (its holder reported that inode on the name itself), or none (`null`: nothing
 * listens on the exact name). The other sockets showing as the name are look-alikes: their
 * processes are set apart in `lookAlikes`, never holders. A `real` that is not among them
 * decides nothing.
 */
export function setApartLookAlikes(kernel: KernelHolders, real: string | null): KernelHolders {
  const sockets = kernel.sockets ?? [];
  const own = sockets.filter((socket) => socket.form === 'own');
  if (own.length === 0 || (real !== null && !own.some((socket) => socket.inode === real))) return kernel;
  const kept = sockets.filter((socket) => socket.form === 'legacy' || socket.inode === real);
  const apart = own.filter((socket) => socket.inode !== real);
  const described = new Map(kernel.holders.map((holder) => [holder.pid, holder]));
  for (const holder of kernel.lookAlikes ?? []) described.set(holder.pid, holder);
  const lookAlikes = [...new Set(apart.flatMap((socket) => socket.pids))].flatMap((pid) => described.get(pid) ?? []);
  return fromSockets(kept, described, lookAlikes.length > 0 ? { lookAlikes } : {});
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
  return name === undefined ? [] : kernelHolders(name).holders;
}
