import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LockPathError } from '../errors.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { type Asked, ask } from '../interlock/client.ts';
import { boundAbstractNames } from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { resolveListDir, resolveTarget, scopeOfFileName } from '../options/resolve.ts';
import { type LockScope, validateInterlock } from '../options/validate.ts';
import { type RecordFile, readRecordFile } from '../record/read-record.ts';
import { publicRecord } from '../record/record.ts';
import type { InspectOptions, ListOptions, LockInspection } from '../types.ts';
import { judgeWith } from './acquire.ts';

/** Interlocks asked at once by `listLocks`. */
const CONCURRENCY = 32;

type Found = { file: RecordFile | undefined } | { unreadable: string };

const FREE: Asked = { kind: 'free' };

function find(path: string): Found {
  try {
    return { file: readRecordFile(path) };
  } catch (error) {
    const unreadable =
      error instanceof LockPathError
        ? `the lock path ${error.message.split('\n')[0]?.replace(`Lock path ${path} `, '')}`
        : `the lock file cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    return { unreadable };
  }
}

async function inspectPath(
  path: string,
  scope: LockScope,
  dir: string,
  interlock: 'auto' | 'off',
  probe: ProcessProbe,
  bound?: Set<string>,
): Promise<LockInspection> {
  const found = find(path);
  const file = 'file' in found ? found.file : undefined;
  const name = interlock === 'auto' ? interlockName(scope, dir) : undefined;
  // A name missing from the kernel's table of bound names is free: no need to knock.
  const asked = name === undefined ? undefined : bound?.has(name) === false ? FREE : await ask(name, { op: 'who' });
  if (asked !== undefined && asked.kind !== 'free') {
    // Someone holds the kernel name: held, whatever the file says.
    if (asked.kind === 'answered' && asked.reply.ok && 'record' in asked.reply) {
      const { record } = asked.reply;
      const reason =
        record.pid === probe.pid ? 'this process holds it' : `process ${record.pid} holds the lock's kernel interlock`;
      return { state: 'held', path, record, reason, certainty: 'certain' };
    }
    const why = asked.kind === 'silent' ? asked.reason : 'it refused to say who it is';
    return {
      state: 'held',
      path,
      ...(file?.record && { record: publicRecord(file.record) }),
      reason: `a process holds the lock's kernel interlock, but ${why}`,
      certainty: 'likely',
    };
  }
  if ('unreadable' in found) return { state: 'unknown', path, reason: found.unreadable, certainty: 'certain' };
  if (file === undefined) return { state: 'free', path, reason: 'there is no lock file', certainty: 'certain' };
  const verdict = judgeWith(probe, asked && { hostLocal: scope.kind === 'port' })(file);
  return {
    state: verdict.state,
    path,
    ...(file.record && { record: publicRecord(file.record) }),
    reason: verdict.reason,
    certainty: verdict.certainty,
  };
}

export function inspectLockWith(options: InspectOptions, probe: ProcessProbe): Promise<LockInspection> {
  const { path, scope, dir } = resolveTarget(options, 'inspectLock');
  return inspectPath(path, scope, dir, validateInterlock(options.interlock), probe);
}

/** Reports whether a lock is free, held, stale or unknown, and why. Changes nothing on disk. */
export async function inspectLock(options: InspectOptions): Promise<LockInspection> {
  return inspectLockWith(options, systemProbe);
}

async function mapLimited<T, R>(items: T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await map(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export async function listLocksWith(options: ListOptions, probe: ProcessProbe): Promise<LockInspection[]> {
  const { dir } = resolveListDir(options);
  const interlock = validateInterlock(options.interlock);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const locks: { name: string; scope: LockScope }[] = [];
  for (const name of names) {
    const scope = scopeOfFileName(name);
    if (scope !== undefined) locks.push({ name, scope });
  }
  locks.sort((a, b) => {
    if (a.scope.kind === 'port' && b.scope.kind === 'port') return a.scope.port - b.scope.port;
    if (a.scope.kind !== b.scope.kind) return a.scope.kind === 'port' ? -1 : 1;
    return a.name < b.name ? -1 : 1;
  });
  const bound = interlock === 'auto' ? boundAbstractNames() : undefined;
  return mapLimited(locks, CONCURRENCY, (lock) =>
    inspectPath(join(dir, lock.name), lock.scope, dir, interlock, probe, bound),
  );
}

/** Inspects every lock file in a directory (`dir`, or the default directory of `name`). */
export function listLocks(options: ListOptions = {}): Promise<LockInspection[]> {
  return listLocksWith(options, systemProbe);
}
