import { lstatSync } from 'node:fs';
import { LockPathError } from '../errors.ts';
import { readRecordFile, readRecordFileQuietly } from '../record/read-record.ts';
import type { InterlockHolder, PublicLockRecord } from '../types.ts';

/**
 * Whether the lock file a `who` answer names is the holder's own: the kernel vouches for the
 * process that answered, not for the path it names, so the file itself must agree. It is a regular
 * file (not a symbolic link) owned by the holder's user, and where this process can read it, its
 * record names the holder's pid (and start time, where both give one). A file that is not there,
 * is someone else's, or names another process is not shown as the lock's file.
 */
export function isHoldersLockFile(lockFile: string, answer: PublicLockRecord, holder: InterlockHolder): boolean {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(lockFile);
  } catch {
    return false;
  }
  if (!stat.isFile() || holder.uid === undefined || stat.uid !== holder.uid) return false;
  let record: PublicLockRecord | undefined;
  try {
    const file = readRecordFile(lockFile);
    if (file === undefined || file.uid !== holder.uid) return false;
    record = file.record;
  } catch (error) {
    // Another user's file this process may not read: its owner is all there is to go by.
    return error instanceof LockPathError && error.problem === 'unreadable';
  }
  if (record?.pid !== answer.pid) return false;
  return record.processStart === undefined || answer.processStart === undefined
    ? true
    : record.processStart === answer.processStart;
}

/**
 * The lock file at `path` when its record names the process that claims, on the interlock, to hold
 * the lock (`claim`: pid, start time, pid namespace, boot and start of the lock all agree, and the
 * file the claim names, if any, is this one), where the kernel cannot show that process (another
 * pid namespace). Both are claims: the record says what its holder wrote, the answer what its
 * sender says; that they agree is told as the holder's own account, never as proof.
 */
export function claimedLockFile(path: string, claim: PublicLockRecord | undefined): string | undefined {
  if (claim === undefined) return undefined;
  if (claim.lockFile !== undefined && claim.lockFile !== path) return undefined;
  const record = readRecordFileQuietly(path)?.record;
  if (record === undefined) return undefined;
  const same = (['pid', 'processStart', 'pidns', 'bootId', 'startedAt'] as const).every(
    (field) => record[field] === claim[field],
  );
  return same ? path : undefined;
}
