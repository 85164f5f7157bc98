import type { PortListener } from '../listeners/port-holders.ts';
import type { PublicLockRecord } from '../types.ts';

/**
 * A start was refused: another instance holds the port's lock, or another program holds the port.
 * The message is the one scripts may already match on; `cause` is the underlying `LockHeldError`
 * or the `EADDRINUSE` error from listen. `code` says which: `EALREADYRUNNING` for the lock,
 * `EADDRINUSE` for a program that does not use portlock, named in `listeners`.
 */
export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
  readonly code: 'EALREADYRUNNING' | 'EADDRINUSE';
  readonly port: number;
  /** The lock file, when the lock was refused. */
  readonly lockPath: string | undefined;
  /** The holder's record (without its token), when the lock was refused and the record readable. */
  readonly holder: PublicLockRecord | undefined;
  /** The programs that listen on the port without its lock, when that is why (code `EADDRINUSE`). */
  readonly listeners: PortListener[] | undefined;

  constructor(
    message: string,
    details: {
      port: number;
      cause: unknown;
      lockPath?: string | undefined;
      holder?: PublicLockRecord | undefined;
      listeners?: PortListener[] | undefined;
    },
  ) {
    super(message, { cause: details.cause });
    this.code = details.listeners === undefined ? 'EALREADYRUNNING' : 'EADDRINUSE';
    this.listeners = details.listeners;
    this.port = details.port;
    this.lockPath = details.lockPath;
    this.holder = details.holder;
  }
}
