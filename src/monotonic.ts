/**
 * Milliseconds on a clock that only moves forward (not the wall clock, which may jump), for
 * deadlines and elapsed times. `performance.now()` says the same, but the global `performance`
 * loads `perf_hooks` on first touch, a few milliseconds that a refusal of a held port, the
 * commonest short-lived caller, would pay for nothing.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
