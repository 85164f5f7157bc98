import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { rotatedPath } from './log-file.ts';

/** The last bytes read to find the last lines: lines are rarely longer than this many on average. */
const BYTES_PER_LINE = 512;

function readEnd(path: string, bytes: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(path).size;
    const start = Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    const read = readSync(fd, buffer, 0, buffer.length, start);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The last `count` lines of a log, reaching into its rotated part when the current one is short. */
export function lastLines(path: string, count: number): string[] {
  if (count <= 0) return [];
  const text = readEnd(rotatedPath(path), count * BYTES_PER_LINE) + readEnd(path, count * BYTES_PER_LINE);
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-count);
}

/** The size of a file now, 0 when there is none: where the output of a new start begins. */
export function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The last `count` lines written to a log since it had `offset` bytes: the output of one start,
 * not of the server before it. A log rotated since then gives its last lines.
 */
export function linesSince(path: string, offset: number, count: number): string[] {
  const size = sizeOf(path);
  if (size < offset) return lastLines(path, count);
  const lines = readEnd(path, size - offset).split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-count);
}
