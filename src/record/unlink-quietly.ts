import { unlinkSync } from 'node:fs';

/** Removes a file that may already be gone. */
export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or not ours to remove; either way nothing is left to do.
  }
}
