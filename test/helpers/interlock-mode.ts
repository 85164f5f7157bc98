/**
 * The test-wide interlock mode: `.ci/run` runs the lock suites again with PORTLOCK_INTERLOCK set to
 * `socket-file` and to `off`, which the library takes as the default of every `interlock` option.
 */
export const interlockMode = process.env.PORTLOCK_INTERLOCK || 'auto';

/** For tests of the abstract socket itself (Linux): skipped, saying why, in the other modes. */
export const abstractSocketOnly: string | false =
  interlockMode !== 'auto' && `it tests the abstract socket; this run uses PORTLOCK_INTERLOCK=${interlockMode}`;

/** For tests of any interlock: skipped, saying why, in a run without one. */
export const interlockOnly: string | false =
  interlockMode === 'off' && 'it tests the interlock; this run uses PORTLOCK_INTERLOCK=off';
