import assert from 'node:assert/strict';
import { acquireLock, LockHeldError } from '../../src/index.ts';
import type { AcquireOptions } from '../../src/types.ts';

/**
 * The `LockHeldError` of an acquire that must be refused. A lock taken instead is released at
 * once (nothing is left held for the rest of the file) and fails the test, saying `taken`.
 */
export async function refusalOf(options: AcquireOptions, taken = 'the lock was taken'): Promise<LockHeldError> {
  const outcome = await acquireLock(options).then(
    (lock) => {
      lock.releaseSync();
      return taken;
    },
    (error: unknown) => error,
  );
  assert.ok(outcome instanceof LockHeldError, String(outcome));
  return outcome;
}
