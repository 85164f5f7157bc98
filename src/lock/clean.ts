import { unlinkSync } from 'node:fs';
import { basename } from 'node:path';
import type { Verdict } from '../identity/judge.ts';
import { systemProbe } from '../identity/probe.ts';
import { ask } from '../interlock/client.ts';
import { interlockName } from '../interlock/name.ts';
import { resolveListDir, resolveTarget, scopeOfFileName } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import { type RecordFile, readRecordFile } from '../record/read-record.ts';
import { createRecord, newToken, publicRecord, serializeRecord } from '../record/record.ts';
import type { CleanOptions, CleanResult, LockInspection, LockTarget, RemoveStaleResult } from '../types.ts';
import { judgeWith } from './acquire.ts';
import { actOnStale } from './claim-chain.ts';
import { listLocks } from './inspect.ts';
import { ownTokens } from './own-tokens.ts';

function inspection(path: string, file: RecordFile | undefined, verdict: Verdict): LockInspection {
  return {
    state: verdict.state,
    path,
    ...(file?.record && { record: publicRecord(file.record) }),
    reason: verdict.reason,
    certainty: verdict.certainty,
  };
}

type Judged = { file: RecordFile | undefined; verdict: Verdict } | 'free';

/** Judges the record as `inspectLock` does: the file is read before the interlock is asked. */
async function judgeNow(path: string, scope: LockScope, dir: string): Promise<Judged> {
  let file: RecordFile | undefined;
  try {
    file = readRecordFile(path);
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0] ?? String(error);
    return { file: undefined, verdict: { state: 'unknown', certainty: 'certain', reason } };
  }
  const name = interlockName(scope, dir);
  const asked = name === undefined ? undefined : await ask(name, { op: 'who' });
  if (asked !== undefined && asked.kind !== 'free') {
    const verdict: Verdict = {
      state: 'held',
      certainty: 'likely',
      reason: "a process holds the lock's kernel interlock",
    };
    return { file, verdict };
  }
  if (file === undefined) return 'free';
  return { file, verdict: judgeWith(systemProbe, asked && { hostLocal: scope.kind === 'port' })(file) };
}

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
  const judged = await judgeNow(path, scope, dir);
  if (judged === 'free')
    return { state: 'free', path, reason: 'there is no lock file', certainty: 'certain', removed: false };
  const { file, verdict } = judged;
  if (file === undefined || verdict.state !== 'stale') return { ...inspection(path, file, verdict), removed: false };
  let outcome: ReturnType<typeof removeClaimed>;
  try {
    outcome = removeClaimed(path, file, scope, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') outcome = 'changed';
    else throw error;
  }
  if (outcome === 'removed') return { ...inspection(path, file, verdict), removed: true };
  return {
    ...inspection(path, file, {
      state: 'unknown',
      certainty: 'likely',
      reason:
        outcome === 'busy'
          ? 'another process is replacing its stale record right now'
          : 'it changed while being removed; look again',
    }),
    removed: false,
  };
}

/**
 * Removes a lock's record if, and only if, it is stale: never a live or unknown one. Safe against a
 * concurrent acquire of the same lock, which either waits for the removal or finds the record
 * changed; `removed` says whether this call removed it.
 */
export function removeStaleLock(options: LockTarget): Promise<RemoveStaleResult> {
  const { path, scope, dir, name } = resolveTarget(options, 'removeStaleLock');
  return removeIfStale(path, scope, dir, name);
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
  for (const lock of found) {
    const scope = scopeOfFileName(basename(lock.path));
    if (lock.state !== 'stale' || scope === undefined) {
      result.kept.push(lock);
      continue;
    }
    if (dryRun) {
      result.removed.push(lock);
      continue;
    }
    const { removed, ...now } = await removeIfStale(lock.path, scope, dir, name);
    (removed ? result.removed : result.kept).push(now);
  }
  return result;
}
