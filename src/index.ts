export * from './agent/index.ts';
export { LockDirectoryError, LockHeldError, LockLostError, LockPathError } from './errors.ts';
export { interlockHolders } from './interlock/holders.ts';
export { acquireLock } from './lock/acquire.ts';
export { cleanLocks, removeStaleLock } from './lock/clean.ts';
export { inspectLock, listLocks } from './lock/inspect.ts';
export { stopLock } from './lock/stop.ts';
export { DIR_ENV, lockPathFor } from './options/resolve.ts';
export type {
  AcquireOptions,
  Certainty,
  CleanOptions,
  CleanResult,
  InspectOptions,
  InterlockHolder,
  ListOptions,
  LockHandle,
  LockInspection,
  LockRecord,
  LockState,
  LockTarget,
  PublicLockRecord,
  RemoveStaleResult,
  StopLockOptions,
  StopLockResult,
  StopRequestHandler,
} from './types.ts';
