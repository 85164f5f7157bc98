import { basename } from 'node:path';
import { DISK_FULL_CODES, DiskFullError } from '../errors.ts';
import type { Verdict } from '../identity/judge.ts';
import { publishExclusive } from '../record/publish.ts';
import { type RecordFile, readRecordFile } from '../record/read-record.ts';
import type { LockRecord } from '../types.ts';
import { reclaimStale } from './claim-chain.ts';
import { asLockDirectoryError } from './lock-dir.ts';

/** The outcome of one try at taking a lock. */
export type Attempt =
  /** `path`: the file the record was published at (a port's network namespace may keep its own, see record-path.ts). */
  | { kind: 'acquired'; reclaimed: boolean; path: string }
  /** Held by someone else (or by someone portlock cannot check): refuse, or wait and try again. */
  | { kind: 'held'; record: LockRecord | undefined; verdict: Verdict }
  /** Something in flux (a record being written, a reclaim under way): look again shortly. */
  | { kind: 'transient'; afterMs: number; record: LockRecord | undefined; verdict: Verdict };

// How long to let a live reclaimer finish before looking again; it needs microseconds.
const BUSY_RETRY_MS = 5;

const reclaiming: Verdict = {
  state: 'unknown',
  certainty: 'likely',
  reason: 'another process is replacing its stale record right now',
};

function publish(dir: string, path: string, bytes: Buffer): boolean {
  try {
    return publishExclusive(path, bytes);
  } catch (error) {
    throw asLockDirectoryError(dir, error);
  }
}

/**
 * Where a port's record goes when the plain file holds the record of another network namespace
 * (see record-path.ts): `foreign` tells such a record, `path` is this namespace's own file.
 */
export interface NetworkFallback {
  path: string;
  foreign(record: LockRecord | undefined): boolean;
}

/**
 * One synchronous try: publish the record if the path is free; otherwise judge the record there
 * and, if it is stale, reclaim it. Synchronous on purpose: a try is a handful of local system
 * calls, and no other code of this process can interleave with it. `fallback`: given by a holder of
 * a port's network-namespace interlock; a record of another network namespace found at `path`
 * whose holder is not provably gone is never replaced: the record goes to `fallback.path` instead.
 * Decided on what the exclusive create finds, so that of two processes of two namespaces racing
 * for an absent file, the one that finds the other's record falls over, and never reclaims it.
 */
export function attemptAcquire(
  dir: string,
  path: string,
  bytes: Buffer,
  judge: (file: RecordFile) => Verdict,
  fallback?: NetworkFallback,
): Attempt {
  const at = (where: string): Tried => {
    try {
      return attemptOnce(dir, where, bytes, judge, where === path ? fallback : undefined);
    } catch (error) {
      // A full disk, in one line: the record (or a reclaim's claim) could not be written, and was not left half-written.
      if (DISK_FULL_CODES.has((error as NodeJS.ErrnoException).code ?? '')) {
        throw new DiskFullError(dir, `there is no room to write the lock record ${basename(where)}`);
      }
      throw error;
    }
  };
  const first = at(path);
  const attempt = first.kind === 'fall-over' ? at(first.path) : first;
  // Only the plain file falls over: this namespace's own file is never passed a fallback.
  return attempt.kind === 'fall-over'
    ? { kind: 'transient', afterMs: 0, record: undefined, verdict: reclaiming }
    : attempt;
}

type Tried = Attempt | { kind: 'fall-over'; path: string };

function attemptOnce(
  dir: string,
  path: string,
  bytes: Buffer,
  judge: (file: RecordFile) => Verdict,
  fallback: NetworkFallback | undefined,
): Tried {
  if (publish(dir, path, bytes)) return { kind: 'acquired', reclaimed: false, path };
  const file = readRecordFile(path);
  if (file === undefined) {
    // Released between our publish and our read: try again at once.
    return { kind: 'transient', afterMs: 0, record: undefined, verdict: reclaiming };
  }
  const { record } = file;
  const verdict = judge(file);
  // Another namespace's port, and its holder may be alive: its record stays, and ours goes beside it.
  if (verdict.state !== 'stale' && fallback?.foreign(record)) return { kind: 'fall-over', path: fallback.path };
  if (verdict.state !== 'stale') {
    return verdict.retryAfterMs === undefined
      ? { kind: 'held', record, verdict }
      : { kind: 'transient', afterMs: verdict.retryAfterMs, record, verdict };
  }
  const outcome = reclaimStale(path, file, bytes, judge);
  switch (outcome.kind) {
    case 'done':
      return { kind: 'acquired', reclaimed: true, path };
    case 'changed':
      return { kind: 'transient', afterMs: 0, record, verdict: reclaiming };
    case 'busy':
      return { kind: 'transient', afterMs: BUSY_RETRY_MS, record, verdict: reclaiming };
  }
}
