import type { RecordFile } from '../record/read-record.ts';
import { MAX_RECORD_BYTES } from '../record/record.ts';
import type { Certainty, LockRecord } from '../types.ts';
import type { ProcessProbe } from './probe.ts';

/** What a lock file says about its holder, judged against the process table. */
export interface Verdict {
  state: 'held' | 'stale' | 'unknown';
  certainty: Certainty;
  /** Why, in one clause a person can act on. */
  reason: string;
  /** Set when the verdict may change by itself soon (a record being written): when to look again. */
  retryAfterMs?: number;
}

/**
 * How long an unreadable lock file is left alone: a writer of Percy's original format creates
 * the file empty and fills it a moment later.
 */
export const UNREADABLE_GRACE_MS = 1000;

// A record in the original format has no process start time; a process that began this much
// later than the record's startedAt cannot be the one that wrote it (btime has 1 s resolution).
const START_SLACK_MS = 2000;

export interface JudgeContext {
  probe: ProcessProbe;
  /** Whether this process holds a live handle or claim carrying the token. */
  ownsToken(token: string): boolean;
  graceMs?: number;
  /**
   * Set when this host's interlock for the lock is known to be free: this process has just bound
   * it, or nobody listens on it. A record whose holder held the interlock here is then stale by
   * definition. `hostLocal`: the lock stands for something of this host alone (a port), so a
   * record from another host or network namespace says nothing about it.
   */
  interlockFree?: { hostLocal: boolean };
}

const held = (certainty: Certainty, reason: string): Verdict => ({ state: 'held', certainty, reason });
const stale = (certainty: Certainty, reason: string): Verdict => ({ state: 'stale', certainty, reason });

function judgeUnreadable(file: RecordFile, { probe, graceMs = UNREADABLE_GRACE_MS }: JudgeContext): Verdict {
  const what =
    file.size === 0
      ? 'the lock file is empty'
      : file.size > MAX_RECORD_BYTES
        ? `the lock file is ${file.size} bytes, too large to be a record`
        : 'the lock file is not a readable record';
  const age = Math.round(probe.now() - file.mtimeMs);
  if (age >= -graceMs && age < graceMs) {
    return {
      state: 'unknown',
      certainty: 'likely',
      reason: `${what} and ${Math.max(age, 0)} ms old: it may still be being written`,
      retryAfterMs: graceMs - age,
    };
  }
  return stale('certain', `${what} (last written ${Math.round(age / 1000)} s ago)`);
}

/** Where a record comes from when that is not here, else undefined. */
function elsewhere(record: LockRecord, probe: ProcessProbe): string | undefined {
  if (record.hostname !== undefined && record.hostname !== probe.hostname()) return `host ${record.hostname}`;
  const netns = probe.netns?.();
  if (record.netns !== undefined && netns !== undefined && record.netns !== netns) {
    return `another network namespace (${record.netns})`;
  }
  return undefined;
}

/** Judges whether the process a record names is still the one that took the lock. */
export function judgeHolder(record: LockRecord, context: JudgeContext): Verdict {
  const { probe, ownsToken, interlockFree } = context;
  const { pid } = record;
  if (interlockFree !== undefined) {
    const where = elsewhere(record, probe);
    if (where !== undefined && interlockFree.hostLocal) {
      return stale(
        'certain',
        `it was taken in ${where}, whose port is not this one; here the port's interlock is free`,
      );
    }
    if (where === undefined && record.interlock === true) {
      return stale(
        'certain',
        `process ${pid} no longer holds the lock's interlock, which the kernel frees when it exits`,
      );
    }
  }
  if (record.hostname !== undefined && record.hostname !== probe.hostname()) {
    return {
      state: 'unknown',
      certainty: 'likely',
      reason: `it was taken on host ${record.hostname}, whose processes cannot be checked from ${probe.hostname()}`,
    };
  }
  if (pid === probe.pid) {
    return record.token !== undefined && ownsToken(record.token)
      ? held('certain', 'this process holds it')
      : stale('certain', `it names this process (pid ${pid}), which does not hold it`);
  }
  const bootId = probe.bootId();
  if (record.bootId !== undefined && bootId !== undefined && record.bootId !== bootId) {
    return stale('certain', `it was taken before the machine last booted (pid ${pid} is from an earlier boot)`);
  }
  const existence = probe.exists(pid);
  if (existence === 'gone') return stale('certain', `process ${pid} is gone`);
  const otherUser = existence === 'other-user' ? ', owned by another user' : '';
  const info = probe.info(pid);
  if (info === 'gone') return stale('certain', `process ${pid} is gone`);
  if (info === undefined) {
    return held('likely', `process ${pid} exists${otherUser}; this OS does not tell its start time`);
  }
  if (info.state === 'Z' || info.state === 'X') {
    if ((info.threads ?? 0) > 1) {
      // Its other threads still hold its files, its port among them: a moment from now it is gone.
      return {
        state: 'unknown',
        certainty: 'likely',
        reason: `process ${pid} is exiting; its threads still hold its files`,
        retryAfterMs: 5,
      };
    }
    return stale('certain', `process ${pid} has exited and awaits its parent (zombie)`);
  }
  if (info.tgid !== undefined && info.tgid !== pid) {
    return stale('certain', `${pid} is a thread of process ${info.tgid}, not the process that took the lock`);
  }
  if (record.processStart !== undefined) {
    return record.processStart === info.startTime
      ? held('certain', `process ${pid} is alive${otherUser} and is the one that took the lock`)
      : stale('certain', `pid ${pid} was reused: it now belongs to a process that started at another time`);
  }
  const bootMs = probe.bootTimeMs();
  const startedAt = Date.parse(record.startedAt);
  if (bootMs !== undefined && Number.isFinite(startedAt)) {
    const processStartMs = bootMs + (Number(info.startTime) * 1000) / probe.ticksPerSecond;
    if (processStartMs > startedAt + START_SLACK_MS) {
      return stale('likely', `pid ${pid} was reused: that process started after the lock was taken`);
    }
  }
  return held(
    'likely',
    `process ${pid} is alive${otherUser}; the record has no start time to confirm it is the same process`,
  );
}

/** Judges a lock file as found on disk. */
export function judgeRecordFile(file: RecordFile, context: JudgeContext): Verdict {
  return file.record === undefined ? judgeUnreadable(file, context) : judgeHolder(file.record, context);
}
