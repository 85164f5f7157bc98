import type { AcquireOptions, InterlockOption, ListOptions } from '../types.ts';

/** What a lock stands for: a port, or a named key. */
export type LockScope = { kind: 'port'; port: number } | { kind: 'key'; key: string };

const SAFE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
// A key of this form would name the same file as a port lock (of one network namespace, see `networkLockFileName`).
const PORT_FILE_STEM = /^agent-\d+(\.net-\d+)?$/;

/** Shows a rejected value as the person who passed it would recognise it. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}' (a string)`;
  if (typeof value === 'number') return String(value);
  if (value === null) return 'null';
  if (typeof value === 'object') return `an ${Array.isArray(value) ? 'array' : 'object'}`;
  return `${String(value)} (${typeof value})`;
}

/** The port rule, everywhere a port is named: an integer from 1 to 65535. */
export function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

// A key starting with '.' would name a hidden file, which `list` and `clean` never show.
const isSafeKey = (key: string) => SAFE_NAME.test(key) && !key.includes('..') && !key.startsWith('.');

/** The key rule, everywhere a key is named: a safe file name that no port lock's file has. */
export function isKey(value: unknown): value is string {
  return typeof value === 'string' && isSafeKey(value) && !PORT_FILE_STEM.test(value);
}

function validatePort(port: unknown): number {
  if (typeof port !== 'number') {
    throw new TypeError(`port must be an integer number from 1 to 65535, got ${describe(port)}`);
  }
  if (!isPort(port)) {
    throw new RangeError(`port must be an integer number from 1 to 65535, got ${describe(port)}`);
  }
  return port;
}

function validateKey(key: unknown): string {
  if (typeof key !== 'string') {
    throw new TypeError(`key must be a string, got ${describe(key)}`);
  }
  if (!isSafeKey(key)) {
    throw new RangeError(
      `key must be 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' (no '/' and no '..'), got ${describe(key)}`,
    );
  }
  if (!isKey(key)) {
    throw new RangeError(`key ${describe(key)} is reserved: it names a port lock's file; use { port } instead`);
  }
  return key;
}

export function validateName(name: unknown): string {
  if (name === undefined) return 'portlock';
  if (typeof name !== 'string') {
    throw new TypeError(`name must be a string, got ${describe(name)}`);
  }
  if (!SAFE_NAME.test(name) || /^\.+$/.test(name)) {
    throw new RangeError(`name must be 1 to 64 letters, digits, '.', '_' or '-', got ${describe(name)}`);
  }
  return name;
}

export function validateDir(dir: unknown): string | undefined {
  if (dir === undefined) return undefined;
  if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) {
    throw new TypeError(`dir must be a non-empty path string, got ${describe(dir)}`);
  }
  return dir;
}

export function validateWait(wait: unknown): number {
  if (wait === undefined) return 0;
  if (typeof wait !== 'number') {
    throw new TypeError(`wait must be a number of milliseconds, got ${describe(wait)}`);
  }
  if (Number.isNaN(wait) || wait < 0) {
    throw new RangeError(`wait must be 0 or more milliseconds, got ${describe(wait)}`);
  }
  return wait;
}

export function validateSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

export function validateScope(options: { port?: unknown; key?: unknown }): LockScope {
  const hasPort = options.port !== undefined;
  const hasKey = options.key !== undefined;
  if (hasPort === hasKey) {
    throw new TypeError(
      hasPort ? 'pass either port or key, not both' : 'pass a port (1-65535) or a key naming the lock',
    );
  }
  return hasPort ? { kind: 'port', port: validatePort(options.port) } : { kind: 'key', key: validateKey(options.key) };
}

export function assertOptionsObject(options: unknown, what: string): asserts options is AcquireOptions & ListOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${what} takes an options object, got ${describe(options)}`);
  }
}

export function validateOnLost<T extends (error: never) => void>(onLost: T | undefined): T | undefined {
  if (onLost !== undefined && typeof onLost !== 'function') {
    throw new TypeError(`onLost must be a function, got ${describe(onLost)}`);
  }
  return onLost;
}

/** The longest timer Node keeps: it runs one set beyond this (Infinity included) at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A number of milliseconds that a timer is set to: from `min` to {@link MAX_TIMER_MS}, since a
 * longer one would fire at once instead of late. `what` names the option in the error.
 */
export function validateDuration(value: unknown, what: string, min = 0): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${what} must be a number of milliseconds, got ${describe(value)}`);
  }
  if (!(value >= min && value <= MAX_TIMER_MS)) {
    throw new RangeError(`${what} must be from ${min} to ${MAX_TIMER_MS} milliseconds, got ${describe(value)}`);
  }
  return value;
}

export function validateRecheckInterval(interval: unknown): number {
  return interval === undefined ? 1000 : validateDuration(interval, 'recheckInterval', 10);
}

/** The environment variable that sets the `interlock` option wherever a call does not. */
export const INTERLOCK_ENV = 'PORTLOCK_INTERLOCK';

export function validateInterlock(interlock: unknown): InterlockOption {
  const fromEnv = interlock === undefined ? process.env[INTERLOCK_ENV] || undefined : undefined;
  const value = interlock ?? fromEnv ?? 'auto';
  const what = fromEnv === undefined ? 'interlock' : INTERLOCK_ENV;
  if (value !== 'auto' && value !== 'off' && value !== 'socket-file') {
    throw new TypeError(`${what} must be 'auto', 'socket-file' or 'off', got ${describe(value)}`);
  }
  if (value === 'socket-file' && process.platform === 'win32') {
    throw new RangeError(`${what} 'socket-file' needs a POSIX system; on Windows use 'auto' (a named pipe) or 'off'`);
  }
  return value;
}
