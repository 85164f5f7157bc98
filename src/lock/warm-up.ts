import { lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcessProbe } from '../identity/probe.ts';
import { interlockKind } from '../interlock/flavour.ts';
import { resolveAcquire } from '../options/resolve.ts';
import { createRecord, newToken, serializeRecord } from '../record/record.ts';
import type { AcquireOptions, LockHandle } from '../types.ts';
import type { AcquireChoices } from './acquisition.ts';

/** Whether the code of taking a lock has run in this process (warmed up, or a lock taken). */
let warm = false;

/** Notes that this process has taken a lock: the code of taking one runs compiled from now on. */
export function tookLock(): void {
  warm = true;
}

/** A scratch directory's name: this prefix, the pid of its process, a dash and mkdtemp's six characters. */
const SCRATCH_PREFIX = 'portlock-warm-up-';
const SCRATCH = new RegExp(`^${SCRATCH_PREFIX}(\\d+)-`);

/** How old a scratch directory is at least before it is another's leftover: a warm-up takes milliseconds. */
const LEFT_AFTER_MS = 60_000;

/**
 * Removes the scratch directories that the warm-ups of this user's dead processes left in the
 * temporary directory: a process killed by a signal it does not handle never removes its own.
 * Only a directory of this user's, named after a process that is gone, and untouched for a minute
 * (a process of another pid namespace sharing the directory may look gone from here).
 */
function sweepLeftScratch(probe: ProcessProbe, base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const pid = SCRATCH.exec(name)?.[1];
    if (pid === undefined || probe.exists(Number(pid)) !== 'gone') continue;
    const path = join(base, name);
    try {
      const stat = lstatSync(path);
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) continue;
      if (probe.now() - stat.mtimeMs < LEFT_AFTER_MS) continue;
      rmSync(path, { recursive: true, force: true });
    } catch {
      // Tidying up after others is a courtesy.
    }
  }
}

type Take = (options: AcquireOptions, probe: ProcessProbe, choices: Partial<AcquireChoices>) => Promise<LockHandle>;

/**
 * Takes and releases a scratch lock in a private directory while this process waits for the real
 * one, so that the code of a hand-over runs compiled when its turn comes: run for the first time,
 * it costs the next holder a few ms more, and the lock stands free to nobody meanwhile. Taken
 * twice: as from a holder that released it, and, while `waiting` still says so, as from one that
 * died, whose record is read, judged and replaced (reading and checking a record costs some 0.8 ms
 * the first time, and 0.07 once compiled). Not in a process that has taken a lock before: that
 * code is compiled already, and warming up costs CPU. Best effort: a failure here only leaves the
 * hand-over as slow as before. The directory goes when the warm-up ends, or when the process exits
 * first (a waiter that exits as soon as it holds the real lock); one that a killed process left is
 * removed by the next warm-up of its user.
 */
export async function warmUp(
  probe: ProcessProbe,
  interlock: AcquireOptions['interlock'],
  take: Take,
  waiting: () => boolean,
): Promise<void> {
  if (warm) return;
  warm = true;
  let dir: string | undefined;
  const remove = () => {
    try {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    } catch {
      // A temporary directory left behind is the system's to clear.
    }
  };
  process.once('exit', remove);
  try {
    const base = tmpdir();
    sweepLeftScratch(probe, base);
    dir = mkdtempSync(join(base, `${SCRATCH_PREFIX}${process.pid}-`));
    const options: AcquireOptions = { key: 'warm-up', dir, interlock };
    const choices = { identify: false };
    await (await take(options, probe, choices)).release();
    if (!waiting()) return;
    // A record as a holder that died leaves it: its interlock gone with it, the kernel's proof.
    const { scope, name, path, interlock: chosen } = resolveAcquire(options);
    const kind = interlockKind(chosen);
    const left = createRecord(scope, name, newToken(), probe, kind !== undefined, { interlockKind: kind });
    writeFileSync(path, serializeRecord(left), { mode: 0o600, flag: 'wx' });
    await (await take(options, probe, choices)).release();
  } catch {
    // Nothing depends on it.
  } finally {
    process.removeListener('exit', remove);
    remove();
  }
}
