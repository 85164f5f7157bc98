import type { Existence, ProcessInfo, ProcessProbe } from '../../src/identity/probe.ts';

/** The fixed clock of a fake probe: 2026-01-01T00:00:00Z. */
export const FAKE_NOW = Date.parse('2026-01-01T00:00:00.000Z');
/** The fake machine booted a day before FAKE_NOW. */
export const FAKE_BOOT_MS = FAKE_NOW - 86_400_000;

export interface FakeProcess {
  existence: Existence;
  /** What `/proc/<pid>` would tell; 'gone' and undefined as in `ProcessProbe.info`. */
  info: ProcessInfo | 'gone' | undefined;
}

/** Start time in ticks of a process that started `msAfterBoot` after the fake boot. */
export const ticksAfterBoot = (msAfterBoot: number): string => String(Math.round(msAfterBoot / 10));

/**
 * A probe over a made-up process table: pids not in the table are gone. Stages reuse, reboots,
 * zombies and other hosts without real processes.
 */
export function fakeProbe(
  table: Record<number, FakeProcess> = {},
  overrides: Partial<ProcessProbe> = {},
): ProcessProbe {
  return {
    pid: 1000,
    hostname: () => 'devbox',
    user: () => 'alice',
    bootId: () => 'boot-current',
    bootTimeMs: () => FAKE_BOOT_MS,
    exists: (pid) => table[pid]?.existence ?? 'gone',
    info: (pid) => (table[pid] === undefined ? 'gone' : table[pid].info),
    ownStartTime: () => ticksAfterBoot(1000),
    ticksPerSecond: 100,
    now: () => FAKE_NOW,
    ...overrides,
  };
}
