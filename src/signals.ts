/**
 * The signals that ask a run to end: Ctrl-C, `kill` or a supervisor, a closed terminal. The
 * agent's `handleShutdown` drains on them, `portlock run` passes them on to its command, and
 * `portlock agent` reports the first one in its exit code.
 */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = Object.freeze(['SIGINT', 'SIGTERM', 'SIGHUP']);

/** The shell's convention for a run ended by a signal: 128 plus its number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP). */
export function signalExitCode(signal: NodeJS.Signals): number {
  // node:os is taken when a signal has ended a run, not when the package loads (see scripts/bundle.ts).
  return 128 + (process.getBuiltinModule('node:os').constants.signals[signal] ?? 0);
}
