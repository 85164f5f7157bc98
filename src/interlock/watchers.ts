import { descriptors, readText } from '../identity/probe.ts';
import type { KernelHolders } from './holders.ts';

/** What a process waits on, as the kernel shows it. */
export interface Watched {
  /** Whether it has an epoll instance at all (an event loop, as every Node process has). */
  epoll: boolean;
  /** The inodes (decimal, as /proc/net/unix shows them) of the files its epoll instances watch. */
  inodes: Set<string>;
}

/**
 * What a process waits on in its epoll instances, from /proc/<pid>/fdinfo of its
 * `anon_inode:[eventpoll]` descriptors (each watched descriptor is a `tfd: ... ino: <hex>` line);
 * undefined where its descriptors cannot be read (another user's, or gone). An event loop (Node's
 * libuv, and so every portlock holder) waits for connections on its listening socket this way; a
 * process that merely inherited the socket (a `sleep` started by the command of `portlock run`)
 * does not, and so never accepts a question.
 */
function watchedBy(pid: number): Watched | undefined {
  const open = descriptors(pid);
  if (open === undefined) return undefined;
  const watched: Watched = { epoll: false, inodes: new Set() };
  for (const { fd, link } of open) {
    if (link !== 'anon_inode:[eventpoll]') continue;
    watched.epoll = true;
    const info = readText(`/proc/${pid}/fdinfo/${fd}`, 'utf8') ?? '';
    for (const match of info.matchAll(/^tfd:.*\bino:\s*([0-9a-f]+)/gm)) {
      if (match[1] !== undefined) watched.inodes.add(BigInt(`0x${match[1]}`).toString());
    }
  }
  return watched;
}

/**
 * Whether a question on a lock's kernel name can be answered, as the kernel tells (Linux): `no`
 * when every process holding a socket on the name can be seen, none waits on that socket for
 * connections, and each is one that cannot be about to: it has no event loop at all, or it
 * `inherited` the socket (a process that binds the name itself waits on it from its event loop's
 * next turn, and until then it has not yet answered, which is no proof that it will not). `maybe`
 * otherwise: then a question may be answered, and is asked.
 */
export function answerable(kernel: KernelHolders, inherited: (pid: number) => boolean): 'no' | 'maybe' {
  if (process.platform !== 'linux' || kernel.state !== 'held') return 'maybe';
  const sockets = kernel.sockets ?? [];
  const shown = new Set(kernel.holders.map((holder) => holder.pid));
  if (sockets.length === 0) return 'maybe';
  for (const socket of sockets) {
    // A socket nobody is seen holding: /proc hides its holder (another user's), who may answer.
    if (socket.pids.length === 0) return 'maybe';
    for (const pid of socket.pids) {
      if (!shown.has(pid)) return 'maybe';
      const watched = watchedBy(pid);
      if (watched === undefined || watched.inodes.has(socket.inode)) return 'maybe';
      if (watched.epoll && !inherited(pid)) return 'maybe';
    }
  }
  return 'no';
}
