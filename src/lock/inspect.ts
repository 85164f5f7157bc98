import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LockPathError } from '../errors.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { resolveListDir, resolveTarget, scopeOfFileName } from '../options/resolve.ts';
import { readRecordFile } from '../record/read-record.ts';
import { publicRecord } from '../record/record.ts';
import type { ListOptions, LockInspection, LockTarget } from '../types.ts';
import { judgeWith } from './acquire.ts';

function inspectPath(path: string, probe: ProcessProbe): LockInspection {
  let file: ReturnType<typeof readRecordFile>;
  try {
    file = readRecordFile(path);
  } catch (error) {
    const reason =
      error instanceof LockPathError
        ? `the lock path ${error.message.split('\n')[0]?.replace(`Lock path ${path} `, '')}`
        : `the lock file cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    return { state: 'unknown', path, reason, certainty: 'certain' };
  }
  if (file === undefined) return { state: 'free', path, reason: 'there is no lock file', certainty: 'certain' };
  const verdict = judgeWith(probe)(file);
  return {
    state: verdict.state,
    path,
    ...(file.record === undefined ? {} : { record: publicRecord(file.record) }),
    reason: verdict.reason,
    certainty: verdict.certainty,
  };
}

export async function inspectLockWith(options: LockTarget, probe: ProcessProbe): Promise<LockInspection> {
  return inspectPath(resolveTarget(options, 'inspectLock').path, probe);
}

/** Reports whether a lock is free, held, stale or unknown, and why. Changes nothing on disk. */
export function inspectLock(options: LockTarget): Promise<LockInspection> {
  return inspectLockWith(options, systemProbe);
}

export async function listLocksWith(options: ListOptions, probe: ProcessProbe): Promise<LockInspection[]> {
  const { dir } = resolveListDir(options);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const locks = names
    .map((name) => ({ name, scope: scopeOfFileName(name) }))
    .filter((entry) => entry.scope !== undefined)
    .sort((a, b) => {
      if (a.scope?.kind === 'port' && b.scope?.kind === 'port') return a.scope.port - b.scope.port;
      if (a.scope?.kind !== b.scope?.kind) return a.scope?.kind === 'port' ? -1 : 1;
      return a.name < b.name ? -1 : 1;
    });
  return locks.map((entry) => inspectPath(join(dir, entry.name), probe));
}

/** Inspects every lock file in a directory (`dir`, or the default directory of `name`). */
export function listLocks(options: ListOptions = {}): Promise<LockInspection[]> {
  return listLocksWith(options, systemProbe);
}
