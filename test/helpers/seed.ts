/**
 * The seed of a test run's random choices, so that a failure can be replayed:
 * PORTLOCK_TEST_SEED=<seed> replays a run, and every test that draws from it prints it.
 */
export const seed = Number(process.env.PORTLOCK_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** A small seeded generator (mulberry32): the same seed gives the same numbers, from 0 up to 1. */
export function seeded(start: number): () => number {
  let state = start >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Random choices of one test, drawn from {@link seed} and its name: a test run alone replays as in the whole run. */
export interface Choices {
  /** A whole number from `min` up to, not including, `max`. */
  int(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T | undefined;
  shuffled<T>(items: readonly T[]): T[];
}

export function choicesFor(name: string): Choices {
  let mixed = seed >>> 0;
  for (const char of name) mixed = Math.imul(mixed ^ (char.codePointAt(0) ?? 0), 0x01000193) >>> 0;
  const random = seeded(mixed);
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min));
  return {
    int,
    chance: (p) => random() < p,
    pick: (items) => (items.length === 0 ? undefined : items[int(0, items.length)]),
    shuffled: (items) => {
      const copy = [...items];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = int(0, i + 1);
        [copy[i], copy[j]] = [copy[j] as (typeof copy)[number], copy[i] as (typeof copy)[number]];
      }
      return copy;
    },
  };
}

/** How to replay a test run: the line a failure ends with. */
export const replayHint = `replay with PORTLOCK_TEST_SEED=${seed}`;

/** Runs a test's body; should it fail, its message says how to replay the run. */
export async function replayable(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof Error) error.message += `\n(${replayHint})`;
    throw error;
  }
}
