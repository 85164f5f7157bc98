import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Verdict } from '../identity/judge.ts';
import type { ProcessProbe } from '../identity/probe.ts';
import { TEMP_SUFFIX } from '../record/publish.ts';
import { type RecordFile, readRecordFileQuietly } from '../record/read-record.ts';
import { unlinkQuietly } from '../record/unlink-quietly.ts';
import { CLAIM_INFIX, followClaims } from './claim-chain.ts';

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
      if (probe.exists(Number(temp[1])) === 'gone') removed.push(path);
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
