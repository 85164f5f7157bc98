import { setTimeout as sleep } from 'node:timers/promises';
import { LockHeldError } from '../errors.ts';
import { judgeRecordFile, UNREADABLE_GRACE_MS, type Verdict } from '../identity/judge.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { type ResolvedAcquire, resolveAcquire } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import type { RecordFile } from '../record/read-record.ts';
import { createRecord, newToken, publicRecord, serializeRecord } from '../record/record.ts';
import type { AcquireOptions, LockHandle } from '../types.ts';
import { type Attempt, attemptAcquire } from './attempt.ts';
import { Lock } from './handle.ts';
import { sweepLeftovers } from './leftovers.ts';
import { ownTokens } from './own-tokens.ts';

/** States in flux (a record being written, a reclaim under way) get this long even with `wait: 0`. */
const TRANSIENT_BUDGET_MS = UNREADABLE_GRACE_MS + 500;
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 100;

/** Sleeps, or rejects with the signal's own reason when it aborts (not a generic AbortError). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}

export function describeScope(scope: LockScope): string {
  return scope.kind === 'port' ? `port ${scope.port}` : `key ${scope.key}`;
}

export function judgeWith(probe: ProcessProbe): (file: RecordFile) => Verdict {
  const context = { probe, ownsToken: ownTokens.has };
  return (file) => judgeRecordFile(file, context);
}

function heldError(options: ResolvedAcquire, attempt: Exclude<Attempt, { kind: 'acquired' }>, now: number) {
  const { verdict, file } = attempt;
  return new LockHeldError({
    state: verdict.state === 'held' ? 'held' : 'unknown',
    certainty: verdict.certainty,
    reason: verdict.reason,
    name: options.name,
    target: describeScope(options.scope),
    lockPath: options.path,
    meta: file?.record === undefined ? undefined : publicRecord(file.record),
    now,
  });
}

/**
 * `acquireLock` with the process probe as a parameter: the seam through which tests stage PID
 * reuse, reboots and other hosts.
 */
export async function acquireLockWith(options: AcquireOptions, probe: ProcessProbe): Promise<LockHandle> {
  const resolved = resolveAcquire(options);
  const { dir, path, scope, name, wait, signal } = resolved;
  signal?.throwIfAborted();
  const token = newToken();
  const judge = judgeWith(probe);
  const started = performance.now();
  let poll = POLL_MIN_MS;
  ownTokens.add(token);
  try {
    for (;;) {
      const record = createRecord(scope, name, token, probe);
      const attempt = attemptAcquire(dir, path, serializeRecord(record), judge);
      if (attempt.kind === 'acquired') {
        if (attempt.reclaimed) sweepLeftovers(path, probe, judge);
        return new Lock(path, record, token);
      }
      const elapsed = performance.now() - started;
      let delay: number;
      if (attempt.kind === 'transient' && elapsed < Math.max(wait, TRANSIENT_BUDGET_MS)) {
        delay = attempt.afterMs;
      } else if (elapsed < wait) {
        delay = Math.min(poll, wait - elapsed);
        poll = Math.min(poll * 2, POLL_MAX_MS);
      } else {
        throw heldError(resolved, attempt, probe.now());
      }
      if (delay > 0) await pause(delay, signal);
      else signal?.throwIfAborted();
    }
  } catch (error) {
    ownTokens.delete(token);
    throw error;
  }
}

/**
 * Takes the lock for a port or key. Resolves with a handle once this process holds it; rejects
 * with `LockHeldError` when another live process holds it (after retrying for `wait` ms), and
 * with `TypeError` or `RangeError` for bad options before anything on disk is touched.
 */
export function acquireLock(options: AcquireOptions): Promise<LockHandle> {
  return acquireLockWith(options, systemProbe);
}
