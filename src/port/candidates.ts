/**
 * The order in which ports of `[low, high]` are tried: the preferred port first, then every other
 * port once, from a random start onwards, wrapping around. Random starts keep parallel callers
 * apart, so that they rarely try the same port at the same time; `random` is a seam for tests.
 */
export function* candidates(
  [low, high]: readonly [number, number],
  preferred: number | undefined,
  random: () => number = Math.random,
): Generator<number> {
  if (preferred !== undefined) yield preferred;
  const size = high - low + 1;
  const start = Math.floor(random() * size);
  for (let i = 0; i < size; i++) {
    const port = low + ((start + i) % size);
    if (port !== preferred) yield port;
  }
}
