import { parseProcStat, readText } from '../identity/probe.ts';
import { HANDOFF_ENV, parseHandoff } from './handoff.ts';

/**
 * The variables a process was started with (Linux). The kernel shows them only to the process's
 * own user and root: another user cannot plant them in a process of the reader's. Empty where
 * they cannot be read.
 */
export function environment(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of (readText(`/proc/${pid}/environ`, 'utf8') ?? '').split('\0')) {
    const at = entry.indexOf('=');
    if (at > 0) env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return env;
}

/** Whether a process was started with a portlock handoff (`portlock run`, `up`) of this port's lock. */
export function handedPort(pid: number, port: number | undefined): boolean {
  if (port === undefined) return false;
  return parseHandoff(environment(pid).get(HANDOFF_ENV))?.port === port;
}

/** A process's parent and start time, as the kernel shows them now. */
function parentOf(pid: number): { ppid: number; startTime: string } | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  return stat === undefined ? undefined : parseProcStat(stat);
}

/**
 * Whether the kernel shows `ancestor` (that pid, with that start time where given) among the
 * ancestors of `pid` now. A process whose parent has exited is adopted by another, so this tells
 * only of a line of descent still alive.
 */
export function descendsFrom(pid: number, ancestor: { pid: number; startTime?: string | undefined }): boolean {
  let at = pid;
  // Bounded: a chain of parents ends at pid 1 (or 0), and pids never repeat along it.
  for (let steps = 0; steps < 4096 && at > 1; steps++) {
    const parent = parentOf(at)?.ppid;
    if (parent === undefined || parent <= 0) return false;
    if (parent === ancestor.pid) {
      return ancestor.startTime === undefined || parentOf(parent)?.startTime === ancestor.startTime;
    }
    at = parent;
  }
  return false;
}
