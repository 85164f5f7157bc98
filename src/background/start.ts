import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, closeSync, constants, openSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { Lock } from '../lock/handle.ts';
import { HANDOFF_ENV, handoffValue } from '../lock/handoff.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import type { LockHandle } from '../types.ts';
import { portlockCommand } from './self-command.ts';

const APPEND = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | (constants.O_NOFOLLOW ?? 0);

interface Supervised {
  command: string[];
  cwd: string;
  dir: string;
  name: string;
  log: string;
  logSize: number;
  ready: string;
  env: Record<string, string | undefined>;
}

/**
 * Starts `portlock run` for the command in a session of its own (no terminal, no process group to
 * be signalled with the caller's), and hands it the lock this process holds: it adopts it, so the
 * port is never free between this process's check and the server's start. Its own output, before
 * it has opened the log, goes to the log too.
 */
export function startSupervisor(
  lock: LockHandle,
  port: number,
  options: Supervised,
): { child: ChildProcess; handedOver: boolean } {
  const fd = lock.interlockFd();
  const token = lock.record.token;
  const { file, args } = portlockCommand();
  const logFd = openSync(options.log, APPEND, 0o600);
  try {
    chmodSync(options.log, 0o600);
    // Adopting checks the descriptor against the kernel's socket table, which Linux alone shows.
    const handoff =
      fd !== undefined && token !== undefined && lock instanceof Lock && process.platform === 'linux'
        ? handoffValue({ port, fd: 3, token, leaving: true, dir: dirname(lock.path) })
        : undefined;
    if (handoff !== undefined) (lock as Lock).handOff('leaving');
    // Elsewhere the supervisor takes the lock itself; concurrent `up`s still wait for this one.
    else lock.releaseSync();
    const { [HANDOFF_ENV]: _, ...env } = options.env;
    const child = spawn(
      file,
      [
        ...args,
        'run',
        '--port',
        String(port),
        '--dir',
        options.dir,
        '--name',
        options.name,
        '--log',
        options.log,
        '--log-size',
        String(options.logSize),
        '--ready',
        options.ready,
        '--',
        ...options.command,
      ],
      {
        cwd: options.cwd,
        detached: true,
        stdio: ['ignore', logFd, logFd, ...(fd === undefined || handoff === undefined ? [] : [fd])],
        env: { ...env, ...(handoff !== undefined && { [HANDOFF_ENV]: handoff }) },
      },
    );
    return { child, handedOver: handoff !== undefined };
  } finally {
    closeSync(logFd);
  }
}

/** Signals a supervisor's whole session (it and the command it runs); quiet if it is gone. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Gone already.
  }
}

/** Removes a record that still carries `token` (left by a supervisor that was killed). */
export function removeRecordOf(path: string, token: string | undefined): void {
  if (token === undefined || readRecordFileQuietly(path)?.record?.token !== token) return;
  try {
    unlinkSync(path);
  } catch {
    // Removed by its holder meanwhile.
  }
}
