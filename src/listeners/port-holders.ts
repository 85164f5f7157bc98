import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { descriptorLinks, readText } from '../identity/probe.ts';
import { userNames } from '../identity/users.ts';
import { listenOrFail } from '../listen-or-fail.ts';
import { isPort } from '../options/validate.ts';
import { printable } from '../printable.ts';
import { listenersInTable, type TcpListener } from './tcp-table.ts';

/** A program listening on a port, whether or not it uses portlock. */
export interface PortListener {
  /** The local address it listens on: `127.0.0.1`, `::1`, `0.0.0.0` (every IPv4 address), `::`. */
  address: string;
  port: number;
  family: 4 | 6;
  /** The process, or undefined where portlock cannot see it (another user's, under `hidepid`; another OS). */
  pid: number | undefined;
  /** Its command line (control characters removed, shortened), where the process can be seen. */
  command: string | undefined;
  /** The user that owns the socket, where the OS tells it (Linux tells it even when the process is hidden). */
  user: string | undefined;
}

/** What portHolders asks the OS: a seam for the tests, like the lock's process probe. */
export interface ListenerSystem {
  /** A /proc file's text, or undefined where it cannot be read. */
  read(path: string): string | undefined;
  /** Pids of the processes this user can see, with their open descriptors' link targets. */
  processes(): Iterable<{ pid: number; links: () => string[] }>;
}

const COMMAND_LENGTH = 120;

function* processes(): Iterable<{ pid: number; links: () => string[] }> {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    yield { pid: Number(entry), links: () => descriptorLinks(entry) };
  }
}

export const linuxListenerSystem: ListenerSystem = { read: (path) => readText(path, 'utf8'), processes };

/**
 * A command line from NUL-separated /proc text, its control characters shown as escapes (a
 * terminal would obey them), and short enough for one line.
 */
export function displayCommand(cmdline: string): string | undefined {
  const text = printable(cmdline.split('\0').filter(Boolean).join(' '));
  if (text === '') return undefined;
  return text.length > COMMAND_LENGTH ? `${text.slice(0, COMMAND_LENGTH - 1)}…` : text;
}

/** Linux: the port's listening sockets from /proc/net/tcp{,6}, and who holds each from /proc/<pid>/fd. */
function linuxPortHolders(port: number, system: ListenerSystem): PortListener[] | undefined {
  const v4 = system.read('/proc/net/tcp');
  const v6 = system.read('/proc/net/tcp6');
  if (v4 === undefined && v6 === undefined) return undefined;
  const sockets: TcpListener[] = [...listenersInTable(v4 ?? '', 4, port), ...listenersInTable(v6 ?? '', 6, port)];
  if (sockets.length === 0) return [];
  const byLink = new Map(sockets.map((socket) => [`socket:[${socket.inode}]`, socket]));
  const owners = new Map<TcpListener, number[]>();
  for (const { pid, links } of system.processes()) {
    for (const link of new Set(links())) {
      const socket = byLink.get(link);
      if (socket !== undefined) owners.set(socket, [...(owners.get(socket) ?? []), pid]);
    }
  }
  const names = userNames(system.read('/etc/passwd') ?? '');
  const found: PortListener[] = [];
  for (const socket of sockets) {
    const { address, family, uid } = socket;
    const user = names.get(uid) ?? `uid ${uid}`;
    const pids = owners.get(socket) ?? [];
    if (pids.length === 0) found.push({ address, port, family, pid: undefined, command: undefined, user });
    for (const pid of pids) {
      const command = displayCommand(system.read(`/proc/${pid}/cmdline`) ?? '');
      found.push({ address, port, family, pid, command, user });
    }
  }
  return found;
}

type Bindable = 'free' | 'in-use' | 'unknown';

/** Whether the port can be bound on one wildcard address, closed again at once. */
async function tryBind(port: number, host: '0.0.0.0' | '::'): Promise<Bindable> {
  const server = createServer();
  try {
    await listenOrFail(server, { port, host, exclusive: true, ipv6Only: host === '::' });
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    if (code === 'EADDRINUSE') return 'in-use';
    // No IPv6 here says nothing about the port; EACCES (a privileged port) says nothing either.
    return code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL' ? 'free' : 'unknown';
  }
  await new Promise((closed) => server.close(closed));
  return 'free';
}

/** Elsewhere: whether the port can be bound on every address, which says "in use" but not by whom. */
async function bindProbe(port: number): Promise<PortListener[]> {
  const found: PortListener[] = [];
  for (const [address, family] of [
    ['0.0.0.0', 4],
    ['::', 6],
  ] as const) {
    if ((await tryBind(port, address)) === 'in-use') {
      found.push({ address, port, family, pid: undefined, command: undefined, user: undefined });
    }
  }
  return found;
}

/**
 * Whether something may listen on the port: false only when it can be bound on every address.
 * A bind is a fraction of a millisecond, while the kernel's TCP tables take milliseconds to read
 * on a host with a large connection hash; so a caller that holds the port's lock (and so races no
 * portlock user for the port) asks this first, and reads the tables only when it says true.
 */
export async function mayBeInUse(port: number): Promise<boolean> {
  for (const host of ['0.0.0.0', '::'] as const) {
    if ((await tryBind(port, host)) !== 'free') return true;
  }
  return false;
}

/**
 * Who listens on a TCP port right now, whether or not it uses portlock: on Linux from the kernel's
 * socket tables (`/proc/net/tcp`, `/proc/net/tcp6`) and the owning processes' descriptors, each
 * with its pid, user, command line and address. A process this user cannot see (another user's,
 * where /proc hides it) is listed with `pid` undefined. Where there are no such tables (another
 * OS), a bind check says whether the port is in use, by a listener with `pid` undefined. An empty
 * list: nothing listens. Changes nothing.
 */
export async function portHolders(port: number, system: ListenerSystem = linuxListenerSystem): Promise<PortListener[]> {
  if (!isPort(port)) {
    throw new RangeError(`port must be an integer from 1 to 65535, got ${String(port)}`);
  }
  const seen =
    process.platform === 'linux' || system !== linuxListenerSystem ? linuxPortHolders(port, system) : undefined;
  return seen ?? bindProbe(port);
}
