import { descriptorLinks, readText } from '../identity/probe.ts';
import {
  listeningAbstractNames,
  otherKindInodes,
  repeatedInodes,
  runsWhollyAs,
  shownAs,
  someSocketHolder,
} from './holders.ts';
import { SUN_PATH_BYTES } from './name.ts';
import { Interlock } from './server.ts';

/**
 * A holder's presence: an abstract Unix socket name of its own (Linux), bound before its record is
 * published and freed by the kernel the instant the holder's thread or process ends. A lock held
 * without an interlock (`interlock: 'off'`, or where the interlock could not be bound) names it in
 * its record, so that another thread of the same process, or a process in another pid namespace
 * that shares the network namespace, can tell a live holder from a dead one without probing a
 * pid. It contends for nothing: each holder draws its own name.
 *
 * An abstract name has no permissions: anyone may bind a freed one, or a look-alike that
 * /proc/net/unix shows the same way. So a bound presence name proves its holder alive only where
 * the kernel shows a process holding it that the record's owner may vouch for.
 */
export const presenceName = (id: string): string => `\0portlock/holder-${id}`;

/** Binds a presence name; undefined where the OS has no abstract names or the bind fails. */
export async function bindPresence(id: string): Promise<Interlock | undefined> {
  if (process.platform !== 'linux') return undefined;
  const bound = await Interlock.bind(presenceName(id));
  return bound === 'taken' || bound === 'unavailable' ? undefined : bound;
}

/** Who a presence name must be held by to prove its record's holder alive. */
export interface PresenceOwner {
  /** The record file's owner: the holding process must run wholly as this user. */
  uid: number | undefined;
  /** The record's pid namespace, where it names one: the holding process must run in it. */
  pidns?: string | undefined;
  /** The record's pid, looked at first (meaningful where its pid namespace is this one). */
  pid?: number;
}

/**
 * Whether a presence name is bound in this network namespace right now, by its record's holder:
 * `false` when nothing listens on it (the kernel has freed it: the holder is gone), `true` when a
 * process the kernel shows holding it runs wholly as the record's owner, in the record's pid
 * namespace. Undefined where that cannot be told: /proc cannot be read, or does not show such a
 * process (another user's look-alike or squatter, hidepid); the caller looks at other evidence.
 */
export function presenceBound(id: string, owner?: PresenceOwner): boolean | undefined {
  const sockets = presenceSockets(id, '/proc/net/unix');
  if (sockets === undefined) return undefined;
  if (sockets.listed === 0) return false;
  const uid = owner?.uid;
  if (uid === undefined) return undefined;
  const accept = (holder: Parameters<typeof runsWhollyAs>[0] & { pidns?: string }) =>
    runsWhollyAs(holder, uid) && (owner?.pidns === undefined || holder.pidns === owner.pidns);
  return someSocketHolder(sockets.believed, accept, owner?.pid === undefined ? [] : [owner.pid]) ? true : undefined;
}

/**
 * Whether process `pid` holds a socket listening on the presence name `id`, as the kernel shows it
 * (Linux: the table of the process's own network namespace, /proc/<pid>/net/unix, and its
 * descriptors, /proc/<pid>/fd): the proof that a record-only holder still holds its lock, since its
 * record alone is a claim. An abstract name lives in the network namespace it was bound in, which
 * is the holder's, not necessarily the reader's. Undefined where /proc cannot tell.
 */
export function presenceHeldBy(id: string, pid: number): boolean | undefined {
  const sockets = presenceSockets(id, `/proc/${pid}/net/unix`);
  if (sockets === undefined) return undefined;
  // A forged line may give the inode of a TCP (or other) socket of the process: shown once, no Unix socket.
  const otherKind = otherKindInodes(`/proc/${pid}/net`, sockets.believed);
  const links = new Set(sockets.believed.filter((inode) => !otherKind.has(inode)).map((inode) => `socket:[${inode}]`));
  return links.size > 0 && descriptorLinks(pid).some((link) => links.has(link));
}

/**
 * The sockets listening on a presence name in the table at `table` (a network namespace's
 * /proc/.../net/unix): how many lines list one, and the inodes to believe, those shown on one line
 * only (a name's bytes are printed raw, so a forged line may give the name with another socket's
 * inode; see `kernelHolders`). Undefined where the table cannot be read or this is not Linux.
 */
function presenceSockets(id: string, table: string): { listed: number; believed: string[] } | undefined {
  if (process.platform !== 'linux' || !/^[0-9a-f]{16,64}$/.test(id)) return undefined;
  const text = readText(table, 'utf8');
  if (text === undefined) return undefined;
  const inodes = presenceInodes(text, id);
  const repeated = repeatedInodes(text, inodes);
  return { listed: inodes.length, believed: inodes.filter((inode) => !repeated.has(inode)) };
}

/**
 * The inodes of the sockets listening on a presence name, from the text of /proc/net/unix: its
 * exact name as Node 22 and later bind it, or padded with NULs to the full address as Node 20
 * does; the whole name, never one that merely begins with it.
 */
function presenceInodes(table: string, id: string): string[] {
  const listening = listeningAbstractNames(table);
  const name = presenceName(id);
  return [name, name.padEnd(SUN_PATH_BYTES, '\0')].flatMap((form) => listening.get(shownAs(form)) ?? []);
}

/** Whether the text of /proc/net/unix shows something listening on the presence name `id`. */
export function presenceIn(table: string, id: string): boolean {
  return presenceInodes(table, id).length > 0;
}
