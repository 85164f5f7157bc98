import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { descriptorLinks, readText } from '../identity/probe.ts';
import { userName } from '../identity/users.ts';
import type { InterlockHolder, UnlistedSocket } from '../types.ts';
import { atSocketFile, describeProcess, listeningAtSocketFile, parsedUnixTable, repeatedInodes } from './holders.ts';
import { socketFileInterlock } from './socket-file-on-first-use.ts';

/**
 * A live socket at a lock's socket file that this network namespace's /proc/net/unix does not list
 * there: what the kernel tells of it. Whatever it answers is a claim that cannot be checked here.
 */
export interface UnlistedSocketFile extends UnlistedSocket {
  /**
   * The processes the kernel shows holding it, where /proc shows them to this user: here, where
   * `listedAs` is set; else in the network namespace they bound it in (read from their own
   * /proc/<pid>/net/unix), each running as the file's owner. Empty where they cannot be seen.
   */
  holders: InterlockHolder[];
}

/** An unlisted socket as a lock's inspection reports it: without its holders, which the inspection names itself. */
export const socketOf = ({ path, uid, user, listedAs }: UnlistedSocketFile): UnlistedSocket => ({
  path,
  uid,
  user,
  ...(listedAs !== undefined && { listedAs }),
});

/**
 * The socket file's identity, and owner, not following a link; undefined unless it is a socket.
 * Its device, inode and birth time (0 where the file system keeps none: device and inode alone):
 * never its change time, which any user who may write to it moves (setting its times to now).
 */
function socketFileAt(path: string): { id: string; uid: number } | undefined {
  try {
    const stat = lstatSync(path, { bigint: true });
    const id = `${stat.dev}:${stat.ino}:${stat.birthtimeNs}`;
    return stat.isSocket() ? { id, uid: Number(stat.uid) } : undefined;
  } catch {
    return undefined;
  }
}

/** Where this network namespace's table lists the socket at a socket file: the path it was bound at, and its inodes. */
interface Listed {
  boundAt: string;
  inodes: string[];
}

/**
 * Where this network namespace's /proc/net/unix lists the socket that listens at the socket file
 * `path`: lines (each its inode's only one: an inode on two lines is a forged one) bound at that
 * exact path or under its temp name beside it (see `atSocketFile`), by their text alone. No path
 * is resolved: a table line can be forged by any user, and one naming another spelling of the
 * file (`/dir//port-N.sock`, a link on the way) with some other socket's inode would make a
 * holder of whoever holds that socket. Undefined where the table lists none.
 */
function listedHere(path: string): Listed | undefined {
  const table = parsedUnixTable();
  if (table === undefined) return undefined;
  const own = table.sockets.filter(({ inode }) => !table.repeated.has(inode));
  const inodes = atSocketFile(own, path);
  const boundAt = own.find(({ inode }) => inode === inodes[0])?.path;
  return boundAt === undefined ? undefined : { boundAt, inodes };
}

/**
 * The processes of this network namespace that hold one of these sockets, as /proc shows them,
 * running as `owner`, the socket file's owner: a table line can be forged, so one giving the inode
 * of another user's socket makes no holder of that user's process (as in {@link holdersElsewhere}).
 */
function holdersHere(inodes: readonly string[], owner: number): InterlockHolder[] {
  const links = new Set(inodes.map((inode) => `socket:[${inode}]`));
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  return entries
    .filter((pid) => descriptorLinks(pid).some((link) => links.has(link)))
    .flatMap((pid) => describeProcess(Number(pid)) ?? [])
    .filter((holder) => holder.uid === owner);
}

/**
 * What the kernel tells of a live socket at a lock's socket file that this network namespace's
 * /proc/net/unix does not list at that path (Linux): the caller found the table free there. A
 * socket file that accepts a connection, and is the same file afterwards, is held, whatever it
 * answers: a socket that listened at both moments listened in between. Whom it is held by is the
 * kernel's word alone: where the table here lists it at that path or its temp name after all (a
 * hand-over between the looks: `listedAs`), the processes here holding it; otherwise it was bound
 * in another network namespace (a container, or a user's own, which any user may make) or under
 * another path (a hard link, a bind mount), and its holders are those other namespaces' processes
 * that hold it, as their own tables show. Only processes of the file's owner are named. Either
 * way its answers claim what cannot be checked here.
 *
 * The same file before and after is its device, inode and birth time (where the file system keeps
 * one: a freed inode is reused at once, so a hand-over between two holders is not taken for one
 * socket), never its change time, which anyone who may write to the file moves.
 * Undefined where it left or changed hands meanwhile, or this is not Linux.
 */
export async function unlistedSocketFile(path: string): Promise<UnlistedSocketFile | undefined> {
  if (process.platform !== 'linux' || !path.startsWith('/')) return undefined;
  // Loaded where a lock has a socket file, as the rest of that interlock is (it is loaded by now).
  const { knock } = await socketFileInterlock();
  const file = socketFileAt(path);
  if (file === undefined || (await knock(path)) !== 'live') return undefined;
  const listed = listedHere(path);
  if ((await knock(path)) !== 'live' || socketFileAt(path)?.id !== file.id) return undefined;
  const owner = { path, uid: file.uid, user: userName(file.uid) };
  if (listed !== undefined)
    return { ...owner, holders: holdersHere(listed.inodes, file.uid), listedAs: listed.boundAt };
  return { ...owner, holders: holdersElsewhere(path, file.uid) };
}

/** A process's effective uid, from /proc/<pid>/status; undefined where it cannot be read. */
function effectiveUid(pid: string): number | undefined {
  const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(readText(`/proc/${pid}/status`) ?? '')?.[1];
  return uid === undefined ? undefined : Number(uid);
}

/**
 * The processes of other network namespaces that hold a socket listening at `path`, as each
 * namespace's own table (/proc/<pid>/net/unix) and their descriptors show. Only processes running
 * as `owner`, the file's owner: a table line can be forged (a name may carry a newline), so one
 * naming another user's socket makes no holder of that user's process.
 */
export function holdersElsewhere(path: string, owner: number): InterlockHolder[] {
  let here: string;
  let entries: string[];
  try {
    here = readlinkSync('/proc/self/ns/net');
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [];
  }
  // Each other namespace's table, read once through one of its processes.
  const inodesOf = new Map<string, Set<string>>();
  const holders: InterlockHolder[] = [];
  for (const pid of entries) {
    let netns: string;
    try {
      netns = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      continue;
    }
    if (netns === here) continue;
    // Another user's process is never named: its user is checked before its namespace's table or
    // its descriptors are read, so another user's processes (any number, with any number of
    // descriptors) cost a look at its status each, and no more.
    if (effectiveUid(pid) !== owner) continue;
    let inodes = inodesOf.get(netns);
    if (inodes === undefined) {
      const table = readText(`/proc/${pid}/net/unix`, 'utf8');
      const listening = table === undefined ? [] : listeningAtSocketFile(table, path);
      // An inode on two lines of a table is a forged line's: not believed.
      const forged = table === undefined ? new Set<string>() : repeatedInodes(table, listening);
      inodes = new Set(listening.filter((inode) => !forged.has(inode)));
      inodesOf.set(netns, inodes);
    }
    if (inodes.size === 0) continue;
    const wanted = inodes;
    if (!descriptorLinks(pid).some((link) => wanted.has(/^socket:\[(\d+)\]$/.exec(link)?.[1] ?? ''))) continue;
    const holder = describeProcess(Number(pid));
    if (holder !== undefined && holder.uid === owner) holders.push(holder);
  }
  return holders;
}
