import { directoryIdentity } from '../interlock/name.ts';
import type { Interlock } from '../interlock/server.ts';
import { socketFileInterlock } from '../interlock/socket-file-on-first-use.ts';
import type { ResolvedAcquire } from '../options/resolve.ts';
import type { LockScope } from '../options/validate.ts';
import { createRecord, publicRecord, serializeRecord } from '../record/record.ts';
import type { LockRecord } from '../types.ts';
import type { Acquisition } from './acquisition.ts';
import { askFirst, heldByInterlock, provesTaken, type Refusal, UNIDENTIFIED } from './ask-holder.ts';
import { type Attempt, attemptAcquire } from './attempt.ts';
import { bindBoth, guardLegacyForm, presenceOf, takerFor, whyUnbindable } from './bind-interlock.ts';
import { Lock, removeIfOwned } from './handle.ts';
import { judgeWith } from './judge-here.ts';
import { firstInDir, sweepLeftovers } from './leftovers.ts';
import { checkOwnLockDir, ensureLockDir } from './lock-dir.ts';
import { heldBeside, networkFallback } from './record-path.ts';

/** The outcome of one try: the lock, or why not. */
type Tried = { kind: 'acquired'; reclaimed: boolean; lock: Lock } | Refusal;

/** The kernel names one try holds: the interlock (none where it is off or the kernel refused it) and those beside it. */
interface Bound {
  kind: 'bound';
  interlock: Interlock | undefined;
  /** Kernel names held beside the interlock (a legacy form, a key's second name, a presence). */
  companions: Interlock[];
  /** Why the kernel refused to bind the interlock, where it did. */
  unavailable: string | undefined;
  /** The socket file held, for a socket-file interlock. */
  socketFile: string | undefined;
}

/** `port 8080`, `key build-cache`: how a refusal or a loss names the lock. */
export function describeScope(scope: LockScope): string {
  return scope.kind === 'port' ? `port ${scope.port}` : `key ${scope.key}`;
}

/** Whether a key lock's directory is still the one it was taken in (not moved away, removed or replaced). */
function dirWatch(dir: string): () => boolean {
  const identity = directoryIdentity(dir);
  return () => directoryIdentity(dir) === identity;
}

/** One try: bind the interlock where there is one, then publish or reclaim the record. */
export async function tryOnce(acquisition: Acquisition, identifyHolder: boolean): Promise<Tried> {
  const dirExists = prepareDir(acquisition);
  const name = acquisition.interlockName();
  const bound = name === undefined ? nothingBound() : await bindInterlock(acquisition, name, identifyHolder);
  if (bound.kind !== 'bound') return bound;
  return await takeRecord(acquisition, bound, dirExists);
}

/**
 * Makes the lock directory where the kernel name needs it, and says whether it exists. A missing
 * directory is created only once there is a record to write in it, so that a refusal leaves no
 * new, empty one behind: a port's kernel name needs none. A key's name comes from its directory's
 * identity and real path, so that directory is made first. `dirChecked`: the caller has made and
 * checked it already (acquirePort, once for each pass over its range).
 */
function prepareDir({ options: { dir, scope }, choices: { dirChecked } }: Acquisition): boolean {
  if (scope.kind === 'key' && !dirChecked) ensureLockDir(dir);
  return dirChecked || scope.kind === 'key' || checkOwnLockDir(dir);
}

function nothingBound(): Bound {
  return { kind: 'bound', interlock: undefined, companions: [], unavailable: undefined, socketFile: undefined };
}

/** Binds the lock's interlock (and the names held beside it), or says who holds it. */
async function bindInterlock(
  acquisition: Acquisition,
  name: string,
  identifyHolder: boolean,
): Promise<Bound | Refusal> {
  const { options, probe, kind } = acquisition;
  const { dir, scope } = options;
  const heard = identifyHolder && kind !== 'socket-file' ? await askFirst(name, options, probe) : undefined;
  if (provesTaken(heard)) return { ...(await heldByInterlock(name, options, probe, heard)), takenName: name };
  const tried =
    kind === 'socket-file'
      ? // The socket-file interlock's code loads where a lock has one (see socket-file-path.ts).
        await (await socketFileInterlock()).bindSocketFile(
          scope,
          dir,
          takerFor(options, probe, () => acquisition.token()),
        )
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
  if (typeof bound === 'string') {
    // A waiter only needs to know when the holder leaves; asking who it is can wait for the refusal.
    const refusal = identifyHolder
      ? await heldByInterlock(bound, options, probe, bound === name ? heard : undefined)
      : { ...UNIDENTIFIED, viaInterlock: true };
    return { ...refusal, takenName: bound };
  }
  const held = nothingBound();
  if (typeof legacy === 'object') held.companions.push(legacy);
  held.interlock = bound?.first;
  if (typeof tried === 'object' && 'file' in tried && typeof tried.file === 'string') held.socketFile = tried.file;
  if (bound?.second !== undefined) held.companions.push(bound.second);
  if (bound === undefined) {
    held.unavailable =
      typeof tried === 'object' && 'unavailable' in tried ? tried.unavailable : await whyUnbindable(name);
  }
  return held;
}

/** Publishes this holder's record (or reclaims a stale one) beside the kernel names held: the lock, or a refusal. */
async function takeRecord(acquisition: Acquisition, bound: Bound, dirExists: boolean): Promise<Tried> {
  const { options, probe, kind } = acquisition;
  const { dir, path, scope } = options;
  const { interlock, companions } = bound;
  let lock: Lock | undefined;
  let record: LockRecord;
  let token: string;
  let written: Buffer;
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
    token = acquisition.token();
    record = {
      ...createRecord(scope, options.name, token, probe, interlock !== undefined, {
        presence: presence?.id,
        interlockUnavailable: bound.unavailable,
        holder: options.holder,
        interlockKind: kind,
      }),
      ...(bound.socketFile !== undefined && { socketFile: bound.socketFile }),
    };
    const answers = { record: publicRecord(record), lockFile: path, token, stopHandler: () => lock?.onStopRequest };
    interlock?.answerWith(answers);
    if (interlock !== undefined) for (const companion of companions) companion.answerWith(answers);
    const fallback = interlock && networkFallback(acquisition.networkPath(), kind, probe);
    written = serializeRecord(record);
    attempt = attemptAcquire(dir, path, written, judge, fallback);
    if (attempt.kind === 'acquired') answers.lockFile = attempt.path;
  } catch (error) {
    closeAll();
    throw error;
  }
  if (attempt.kind !== 'acquired') {
    closeAll();
    return attempt;
  }
  // Checked once our record stands, so that a holder falling over to its own file meanwhile meets it.
  const beside = attempt.path === path ? heldBeside(acquisition.networkPath(), judge, token) : undefined;
  if (beside !== undefined) {
    removeIfOwned(path, token);
    closeAll();
    return { kind: 'held', ...beside };
  }
  try {
    // What dead processes left next to this lock (a full disk, a crash mid-publish) goes now.
    if (attempt.reclaimed || firstInDir(dir)) sweepLeftovers(attempt.path, probe, judge);
  } catch {
    // Tidying up after others is a courtesy; the lock is ours either way.
  }
  lock = new Lock(
    { path: attempt.path, written },
    record,
    token,
    interlock,
    lostWatchOf(options, interlock),
    companions,
  );
  return { ...attempt, lock };
}

/** How a held lock watches for its loss, where the caller asked to hear of it. */
function lostWatchOf(options: ResolvedAcquire, interlock: Interlock | undefined) {
  const { scope, dir } = options;
  return (
    options.onLost && {
      target: describeScope(scope),
      intervalMs: options.recheckInterval,
      onLost: options.onLost,
      ...(interlock !== undefined && scope.kind === 'key' && { dirStillThere: dirWatch(dir) }),
    }
  );
}
