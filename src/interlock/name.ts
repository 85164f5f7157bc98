import { realpathSync, statSync } from 'node:fs';
import { crypto } from '../lazy-crypto.ts';
import type { LockScope } from '../options/validate.ts';

/** The size of `sun_path` on Linux: an abstract name is this many bytes once padded. */
export const SUN_PATH_BYTES = 108;

/**
 * The kernel name that stands for a lock, or undefined where the OS has none that it frees the
 * moment its holder dies.
 *
 * A port's name is host-wide, the same for every user, application and lock directory: two tools
 * cannot both listen on one port, so they cannot both hold its lock. A key's name is scoped to
 * its lock directory.
 *
 * On Linux the name is padded with NULs to the full `sun_path`: Node 20 pads every abstract name
 * so, Node 22 and later bind exactly the bytes given. Padded explicitly, the name is the same
 * kernel name under every Node version (see {@link legacyForm} for the other one).
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
    scoped = `key-${digest(where)}-${scope.key}`;
  }
  return platformName(scoped, platform);
}

const digest = (text: string): string => crypto().createHash('sha256').update(text).digest('hex').slice(0, 16);

function platformName(scoped: string, platform: NodeJS.Platform): string | undefined {
  // Linux abstract Unix sockets: no file, scoped to the network namespace exactly as ports are.
  if (platform === 'linux') return `\0portlock/${scoped}`.padEnd(SUN_PATH_BYTES, '\0');
  if (platform === 'win32') return `\\\\.\\pipe\\portlock-${scoped}`;
  return undefined;
}

/**
 * A key lock's second kernel name, from its directory's real path, held beside the first (from the
 * directory's identity): a directory moved away, or deleted and created anew at the same path,
 * has a new identity but the same path, so a lock taken in the new one still meets the holder of
 * the old one. Undefined where the directory cannot be resolved, or the OS has no such names.
 */
export function keyPathName(key: string, dir: string, platform: NodeJS.Platform = process.platform) {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return undefined;
  }
  return platformName(`keypath-${digest(real)}-${key}`, platform);
}

/** The identity (device and inode) of a directory now, or undefined when it is gone. */
export function directoryIdentity(dir: string): string | undefined {
  try {
    const { dev, ino } = statSync(dir, { bigint: true });
    return `${dev}:${ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The other legitimate kernel name of a Linux lock: the unpadded one that a portlock of before the
 * padding binds under Node 22 or later. A process holding it holds the lock too. Undefined for a
 * name without padding (Windows).
 */
export function legacyForm(name: string): string | undefined {
  if (!name.startsWith('\0') || name.length !== SUN_PATH_BYTES) return undefined;
  const trimmed = name.replace(/\0+$/, '');
  return trimmed === name ? undefined : trimmed;
}

/** The names under which a lock may be held: its own, and its legacy form where it has one. */
export function kernelForms(name: string): string[] {
  const legacy = legacyForm(name);
  return legacy === undefined ? [name] : [name, legacy];
}
