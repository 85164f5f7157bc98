import { crypto } from './lazy-crypto.ts';

/**
 * Whether a presented token is the expected one, compared without leaking through timing how much
 * of it a guess got right, nor its length: both are hashed to one size first.
 */
export function sameToken(given: string, expected: string): boolean {
  const { createHash, timingSafeEqual } = crypto();
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
