import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AcquireOptions, HolderInfo, InterlockOption, ListOptions, LockTarget } from '../types.ts';
import { validateHolder } from './holder.ts';
import {
  assertOptionsObject,
  isKey,
  isPort,
  type LockScope,
  validateDir,
  validateInterlock,
  validateName,
  validateOnLost,
  validateRecheckInterval,
  validateScope,
  validateSignal,
  validateWait,
} from './validate.ts';

/** The environment variable that moves every lock directory that is not given explicitly. */
export const DIR_ENV = 'PORTLOCK_DIR';
/** The environment variable that moves the host-wide directory of port sockets (socket-file interlock). */
export const SOCKET_DIR_ENV = 'PORTLOCK_SOCKET_DIR';

interface ResolvedTarget {
  scope: LockScope;
  name: string;
  dir: string;
  path: string;
}

export interface ResolvedAcquire extends ResolvedTarget {
  wait: number;
  signal: AbortSignal | undefined;
  interlock: InterlockOption;
  onLost: AcquireOptions['onLost'];
  recheckInterval: number;
  holder: HolderInfo;
}

/** The file name of a lock: `agent-<port>.lock` as in Percy's original, or `<key>.lock`. */
export function lockFileName(scope: LockScope): string {
  return scope.kind === 'port' ? `agent-${scope.port}.lock` : `${scope.key}.lock`;
}

// `agent-<port>.lock`, or `agent-<port>.net-<inode>.lock` for one network namespace's record.
const PORT_FILE = /^agent-(\d{1,5})(?:\.net-([1-9]\d{0,19}))?$/;
// How /proc/self/ns/net names a network namespace.
const NETNS = /^net:\[([1-9]\d{0,19})\]$/;

/**
 * `agent-<port>.net-<inode>.lock`: the file of a port lock whose plain file (`agent-<port>.lock`)
 * holds the record of another network namespace of this kernel (the host's, or a container's
 * sharing the lock directory), whose port is another port than this one. Undefined where the
 * namespace is not named as Linux names it (`net:[<inode>]`).
 */
export function networkLockFileName(port: number, netns: string): string | undefined {
  const inode = NETNS.exec(netns)?.[1];
  return inode === undefined ? undefined : `agent-${port}.net-${inode}.lock`;
}

/** The network namespace a port lock's file is qualified by (`net:[<inode>]`), or undefined for any other file. */
export function networkOfFileName(file: string): string | undefined {
  if (!file.endsWith('.lock')) return undefined;
  const inode = PORT_FILE.exec(file.slice(0, -'.lock'.length))?.[2];
  return inode === undefined ? undefined : `net:[${inode}]`;
}

/** The scope a lock file's name stands for, or undefined for files that are not lock files. */
export function scopeOfFileName(file: string): LockScope | undefined {
  if (!file.endsWith('.lock') || file.startsWith('.')) return undefined;
  const stem = file.slice(0, -'.lock'.length);
  const port = PORT_FILE.exec(stem)?.[1];
  if (port !== undefined) {
    const n = Number(port);
    return isPort(n) && String(n) === port ? { kind: 'port', port: n } : undefined;
  }
  return isKey(stem) ? { kind: 'key', key: stem } : undefined;
}

/**
 * The lock directory: `dir` when given, else $PORTLOCK_DIR, else `~/.<name>`, as an absolute path.
 * `env` is the environment to read: the CLI passes its own, so that it runs in-process in tests.
 */
export function lockDirOf(
  dir: string | undefined,
  name: string,
  env: Record<string, string | undefined> = process.env,
) {
  return resolve(dir ?? (env[DIR_ENV] || join(env.HOME || homedir(), `.${name}`)));
}

export function resolveTarget(options: LockTarget, what = 'acquireLock'): ResolvedTarget {
  assertOptionsObject(options, what);
  const scope = validateScope(options);
  const name = validateName(options.name);
  const dir = lockDirOf(validateDir(options.dir), name);
  return withScope({ scope, name, dir, path: '' }, scope);
}

/** The same lock options for another port or key: its scope, and the path of its lock file. */
export function withScope<T extends ResolvedTarget>(resolved: T, scope: LockScope): T {
  return { ...resolved, scope, path: join(resolved.dir, lockFileName(scope)) };
}

export function resolveAcquire(options: AcquireOptions): ResolvedAcquire {
  const target = resolveTarget(options);
  return {
    ...target,
    wait: validateWait(options.wait),
    signal: validateSignal(options.signal),
    interlock: validateInterlock(options.interlock),
    onLost: validateOnLost(options.onLost),
    recheckInterval: validateRecheckInterval(options.recheckInterval),
    holder: validateHolder(options.holder),
  };
}

export function resolveListDir(options: ListOptions): Pick<ResolvedTarget, 'dir' | 'name'> {
  assertOptionsObject(options, 'listLocks');
  const name = validateName(options.name);
  return { name, dir: lockDirOf(validateDir(options.dir), name) };
}

/** The lock file path for a port or key, without touching the disk. */
export function lockPathFor(options: LockTarget): string {
  return resolveTarget(options, 'lockPathFor').path;
}
