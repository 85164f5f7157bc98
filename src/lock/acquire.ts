import { setTimeout as sleep } from 'node:timers/promises';
import { LockHeldError } from '../errors.ts';
import { UNREADABLE_GRACE_MS } from '../identity/judge.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { Park, waitForRelease } from '../interlock/client.ts';
import { type ResolvedAcquire, resolveAcquire } from '../options/resolve.ts';
import { createRecord, publicRecord } from '../record/record.ts';
import type { AcquireOptions, LockHandle } from '../types.ts';
import { type AcquireChoices, Acquisition } from './acquisition.ts';
import { heldByInterlock, type Refusal } from './ask-holder.ts';
import { adoptHandoff, HANDOFF_ENV } from './handoff.ts';
import { sweepWhileWaiting } from './leftovers.ts';
import { recordPathHere } from './record-path.ts';
import { describeScope, tryOnce } from './try-once.ts';
import { tookLock, warmUp } from './warm-up.ts';

/** States in flux (a record being written, a reclaim under way) get this long even with `wait: 0`. */
const TRANSIENT_BUDGET_MS = UNREADABLE_GRACE_MS + 500;

/**
 * Resolves with `value` after the event loop has turned once: an acquire may otherwise complete in
 * microtasks alone, and a loop of them would starve timers and never free closed sockets.
 */
function afterMacrotask<T>(value: T): Promise<T> {
  return new Promise((resolve) => setImmediate(resolve, value));
}

/** Sleeps, or rejects with the signal's own reason when it aborts (not a generic AbortError). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}

function heldError(options: ResolvedAcquire, refusal: Refusal, probe: ProcessProbe): LockHeldError {
  const { verdict, record } = refusal;
  return new LockHeldError({
    state: verdict.state === 'held' ? 'held' : 'unknown',
    certainty: verdict.certainty,
    reason: verdict.reason,
    name: options.name,
    target: describeScope(options.scope),
    lockPath: recordPathHere(options.dir, options.scope, probe),
    meta: record === undefined ? undefined : publicRecord(record),
    now: probe.now(),
    ...(refusal.holders && { holders: refusal.holders }),
    ...(refusal.hidden && { hidden: true }),
    ...(refusal.outOfSight && {
      outOfSight: refusal.outOfSight,
      claimedFile: refusal.claimedFile,
      claim: refusal.claim,
    }),
    ...(refusal.orphaned && { orphaned: true }),
    ...(refusal.unlisted && { unlisted: refusal.unlisted }),
    ...(verdict.notOwners !== undefined && { notOwners: verdict.notOwners }),
  });
}

/**
 * `acquireLock` with the process probe as a parameter, and acquirePort's choices (see
 * `AcquireChoices`): it passes held ports by the dozen, and checks the directory once for them all.
 */
export async function acquireLockWith(
  options: AcquireOptions,
  probe: ProcessProbe,
  choices: Partial<AcquireChoices> = {},
): Promise<LockHandle> {
  const resolved = resolveAcquire(options);
  const taken = await takeOrRefuse(resolved, probe, { identify: true, dirChecked: false, ...choices });
  if (taken.kind === 'acquired') return taken.lock;
  throw heldError(resolved, taken, probe);
}

/**
 * acquirePort's try at one port of its range (`options` resolved once for the range, see
 * `withScope`): the lock, or undefined where another process holds it. No refusal is built: a
 * port passed costs a failed bind and nothing more (a refusal's message reads the lock directory).
 * The directory is the caller's to make and check.
 */
export async function tryPortLock(options: ResolvedAcquire, probe: ProcessProbe): Promise<LockHandle | undefined> {
  const taken = await takeOrRefuse(options, probe, { identify: false, dirChecked: true });
  return taken.kind === 'acquired' ? taken.lock : undefined;
}

/**
 * Tries until the lock is taken or the time to wait is up: the lock, or the last refusal (naming
 * the holder where the choices ask for it).
 */
async function takeOrRefuse(
  resolved: ResolvedAcquire,
  probe: ProcessProbe,
  choices: AcquireChoices,
): Promise<{ kind: 'acquired'; lock: LockHandle } | Refusal> {
  resolved.signal?.throwIfAborted();
  // A lock handed over by `portlock run` to this process, for this port, is taken over, not fought.
  if (process.env[HANDOFF_ENV] !== undefined) {
    const adopted = await adoptHandoff(resolved, probe);
    if (adopted !== undefined) return { kind: 'acquired', lock: adopted };
  }
  const acquisition = new Acquisition(resolved, probe, choices);
  let refused = true;
  try {
    for (;;) {
      const tried = await tryOnce(acquisition, acquisition.namesHolder());
      if (tried.kind === 'acquired') {
        refused = false;
        // A process that has taken a lock has that code compiled: it need not warm up while it waits.
        tookLock();
        return { kind: 'acquired', lock: acquisition.waited ? tried.lock : await afterMacrotask(tried.lock) };
      }
      const refusal = await afterRefusal(acquisition, tried);
      if (refusal !== undefined) return refusal;
    }
  } finally {
    // A refused acquire, or one that failed, holds no lock that carries its token.
    if (refused) acquisition.forgetToken();
    acquisition.close();
  }
}

/**
 * What follows a try that did not take the lock: a short pause where something is in flux, the
 * final refusal once the time to wait is up, else a wait for the holder to leave. Returns nothing
 * when it is time to try again.
 */
async function afterRefusal(acquisition: Acquisition, tried: Refusal): Promise<Refusal | undefined> {
  const { wait, signal } = acquisition.options;
  const elapsed = acquisition.elapsed();
  if (tried.kind === 'transient' && elapsed < Math.max(wait, TRANSIENT_BUDGET_MS)) {
    if (tried.afterMs > 0) await pause(tried.afterMs, signal);
    signal?.throwIfAborted();
    return undefined;
  }
  const taken = tried.takenName ?? acquisition.name;
  if (elapsed >= wait) return await finalRefusal(acquisition, tried, taken);
  await waitForTurn(acquisition, tried, taken, wait - elapsed);
  return undefined;
}

/**
 * The refusal to give up with, naming the holder where the last try did not ask it. Nothing where
 * the holder left while being asked: one last try.
 */
async function finalRefusal(
  acquisition: Acquisition,
  tried: Refusal,
  taken: string | undefined,
): Promise<Refusal | undefined> {
  const { options, probe } = acquisition;
  if (!tried.unidentified || !taken || !acquisition.choices.identify) return tried;
  const identified = await heldByInterlock(taken, options, probe);
  return identified.kind === 'held' ? identified : undefined;
}

/**
 * Waits for the holder to leave, for at most `remaining` ms: the holder's interlock tells a waiter
 * the moment it is released; otherwise poll.
 */
async function waitForTurn(
  acquisition: Acquisition,
  tried: Refusal,
  taken: string | undefined,
  remaining: number,
): Promise<void> {
  const { options, probe } = acquisition;
  const { scope, signal } = options;
  const since = acquisition.queuedSince();
  // What taking the lock needs (a token, this process's identity, its namespace's own record file) is made
  // while waiting, not in the hand-over: once, on the first wait (a polling waiter comes here every few ms).
  if (!acquisition.waited) {
    createRecord(scope, options.name, acquisition.token(), probe);
    acquisition.networkPath();
    sweepWhileWaiting(options, probe);
  }
  acquisition.waited = true;
  // Not awaited: the waiter queues at once, and warms up while it waits.
  void warmUp(probe, options.interlock, acquireLockWith, () => !acquisition.ended);
  if (tried.viaInterlock && taken) {
    acquisition.park ??= await Park.open();
    if ((await waitForRelease(taken, remaining, signal, since, acquisition.park)) !== 'poll') {
      signal?.throwIfAborted();
      return;
    }
  }
  await pause(acquisition.nextPoll(remaining), signal);
}

/**
 * Takes the lock for a port or key. Resolves with a handle once this process holds it; rejects
 * with `LockHeldError` when another live process holds it (after retrying for `wait` ms), and
 * with `TypeError` or `RangeError` for bad options before anything on disk is touched.
 */
export function acquireLock(options: AcquireOptions): Promise<LockHandle> {
  return acquireLockWith(options, systemProbe);
}
