import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { crypto } from '../lazy-crypto.ts';
import { SOCKET_DIR_ENV } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';

// Where a lock's socket file is (see socket-file.ts for how it is held): apart from the rest, so
// that naming the interlock of a lock, which every lock does, does not load the socket-file
// interlock's code, which only a lock that holds one runs (loaded then; see on-first-use).

/** The host-wide directory of port sockets, sticky like `/tmp/.X11-unix`. */
export const DEFAULT_SOCKET_DIR = '/tmp/.portlock';
/** The longest socket path, without its NUL: `sun_path` is 108 bytes on Linux, 104 on macOS and BSD. */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;
/** What a temp name (`.<name>.<8 hex>`) adds to a socket's path. */
const TEMP_EXTRA_BYTES = 10;

/** Whether a socket path leaves room for the temp name it is first bound under. */
export const fits = (path: string): boolean => Buffer.byteLength(path) + TEMP_EXTRA_BYTES <= MAX_SOCKET_PATH_BYTES;
/** A short, stable hash of `text`, for socket names. */
export const digest = (text: string): string => crypto().createHash('sha256').update(text).digest('hex').slice(0, 24);
/** This process's user id, where the platform has one. */
export const uid = (): number | undefined => process.getuid?.();

/**
 * The host-wide directory of port sockets, by its real path: its parent resolved (the directory
 * itself must be a real one, see `ensureSocketDir`). Processes that reach it by different spellings
 * (a symbolic link on the way) then bind and look for the same path, which /proc/net/unix lists.
 */
export function portSocketDir(): string {
  const given = process.env[SOCKET_DIR_ENV];
  const dir = given ? resolve(given) : DEFAULT_SOCKET_DIR;
  if (resolved?.given === dir) return resolved.real;
  const real = realParent(dir);
  // Kept once resolved; a parent not there yet is resolved again next time.
  if (real !== undefined) resolved = { given: dir, real };
  return real ?? dir;
}

let resolved: { given: string; real: string } | undefined;

/** `path` with its parent directory's real path; undefined where that cannot be resolved. */
function realParent(path: string): string | undefined {
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return undefined;
  }
}

/** This user's private directory of short socket names, for lock directories with long paths. */
function privateSocketDir(): string {
  const name = `portlock-${uid() ?? 'user'}`;
  const preferred = join(tmpdir(), name);
  // A hashed name is 29 bytes; a temp directory with a long path (TMPDIR) falls back to /tmp.
  return fits(join(preferred, 'x'.repeat(29))) ? preferred : join('/tmp', name);
}

/** A key lock's socket path as written in its lock directory (a socket, or a link to one). */
export const besidePath = (dir: string, key: string): string => join(dir, `${key}.sock`);

/** The short name of a key lock's socket in this user's private directory. */
export function shortPath(dir: string, key: string): string {
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // Not created yet: its spelling is the best name there is.
  }
  return join(privateSocketDir(), `${digest(`${real}\0${key}`)}.sock`);
}

/**
 * The path of a lock's socket (for a port, its first slot): `<socket dir>/port-<port>.sock`, or
 * `<dir>/<key>.sock`, or where that is too long, a short name in this user's private directory.
 */
export function socketFileBase(scope: LockScope, dir: string): string {
  if (scope.kind === 'port') return join(portSocketDir(), `port-${scope.port}.sock`);
  const beside = besidePath(dir, scope.key);
  return fits(beside) ? beside : shortPath(dir, scope.key);
}
