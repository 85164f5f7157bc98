import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'lockfile';
import properLockfile from 'proper-lockfile';
import { acquireLock } from '../src/index.ts';

/** Where a contender puts its lock: a private directory and a port used as the lock's label. */
export interface Target {
  dir: string;
  port: number;
}

export interface Held {
  release(): Promise<void>;
}

export type ContenderId =
  | 'portlock-auto'
  | 'portlock-off'
  | 'portlock-socket-file'
  | 'proper-lockfile'
  | 'proper-lockfile-stale2s'
  | 'lockfile'
  | 'lockfile-stale2s';

export interface Contender {
  id: ContenderId;
  label: string;
  /** The options passed, as a reader of the table would write them. */
  options: string;
  /** Takes the lock, retrying for up to `waitMs` (0: one try); rejects when it stays held. */
  acquire(target: Target, waitMs: number): Promise<Held>;
}

// Matches portlock's own poll schedule (10 ms doubling to 100 ms), so waiting costs the same.
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 100;

/** Counts proper-lockfile's "compromised" reports instead of letting its default handler throw. */
export const compromised = { count: 0 };

function portlock(interlock: 'auto' | 'off' | 'socket-file'): Contender {
  return {
    id: `portlock-${interlock}`,
    label: `portlock (interlock ${interlock})`,
    options: `{ interlock: '${interlock}', wait }`,
    acquire: (target, waitMs) => acquireLock({ port: target.port, dir: target.dir, interlock, wait: waitMs }),
  };
}

function properRetries(waitMs: number): properLockfile.LockOptions['retries'] {
  if (waitMs <= 0) return 0;
  const steps = Math.ceil(waitMs / POLL_MAX_MS) + 4;
  return { retries: steps, factor: 2, minTimeout: POLL_MIN_MS, maxTimeout: POLL_MAX_MS };
}

function proper(id: ContenderId, label: string, stale: { stale: number; update: number } | undefined): Contender {
  return {
    id,
    label,
    options: `{ ${stale === undefined ? '' : `stale: ${stale.stale}, update: ${stale.update}, `}retries: 10 ms doubling to 100 ms }`,
    async acquire(target, waitMs) {
      const file = join(target.dir, `proper-${target.port}`);
      // proper-lockfile resolves the real path of the file it locks, so the file must exist.
      closeSync(openSync(file, 'a'));
      const release = await properLockfile.lock(file, {
        ...stale,
        retries: properRetries(waitMs),
        onCompromised: () => {
          compromised.count++;
        },
      });
      return { release };
    },
  };
}

function npmLockfile(id: ContenderId, label: string, stale: number | undefined): Contender {
  return {
    id,
    label,
    options: `{ ${stale === undefined ? '' : `stale: ${stale}, `}wait, pollPeriod: 100 (default) }`,
    acquire(target, waitMs) {
      const path = join(target.dir, `lockfile-${target.port}.lock`);
      // lockfile writes its bookkeeping into the options object, so each call gets a fresh one.
      const options: lockfile.Options = {};
      if (stale !== undefined) options.stale = stale;
      if (waitMs > 0) options.wait = waitMs;
      return new Promise((resolve, reject) => {
        lockfile.lock(path, options, (error) => {
          if (error) reject(error);
          else resolve({ release: () => new Promise<void>((done) => lockfile.unlock(path, () => done())) });
        });
      });
    },
  };
}

export const contenders: Record<ContenderId, Contender> = {
  'portlock-auto': portlock('auto'),
  'portlock-off': portlock('off'),
  // The interlock of macOS and BSD, forced here: a listening socket file in /tmp/.portlock.
  'portlock-socket-file': portlock('socket-file'),
  'proper-lockfile': proper('proper-lockfile', 'proper-lockfile (defaults: stale 10 s)', undefined),
  'proper-lockfile-stale2s': proper('proper-lockfile-stale2s', 'proper-lockfile (smallest stale: 2 s)', {
    stale: 2000,
    update: 1000,
  }),
  lockfile: npmLockfile('lockfile', 'lockfile (defaults: no stale)', undefined),
  'lockfile-stale2s': npmLockfile('lockfile-stale2s', 'lockfile (stale 2 s)', 2000),
};

/** Whether an acquire failed because the lock stayed held, as each library reports it. */
export function isHeldError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ELOCKED' || code === 'EEXIST';
}
