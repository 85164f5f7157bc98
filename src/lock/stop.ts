import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemProbe } from '../identity/probe.ts';
import { userName } from '../identity/users.ts';
import { ASK_TIMEOUT_MS, ask, waitForRelease } from '../interlock/client.ts';
import { interlockKind, recordedKind, unverifiable } from '../interlock/flavour.ts';
import { boundAbstractNames, describeProcess, kernelHolders, runsWhollyAs } from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { presenceHeldBy } from '../interlock/presence.ts';
import { liveSocketFile, notHoldersSocketFile } from '../interlock/socket-file.ts';
import { holdersElsewhere } from '../interlock/unlisted-socket-file.ts';
import { monotonicMs } from '../monotonic.ts';
import { resolveTarget } from '../options/resolve.ts';
import { describe, validateInterlock } from '../options/validate.ts';
import { printable } from '../printable.ts';
import { describeHolder, listed } from '../record/holder-text.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import type {
  InterlockHolder,
  LockInspection,
  LockRecord,
  SignalledProcess,
  StopLockOptions,
  StopLockResult,
} from '../types.ts';
import { removeStaleLock } from './clean.ts';
import { lockFileElsewhere, otherDirectory } from './held-through.ts';
import { inspectLockWith } from './inspect.ts';
import { descendsFrom, handedPort } from './lineage.ts';
import { checkLockDir } from './lock-dir.ts';
import { recordPathHere } from './record-path.ts';

const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 25;
// While a holder keeps its interlock, a look waits on it this long at most before looking again:
// the name may pass to a successor, which must not keep the stop waiting for its own release.
const WAKE_MS = 250;

function validateTimeout(timeout: unknown): number {
  if (timeout === undefined) return DEFAULT_STOP_TIMEOUT_MS;
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0 || timeout === Infinity) {
    throw new RangeError(`timeout must be a finite number of milliseconds, 0 or more, got ${describe(timeout)}`);
  }
  return timeout;
}

// A question gets at least this long, even past a step's deadline: a holder given no time to
// answer would look silent, and silence is no evidence of anything.
const MIN_ANSWER_MS = 100;

/** The time left until `deadline` for a holder to answer: at most the usual wait, at least a moment. */
const answerBudget = (deadline: number) =>
  Math.round(Math.max(MIN_ANSWER_MS, Math.min(ASK_TIMEOUT_MS, deadline - monotonicMs())));

/** What a stop knows of the lock it stops: the facts every verification is checked against. */
interface Place {
  path: string;
  /** The lock's kernel name, where the OS has one. */
  name: string | undefined;
  /** The lock's port, for a port's lock: a process portlock handed it to says so in its environment. */
  port?: number;
  /** The uid whose processes the lock directory's records vouch for: its owner. */
  owner: number | undefined;
  /** The inode of the name's own socket, as its holder reported it: other sockets shown alike are look-alikes. */
  socket?: string;
  /** The holder's lock file, where it lies in another lock directory (a port's name is the same for all). */
  elsewhere?: { file: string; whose: string };
}

/** A process verified to hold the lock: a pid, and the start time that makes it that process. */
interface Verified {
  pid: number;
  startTime: string;
  /** How it holds the lock: its kernel name, or a record of its own (without an interlock). */
  via: 'kernel' | 'record';
}

interface Verification {
  holders: Verified[];
  /** Every process the kernel shows holding the lock's name, verified or not. */
  onName: number[];
  /** Why a holder the lock has is not among `holders`, where that is so. */
  doubt?: string;
  /** The record, and whether its holder listens on the lock's name and may be given its token. */
  record: LockRecord | undefined;
  tokenFor?: number;
}

const samePlace = (a: Pick<Verified, 'pid' | 'startTime'>, b: Pick<Verified, 'pid' | 'startTime'>) =>
  a.pid === b.pid && a.startTime === b.startTime;

/** The owner of a file, or undefined where it cannot be told. */
function ownerOf(path: string): number | undefined {
  try {
    return process.platform === 'win32' ? undefined : lstatSync(path).uid;
  } catch {
    return undefined;
  }
}

/**
 * The one verification every question and signal passes through: which processes hold the lock
 * now. A process holds it when a record of the lock directory's owner names it (pid, start time,
 * pid namespace, boot, host all its own), or when the kernel lists it as holding the lock's name
 * and shows it to be that process, a descendant of it, or one that portlock handed this port's
 * lock to (see `handedPort`): /proc/net/unix alone can be forged. Either way it must run as the
 * lock directory's owner: a user vouches only for their own processes, and a squatter of a name
 * (which has no permissions) is no holder.
 * This process may be among them (it may be asked, and waited for), but is never signalled.
 */
function verify(place: Place): Verification {
  const file = readRecordFileQuietly(place.path);
  const record = file?.record;
  const kernel = place.name === undefined ? undefined : kernelHolders(place.name, undefined, place.socket);
  const ours = (holder: Pick<InterlockHolder, 'uid' | 'mixedUids'>) =>
    place.owner === undefined || runsWhollyAs(holder, place.owner);
  // A socket file's holder in another network namespace (a container sharing this pid namespace):
  // not in this table, but in its own, with its descriptors (see holdersElsewhere).
  const elsewhere =
    place.name?.startsWith('/') && kernel?.state === 'free' && place.owner !== undefined
      ? holdersElsewhere(place.name, place.owner)
      : [];
  const holders: Verified[] = [];
  const doubts: string[] = [];
  let tokenFor: number | undefined;
  // The record's own process, where every check of it holds: pid, start time, user, namespace.
  let recorded: Verified | undefined;
  if (record !== undefined) {
    const proc = describeProcess(record.pid);
    const why = (() => {
      if (!ours({ uid: ownerOf(place.path) })) return "its record is not the lock directory owner's";
      if (record.hostname !== undefined && record.hostname !== systemProbe.hostname())
        return `it runs on host ${record.hostname}`;
      const bootId = systemProbe.bootId();
      if (record.bootId !== undefined && bootId !== undefined && record.bootId !== bootId)
        return 'its record is from an earlier boot';
      const pidns = systemProbe.pidns?.();
      if (record.pidns !== undefined && pidns !== undefined && record.pidns !== pidns) {
        return `it runs in another pid namespace (${record.pidns}), where pid ${record.pid} is not this host's pid ${record.pid}`;
      }
      if (proc === undefined) return `pid ${record.pid} cannot be seen from here (gone, or /proc does not show it)`;
      if (record.processStart === undefined)
        return `its record has no start time to confirm that pid ${record.pid} is still the holder`;
      if (record.processStart !== proc.startTime) return `pid ${record.pid} now belongs to another process`;
      if (!ours(proc))
        return `pid ${record.pid} does not run wholly as the lock directory's user (it runs as ${proc.user})`;
      if (record.pidns !== undefined && proc.pidns !== undefined && record.pidns !== proc.pidns) {
        return `pid ${record.pid} runs in another pid namespace than its record says`;
      }
      // A record-only holder (no interlock): its record is a claim; the kernel must show the
      // process holding the lock's name, or the presence name the record gives (see presence.ts).
      const onName = (kernel?.holders ?? []).some((holder) => holder.pid === record.pid);
      if (record.interlock !== true && !onName) return notHoldingPresence(record);
      return undefined;
    })();
    if (why !== undefined) doubts.push(`the process its record names is not signalled: ${why}`);
    else {
      const onName = kernel?.onOwnName ?? [];
      const nameHolders = (kernel?.holders ?? []).filter((holder) => onName.includes(holder.pid));
      // The token goes to the record's own process, listening on the name with nobody else's.
      if (onName.includes(record.pid) && nameHolders.every((holder) => ours(holder))) tokenFor = record.pid;
      const listening = elsewhere.filter((holder) => holder.pid === record.pid);
      if (listening.some((holder) => holder.startTime === record.processStart) && elsewhere.every(ours)) {
        tokenFor = record.pid;
      }
      recorded = { pid: record.pid, startTime: record.processStart as string, via: 'record' };
    }
  }
  // A socket file's holders in other network namespaces are judged as the kernel's here are: each
  // running as the lock directory's owner (holdersElsewhere names no other), and vouched for.
  for (const holder of [...(kernel?.holders ?? []), ...elsewhere]) {
    if (holder.startTime === undefined) continue;
    if (holders.some((known) => known.pid === holder.pid && known.startTime === holder.startTime)) continue;
    if (!ours(holder)) {
      doubts.push(`${describeHolder(holder)} holds its kernel name but is not the lock directory's user`);
      continue;
    }
    // /proc/net/unix prints a name's bytes raw, newlines too: anyone may forge a line giving the
    // name with any socket's inode. So the table alone makes nobody a holder to signal: the kernel
    // must show it too, as the record's own process, one it started, or one portlock handed this
    // port's lock to (by the environment it was started with, which only its own user can set).
    const shown = { pid: holder.pid, startTime: holder.startTime };
    // Not descent from pid 1: every process descends from it, orphans too, once adopted.
    const vouched =
      (recorded !== undefined &&
        (samePlace(shown, recorded) || (recorded.pid !== 1 && descendsFrom(holder.pid, recorded)))) ||
      handedPort(holder.pid, place.port);
    if (vouched) holders.push({ ...shown, via: 'kernel' });
    else {
      doubts.push(
        `${describeHolder(holder)} shows on its kernel name in /proc/net/unix, but is not the process its record names, nor one it started, nor one portlock handed the lock to`,
      );
    }
  }
  const own = recorded;
  if (own !== undefined && !holders.some((holder) => samePlace(holder, own))) holders.push(own);
  return {
    holders,
    onName: [...(kernel?.holders ?? []), ...elsewhere].map((holder) => holder.pid),
    record,
    ...(tokenFor !== undefined && { tokenFor }),
    ...(doubts.length > 0 && { doubt: doubts.join('; ') }),
  };
}

/**
 * Why the kernel does not show a record-only holder (one without an interlock) holding its lock,
 * or undefined where it does: the record's process must hold the presence name its record gives
 * (Linux). Elsewhere, or for a record without one, nothing but the record says it holds the lock.
 */
function notHoldingPresence(record: LockRecord): string | undefined {
  if (record.presence === undefined) {
    return `its record names no kernel name it holds (no interlock, no presence name), so nothing but the record says pid ${record.pid} holds the lock`;
  }
  const held = presenceHeldBy(record.presence, record.pid);
  if (held === true) return undefined;
  return held === false
    ? `the kernel does not show pid ${record.pid} holding the presence name its record gives, so it does not hold the lock through this record`
    : `this system does not show which process holds the presence name its record gives, so nothing but the record says pid ${record.pid} holds the lock`;
}

/** Of the processes verified before, those that still hold the lock now: same start time, still holding. */
function stillHolding(initial: Verified[], place: Place): Verified[] {
  const now = verify(place).holders;
  return initial.filter((holder) => now.some((current) => samePlace(current, holder)));
}

/** The processes that hold the lock now but were not verified before: a successor, never signalled. */
function successors(initial: Verified[], place: Place): Verified[] {
  return verify(place).holders.filter((holder) => !initial.some((before) => samePlace(before, holder)));
}

/** The users of `holders`, for a message: `root`, or `alice and bob`. */
function usersOf(holders: InterlockHolder[]): string {
  const users = [...new Set(holders.map((holder) => holder.user ?? `uid ${holder.uid}`))];
  return users.join(' and ');
}

/**
 * Why the caller cannot stop the lock's holder because it is another user's process, or undefined
 * when it is not. The kernel names it where /proc shows its descriptors; where it hides them (they
 * are another user's: a user sees all of their own), the holder's own answer names it, checked
 * against what /proc shows of that pid (its user, its start time) and said to be its own account.
 */
function anotherUsersHolder(place: Place, before: LockInspection): { user: string; why: string } | undefined {
  if (place.owner === undefined || place.name === undefined) return undefined;
  const kernel = kernelHolders(place.name, undefined, place.socket);
  if (kernel.state !== 'held') return undefined;
  const owner = place.owner;
  const caller = process.getuid?.();
  if (kernel.holders.length > 0) {
    const foreign = kernel.holders.filter((holder) => !runsWhollyAs(holder, owner));
    if (foreign.length === 0 || foreign.length < kernel.holders.length) return undefined;
    const user = usersOf(foreign);
    const who = foreign.map(describeHolder).join(', ');
    if (caller === 0 && owner !== 0) {
      return { user, why: `held by ${who}, which is not ${userName(owner)}'s, whose lock directory this is` };
    }
    if (caller === 0) {
      return {
        user,
        why: `held by ${who}: portlock signals only processes of the lock directory's user (${userName(owner)}), and this one is ${user}'s (stop it as ${user}, or kill it yourself)`,
      };
    }
    return {
      user,
      why: `held by ${who}, ${user}'s process, not yours: only ${user === 'root' ? 'root' : `${user} or root`} can stop it`,
    };
  }
  // Nobody is seen holding it: every process of one's own shows its descriptors, so it is another user's.
  if (caller === 0) return undefined;
  const claim = before.claim ?? before.record;
  const claimed = claim === undefined ? undefined : describeProcess(claim.pid);
  if (
    claim !== undefined &&
    claimed?.uid !== undefined &&
    claimed.uid !== caller &&
    (claim.processStart === undefined || claim.processStart === claimed.startTime)
  ) {
    const user = usersOf([claimed]);
    return {
      user,
      why: `held by another user's process: ${describeHolder(claimed)}, by its own account (/proc does not show you which process holds it, as it shows no other user's descriptors); only ${user === 'root' ? 'root' : `${user} or root`} can stop it`,
    };
  }
  return {
    user: 'another user',
    why: "held by another user's process (/proc does not show you which, as it shows no other user's descriptors); only that user or root can stop it",
  };
}

/** Asks the holder through its interlock to stop; undefined when it agreed, else why not. */
async function request(place: Place, verified: Verification, deadline: number): Promise<string | undefined> {
  if (place.name === undefined) return 'the holder has no control channel here (this OS has no kernel interlock)';
  if (place.elsewhere !== undefined) {
    const { file, whose } = place.elsewhere;
    return `it is held through ${file} (${whose}); no stop request was sent, for its token is in that file`;
  }
  const token = verified.record?.token;
  const noToken = `${place.path} does not carry the holder's token: it holds the lock through another lock directory (pass that --dir)`;
  // Without a record, a command the holder handed the lock to is told of below.
  const onTheName = verified.holders.some((holder) => holder.via === 'kernel');
  if (token === undefined && (verified.record !== undefined || !onTheName)) return noToken;
  if (verified.tokenFor === undefined && verified.record !== undefined && verified.record.interlock !== true) {
    // A holder by its record alone listens on no kernel name: there is nothing to ask.
    return 'its token was not sent: the holder holds the lock without an interlock, so it cannot be asked to stop';
  }
  const unseen = unverifiable(place.name);
  if (verified.tokenFor === undefined && unseen !== undefined) {
    // The token proves the right to stop: never handed to a process nobody can vouch for.
    return `its token was not sent: ${unseen}; stop the holder where it runs (pid ${verified.record?.pid})`;
  }
  if (verified.tokenFor === undefined) {
    const onName = verified.holders.filter((holder) => holder.via === 'kernel');
    if (onName.length > 0) {
      // A command the holder handed the lock to holds it on after the holder is gone.
      const who = onName.map((holder) => describeProcess(holder.pid) ?? { pid: holder.pid, command: undefined });
      const one = who.length === 1;
      const named = `${one ? 'process' : 'processes'} ${listed(who.map((holder) => describeHolder(holder).replace(/^pid /, '')))}`;
      return `${named} ${one ? 'holds' : 'hold'} its kernel interlock and ${one ? 'does' : 'do'} not answer stop requests (${one ? 'it is not the process' : 'they are not the process'} the record names, so the record's token is not sent to ${one ? 'it' : 'them'})`;
    }
    const doubt = verified.doubt === undefined ? '' : ` (${verified.doubt})`;
    return `its token was not sent: the process on the lock's kernel name is not the record's holder run by the lock directory's user${doubt}`;
  }
  if (token === undefined) return noToken;
  // The kernel vouched for the socket the holder listens on; the token goes to the file at the path.
  const swapped = notHoldersSocketFile(place.name, verified.record);
  if (swapped !== undefined) return `its token was not sent: ${swapped}`;
  const asked = await ask(place.name, { op: 'stop', token }, answerBudget(deadline));
  if (asked.kind === 'free') return 'the holder has no control channel (it holds the lock without an interlock)';
  if (asked.kind === 'silent') return `the holder does not answer stop requests (${asked.reason})`;
  if (asked.reply.ok) return undefined;
  if (asked.reply.error.code === 'ENOTSUP') return 'the holder does not accept stop requests';
  if (asked.reply.error.code === 'EDENIED') {
    return `the holder refused: the token in ${place.path} is not its own (it uses another lock directory; pass that --dir)`;
  }
  return `the holder refused: the stop request was refused (${asked.reply.error.code})`;
}

/** Waits until none of `initial` holds the lock any more; false at the deadline. */
async function untilLetGo(initial: Verified[], place: Place, deadline: number): Promise<boolean> {
  for (;;) {
    const holding = stillHolding(initial, place);
    if (holding.length === 0) return true;
    const left = deadline - monotonicMs();
    if (left <= 0) return false;
    const started = monotonicMs();
    // The interlock tells a waiter the moment its holder lets go; never look sooner than a poll period.
    if (place.name !== undefined && holding.some((holder) => holder.via === 'kernel')) {
      await waitForRelease(place.name, Math.min(left, WAKE_MS));
    }
    const rest = Math.min(POLL_MS - (monotonicMs() - started), deadline - monotonicMs());
    if (rest > 0) await sleep(rest);
  }
}

/** Waits, until the deadline, for processes to exit after they let go of the lock. */
async function untilExited(holders: Verified[], deadline: number): Promise<Verified[]> {
  // Until reaped: a zombie is still there for its parent to see.
  const alive = () =>
    holders.filter((holder) => {
      // This process lets go of a lock it holds without exiting.
      if (holder.pid === process.pid) return false;
      const info = systemProbe.info(holder.pid);
      return info !== 'gone' && info?.startTime === holder.startTime;
    });
  let left = alive();
  while (left.length > 0 && monotonicMs() < deadline) {
    await sleep(POLL_MS);
    left = alive();
  }
  return left;
}

/**
 * Whether something listens on exactly this kernel name now: a connection is accepted into its
 * queue (or the queue is full), whether or not it would ever answer. Refused: nothing does.
 */
function listening(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path: name });
    const done = (bound: boolean) => {
      socket.destroy();
      resolve(bound);
    };
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'),
    );
  });
}

/** Sends a signal to each verified holder; the pids it reached. */
function send(holders: Verified[], sig: 'SIGTERM' | 'SIGKILL'): number[] {
  return holders
    .filter((holder) => {
      if (holder.pid === process.pid) return false;
      try {
        process.kill(holder.pid, sig);
        return true;
      } catch {
        return false;
      }
    })
    .map((holder) => holder.pid);
}

/**
 * Stops the holder of a lock and confirms it is gone: asks it through the lock's kernel interlock,
 * proving the right to with the token of the lock's 0600 record, and waits at most `timeout` for
 * the release. With `force`, a holder that refuses, does not answer or takes too long is sent
 * SIGTERM, then SIGKILL. The token and the signals go only to processes the kernel says hold the
 * lock and that run as the lock directory's owner, each checked again just before it is sent; the
 * moment the lock changes hands, stopping ends, and a successor is never signalled. Never waits
 * longer than the timeout per step (a question to the holder always gets at least 100 ms), and
 * never signals this process. A record of another host, or a lock that cannot be checked, is left
 * alone (`unknown`).
 */
export async function stopLock(options: StopLockOptions): Promise<StopLockResult> {
  const { scope, dir, name } = resolveTarget(options, 'stopLock');
  const timeout = validateTimeout(options.timeout);
  const force = options.force === true;
  const where = checkLockDir(dir);
  // This network namespace's record of the port (see record-path.ts).
  const path = recordPathHere(dir, scope);
  const place: Place = {
    path,
    name: interlockName(scope, dir),
    owner: where?.uid ?? process.getuid?.(),
    ...(scope.kind === 'port' && { port: scope.port }),
  };
  // The holder's interlock is looked at whatever PORTLOCK_INTERLOCK says: the record names its kind.
  const target = {
    ...(scope.kind === 'port' ? { port: scope.port } : { key: scope.key }),
    dir,
    name,
    // A socket file forced for every lock (PORTLOCK_INTERLOCK) is looked at where no record names
    // it: a socket that holds it without one is still its holder.
    interlock: validateInterlock(undefined) === 'socket-file' ? ('socket-file' as const) : ('auto' as const),
  };
  const signalled = new Map<number, SignalledProcess & { startTime: string }>();
  let before: LockInspection | undefined;
  const result = (outcome: StopLockResult['outcome'], reason: string, via?: StopLockResult['via']): StopLockResult => {
    const processes = [...signalled.values()];
    // What became of each: gone, or still that process, holding the lock or not.
    const holdingNow = verify(place).holders;
    for (const entry of processes) {
      const now = describeProcess(entry.pid);
      if (now === undefined || now.startTime !== entry.startTime) entry.outcome = 'exited';
      else entry.outcome = holdingNow.some((holder) => samePlace(holder, entry)) ? 'still holding' : 'let go';
    }
    return {
      outcome,
      ...(via && { via }),
      before: before as LockInspection,
      signalled: processes.map((entry) => entry.pid),
      processes: processes.map(({ startTime: _startTime, ...entry }) => entry),
      // A reason may quote a record or a process's command line: nothing in it reaches a terminal raw.
      reason: printable(reason),
      ...(where?.foreign && { dirOwner: where.uid }),
    };
  };

  // Look. The kernel's table of bound names is read first: a free name is free without a question.
  const askDeadline = monotonicMs() + timeout;
  // Looked at even without a lock directory: a port's kernel name is the same for every directory.
  before = await inspectLockWith(target, systemProbe, {
    askTimeoutMs: answerBudget(askDeadline),
    bound: boundAbstractNames(),
  });
  if (before.state === 'free' || before.state === 'stale')
    return result('not-running', `nothing holds it: ${before.reason}`);
  // A command portlock handed this port's lock to, of the lock directory's user, holding it from
  // another network namespace once its portlock is gone: vouched for by the environment it was
  // started with, as on the host (see verify).
  const handed = (before.holders ?? []).some(
    (holder) => place.owner !== undefined && runsWhollyAs(holder, place.owner) && handedPort(holder.pid, place.port),
  );
  if (before.unlistedSocket !== undefined && !handed) {
    // Another network namespace's socket at the lock's file: nothing it answers can be checked,
    // and the kernel shows no process here holding the lock, so nothing is asked or signalled.
    const reason = `${before.reason}; no stop request and no signal were sent, for nothing here can vouch for it`;
    return result('still-running', reason);
  }
  place.socket = before.record?.socketInode;
  const elsewhere = lockFileElsewhere(before.record, path);
  if (elsewhere !== undefined && before.record !== undefined) {
    place.elsewhere = { file: elsewhere, whose: otherDirectory(before.record, name).whose };
  }
  // A holder of a socket file (the record says so, or this system has no other) is asked, and checked, there.
  const kind = before.record === undefined ? undefined : recordedKind(before.record);
  if (kind === 'socket-file' || (kind === undefined && interlockKind(validateInterlock(undefined)) === 'socket-file')) {
    place.name = await liveSocketFile(scope, dir);
  }
  if (before.state === 'unknown') {
    const unknown = result('unknown', `it cannot be stopped from here: ${before.reason}`);
    return before.notOwners === undefined ? unknown : { ...unknown, notOwners: before.notOwners };
  }

  // Verify: who holds it, as the kernel tells.
  const verified = verify(place);
  const holders = verified.holders;
  // The token of the record read now: once its holder is stopped, that record, and no successor's, goes.
  const readToken = verified.record?.token;

  // Another user's process: not this caller's to ask or signal, and the reader is told whose it is.
  const foreign = holders.length === 0 ? anotherUsersHolder(place, before) : undefined;
  if (foreign !== undefined) {
    const why = force ? `${foreign.why}; no process was signalled, as you may not signal it` : foreign.why;
    return { ...result('still-running', why), holderUser: foreign.user };
  }

  // Ask, with the token, only the verified holder; and wait for it to let go. Holders that hold
  // it orphaned cannot be asked: nothing waits on the interlock for a question.
  const refused = before.orphaned
    ? `${before.reason}; ${before.holders && before.holders.length > 1 ? 'they cannot be asked to stop, as none waits' : 'it cannot be asked to stop, as it does not wait'} on the interlock for requests`
    : await request(place, verified, askDeadline);
  if (refused === undefined && (await untilLetGo(holders, place, askDeadline))) {
    return gone('request', askDeadline);
  }
  const why = refused ?? `the holder did not release the lock within ${timeout} ms of agreeing to stop`;
  if (!force) return result('still-running', why);
  if (holders.every((holder) => holder.pid === process.pid)) {
    // The doubt is told once: the refusal may have told it already.
    const doubt = verified.doubt === undefined || why.includes(verified.doubt) ? '' : ` (${verified.doubt})`;
    return result('still-running', `${why}; no process was signalled: none could be verified as its holder${doubt}`);
  }

  // Verify, signal SIGTERM, wait: the holder passes it on to a child it handed the lock to.
  const recordPid = verified.record?.pid;
  const recordHolds = stillHolding(holders, place).some((holder) => holder.pid === recordPid);
  if (signalVerified('SIGTERM', (holder) => !recordHolds || holder.pid === recordPid) === 0) {
    return gone('request', monotonicMs() + timeout);
  }
  const termDeadline = monotonicMs() + timeout;
  if (await untilLetGo(holders, place, termDeadline)) return gone('SIGTERM', termDeadline);

  // Verify, signal SIGKILL to every verified process still holding it, wait.
  if (signalVerified('SIGKILL') === 0) return gone('SIGTERM', monotonicMs() + timeout);
  const killDeadline = monotonicMs() + timeout;
  if (await untilLetGo(holders, place, killDeadline)) return gone('SIGKILL', killDeadline);
  return result('still-running', `${why}; it was sent SIGTERM and SIGKILL and still holds the lock`);

  /**
   * The one way a signal leaves this function: to those of the holders verified at the start that
   * the kernel or their own record says still hold the lock, checked again now (same start time,
   * still holding). A successor is never among them. Returns how many were still holding.
   */
  function signalVerified(sig: 'SIGTERM' | 'SIGKILL', only: (holder: Verified) => boolean = () => true): number {
    const targets = stillHolding(holders, place).filter(only);
    for (const pid of send(targets, sig)) {
      const holder = targets.find((target) => target.pid === pid) as Verified;
      const entry = signalled.get(pid) ?? {
        pid,
        startTime: holder.startTime,
        signals: [] as SignalledProcess['signals'],
        outcome: 'still holding' as const,
      };
      entry.signals.push(sig);
      signalled.set(pid, entry);
    }
    return targets.length;
  }

  /** The verified holders let go: wait for them to exit, and say how it ended. */
  async function gone(via: NonNullable<StopLockResult['via']>, deadline: number): Promise<StopLockResult> {
    const lingering = await untilExited(holders, deadline);
    const pids = [...signalled.keys()];
    const how =
      via === 'request' ? 'on request' : `after ${via} to ${pids.length > 1 ? 'pids' : 'pid'} ${pids.join(', ')}`;
    const next = successors(holders, place);
    const handedOn =
      next.length === 0
        ? ''
        : `; the lock has passed to pid ${next.map((holder) => holder.pid).join(', ')}, which was sent nothing`;
    // A release through the name is reported only once the name is free (nothing listens on it), or
    // taken by a process that did not hold it before: a successor.
    const here =
      place.name === undefined ||
      next.length > 0 ||
      // A holder by its record alone never held the name: whoever listens there is no holder of the lock.
      !holders.some((holder) => holder.via === 'kernel') ||
      !(await listening(place.name))
        ? undefined
        : kernelHolders(place.name, undefined, place.socket);
    // A socket file still live, listed nowhere here: its holders in other network namespaces.
    const kernel =
      here !== undefined && here.holders.length === 0 && place.name?.startsWith('/') && place.owner !== undefined
        ? { ...here, holders: holdersElsewhere(place.name, place.owner) }
        : here;
    // Still there from the start (a holder that was not stopped), or one that took it since.
    const stayed = kernel?.holders.filter((holder) => verified.onName.includes(holder.pid)) ?? [];
    if (stayed.length > 0) {
      return result(
        'still-running',
        `the holder let go (${how}), but ${stayed.map(describeHolder).join(', ')} still holds the lock's kernel interlock`,
        via,
      );
    }
    const taken =
      kernel === undefined
        ? ''
        : `; the lock has passed to ${kernel.holders.length === 0 ? 'a process /proc does not show' : kernel.holders.map(describeHolder).join(', ')}, which was sent nothing`;
    const removed = next.length === 0 && kernel === undefined ? await removeRecordRead() : '';
    const reason =
      lingering.length === 0
        ? `the holder released the lock and exited (${how})${removed}${handedOn}${taken}`
        : `the holder released the lock (${how}); process ${lingering.map((holder) => holder.pid).join(', ')} is still exiting${removed}${handedOn}${taken}`;
    return result('stopped', reason, via);
  }

  /**
   * Removes the record this stop read, if it is still there with the same token: the holder it
   * names is stopped, and a record left behind would make the lock look stale. A successor's
   * record carries another token and stays; a record replaced between the look and the removal is
   * left to the claim chain (see `removeStaleLock`), which removes it only while it is stale.
   */
  async function removeRecordRead(): Promise<string> {
    if (readToken === undefined || readRecordFileQuietly(place.path)?.record?.token !== readToken) return '';
    try {
      const { removed } = await removeStaleLock(target);
      return removed ? `; its lock file ${place.path} was removed` : '';
    } catch {
      // Not removed (the directory changed, the disk is full): the next start replaces it.
      return '';
    }
  }
}
