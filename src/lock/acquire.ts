import { setTimeout as sleep } from 'node:timers/promises';
import { LockHeldError } from '../errors.ts';
import { type JudgeContext, judgeRecordFile, UNREADABLE_GRACE_MS, type Verdict } from '../identity/judge.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { ask, waitForRelease } from '../interlock/client.ts';
import { socketHolders } from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { Interlock } from '../interlock/server.ts';
import { type ResolvedAcquire, resolveAcquire } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import { type RecordFile, readRecordFileQuietly } from '../record/read-record.ts';
import { createRecord, newToken, publicRecord, serializeRecord } from '../record/record.ts';
import type { AcquireOptions, InterlockHolder, LockHandle, LockRecord } from '../types.ts';
import { type Attempt, attemptAcquire } from './attempt.ts';
import { Lock } from './handle.ts';
import { adoptHandoff, HANDOFF_ENV } from './handoff.ts';
import { heldByAnswer } from './interlock-answer.ts';
import { sweepLeftovers } from './leftovers.ts';
import { ensureLockDir } from './lock-dir.ts';
import { ownTokens } from './own-tokens.ts';

/** States in flux (a record being written, a reclaim under way) get this long even with `wait: 0`. */
const TRANSIENT_BUDGET_MS = UNREADABLE_GRACE_MS + 500;
// Without an interlock, a waiter learns of a release only by looking: often, but not busily.
const POLL_MIN_MS = 5;
const POLL_MAX_MS = 25;

type Refusal = Exclude<Attempt, { kind: 'acquired' }> & {
  viaInterlock?: boolean;
  unidentified?: boolean;
  /** Who holds the interlock, when its holder does not answer and is not the one recorded. */
  holders?: InterlockHolder[];
};

const UNIDENTIFIED: Refusal = {
  kind: 'held',
  unidentified: true,
  record: undefined,
  verdict: { state: 'held', certainty: 'certain', reason: "another process holds the lock's kernel interlock" },
};
type Tried = { kind: 'acquired'; reclaimed: boolean; lock: Lock } | Refusal;

/** Sleeps, or rejects with the signal's own reason when it aborts (not a generic AbortError). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}

export function describeScope(scope: LockScope): string {
  return scope.kind === 'port' ? `port ${scope.port}` : `key ${scope.key}`;
}

export function judgeWith(
  probe: ProcessProbe,
  interlockFree?: JudgeContext['interlockFree'],
): (file: RecordFile) => Verdict {
  const context: JudgeContext = { probe, ownsToken: ownTokens.has, ...(interlockFree && { interlockFree }) };
  return (file) => judgeRecordFile(file, context);
}

/** Asks the holder of a taken interlock who it is, for a refusal that names the real holder. */
async function heldByInterlock(name: string, options: ResolvedAcquire, probe: ProcessProbe): Promise<Refusal> {
  const answer = await ask(name, { op: 'who' }, undefined, options.signal);
  // Given up while asking: the caller's reason, not a refusal.
  options.signal?.throwIfAborted();
  const held = heldByAnswer(answer, probe);
  if (held === undefined) {
    // Released between our bind and our question: try again at once.
    return {
      kind: 'transient',
      afterMs: 0,
      record: undefined,
      verdict: { state: 'unknown', certainty: 'likely', reason: 'the holder was just leaving' },
    };
  }
  if (held.record !== undefined)
    return { kind: 'held', viaInterlock: true, record: held.record, verdict: held.verdict };
  const record = readRecordFileQuietly(options.path)?.record;
  // It does not answer: name whoever holds its interlock, if not the process the record names.
  const holders = socketHolders(name).filter((holder) => holder.pid !== record?.pid);
  return {
    kind: 'held',
    viaInterlock: true,
    record,
    ...(holders.length > 0 && { holders }),
    verdict: held.verdict,
  };
}

/** One try: bind the interlock where there is one, then publish or reclaim the record. */
async function tryOnce(
  options: ResolvedAcquire,
  probe: ProcessProbe,
  tokenOf: () => string,
  interlockNameOf: () => string | undefined,
  identifyHolder: boolean,
): Promise<Tried> {
  const { dir, path, scope } = options;
  ensureLockDir(dir);
  // Named only now that the directory exists: a key's name uses its real path.
  const name = interlockNameOf();
  let interlock: Interlock | undefined;
  if (name !== undefined) {
    const bound = await Interlock.bind(name);
    if (bound === 'taken') {
      // A waiter only needs to know when the holder leaves; asking who it is can wait for the refusal.
      return identifyHolder ? heldByInterlock(name, options, probe) : { ...UNIDENTIFIED, viaInterlock: true };
    }
    if (bound !== 'unavailable') interlock = bound;
  }
  let lock: Lock | undefined;
  let record: LockRecord;
  let token: string;
  const judge = judgeWith(probe, interlock && { hostLocal: scope.kind === 'port' });
  let attempt: Attempt;
  try {
    // Made only once the interlock is ours: a refusal needs neither a record nor a token.
    token = tokenOf();
    record = createRecord(scope, options.name, token, probe, interlock !== undefined, options.holder);
    interlock?.answerWith({ record: publicRecord(record), token, stopHandler: () => lock?.onStopRequest });
    attempt = attemptAcquire(dir, path, serializeRecord(record), judge);
  } catch (error) {
    interlock?.close();
    throw error;
  }
  if (attempt.kind !== 'acquired') {
    interlock?.close();
    return attempt;
  }
  if (attempt.reclaimed) {
    try {
      sweepLeftovers(path, probe, judge);
    } catch {
      // Tidying up after others is a courtesy; the lock is ours either way.
    }
  }
  const lostWatch = options.onLost && {
    target: describeScope(scope),
    intervalMs: options.recheckInterval,
    onLost: options.onLost,
  };
  lock = new Lock(path, record, token, interlock, lostWatch);
  return { ...attempt, lock };
}

function heldError(options: ResolvedAcquire, refusal: Refusal, now: number): LockHeldError {
  const { verdict, record } = refusal;
  return new LockHeldError({
    state: verdict.state === 'held' ? 'held' : 'unknown',
    certainty: verdict.certainty,
    reason: verdict.reason,
    name: options.name,
    target: describeScope(options.scope),
    lockPath: options.path,
    meta: record === undefined ? undefined : publicRecord(record),
    now,
    ...(refusal.holders && { holders: refusal.holders }),
  });
}

/**
 * `acquireLock` with the process probe as a parameter: the seam through which tests stage PID
 * reuse, reboots and other hosts.
 */
export async function acquireLockWith(
  options: AcquireOptions,
  probe: ProcessProbe,
  // acquirePort skips held ports by the dozen: asking each holder who it is would only cost time.
  { identify = true }: { identify?: boolean } = {},
): Promise<LockHandle> {
  const resolved = resolveAcquire(options);
  const { dir, scope, wait, signal } = resolved;
  signal?.throwIfAborted();
  let name: string | undefined | null = resolved.interlock === 'auto' ? null : undefined;
  const interlockNameOf = () => {
    if (name === null) name = interlockName(scope, dir);
    return name;
  };
  // Drawn when first needed, and kept across tries: judges must know it for ours from then on.
  let token: string | undefined;
  const tokenOf = () => {
    if (token === undefined) {
      token = newToken();
      ownTokens.add(token);
    }
    return token;
  };
  // A lock handed over by `portlock run` to this process, for this port, is taken over, not fought.
  if (process.env[HANDOFF_ENV] !== undefined) {
    const adopted = await adoptHandoff(resolved, probe);
    if (adopted !== undefined) return adopted;
  }
  const started = performance.now();
  let poll = POLL_MIN_MS;
  try {
    for (;;) {
      const last = performance.now() - started >= wait;
      const tried = await tryOnce(resolved, probe, tokenOf, interlockNameOf, last && identify);
      if (tried.kind === 'acquired') return tried.lock;
      const elapsed = performance.now() - started;
      if (tried.kind === 'transient' && elapsed < Math.max(wait, TRANSIENT_BUDGET_MS)) {
        if (tried.afterMs > 0) await pause(tried.afterMs, signal);
        signal?.throwIfAborted();
        continue;
      }
      if (elapsed >= wait) {
        if (!tried.unidentified || !name || !identify) throw heldError(resolved, tried, probe.now());
        const identified = await heldByInterlock(name, resolved, probe);
        if (identified.kind === 'held') throw heldError(resolved, identified, probe.now());
        // The holder left while we were asking: one last try.
        continue;
      }
      // The holder's interlock tells a waiter the moment it is released; otherwise poll.
      if (tried.viaInterlock && name && (await waitForRelease(name, wait - elapsed, signal)) !== 'poll') {
        signal?.throwIfAborted();
        continue;
      }
      await pause(Math.min(poll, wait - elapsed), signal);
      poll = Math.min(poll * 2, POLL_MAX_MS);
    }
  } catch (error) {
    if (token !== undefined) ownTokens.delete(token);
    throw error;
  }
}

/**
 * Takes the lock for a port or key. Resolves with a handle once this process holds it; rejects
 * with `LockHeldError` when another live process holds it (after retrying for `wait` ms), and
 * with `TypeError` or `RangeError` for bad options before anything on disk is touched.
 */
export function acquireLock(options: AcquireOptions): Promise<LockHandle> {
  return acquireLockWith(options, systemProbe);
}
