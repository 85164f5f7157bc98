/**
 * Exit codes of the `portlock` command. `status` follows the LSB init-script convention; a held
 * lock is 75 (EX_TEMPFAIL, "try again later"), as `flock -E` suggests; a command that cannot be
 * found or run gives 127 or 126, as in a shell.
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  stale: 1,
  usage: 2,
  notRunning: 3,
  unknown: 4,
  /** `status`: a program that does not use portlock listens on the port. */
  inUse: 5,
  held: 75,
  cannotRun: 126,
  notFound: 127,
} as const;
