import { setTimeout as sleep } from 'node:timers/promises';
import { processExists, systemProbe } from '../identity/probe.ts';
import { ASK_TIMEOUT_MS, ask, waitForRelease } from '../interlock/client.ts';
import { boundAbstractNames, socketHolders } from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { resolveTarget } from '../options/resolve.ts';
import { describe } from '../options/validate.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import type { LockInspection, StopLockOptions, StopLockResult } from '../types.ts';
import { inspectLockWith } from './inspect.ts';

export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 25;

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
  Math.round(Math.max(MIN_ANSWER_MS, Math.min(ASK_TIMEOUT_MS, deadline - performance.now())));

/** Asks the holder through its interlock to stop; undefined when it agreed, else why not. */
async function request(name: string | undefined, path: string, deadline: number): Promise<string | undefined> {
  if (name === undefined) return 'the holder has no control channel here (it holds the lock without an interlock)';
  const token = readRecordFileQuietly(path)?.record?.token;
  if (token === undefined) {
    return `${path} does not carry the holder's token: it holds the lock through another lock directory (pass that --dir)`;
  }
  const asked = await ask(name, { op: 'stop', token }, answerBudget(deadline));
  if (asked.kind === 'free') return 'the holder has no control channel (it holds the lock without an interlock)';
  if (asked.kind === 'silent') {
    const holders = socketHolders(name);
    const who = holders.map((holder) => `${holder.pid}${holder.command ? ` (${holder.command})` : ''}`).join(', ');
    // A command that `portlock run` handed the lock to holds it on after portlock was killed.
    return holders.length > 0
      ? `process ${who} holds its kernel interlock and does not answer stop requests (${asked.reason})`
      : `the holder does not answer: ${asked.reason}`;
  }
  if (asked.reply.ok) return undefined;
  if (asked.reply.error.code === 'ENOTSUP') return 'the holder does not accept stop requests';
  if (asked.reply.error.code === 'EDENIED') {
    return `the holder refused: the token in ${path} is not its own (it uses another lock directory; pass that --dir)`;
  }
  return `the holder refused: ${asked.reply.error.message}`;
}

/** Resolves once the lock is not held any more, or at the deadline, with the last inspection. */
async function untilReleased(
  inspect: (askTimeoutMs?: number) => Promise<LockInspection>,
  name: string | undefined,
  deadline: number,
): Promise<LockInspection> {
  for (;;) {
    const now = await inspect(answerBudget(deadline));
    const left = deadline - performance.now();
    if (now.state !== 'held' || left <= 0) return now;
    // The interlock tells a waiter the moment its last holder lets go; without one, poll (a free
    // name answers at once, so never look again sooner than a poll period).
    const started = performance.now();
    if (name !== undefined) await waitForRelease(name, left);
    const rest = Math.min(POLL_MS - (performance.now() - started), deadline - performance.now());
    if (rest > 0) await sleep(rest);
  }
}

/** Waits, until the deadline, for processes to exit after they let go of the lock. */
async function untilExited(pids: number[], deadline: number): Promise<number[]> {
  let alive = pids.filter((pid) => processExists(pid) !== 'gone');
  while (alive.length > 0 && performance.now() < deadline) {
    await sleep(POLL_MS);
    alive = alive.filter((pid) => processExists(pid) !== 'gone');
  }
  return alive;
}

function signal(pids: number[], sig: 'SIGTERM' | 'SIGKILL'): number[] {
  return pids.filter((pid) => {
    if (pid === process.pid) return false;
    try {
      process.kill(pid, sig);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Stops the holder of a lock and confirms it is gone: asks it through the lock's kernel interlock,
 * proving the right to with the token of the lock's 0600 record, and waits at most `timeout` for
 * the release. With `force`, a holder that refuses, does not answer or takes too long is sent
 * SIGTERM, then SIGKILL. Never waits longer than the timeout per step (a question to the holder
 * always gets at least 100 ms), and never signals this process. A record of another host, or a
 * lock that cannot be checked, is left alone (`unknown`).
 */
export async function stopLock(options: StopLockOptions): Promise<StopLockResult> {
  const { scope, dir, name, path } = resolveTarget(options, 'stopLock');
  const timeout = validateTimeout(options.timeout);
  const force = options.force === true;
  const target = scope.kind === 'port' ? { port: scope.port, dir, name } : { key: scope.key, dir, name };
  // Each look reads the kernel's table of bound names first: a free name is free without a
  // question, so a holder that has just gone is never taken for one that does not answer.
  const inspect = (askTimeoutMs?: number) =>
    inspectLockWith(target, systemProbe, { askTimeoutMs, bound: boundAbstractNames() });
  const kernelName = interlockName(scope, dir);
  // The first step (look, ask, wait for the release) keeps to `timeout` as a whole, as later ones do.
  const requestDeadline = performance.now() + timeout;
  const before = await inspect(answerBudget(requestDeadline));
  const result = (outcome: StopLockResult['outcome'], reason: string, extra: Partial<StopLockResult> = {}) => ({
    outcome,
    before,
    signalled: [],
    reason,
    ...extra,
  });
  if (before.state === 'free' || before.state === 'stale') {
    return result('not-running', `nothing holds it: ${before.reason}`);
  }
  if (before.state === 'unknown') return result('unknown', `it cannot be stopped from here: ${before.reason}`);
  // Only the holder's own 0600 record and the kernel's table are proof of who holds the lock: an
  // answer on the interlock could come from anyone squatting its name.
  const recorded = readRecordFileQuietly(path)?.record?.pid;
  const socketPids = () => (kernelName === undefined ? [] : socketHolders(kernelName).map((holder) => holder.pid));
  const certainPid = (lock: LockInspection) => {
    const pid = lock.certainty === 'certain' ? lock.record?.pid : undefined;
    return pid !== undefined && (pid === recorded || socketPids().includes(pid)) ? pid : undefined;
  };
  const holdersNow = (lock: LockInspection) => {
    const pids = new Set(socketPids());
    const pid = certainPid(lock);
    if (pid !== undefined) pids.add(pid);
    pids.delete(process.pid);
    return [...pids];
  };
  let last = before;
  const confirmGone = async (via: NonNullable<StopLockResult['via']>, deadline: number, signalled: number[]) => {
    const pids = holdersNow(last);
    last = await untilReleased(inspect, kernelName, deadline);
    if (last.state === 'held') return undefined;
    const lingering = await untilExited(pids, deadline);
    const how =
      via === 'request'
        ? 'on request'
        : `after ${via} to ${signalled.length > 1 ? 'pids' : 'pid'} ${signalled.join(', ')}`;
    const reason =
      lingering.length === 0
        ? `the holder released the lock and exited (${how})`
        : `the holder released the lock (${how}); process ${lingering.join(', ')} is still exiting`;
    return result('stopped', reason, { via, signalled });
  };

  const refused = await request(kernelName, path, requestDeadline);
  if (refused === undefined) {
    const stopped = await confirmGone('request', requestDeadline, []);
    if (stopped !== undefined) return stopped;
  }
  const why = refused ?? `the holder did not release the lock within ${timeout} ms of agreeing to stop`;
  if (!force) return result('still-running', why);

  // SIGTERM goes to the holder alone, which passes it on to a child it handed the lock to; where
  // the holder is unsure (no start time to confirm it), the pid its record names.
  const named = certainPid(last) ?? certainPid(before);
  let targets = named !== undefined ? [named] : holdersNow(last);
  if (targets.length === 0 && recorded !== undefined) targets = [recorded];
  targets = targets.filter((pid) => pid !== process.pid);
  if (targets.length === 0) return result('still-running', `${why}; no process to signal was found`);
  const signalled = signal(targets, 'SIGTERM');
  const afterTerm = await confirmGone('SIGTERM', performance.now() + timeout, signalled);
  if (afterTerm !== undefined) return afterTerm;
  // SIGKILL goes to every process that still holds it, children it handed the lock to included.
  const killTargets = holdersNow(last);
  if (killTargets.length === 0 && last.record?.pid === recorded && recorded !== undefined) killTargets.push(recorded);
  const all = [...new Set([...signalled, ...signal(killTargets, 'SIGKILL')])];
  const afterKill = await confirmGone('SIGKILL', performance.now() + timeout, all);
  if (afterKill !== undefined) return afterKill;
  return result('still-running', `${why}; it was sent SIGTERM and SIGKILL and still holds the lock`, {
    signalled: all,
  });
}
