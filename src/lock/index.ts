// The lock alone, as `portlock/lock`: everything but the agent, so that a tool that only needs the
// lock loads neither the agent nor node:http. The package's main entry adds the agent to this.
export {
  DiskFullError,
  LockDirectoryError,
  LockHeldError,
  LockLostError,
  LockPathError,
  PortRangeExhaustedError,
  SocketDirectoryError,
} from '../errors.ts';
export { interlockHolders } from '../interlock/holders.ts';
export { type PortListener, portHolders } from '../listeners/port-holders.ts';
export { DIR_ENV, lockPathFor, SOCKET_DIR_ENV } from '../options/resolve.ts';
export { INTERLOCK_ENV } from '../options/validate.ts';
export type {
  AcquireOptions,
  Certainty,
  CleanOptions,
  CleanResult,
  HolderInfo,
  HolderState,
  HolderUpdate,
  InspectOptions,
  InterlockHolder,
  InterlockKind,
  InterlockOption,
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
  UnlistedSocket,
} from '../types.ts';
export { acquireLock } from './acquire.ts';
export { cleanLocks, inspectLock, listLocks, removeStaleLock, stopLock } from './on-first-use.ts';
