// The lock's operations that a tool calls rarely, if ever (stopping a holder, cleaning, inspecting
// and listing locks), each loaded on its first call: a tool that only takes the lock does not load
// their code. Their full documentation is where each is defined.
import type * as Clean from './clean.ts';
import type * as Inspect from './inspect.ts';
import type * as Stop from './stop.ts';

/**
 * Stops the holder of a lock and confirms it is gone: asks it through the lock's kernel interlock,
 * and with `force` signals it (SIGTERM, then SIGKILL) if it refuses, does not answer or takes too
 * long; never a process that does not hold the lock, nor a successor.
 */
export const stopLock: typeof Stop.stopLock = async (options) => (await import('./stop.ts')).stopLock(options);

/** Removes a lock's record if, and only if, it is stale; `removed` says whether this call removed it. */
export const removeStaleLock: typeof Clean.removeStaleLock = async (options) =>
  (await import('./clean.ts')).removeStaleLock(options);

/**
 * Removes every stale record in a lock directory (`dir`, or the default directory of `name`), and
 * reports what it removed and what it left alone. With `dryRun`, removes nothing.
 */
export const cleanLocks: typeof Clean.cleanLocks = async (options) => (await import('./clean.ts')).cleanLocks(options);

/** Reports whether a lock is free, held, stale or unknown, and why. Changes nothing on disk. */
export const inspectLock: typeof Inspect.inspectLock = async (options) =>
  (await import('./inspect.ts')).inspectLock(options);

/** Inspects every lock file in a directory (`dir`, or the default directory of `name`). */
export const listLocks: typeof Inspect.listLocks = async (options) => (await import('./inspect.ts')).listLocks(options);
