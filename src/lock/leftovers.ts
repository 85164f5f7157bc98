import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Verdict } from '../identity/judge.ts';
import type { ProcessProbe } from '../identity/probe.ts';
import { TEMP_SUFFIX } from '../record/publish.ts';
import { type RecordFile, readRecordFileQuietly } from '../record/read-record.ts';
import { unlinkQuietly } from '../record/unlink-quietly.ts';
import { CLAIM_INFIX, followClaims } from './claim-chain.ts';
import { judgeWith } from './judge-here.ts';

// A temp file lives for microseconds. One this old is left over, even where its pid cannot be
// checked (a writer in another pid namespace has a pid that means nothing here).
const TEMP_MAX_AGE_MS = 5000;

function isOld(path: string, probe: ProcessProbe): boolean {
  try {
    return probe.now() - statSync(path).mtimeMs >= TEMP_MAX_AGE_MS;
  } catch {
    return false;
  }
}

/**
 * Removes what processes killed in the middle of taking a lock left next to it: temp files of
 * dead processes, and claims of dead claimers that no longer lead from the current record (a
 * claim on the chain from the current record is never touched: removing it could let two
 * reclaimers in). Returns the paths removed.
 */
export function sweepLeftovers(lockPath: string, probe: ProcessProbe, judge: (file: RecordFile) => Verdict): string[] {
  const dir = dirname(lockPath);
  const prefix = `${basename(lockPath)}.`;
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.startsWith(prefix));
  } catch {
    return [];
  }
  if (names.length === 0) return [];
  const current = readRecordFileQuietly(lockPath);
  const reachable = new Set<string>();
  if (current !== undefined) {
    reachable.add(current.identity);
    for (const link of followClaims(lockPath, current.identity, judge).links) reachable.add(link.file.identity);
  }
  const removed: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const temp = TEMP_SUFFIX.exec(name);
    if (temp?.[1] !== undefined) {
      if (probe.exists(Number(temp[1])) === 'gone' && isOld(path, probe)) removed.push(path);
      continue;
    }
    const at = name.indexOf(CLAIM_INFIX);
    if (at !== prefix.length - 1) continue;
    const identity = name.slice(at + CLAIM_INFIX.length);
    // Claims are named by a token or digest; anything else is some other lock's file.
    if (!/^[0-9a-f]{16,128}$/.test(identity) || reachable.has(identity)) continue;
    const claim = readRecordFileQuietly(path);
    if (claim !== undefined && judge(claim).state === 'stale') removed.push(path);
  }
  for (const path of removed) unlinkQuietly(path);
  return removed;
}

/**
 * Sweeps the leftovers of every lock in a directory, also of locks that have no record any more
 * (a publish cut short by a crash or a full disk). Returns the paths removed.
 */
export function sweepDirectoryLeftovers(
  dir: string,
  probe: ProcessProbe,
  judge: (file: RecordFile) => Verdict,
): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const locks = new Set<string>();
  for (const name of names) {
    // `<lock>.<pid>.<salt>.tmp`, `<lock>.claim-<id>` and `<lock>.claim-<id>.<pid>.<salt>.tmp`.
    const temp = TEMP_SUFFIX.exec(name);
    let lock = temp === null ? name : name.slice(0, temp.index);
    const claim = lock.lastIndexOf(CLAIM_INFIX);
    if (claim > 0) lock = lock.slice(0, claim);
    else if (temp === null) continue;
    if (lock.endsWith('.lock')) locks.add(lock);
  }
  return [...locks].flatMap((lock) => sweepLeftovers(join(dir, lock), probe, judge));
}

// Reading the lock directory takes its lock in the kernel, which every create and unlink in it
// takes too: many processes taking locks in one directory at once queue on it (32 at once made
// each acquire some 15 ms slower). So a process looks for leftovers in a directory on its first
// acquire there, and after every reclaim; clean looks every time.
const swept = new Set<string>();

/** Whether this process has yet to look for leftovers in this lock directory. */
export function firstInDir(dir: string): boolean {
  if (swept.has(dir)) return false;
  // A process that takes locks in many directories keeps no long memory of them.
  if (swept.size >= 64) swept.clear();
  swept.add(dir);
  return true;
}

/**
 * A waiter's first look for leftovers in a directory, made while it waits rather than in the
 * hand-over, where the lock stands free until the next holder is done. Judged as any process
 * that does not hold the lock judges; a reclaim still sweeps again once the lock is taken.
 */
export function sweepWhileWaiting({ dir, path }: { dir: string; path: string }, probe: ProcessProbe): void {
  if (!firstInDir(dir)) return;
  try {
    sweepLeftovers(path, probe, judgeWith(probe));
  } catch {
    // Tidying up after others is a courtesy.
  }
}
