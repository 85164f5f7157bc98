import { lstatSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemProbe } from '../identity/probe.ts';
import { ASK_TIMEOUT_MS, ask, waitForRelease } from '../interlock/client.ts';
import { boundAbstractNames, describeProcess, kernelHolders, runsWhollyAs } from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { monotonicMs } from '../monotonic.ts';
import { resolveTarget } from '../options/resolve.ts';
import { describe } from '../options/validate.ts';
import { printable } from '../printable.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import type {
  InterlockHolder,
  LockInspection,
  LockRecord,
  SignalledProcess,
  StopLockOptions,
  StopLockResult,
} from '../types.ts';
import { inspectLockWith } from './inspect.ts';
import { describeHolder } from './interlock-answer.ts';
import { checkLockDir } from './lock-dir.ts';

export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
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
  /** The uid whose processes the lock directory's records vouch for: its owner. */
  owner: number | undefined;
  /** The inode of the name's own socket, as its holder reported it: other sockets shown alike are look-alikes. */
  socket?: string;
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
 * now, as the kernel tells. A process holds it when the kernel lists it as holding the lock's
 * name, or when a record of the lock directory's owner names it (pid, start time, pid namespace,
 * boot, host all its own). Either way it must run as the lock directory's owner: a user vouches
 * only for their own processes, and a squatter of a name (which has no permissions) is no holder.
 * This process may be among them (it may be asked, and waited for), but is never signalled.
 */
function verify(place: Place): Verification {
  const file = readRecordFileQuietly(place.path);
  const record = file?.record;
  const kernel = place.name === undefined ? undefined : kernelHolders(place.name, undefined, place.socket);
  const ours = (holder: Pick<InterlockHolder, 'uid' | 'mixedUids'>) =>
    place.owner === undefined || runsWhollyAs(holder, place.owner);
  const holders: Verified[] = [];
  const doubts: string[] = [];
  for (const holder of kernel?.holders ?? []) {
    if (holder.startTime === undefined) continue;
    if (ours(holder)) holders.push({ pid: holder.pid, startTime: holder.startTime, via: 'kernel' });
    else doubts.push(`${describeHolder(holder)} holds its kernel name but is not the lock directory's user`);
  }
  let tokenFor: number | undefined;
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
      return undefined;
    })();
    if (why !== undefined) doubts.push(`the process its record names is not signalled: ${why}`);
    else {
      const onName = kernel?.onOwnName ?? [];
      const nameHolders = (kernel?.holders ?? []).filter((holder) => onName.includes(holder.pid));
      // The token goes to the record's own process, listening on the name with nobody else's.
      if (onName.includes(record.pid) && nameHolders.every((holder) => ours(holder))) tokenFor = record.pid;
      const verified: Verified = { pid: record.pid, startTime: record.processStart as string, via: 'record' };
      if (!holders.some((holder) => samePlace(holder, verified))) holders.push(verified);
    }
  }
  return {
    holders,
    record,
    ...(tokenFor !== undefined && { tokenFor }),
    ...(doubts.length > 0 && { doubt: doubts.join('; ') }),
  };
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

/** Asks the holder through its interlock to stop; undefined when it agreed, else why not. */
async function request(place: Place, verified: Verification, deadline: number): Promise<string | undefined> {
  if (place.name === undefined) return 'the holder has no control channel here (this OS has no kernel interlock)';
  const token = verified.record?.token;
  if (token === undefined) {
    return `${place.path} does not carry the holder's token: it holds the lock through another lock directory (pass that --dir)`;
  }
  if (verified.tokenFor === undefined) {
    const onName = verified.holders.filter((holder) => holder.via === 'kernel');
    if (onName.length > 0) {
      // A command the holder handed the lock to holds it on after the holder is gone.
      const who = onName.map((holder) => describeProcess(holder.pid) ?? { pid: holder.pid, command: undefined });
      const named = who.map((holder) => describeHolder(holder).replace(/^pid /, 'process ')).join(', ');
      return `${named} holds its kernel interlock and does not answer stop requests (it is not the process the record names, so the record's token is not sent to it)`;
    }
    const doubt = verified.doubt === undefined ? '' : ` (${verified.doubt})`;
    return `its token was not sent: the process on the lock's kernel name is not the record's holder run by the lock directory's user${doubt}`;
  }
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
  const { scope, dir, name, path } = resolveTarget(options, 'stopLock');
  const timeout = validateTimeout(options.timeout);
  const force = options.force === true;
  const where = checkLockDir(dir);
  const place: Place = { path, name: interlockName(scope, dir), owner: where?.uid ?? process.getuid?.() };
  const target = scope.kind === 'port' ? { port: scope.port, dir, name } : { key: scope.key, dir, name };
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
  before =
    where === undefined
      ? { state: 'free', path, reason: 'there is no lock directory', certainty: 'certain' }
      : await inspectLockWith(target, systemProbe, {
          askTimeoutMs: answerBudget(askDeadline),
          bound: boundAbstractNames(),
        });
  if (before.state === 'free' || before.state === 'stale')
    return result('not-running', `nothing holds it: ${before.reason}`);
  place.socket = before.record?.socketInode;
  if (before.state === 'unknown') return result('unknown', `it cannot be stopped from here: ${before.reason}`);

  // Verify: who holds it, as the kernel tells.
  const verified = verify(place);
  const holders = verified.holders;

  // Ask, with the token, only the verified holder; and wait for it to let go.
  const refused = await request(place, verified, askDeadline);
  if (refused === undefined && (await untilLetGo(holders, place, askDeadline))) {
    return gone('request', askDeadline);
  }
  const why = refused ?? `the holder did not release the lock within ${timeout} ms of agreeing to stop`;
  if (!force) return result('still-running', why);
  if (holders.every((holder) => holder.pid === process.pid)) {
    const doubt = verified.doubt === undefined ? '' : ` (${verified.doubt})`;
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
    const reason =
      lingering.length === 0
        ? `the holder released the lock and exited (${how})${handedOn}`
        : `the holder released the lock (${how}); process ${lingering.map((holder) => holder.pid).join(', ')} is still exiting${handedOn}`;
    return result('stopped', reason, via);
  }
}
