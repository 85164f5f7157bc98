/**
 * Hashes a string to a port in `[low, high]`: FNV-1a (32 bits) over its UTF-8 bytes. Not for
 * secrecy, only for a port that is the same on every run, every machine and every Node version,
 * which a fixed, tiny hash guarantees and no randomness or platform API would.
 */
export function hashToPort(text: string, [low, high]: readonly [number, number]): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return low + (hash % (high - low + 1));
}
