import type { Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockPathError, PortRangeExhaustedError } from '../errors.ts';
import { systemProbe } from '../identity/probe.ts';
import { tryPortLock } from '../lock/acquire.ts';
import { ensureLockDir } from '../lock/lock-dir.ts';
import { monotonicMs } from '../monotonic.ts';
import { withScope } from '../options/resolve.ts';
import type { LockHandle } from '../types.ts';
import { checkPort } from './bind-check.ts';
import { candidates } from './candidates.ts';
import { type ResolvedPortOptions, resolvePortOptions } from './options.ts';
import type { ListeningPortHandle, PortHandle, PortOptions } from './types.ts';

// Between two searches of a full range while `wait` runs: a port frees up rarely, so look calmly.
const RESEARCH_PAUSE_MS = 50;

type Search = { kind: 'found'; handle: PortHandle } | { kind: 'exhausted'; byPortlock: number; byOthers: number };

/** The lock becomes the port's handle: the same object, so release and `onStopRequest` stay its own. */
function portHandle(lock: LockHandle, port: number, server: Server | undefined): PortHandle {
  Object.defineProperty(lock, 'port', { value: port, enumerable: true });
  if (server !== undefined) Object.defineProperty(lock, 'server', { value: server, enumerable: true });
  return lock as PortHandle;
}

/**
 * One pass over the range. For each port: take its lock first, then check that it can be bound;
 * a port whose lock is held is skipped, and so is one another program has bound (its lock is
 * released at once). Taking the lock before the bind check is what makes two callers never get
 * one port: whoever holds the lock is the only one checking it.
 */
async function searchOnce(options: ResolvedPortOptions): Promise<Search> {
  const { range, preferred, hosts, listen, lock: lockOptions } = options;
  let byPortlock = 0;
  let byOthers = 0;
  // The lock directory is made and checked once for the whole pass, as one acquire would: every
  // port's record goes into the same directory, microseconds apart.
  ensureLockDir(lockOptions.dir);
  for (const port of candidates(range, preferred)) {
    lockOptions.signal?.throwIfAborted();
    let lock: LockHandle | undefined;
    try {
      lock = await tryPortLock(withScope(lockOptions, { kind: 'port', port }), systemProbe);
    } catch (error) {
      // An odd file at one port's lock path (another user's record, a directory) keeps that port
      // from us, not the others.
      if (!(error instanceof LockPathError)) throw error;
    }
    if (lock === undefined) {
      byPortlock++;
      continue;
    }
    let checked: Awaited<ReturnType<typeof checkPort>>;
    try {
      checked = await checkPort(port, hosts, listen);
    } catch (error) {
      await lock.release();
      throw error;
    }
    if (checked.kind === 'free') return { kind: 'found', handle: portHandle(lock, port, checked.server) };
    await lock.release();
    if (checked.kind === 'unavailable') {
      // A matter of the addresses, not of this port: every other port would fare the same.
      throw new RangeError(
        `host: none of ${hosts.join(', ')} is an address of this host, so no port can be checked there`,
      );
    }
    byOthers++;
  }
  return { kind: 'exhausted', byPortlock, byOthers };
}

/**
 * Chooses a free port and takes its lock: a port whose portlock is free and that can be bound
 * on every address of `host` at that moment. Two calls, in one process or in many, never get the
 * same port while both handles are held. Rejects with `PortRangeExhaustedError` when every port
 * of `range` is held (after looking for `wait` ms), and with `TypeError` or `RangeError` for bad
 * options before anything is bound or written.
 */
export function acquirePort(options: PortOptions & { listen: true }): Promise<ListeningPortHandle>;
export function acquirePort(options?: PortOptions): Promise<PortHandle>;
export async function acquirePort(options: PortOptions = {}): Promise<PortHandle> {
  const resolved = resolvePortOptions(options);
  const { signal } = resolved.lock;
  signal?.throwIfAborted();
  const started = monotonicMs();
  for (;;) {
    const search = await searchOnce(resolved);
    if (search.kind === 'found') return search.handle;
    if (monotonicMs() - started >= resolved.wait) {
      throw new PortRangeExhaustedError(resolved.range, search.byPortlock, search.byOthers);
    }
    try {
      await sleep(RESEARCH_PAUSE_MS, undefined, { signal });
    } catch (error) {
      throw signal?.aborted ? signal.reason : error;
    }
  }
}
