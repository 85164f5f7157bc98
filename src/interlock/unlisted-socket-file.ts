import { lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { descriptorLinks, readText } from '../identity/probe.ts';
import { userName } from '../identity/users.ts';
import type { InterlockHolder, SocketFileOwner } from '../types.ts';
import { describeProcess, listeningAtSocketFile, parsedUnixTable } from './holders.ts';

/**
 * A live socket at a lock's socket file that this network namespace's /proc/net/unix does not list
 * there: what the kernel tells of it. Whatever it answers is a claim that cannot be checked here.
 */
export interface UnlistedSocketFile extends SocketFileOwner {
  /**
   * The processes the kernel shows holding it, in the network namespace they bound it in (read
   * from their own /proc/<pid>/net/unix), where /proc shows them to this user; each runs as the
   * file's owner. Empty where they cannot be seen.
   */
  holders: InterlockHolder[];
}

/** The socket file's identity (device and inode) and owner, not following a link; undefined unless it is a socket. */
function socketFileAt(path: string): { id: string; uid: number } | undefined {
  try {
    const stat = lstatSync(path, { bigint: true });
    return stat.isSocket() ? { id: `${stat.dev}:${stat.ino}`, uid: Number(stat.uid) } : undefined;
  } catch {
    return undefined;
  }
}

/** A directory's real path, or undefined where it cannot be resolved. */
function realDir(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Whether this network namespace's /proc/net/unix lists a socket listening at `path`: bound there,
 * or under its temp name beside it (see `listeningAtSocketFile`), by this spelling of its
 * directory or another one (a symbolic link on the way: the table shows the path as it was bound).
 */
function listedHere(path: string): boolean | undefined {
  const table = parsedUnixTable();
  if (table === undefined) return undefined;
  const name = basename(path);
  const dir = realDir(dirname(path));
  return table.sockets.some(({ path: bound }) => {
    const shown = basename(bound);
    const named =
      shown === name || (shown.startsWith(`.${name}.`) && /^[0-9a-f]{8}$/.test(shown.slice(name.length + 2)));
    return named && (bound === path || (dir !== undefined && realDir(dirname(bound)) === dir));
  });
}

/**
 * Whether a socket file that answers (a connection to it was accepted) is one this network
 * namespace's kernel does not list, and if so, what the kernel tells of it (Linux). A socket is
 * reached through the file system from any network namespace, but /proc/net/unix lists only its
 * own namespace's sockets: one listening at the path that the table here does not show was bound
 * in another network namespace (a container, or a user's own, which any user may make), or bound
 * under another name and linked there. Either way its answers claim what cannot be checked here.
 *
 * Proof, not a moment's look: the same socket file (device and inode) is live before and after
 * the table is read, and a socket that listened at both moments listened in between. Undefined
 * where that does not hold (it left, or changed hands), the table lists it, or this is not Linux.
 */
export async function unlistedSocketFile(path: string): Promise<UnlistedSocketFile | undefined> {
  if (process.platform !== 'linux' || !path.startsWith('/')) return undefined;
  // Loaded where a lock has a socket file, as the rest of that interlock is (it is loaded by now).
  const { knock } = await import('./socket-file.ts');
  const before = socketFileAt(path);
  if (before === undefined || (await knock(path)) !== 'live') return undefined;
  if (listedHere(path) !== false) return undefined;
  if ((await knock(path)) !== 'live' || socketFileAt(path)?.id !== before.id) return undefined;
  return { path, uid: before.uid, user: userName(before.uid), holders: holdersElsewhere(path, before.uid) };
}

/**
 * The processes of other network namespaces that hold a socket listening at `path`, as each
 * namespace's own table (/proc/<pid>/net/unix) and their descriptors show. Only processes running
 * as `owner`, the file's owner: a table line can be forged (a name may carry a newline), so one
 * naming another user's socket makes no holder of that user's process.
 */
function holdersElsewhere(path: string, owner: number): InterlockHolder[] {
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
    let inodes = inodesOf.get(netns);
    if (inodes === undefined) {
      const table = readText(`/proc/${pid}/net/unix`, 'utf8');
      inodes = new Set(table === undefined ? [] : listeningAtSocketFile(table, path));
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
