import { chmodSync, closeSync, constants, fstatSync, openSync, renameSync, writeSync } from 'node:fs';

/** The size a log may reach before it is rotated, unless told otherwise: 1 MiB. */
export const DEFAULT_LOG_BYTES = 1024 * 1024;

const APPEND = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | (constants.O_NOFOLLOW ?? 0);

/** The one older log kept beside `path`. */
export const rotatedPath = (path: string): string => `${path}.1`;

/**
 * A log file that never grows past `maxBytes`: when the next write would pass it, the file is
 * renamed to `<path>.1` (replacing the one before) and a new one is started. Mode 0600, since a
 * server's output may carry secrets; a symlink at the path is never followed.
 */
export class BoundedLog {
  readonly path: string;
  readonly maxBytes: number;
  #fd: number;
  #size: number;

  constructor(path: string, maxBytes = DEFAULT_LOG_BYTES) {
    this.path = path;
    this.maxBytes = maxBytes;
    this.#fd = this.#open();
    this.#size = fstatSync(this.#fd).size;
  }

  #open(): number {
    const fd = openSync(this.path, APPEND, 0o600);
    // A file that was there before keeps its mode on open; this one may be read by nobody else.
    chmodSync(this.path, 0o600);
    return fd;
  }

  write(chunk: Buffer | string): void {
    let bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    // A single write larger than the bound keeps its end, which is what a reader looks for.
    if (bytes.length > this.maxBytes) bytes = bytes.subarray(bytes.length - this.maxBytes);
    if (this.#size + bytes.length > this.maxBytes && this.#size > 0) this.#rotate();
    let written = 0;
    while (written < bytes.length) written += writeSync(this.#fd, bytes, written);
    this.#size += bytes.length;
  }

  #rotate(): void {
    closeSync(this.#fd);
    renameSync(this.path, rotatedPath(this.path));
    this.#fd = this.#open();
    this.#size = 0;
  }

  close(): void {
    closeSync(this.#fd);
  }
}
