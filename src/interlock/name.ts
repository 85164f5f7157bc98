import { statSync } from 'node:fs';
import { crypto } from '../lazy-crypto.ts';
import type { LockScope } from '../options/validate.ts';

/**
 * The kernel name that stands for a lock, or undefined where the OS has none that it frees the
 * moment its holder dies.
 *
 * A port's name is host-wide, the same for every user, application and lock directory: two tools
 * cannot both listen on one port, so they cannot both hold its lock. A key's name is scoped to
 * its lock directory.
 */
export function interlockName(scope: LockScope, dir: string, platform: NodeJS.Platform = process.platform) {
  let scoped: string;
  if (scope.kind === 'port') scoped = `port-${scope.port}`;
  else {
    // Device and inode, not a path: a directory reached through a symlink or a bind mount (a
    // container's view of a shared home) is one directory, and must give one name.
    let where = dir;
    try {
      const { dev, ino } = statSync(dir, { bigint: true });
      where = `${dev}:${ino}`;
    } catch {
      // Not created yet: its spelling is the best name there is.
    }
    scoped = `key-${crypto().createHash('sha256').update(where).digest('hex').slice(0, 16)}-${scope.key}`;
  }
  // Linux abstract Unix sockets: no file, scoped to the network namespace exactly as ports are.
  if (platform === 'linux') return `\0portlock/${scoped}`;
  if (platform === 'win32') return `\\\\.\\pipe\\portlock-${scoped}`;
  return undefined;
}
