export * from './agent/index.ts';
export { LockDirectoryError, LockHeldError, LockLostError, LockPathError } from './errors.ts';
export { acquireLock } from './lock/acquire.ts';
export { inspectLock, listLocks } from './lock/inspect.ts';
export { DIR_ENV, lockPathFor } from './options/resolve.ts';
export type {
  AcquireOptions,
  Certainty,
  InspectOptions,
  ListOptions,
  LockHandle,
  LockInspection,
  LockRecord,
  LockState,
  LockTarget,
  PublicLockRecord,
  StopRequestHandler,
} from './types.ts';
