import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { LockPathError } from '../errors.ts';
import { crypto } from '../lazy-crypto.ts';
import type { LockRecord } from '../types.ts';
import { MAX_RECORD_BYTES, parseRecord } from './record.ts';

/** A lock file as found on disk. */
export interface RecordFile {
  /** The parsed record; undefined when the file is empty, garbage or too large. */
  record: LockRecord | undefined;
  /**
   * What makes this file this file: the record's token, or for a record without one a digest of
   * its content and inode times. Reclaim and release act only while the key is unchanged.
   */
  identity: string;
  mtimeMs: number;
  size: number;
  /** The file's owner: the user whose processes the record may vouch for. */
  uid?: number;
}

// O_NONBLOCK keeps a FIFO planted at the lock path from hanging the open.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

function digest(stat: { ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }, bytes: Buffer): string {
  return crypto()
    .createHash('sha256')
    .update(`${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}:`)
    .update(bytes)
    .digest('hex')
    .slice(0, 32);
}

/**
 * Reads a lock file without following a symlink and without reading more than
 * `MAX_RECORD_BYTES`. Returns undefined when there is no file. Throws `LockPathError` when the path
 * holds something that is not a regular file.
 */
export function readRecordFile(path: string): RecordFile | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' || code === 'EMLINK') throw new LockPathError(path, 'symlink');
    // A Unix socket or device at the path refuses to be opened as a file.
    if (code === 'ENXIO' || code === 'EOPNOTSUPP' || code === 'ENODEV') throw new LockPathError(path, 'special');
    if (code === 'EACCES' || code === 'EPERM') throw new LockPathError(path, 'unreadable');
    throw error;
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (stat.isDirectory()) throw new LockPathError(path, 'directory');
    if (!stat.isFile()) throw new LockPathError(path, 'special');
    const size = Number(stat.size);
    const bytes = Buffer.alloc(Math.min(size, MAX_RECORD_BYTES));
    let filled = 0;
    while (filled < bytes.length) {
      const n = readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    const content = bytes.subarray(0, filled);
    const record = size <= MAX_RECORD_BYTES ? parseRecord(content) : undefined;
    return {
      record,
      identity: record?.token ?? digest(stat, content),
      mtimeMs: Number(stat.mtimeMs),
      size,
      uid: Number(stat.uid),
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether the file at `path` holds exactly `bytes` (not following a symlink; false when there is no
 * file, or it cannot be read). Reads no more than one byte beyond them, and parses nothing.
 */
export function holdsExactly(path: string, bytes: Uint8Array): boolean {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch {
    return false;
  }
  try {
    const found = Buffer.allocUnsafe(bytes.length + 1);
    let filled = 0;
    for (let n = -1; n !== 0 && filled < found.length; filled += n) {
      n = readSync(fd, found, filled, found.length - filled, filled);
    }
    return filled === bytes.length && found.subarray(0, filled).equals(bytes);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * `readRecordFile` for callers to whom a path they cannot read is as good as no file: a courtesy
 * such as naming a holder, or a check that a record is still one's own.
 */
export function readRecordFileQuietly(path: string): RecordFile | undefined {
  try {
    return readRecordFile(path);
  } catch {
    return undefined;
  }
}
