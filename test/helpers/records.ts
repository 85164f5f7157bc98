import { once } from 'node:events';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseProcStat } from '../../src/identity/probe.ts';
import type { LockRecord } from '../../src/types.ts';
import { spawnTracked } from './spawn.ts';

export const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

export function processStartOf(pid: number): string {
  const parsed = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  if (parsed === undefined) throw new Error(`cannot read /proc/${pid}/stat`);
  return parsed.startTime;
}

/** A complete portlock record naming `pid`, as that process would have written it. */
export function recordFor(pid: number, fields: Partial<LockRecord> = {}): LockRecord {
  return {
    portlock: 1,
    name: 'other-app',
    pid,
    startedAt: new Date().toISOString(),
    hostname: hostname(),
    user: 'someone',
    processStart: processStartOf(pid),
    bootId: bootId(),
    token: 'ab'.repeat(16),
    ...fields,
  };
}

export function writeRecord(path: string, record: object | string, ageMs = 0): void {
  writeFileSync(path, typeof record === 'string' ? record : JSON.stringify(record), { mode: 0o600 });
  if (ageMs > 0) {
    const then = new Date(Date.now() - ageMs);
    utimesSync(path, then, then);
  }
}

/** The pid of a process that has exited and been reaped. */
export async function deadPid(): Promise<number> {
  const child = spawnTracked('true', []);
  await once(child, 'exit');
  if (child.pid === undefined) throw new Error('spawn gave no pid');
  return child.pid;
}

/** A complete record of a process that has exited. */
export async function deadRecord(fields: Partial<LockRecord> = {}): Promise<LockRecord> {
  return { ...recordFor(process.pid, fields), pid: await deadPid() };
}

/** A live process that is not a lock holder, killed when the test file ends. */
export async function liveProcess(timeoutMs = 300_000) {
  // Killed with the test file, not after spawnTracked's usual minute: a race on a loaded machine
  // runs longer than that, and its stand-in for a reused pid must not vanish mid-way.
  const child = spawnTracked('sleep', ['300'], { stdio: 'ignore', timeoutMs });
  await once(child, 'spawn');
  if (child.pid === undefined) throw new Error('spawn gave no pid');
  return { pid: child.pid, child };
}
