import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What a directory looks like, down to each entry's inode, mode, size, mtime and content, so a
 * test can prove that a call changed nothing. Undefined when the directory does not exist.
 * `self: false` leaves out the directory's own mtime, which any temp file created and removed in
 * it changes.
 */
export function snapshot(dir: string, { self = true } = {}): Record<string, string> | undefined {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const state: Record<string, string> = {};
  if (self) {
    const stat = lstatSync(dir, { bigint: true });
    state['.'] = `${stat.ino} ${stat.mode} ${stat.uid} ${stat.mtimeNs}`;
  }
  for (const name of names) {
    const path = join(dir, name);
    const stat = lstatSync(path, { bigint: true });
    let content = '';
    // Reading a FIFO would block, and a directory or link has no content of its own to compare.
    if (stat.isFile()) content = createHash('sha256').update(readFileSync(path)).digest('hex');
    else if (stat.isSymbolicLink()) content = `-> ${readlinkSync(path)}`;
    state[name] = `${stat.ino} ${stat.mode} ${stat.uid} ${stat.size} ${stat.mtimeNs} ${content}`;
  }
  return state;
}

/** Bytes this process has read through system calls so far (Linux `/proc/self/io`, `rchar`). */
export function bytesReadSoFar(): number {
  const match = /^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  if (match?.[1] === undefined) throw new Error('no rchar in /proc/self/io');
  return Number(match[1]);
}
