import { unlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { DISK_FULL_CODES, DiskFullError } from '../errors.ts';
import { systemProbe } from '../identity/probe.ts';
import { resolveListDir, resolveTarget, scopeOfFileName } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import type { RecordFile } from '../record/read-record.ts';
import { createRecord, newToken, serializeRecord } from '../record/record.ts';
import type { CleanOptions, CleanResult, LockInspection, LockTarget, RemoveStaleResult } from '../types.ts';
import { actOnStale } from './claim-chain.ts';
import { judgeLock, listLocks, toInspection } from './inspect.ts';
import { judgeWith } from './judge-here.ts';
import { sweepDirectoryLeftovers } from './leftovers.ts';
import { ownTokens } from './own-tokens.ts';
import { recordPathHere } from './record-path.ts';

/**
 * Removes the stale record `stale` through the claim chain, exactly as a reclaim replaces one: only
 * the claimer at the live end of the chain may act, and only while the record is still `stale`.
 * A concurrent acquire then finds the claim taken and waits for it, or finds the name free.
 */
function removeClaimed(
  path: string,
  stale: RecordFile,
  scope: LockScope,
  name: string,
): 'removed' | 'changed' | 'busy' {
  const token = newToken();
  ownTokens.add(token);
  try {
    const claim = serializeRecord(createRecord(scope, name, token, systemProbe));
    // Claims are judged by their writers' identity: a live claimer is busy, whatever the interlock says.
    const outcome = actOnStale(path, stale, claim, judgeWith(systemProbe), () => unlinkSync(path));
    return outcome.kind === 'done' ? 'removed' : outcome.kind;
  } finally {
    ownTokens.delete(token);
  }
}

async function removeIfStale(path: string, scope: LockScope, dir: string, name: string): Promise<RemoveStaleResult> {
  const judged = await judgeLock(path, scope, dir, 'auto', systemProbe);
  const { file, verdict } = judged;
  if (file === undefined || verdict.state !== 'stale') return { ...toInspection(path, judged), removed: false };
  // Only a lock record is portlock's to remove: a file it cannot read as one may be anyone's.
  if (file.record === undefined) return { ...notARecord(path, verdict.reason), removed: false };
  let outcome: ReturnType<typeof removeClaimed>;
  try {
    outcome = removeClaimed(path, file, scope, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') outcome = 'changed';
    else throw error;
  }
  if (outcome === 'removed') return { ...toInspection(path, judged), removed: true };
  const reason =
    outcome === 'busy'
      ? 'another process is replacing its stale record right now'
      : 'it changed while being removed; look again';
  return {
    ...toInspection(path, { record: judged.record, verdict: { state: 'unknown', certainty: 'likely', reason } }),
    removed: false,
  };
}

/** A file with a lock's name that is not a lock record: listed, and left alone. */
function notARecord(path: string, why: string): LockInspection {
  return toInspection(path, {
    record: undefined,
    verdict: { state: 'unknown', certainty: 'certain', reason: `not a lock record, left alone (${why})` },
  });
}

/**
 * Removes a lock's record if, and only if, it is stale: never a live or unknown one, nor a file
 * that is not a lock record. Safe against a
 * concurrent acquire of the same lock, which either waits for the removal or finds the record
 * changed; `removed` says whether this call removed it.
 */
export function removeStaleLock(options: LockTarget): Promise<RemoveStaleResult> {
  const { scope, dir, name } = resolveTarget(options, 'removeStaleLock');
  return removeIfStale(recordPathHere(dir, scope), scope, dir, name);
}

/**
 * Removes every stale record in a lock directory (`dir`, or the default directory of `name`), and
 * reports what it removed and what it left alone. With `dryRun`, removes nothing.
 */
export async function cleanLocks(options: CleanOptions = {}): Promise<CleanResult> {
  const { dir, name } = resolveListDir(options);
  const dryRun = options.dryRun === true;
  const found = await listLocks({ dir });
  const result: CleanResult = { removed: [], kept: [] };
  const full: LockInspection[] = [];
  // Leftovers of dead processes go first: removing them needs no room, and frees some.
  if (!dryRun) {
    const leftovers = sweepDirectoryLeftovers(dir, systemProbe, judgeWith(systemProbe));
    if (leftovers.length > 0) result.leftovers = leftovers;
  }
  for (const lock of found) {
    const scope = scopeOfFileName(basename(lock.path));
    if (lock.state !== 'stale' || scope === undefined) {
      result.kept.push(lock);
      continue;
    }
    // Stale without a record: a file that is not a lock record (an old empty or garbage file).
    if (lock.record === undefined) {
      result.kept.push(notARecord(lock.path, lock.reason));
      continue;
    }
    if (dryRun) {
      result.removed.push(lock);
      continue;
    }
    const removal = await removeUnlessDiskFull(lock.path, scope, dir, name);
    if (removal === 'disk-full') {
      full.push(lock);
      continue;
    }
    const { removed, ...now } = removal;
    (removed ? result.removed : result.kept).push(now);
  }
  if (full.length > 0) throw diskFull(dir, full, result);
  return result;
}

/** Removes a stale lock, or says the disk is too full to write the claim that removal needs. */
async function removeUnlessDiskFull(
  path: string,
  scope: LockScope,
  dir: string,
  name: string,
): Promise<RemoveStaleResult | 'disk-full'> {
  try {
    return await removeIfStale(path, scope, dir, name);
  } catch (error) {
    if (DISK_FULL_CODES.has((error as NodeJS.ErrnoException).code ?? '')) return 'disk-full';
    throw error;
  }
}

function diskFull(dir: string, full: LockInspection[], { removed }: CleanResult): DiskFullError {
  const files = full.map((lock) => basename(lock.path)).join(', ');
  const count = `${full.length} stale lock file${full.length === 1 ? '' : 's'}`;
  return new DiskFullError(
    dir,
    `could not remove ${count} (${files}), since a safe removal first writes a small claim file${
      removed.length > 0 ? `; removed ${removed.length}` : ''
    }`,
  );
}
