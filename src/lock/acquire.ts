import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockHeldError } from '../errors.ts';
import { UNREADABLE_GRACE_MS } from '../identity/judge.ts';
import { type ProcessProbe, systemProbe } from '../identity/probe.ts';
import { ASK_TIMEOUT_MS, Park, waitForRelease } from '../interlock/client.ts';
import { interlockKind, nameOfKind } from '../interlock/flavour.ts';
import { kernelHolders, legacyFormBound } from '../interlock/holders.ts';
import { directoryIdentity, keyPathName, legacyForm } from '../interlock/name.ts';
import { bindPresence } from '../interlock/presence.ts';
import { Interlock } from '../interlock/server.ts';
import { bindSocketFile, type SocketFileTaker } from '../interlock/socket-file.ts';
import { monotonicMs } from '../monotonic.ts';
import { type ResolvedAcquire, resolveAcquire } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import { createRecord, newToken, publicRecord, serializeRecord } from '../record/record.ts';
import type { AcquireOptions, InterlockHolder, LockHandle, LockRecord, PublicLockRecord } from '../types.ts';
import { type Attempt, attemptAcquire } from './attempt.ts';
import { Lock } from './handle.ts';
import { adoptHandoff, HANDOFF_ENV } from './handoff.ts';
import { heldByAnswer, heldByAnswerOn, type OutOfSight } from './interlock-answer.ts';
import { judgeWith } from './judge-here.ts';
import { sweepLeftovers } from './leftovers.ts';
import { checkOwnLockDir, ensureLockDir } from './lock-dir.ts';
import { askUnlessOrphaned, type Heard, kernelAfterAsk } from './orphan.ts';
import { ownTokens } from './own-tokens.ts';
import { networkFallback, recordPathHere } from './record-path.ts';
import { claimedLockFile } from './vouched-lock-file.ts';

/** States in flux (a record being written, a reclaim under way) get this long even with `wait: 0`. */
const TRANSIENT_BUDGET_MS = UNREADABLE_GRACE_MS + 500;
// Without an interlock, a waiter learns of a release only by looking: often, but not busily.
const POLL_MIN_MS = 5;
const POLL_MAX_MS = 25;

type Refusal = Exclude<Attempt, { kind: 'acquired' }> & {
  viaInterlock?: boolean;
  /** The kernel name found taken (a key lock holds two): the one to ask, and to wait on. */
  takenName?: string;
  unidentified?: boolean;
  /** Who holds the interlock, when its holder does not answer and is not the one recorded. */
  holders?: InterlockHolder[];
  /** The kernel says the interlock is held, by a process /proc does not show this user. */
  hidden?: true;
  /** With `hidden`: where the holder runs, out of sight; `claimedFile`, the record it claims as its own. */
  outOfSight?: OutOfSight;
  claimedFile?: string | undefined;
  /** What the process on the interlock claims to be, where the kernel cannot show it. */
  claim?: PublicLockRecord | undefined;
  /** Set when those hold it orphaned (see `orphaned`). */
  orphaned?: true;
};

const UNIDENTIFIED: Refusal = {
  kind: 'held',
  unidentified: true,
  record: undefined,
  verdict: { state: 'held', certainty: 'certain', reason: "another process holds the lock's kernel interlock" },
};
type Tried = { kind: 'acquired'; reclaimed: boolean; lock: Lock } | Refusal;

/**
 * Resolves with `value` after the event loop has turned once: an acquire may otherwise complete in
 * microtasks alone, and a loop of them would starve timers and never free closed sockets.
 */
function afterMacrotask<T>(value: T): Promise<T> {
  return new Promise((resolve) => setImmediate(resolve, value));
}

/** Whether the code of taking a lock has run in this process (warmed up, or a lock taken). */
let warmedUp = false;

/**
 * Takes and releases a scratch lock in a private directory once, while this process waits for the
 * real one: the code of a hand-over then runs compiled when its turn comes (run cold, it costs the
 * next holder a few ms more, and the lock stands free meanwhile). Not in a process that has taken
 * a lock before: its code is compiled already. Best effort: a failure here only leaves the
 * hand-over as slow as before.
 */
async function warmUp(probe: ProcessProbe, interlock: AcquireOptions['interlock']): Promise<void> {
  if (warmedUp) return;
  warmedUp = true;
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'portlock-warm-up-'));
    const lock = await acquireLockWith({ key: 'warm-up', dir, interlock }, probe, { identify: false });
    lock.releaseSync();
  } catch {
    // Nothing depends on it.
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** Sleeps, or rejects with the signal's own reason when it aborts (not a generic AbortError). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}

function describeScope(scope: LockScope): string {
  return scope.kind === 'port' ? `port ${scope.port}` : `key ${scope.key}`;
}

/**
 * Asks the holder of a taken interlock who it is (unless `heard` already did), for a refusal that
 * names the real holder. Held by processes that cannot answer: named from the kernel's table at
 * once, not asked.
 */
async function heldByInterlock(
  name: string,
  options: ResolvedAcquire,
  probe: ProcessProbe,
  heard?: Heard,
): Promise<Refusal> {
  heard ??= await askHolder(name, options);
  // Given up while asking: the caller's reason, not a refusal.
  options.signal?.throwIfAborted();
  if (heard.orphan !== undefined) {
    const { reason, holders } = heard.orphan;
    const verdict = { state: 'held', certainty: 'certain', reason } as const;
    return { kind: 'held', viaInterlock: true, record: undefined, holders, orphaned: true, verdict };
  }
  const answer = heard.asked;
  // The kernel read while waiting for the answer serves again where it still shows the answerer;
  // otherwise the processes the answer names are looked at first (see heldByAnswerOn).
  const held =
    heard.kernel === undefined
      ? heldByAnswerOn(name, answer, probe, options.scope)
      : heldByAnswer(
          answer,
          probe,
          kernelAfterAsk(answer, heard.kernel, () => kernelHolders(name)),
          options.scope,
        );
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
  const record =
    held.claim === undefined && !held.impostor
      ? readRecordFileQuietly(recordPathHere(options.dir, options.scope, probe))?.record
      : undefined;
  // It does not answer, or the kernel contradicts its answer: name whoever holds its interlock,
  // if not the process the record names.
  const holders = held.holders.filter((holder) => holder.pid !== record?.pid);
  return {
    kind: 'held',
    viaInterlock: true,
    record,
    ...(holders.length > 0 && { holders }),
    ...(held.hidden && { hidden: true }),
    ...(held.outOfSight && {
      outOfSight: held.outOfSight,
      claim: held.claim,
      claimedFile: claimedLockFile(recordPathHere(options.dir, options.scope, probe), held.claim),
    }),
    verdict: held.verdict,
  };
}

/**
 * Binds a lock's kernel name and, for a key, the second name from its directory's real path (see
 * `keyPathName`): held only while holding both. Returns the name found taken, if one is.
 */
async function bindBoth(
  name: string,
  scope: LockScope,
  dir: string,
): Promise<{ first: Interlock; second?: Interlock } | string | undefined> {
  const first = await Interlock.bind(name);
  if (first === 'taken') return name;
  if (first === 'unavailable') return undefined;
  const pathName = scope.kind === 'key' ? keyPathName(scope.key, dir) : undefined;
  if (pathName === undefined || pathName === name) return { first };
  const second = await Interlock.bind(pathName);
  if (second === 'taken') {
    first.close();
    return pathName;
  }
  return second === 'unavailable' ? { first } : { first, second };
}

/** A socket-file taker's claim on a dead socket: this holder's record, and the judge of others' claims. */
function takerFor(options: ResolvedAcquire, probe: ProcessProbe, tokenOf: () => string): SocketFileTaker {
  return {
    claim: () => serializeRecord(createRecord(options.scope, options.name, tokenOf(), probe)),
    judge: judgeWith(probe),
  };
}

// Node 22 and later bind an abstract name's exact bytes; Node 20 pads every name to the full
// sun_path, and so cannot bind a lock name's legacy (unpadded) form.
const BINDS_EXACT_NAMES = Number(process.versions.node.split('.')[0]) >= 22;

/**
 * Makes sure no older portlock holds the legacy form of a name just bound (it holds the lock too,
 * see `legacyForm`): `taken` if one does. Where Node binds exact names, the legacy form is bound
 * beside the name and returned, to be held with the lock: that answers without reading the
 * kernel's table, and shuts an older portlock out for as long as the lock is held. Elsewhere (or
 * if that bind is refused) the table tells.
 */
async function guardLegacyForm(name: string): Promise<Interlock | 'taken' | undefined> {
  const legacy = legacyForm(name);
  if (legacy === undefined || process.platform !== 'linux') return undefined;
  if (BINDS_EXACT_NAMES) {
    const bound = await Interlock.bind(legacy);
    if (typeof bound === 'object') return bound;
    // Found taken: by an older portlock, by a holder of both forms that is just exiting (the kernel
    // closes a dead process's sockets one by one), or, if Node padded it after all, by our own name.
  }
  return legacyFormBound(name) ? 'taken' : undefined;
}

/** Whether a key lock's directory is still the one it was taken in (not moved away, removed or replaced). */
function dirWatch(dir: string): () => boolean {
  const identity = directoryIdentity(dir);
  return () => directoryIdentity(dir) === identity;
}

/** Binds a presence name for this try's record (Linux, where the probe can check one). */
async function presenceOf(probe: ProcessProbe): Promise<{ id: string; bound: Interlock } | undefined> {
  if (probe.presenceBound === undefined) return undefined;
  const id = newToken().slice(0, 16);
  const bound = await bindPresence(id);
  return bound && { id, bound };
}

/**
 * Why the kernel refused to bind an interlock's name, for the record of a lock that falls back to
 * the record alone: the error of one more try (undefined if that one succeeds, and is let go).
 */
function whyUnbindable(name: string): Promise<string> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ path: name, exclusive: true }, () => {
      server.close();
      resolve('binding its name failed once');
    });
  });
}

// Reading the lock directory takes its lock in the kernel, which every create and unlink in it
// takes too: many processes taking locks in one directory at once queue on it (32 at once made
// each acquire some 15 ms slower). So a process looks for leftovers in a directory on its first
// acquire there, and after every reclaim; clean looks every time.
const swept = new Set<string>();

/** Whether this process has yet to look for leftovers in this lock directory. */
function firstInDir(dir: string): boolean {
  if (swept.has(dir)) return false;
  // A process that takes locks in many directories keeps no long memory of them.
  if (swept.size >= 64) swept.clear();
  swept.add(dir);
  return true;
}

let askedFirst = false;

/**
 * On a process's first try that would name the holder, asks whoever holds `name` before binding
 * it (undefined: not asked, or nobody listens). A process's first listen loads node:cluster,
 * node:child_process and node:dgram (Node's listen checks for a cluster), some milliseconds that a
 * short-lived process refused because the port is held, the commonest of them, needs not pay: an
 * answer tells it the name is taken, and who took it, and so does the kernel naming holders that
 * cannot answer (see askUnlessOrphaned). Silence is kept: where binding then finds the name taken,
 * it is the holder's answer (a hung holder is not waited for twice). A free name costs one refused
 * connection, once per process. Linux abstract names only.
 */
async function askFirst(name: string, options: ResolvedAcquire): Promise<Heard | undefined> {
  if (askedFirst || !name.startsWith('\0')) return undefined;
  askedFirst = true;
  const heard = await askHolder(name, options);
  options.signal?.throwIfAborted();
  return heard.orphan === undefined && heard.asked.kind === 'free' ? undefined : heard;
}

/** Asks who holds `name`, or learns from the kernel that none of its holders can answer. */
function askHolder(name: string, options: ResolvedAcquire): Promise<Heard> {
  const recordOf = () => readRecordFileQuietly(recordPathHere(options.dir, options.scope))?.record;
  const port = options.scope.kind === 'port' ? options.scope.port : undefined;
  return askUnlessOrphaned(name, () => kernelHolders(name), recordOf, port, ASK_TIMEOUT_MS, options.signal);
}

/**
 * A waiter's first look for leftovers in a directory, made while it waits rather than in the
 * hand-over, where the lock stands free until the next holder is done. Judged as any process
 * that does not hold the lock judges; a reclaim still sweeps again once the lock is taken.
 */
function sweepWhileWaiting({ dir, path }: ResolvedAcquire, probe: ProcessProbe): void {
  if (!firstInDir(dir)) return;
  try {
    sweepLeftovers(path, probe, judgeWith(probe));
  } catch {
    // Tidying up after others is a courtesy.
  }
}

/** One try: bind the interlock where there is one, then publish or reclaim the record. */
async function tryOnce(
  options: ResolvedAcquire,
  probe: ProcessProbe,
  tokenOf: () => string,
  interlockNameOf: () => string | undefined,
  identifyHolder: boolean,
  dirChecked: boolean,
): Promise<Tried> {
  const { dir, path, scope } = options;
  // A missing directory is created only once there is a record to write in it, so that a refusal
  // leaves no new, empty one behind: a port's kernel name needs none. A key's name comes from its
  // directory's identity and real path, so that directory is made first. `dirChecked`: the caller
  // has made and checked it already (acquirePort, once for each pass over its range).
  if (scope.kind === 'key' && !dirChecked) ensureLockDir(dir);
  const dirExists = dirChecked || scope.kind === 'key' || checkOwnLockDir(dir);
  const name = interlockNameOf();
  const kind = interlockKind(options.interlock);
  let interlock: Interlock | undefined;
  const companions: Interlock[] = [];
  let unavailable: string | undefined;
  let socketFile: string | undefined;
  if (name !== undefined) {
    const heard = identifyHolder && kind !== 'socket-file' ? await askFirst(name, options) : undefined;
    // Only an answer, or the kernel naming holders that cannot answer, proves the name taken;
    // silence may be a failed connection, which bind tells apart.
    if (heard !== undefined && (heard.orphan !== undefined || heard.asked.kind === 'answered')) {
      return { ...(await heldByInterlock(name, options, probe, heard)), takenName: name };
    }
    const tried =
      kind === 'socket-file'
        ? await bindSocketFile(scope, dir, takerFor(options, probe, tokenOf))
        : await bindBoth(name, scope, dir);
    const bound: Awaited<ReturnType<typeof bindBoth>> =
      typeof tried === 'object' && 'unavailable' in tried ? undefined : tried;
    // Holding the lock's own name is not enough: a holder of its legacy form (an older portlock
    // under Node 22 or later) holds the lock too. It cannot be waited on through the interlock
    // under every Node version, so a waiter polls.
    const legacy = typeof bound === 'object' ? await guardLegacyForm(name) : undefined;
    if (typeof bound === 'object' && legacy === 'taken') {
      bound.first.close();
      bound.second?.close();
      const refusal = identifyHolder ? await heldByInterlock(name, options, probe) : UNIDENTIFIED;
      return { ...refusal, viaInterlock: false };
    }
    if (typeof legacy === 'object') companions.push(legacy);
    if (typeof bound === 'string') {
      // A waiter only needs to know when the holder leaves; asking who it is can wait for the refusal.
      const refusal = identifyHolder
        ? await heldByInterlock(bound, options, probe, bound === name ? heard : undefined)
        : { ...UNIDENTIFIED, viaInterlock: true };
      return { ...refusal, takenName: bound };
    }
    interlock = bound?.first;
    if (typeof tried === 'object' && 'file' in tried) socketFile = tried.file;
    if (bound?.second !== undefined) companions.push(bound.second);
    if (bound === undefined) {
      unavailable = typeof tried === 'object' && 'unavailable' in tried ? tried.unavailable : await whyUnbindable(name);
    }
  }
  let lock: Lock | undefined;
  let record: LockRecord;
  let token: string;
  const judge = judgeWith(probe, interlock && { hostLocal: scope.kind === 'port', kind });
  let attempt: Attempt;
  // Without the interlock, a kernel name of this holder's own tells other threads and namespaces it is alive.
  const presence = interlock === undefined ? await presenceOf(probe) : undefined;
  if (presence !== undefined) companions.push(presence.bound);
  const closeAll = () => {
    interlock?.close();
    for (const companion of companions) companion.close();
  };
  try {
    if (!dirExists) ensureLockDir(dir);
    // Made only once the interlock is ours: a refusal needs neither a record nor a token.
    token = tokenOf();
    record = {
      ...createRecord(scope, options.name, token, probe, interlock !== undefined, {
        presence: presence?.id,
        interlockUnavailable: unavailable,
        holder: options.holder,
        interlockKind: kind,
      }),
      ...(socketFile !== undefined && { socketFile }),
    };
    const answers = { record: publicRecord(record), lockFile: path, token, stopHandler: () => lock?.onStopRequest };
    interlock?.answerWith(answers);
    if (interlock !== undefined) for (const companion of companions) companion.answerWith(answers);
    const fallback = interlock && networkFallback(dir, scope, kind, probe);
    attempt = attemptAcquire(dir, path, serializeRecord(record), judge, fallback);
    if (attempt.kind === 'acquired') answers.lockFile = attempt.path;
  } catch (error) {
    closeAll();
    throw error;
  }
  if (attempt.kind !== 'acquired') {
    closeAll();
    return attempt;
  }
  try {
    // What dead processes left next to this lock (a full disk, a crash mid-publish) goes now.
    if (attempt.reclaimed || firstInDir(dir)) sweepLeftovers(attempt.path, probe, judge);
  } catch {
    // Tidying up after others is a courtesy; the lock is ours either way.
  }
  const lostWatch = options.onLost && {
    target: describeScope(scope),
    intervalMs: options.recheckInterval,
    onLost: options.onLost,
    ...(interlock !== undefined && scope.kind === 'key' && { dirStillThere: dirWatch(dir) }),
  };
  lock = new Lock(attempt.path, record, token, interlock, lostWatch, companions);
  // A process that has taken a lock has that code compiled: it need not warm up while it waits.
  warmedUp = true;
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
    lockPath: recordPathHere(options.dir, options.scope),
    meta: record === undefined ? undefined : publicRecord(record),
    now,
    ...(refusal.holders && { holders: refusal.holders }),
    ...(refusal.hidden && { hidden: true }),
    ...(refusal.outOfSight && {
      outOfSight: refusal.outOfSight,
      claimedFile: refusal.claimedFile,
      claim: refusal.claim,
    }),
    ...(refusal.orphaned && { orphaned: true }),
  });
}

/**
 * `acquireLock` with the process probe as a parameter, and the choice not to ask a holder who it
 * is (acquirePort's, which passes held ports by the dozen).
 */
export async function acquireLockWith(
  options: AcquireOptions,
  probe: ProcessProbe,
  // acquirePort skips held ports by the dozen: asking each holder who it is would only cost time.
  // acquirePort checks the directory once for all the ports it tries, not again for each.
  { identify = true, dirChecked = false }: { identify?: boolean; dirChecked?: boolean } = {},
): Promise<LockHandle> {
  const resolved = resolveAcquire(options);
  const { dir, scope, wait, signal } = resolved;
  signal?.throwIfAborted();
  // Derived anew on every try: the directory may have been replaced since the last one.
  let name: string | undefined;
  const interlockNameOf = () => {
    name = nameOfKind(interlockKind(resolved.interlock), scope, dir);
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
  const started = monotonicMs();
  let since: number | undefined;
  let poll = POLL_MIN_MS;
  // Once it has waited, the event loop has turned: no need to turn it again before resolving.
  let waited = false;
  // Where the waiter behind this one waits, until this one holds the lock or gives up.
  let park: Park | undefined;
  try {
    for (;;) {
      const last = monotonicMs() - started >= wait;
      const tried = await tryOnce(resolved, probe, tokenOf, interlockNameOf, last && identify, dirChecked);
      if (tried.kind === 'acquired') return waited ? tried.lock : await afterMacrotask(tried.lock);
      const elapsed = monotonicMs() - started;
      if (tried.kind === 'transient' && elapsed < Math.max(wait, TRANSIENT_BUDGET_MS)) {
        if (tried.afterMs > 0) await pause(tried.afterMs, signal);
        signal?.throwIfAborted();
        continue;
      }
      const taken = tried.takenName ?? name;
      if (elapsed >= wait) {
        if (!tried.unidentified || !taken || !identify) throw heldError(resolved, tried, probe.now());
        const identified = await heldByInterlock(taken, resolved, probe);
        if (identified.kind === 'held') throw heldError(resolved, identified, probe.now());
        // The holder left while we were asking: one last try.
        continue;
      }
      // The holder's interlock tells a waiter the moment it is released; otherwise poll.
      // Waiters are served in the order they started waiting (`since`, by the wall clock all share,
      // to the microsecond: waiters often start within the same millisecond). Only a waiter pays
      // for loading perf_hooks, which the global `performance` does.
      since ??= performance.timeOrigin + performance.now() - (monotonicMs() - started);
      // What taking the lock needs (a token, this process's identity) is made while waiting, not
      // in the hand-over: once, on the first wait (a polling waiter comes here every few ms).
      if (!waited) {
        createRecord(scope, resolved.name, tokenOf(), probe);
        sweepWhileWaiting(resolved, probe);
      }
      waited = true;
      // Not awaited: the waiter queues at once, and warms up while it waits.
      void warmUp(probe, options.interlock);
      if (tried.viaInterlock && taken) park ??= await Park.open();
      if (
        tried.viaInterlock &&
        taken &&
        (await waitForRelease(taken, wait - elapsed, signal, since, park)) !== 'poll'
      ) {
        signal?.throwIfAborted();
        continue;
      }
      await pause(Math.min(poll, wait - elapsed), signal);
      poll = Math.min(poll * 2, POLL_MAX_MS);
    }
  } catch (error) {
    if (token !== undefined) ownTokens.delete(token);
    throw error;
  } finally {
    // Only now, with the lock held (or given up): the one behind asks the holder again.
    park?.close();
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
