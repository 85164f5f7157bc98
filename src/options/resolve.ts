import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AcquireOptions, HolderInfo, InterlockOption, ListOptions, LockTarget } from '../types.ts';
import { validateHolder } from './holder.ts';
import {
  assertOptionsObject,
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

export interface ResolvedTarget {
  scope: LockScope;
  name: string;
  dir: string;
  /** Where the lock directory came from, for error messages. */
  dirSource: 'option' | 'env' | 'default';
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

/** The scope a lock file's name stands for, or undefined for files that are not lock files. */
export function scopeOfFileName(file: string): LockScope | undefined {
  if (!file.endsWith('.lock') || file.startsWith('.')) return undefined;
  const stem = file.slice(0, -'.lock'.length);
  const port = /^agent-(\d{1,5})$/.exec(stem);
  if (port?.[1] !== undefined) {
    const n = Number(port[1]);
    return n >= 1 && n <= 65535 && String(n) === port[1] ? { kind: 'port', port: n } : undefined;
  }
  return /^[A-Za-z0-9._-]{1,64}$/.test(stem) && !stem.includes('..') ? { kind: 'key', key: stem } : undefined;
}

function resolveDir(dirOption: string | undefined, name: string): Pick<ResolvedTarget, 'dir' | 'dirSource'> {
  if (dirOption !== undefined) return { dir: resolve(dirOption), dirSource: 'option' };
  const fromEnv = process.env[DIR_ENV];
  if (fromEnv) return { dir: resolve(fromEnv), dirSource: 'env' };
  return { dir: join(homedir(), `.${name}`), dirSource: 'default' };
}

export function resolveTarget(options: LockTarget, what = 'acquireLock'): ResolvedTarget {
  assertOptionsObject(options, what);
  const scope = validateScope(options);
  const name = validateName(options.name);
  const { dir, dirSource } = resolveDir(validateDir(options.dir), name);
  return { scope, name, dir, dirSource, path: join(dir, lockFileName(scope)) };
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

export function resolveListDir(options: ListOptions): Pick<ResolvedTarget, 'dir' | 'dirSource' | 'name'> {
  assertOptionsObject(options, 'listLocks');
  const name = validateName(options.name);
  return { name, ...resolveDir(validateDir(options.dir), name) };
}

/** The lock file path for a port or key, without touching the disk. */
export function lockPathFor(options: LockTarget): string {
  return resolveTarget(options, 'lockPathFor').path;
}
