import { readdirSync, readlinkSync } from 'node:fs';
import { readText } from '../identity/probe.ts';
import type { KernelHolders } from './holders.ts';

/**
 * The socket inodes (decimal, as /proc/net/unix shows them) that a process waits on in an epoll
 * instance, from /proc/<pid>/fdinfo of its `anon_inode:[eventpoll]` descriptors (each watched
 * descriptor is a `tfd: ... ino: <hex>` line); undefined where its descriptors cannot be read
 * (another user's, or gone). An event loop (Node's libuv, and so every portlock holder) waits for
 * connections on its listening socket this way; a process that merely inherited the socket (a
 * `sleep` started by the command of `portlock run`) does not, and so never accepts a question.
 */
export function watchedInodes(pid: number): Set<string> | undefined {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const watched = new Set<string>();
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (link !== 'anon_inode:[eventpoll]') continue;
    const info = readText(`/proc/${pid}/fdinfo/${fd}`, 'utf8') ?? '';
    for (const match of info.matchAll(/^tfd:.*\bino:\s*([0-9a-f]+)/gm)) {
      if (match[1] !== undefined) watched.add(BigInt(`0x${match[1]}`).toString());
    }
  }
  return watched;
}

/**
 * Whether a question on a lock's kernel name can be answered, as the kernel tells (Linux): `no`
 * when every process holding a socket on the name can be seen and none waits on that socket for
 * connections, so a question would wait in its queue until it timed out; `maybe` otherwise (one
 * waits on it, or some holder cannot be seen). `exempt` pids are counted as waiting on it anyway:
 * a holder its record names may have bound the name a moment ago, before its event loop first
 * waited on the socket.
 */
export function answerable(kernel: KernelHolders, exempt: number[] = []): 'no' | 'maybe' {
  if (process.platform !== 'linux' || kernel.state !== 'held') return 'maybe';
  const sockets = kernel.sockets ?? [];
  const shown = new Set(kernel.holders.map((holder) => holder.pid));
  if (sockets.length === 0) return 'maybe';
  for (const socket of sockets) {
    // A socket nobody is seen holding: /proc hides its holder (another user's), who may answer.
    if (socket.pids.length === 0) return 'maybe';
    for (const pid of socket.pids) {
      if (!shown.has(pid) || exempt.includes(pid)) return 'maybe';
      const watched = watchedInodes(pid);
      if (watched === undefined || watched.has(socket.inode)) return 'maybe';
    }
  }
  return 'no';
}
