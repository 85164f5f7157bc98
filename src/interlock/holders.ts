import { readdirSync, readlinkSync } from 'node:fs';
import { readText } from '../identity/probe.ts';
import { resolveTarget } from '../options/resolve.ts';
import type { InterlockHolder, LockTarget } from '../types.ts';
import { interlockName } from './name.ts';

// __SO_ACCEPTCON in /proc/net/unix's Flags column: the socket is listening.
const LISTENING = 0x10000;

/**
 * The listening sockets bound to abstract names, by name (with its leading NUL) to inode, from the
 * text of /proc/net/unix (`Num RefCount Protocol Flags Type St Inode Path`, with NUL bytes shown
 * as `@`). Node binds abstract names padded with NULs to the full address length, so trailing
 * `@`s are dropped.
 */
export function listeningAbstractNames(table: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const flags = Number.parseInt(fields[3] ?? '', 16);
    const inode = fields[6];
    const path = fields.slice(7).join(' ').replace(/@+$/, '');
    if (inode !== undefined && path.startsWith('@') && (flags & LISTENING) !== 0)
      names.set(`\0${path.slice(1)}`, inode);
  }
  return names;
}

/** The inode of the listening socket bound to an abstract name, from the text of /proc/net/unix. */
export function listeningInode(name: string, table: string): string | undefined {
  return listeningAbstractNames(table).get(name);
}

/**
 * Which abstract names are bound right now (Linux), for checking many interlocks at once without
 * connecting to each; undefined where the table cannot be read.
 */
export function boundAbstractNames(): Set<string> | undefined {
  if (process.platform !== 'linux') return undefined;
  const table = readText('/proc/net/unix', 'utf8');
  return table === undefined ? undefined : new Set(listeningAbstractNames(table).keys());
}

function holdsSocket(pid: string, link: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    // Gone, or another user's: not ours to see.
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return true;
    } catch {
      // Closed while we looked.
    }
  }
  return false;
}

/** The processes of this user that hold the listening socket of an abstract name (Linux). */
export function socketHolders(name: string): InterlockHolder[] {
  if (process.platform !== 'linux' || !name.startsWith('\0')) return [];
  const inode = listeningInode(name, readText('/proc/net/unix', 'utf8') ?? '');
  if (inode === undefined) return [];
  const link = `socket:[${inode}]`;
  const holders: InterlockHolder[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || !holdsSocket(entry, link)) continue;
    const command = readText(`/proc/${entry}/cmdline`, 'utf8')?.split('\0').filter(Boolean).join(' ');
    holders.push({ pid: Number(entry), command: command || undefined });
  }
  return holders;
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
