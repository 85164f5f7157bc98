import { recordedKind } from '../interlock/flavour.ts';
import type { RecordFile } from '../record/read-record.ts';
import { MAX_RECORD_BYTES } from '../record/record.ts';
import { duration, impossibleTime } from '../record/started-at.ts';
import type { Certainty, InterlockKind, LockRecord } from '../types.ts';
import type { ProcessInfo, ProcessProbe } from './probe.ts';
import { userName } from './users.ts';

/** What a lock file says about its holder, judged against the process table. */
export interface Verdict {
  state: 'held' | 'stale' | 'unknown';
  certainty: Certainty;
  /** Why, in one clause a person can act on. */
  reason: string;
  /** Set when the verdict may change by itself soon (a record being written): when to look again. */
  retryAfterMs?: number;
  /** Set when the record names a live process of another user than its file's owner: the user it runs as. */
  notOwners?: string;
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
  interlockFree?: { hostLocal: boolean; kind?: InterlockKind | undefined };
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
  return stale('certain', `${what} (last written ${duration(age)} ago)`);
}

/** Where a record comes from when that is not here, else undefined. */
function elsewhere(record: LockRecord, probe: ProcessProbe): string | undefined {
  if (record.hostname !== undefined && record.hostname !== probe.hostname()) return `on host ${record.hostname}`;
  const netns = probe.netns?.();
  if (record.netns !== undefined && netns !== undefined && record.netns !== netns) {
    return `in another network namespace (${record.netns})`;
  }
  return undefined;
}

/**
 * The record's pid namespace when it is known to differ from this process's: its pid then names
 * nothing here (a container's pid 7 is some unrelated host process), and is never probed.
 */
function otherPidNamespace(record: LockRecord, probe: ProcessProbe): string | undefined {
  const pidns = probe.pidns?.();
  return record.pidns !== undefined && pidns !== undefined && record.pidns !== pidns ? record.pidns : undefined;
}

/**
 * The record's network namespace when it is another one of this kernel and boot: the host's seen
 * from a container sharing the lock directory, or a container's seen from the host. Its holder's
 * kernel names, and its port, are that namespace's: nothing free here says it is gone, and a lock
 * file of its port is not this one's to replace (see `networkLockFileName`). Undefined otherwise.
 */
export function otherNetworkHere(record: LockRecord, probe: ProcessProbe): string | undefined {
  const bootId = probe.bootId();
  const netns = probe.netns?.();
  return bootId !== undefined &&
    record.bootId === bootId &&
    netns !== undefined &&
    record.netns !== undefined &&
    record.netns !== netns
    ? record.netns
    : undefined;
}

/**
 * Whether the record was written on this kernel, this boot, in this network namespace: then its
 * holder's kernel names (interlock, presence) are the ones this process sees, whatever hostname a
 * UTS namespace gave it.
 */
function sameKernelAndNetwork(record: LockRecord, probe: ProcessProbe): boolean {
  const bootId = probe.bootId();
  const netns = probe.netns?.();
  return bootId !== undefined && record.bootId === bootId && netns !== undefined && record.netns === netns;
}

/** A record naming this process's pid, judged by this process's own knowledge. */
function judgeOwnPid(record: LockRecord, context: JudgeContext): Verdict {
  const { probe, ownsToken } = context;
  const { pid } = record;
  if (record.token !== undefined && ownsToken(record.token)) return held('certain', 'this process holds it');
  const ownStart = probe.ownStartTime();
  const earlier = record.processStart !== undefined && ownStart !== undefined && record.processStart !== ownStart;
  if (!earlier && record.thread !== undefined && record.thread !== probe.threadId && record.presence === undefined) {
    // Another thread's record, with no presence name to tell whether that thread still runs
    // (no abstract names on this OS): it may, so it holds the lock until this process exits.
    return held(
      'likely',
      `thread ${record.thread} of this process (pid ${pid}) took it; this OS cannot tell whether that thread has ended`,
    );
  }
  return stale('certain', `it names this process (pid ${pid}), which does not hold it`);
}

/**
 * A record with a presence name, of this kernel and network namespace: the kernel says whether
 * its holder (thread) is alive. Undefined when that does not decide.
 */
function judgePresence(
  record: LockRecord,
  context: JudgeContext,
  pidns: string | undefined,
  owner: number | undefined,
): Verdict | undefined {
  const { probe, ownsToken } = context;
  const { pid, presence } = record;
  if (presence === undefined || !sameKernelAndNetwork(record, probe)) return undefined;
  // Anyone may bind a name: it proves the holder alive only if held by a process of the record's
  // owner, in the record's pid namespace (its pid is looked at first where it means something here).
  const bound = probe.presenceBound?.(presence, {
    uid: owner,
    pidns: record.pidns,
    ...(pidns === undefined && { pid }),
  });
  if (bound === undefined) return undefined;
  const where = pidns === undefined ? '' : ` in another pid namespace (${pidns})`;
  if (!bound) {
    return stale('certain', `process ${pid}${where} is gone: the kernel has freed the name it holds while alive`);
  }
  if (pidns !== undefined) {
    // Alive, but its pid means nothing here: it is stopped where it runs, never signalled from here.
    return {
      state: 'unknown',
      certainty: 'certain',
      reason: `process ${pid} runs in another pid namespace (${pidns}) and is alive there (it still holds its kernel name); stop it inside that namespace`,
    };
  }
  if (pid === probe.pid && !(record.token !== undefined && ownsToken(record.token))) {
    const thread = record.thread === undefined ? 'another thread' : `thread ${record.thread}`;
    return held('certain', `${thread} of this process (pid ${pid}) holds it`);
  }
  return undefined;
}

/**
 * Judges whether the process a record names is still the one that took the lock. `owner`: the
 * record file's owner, the user whose processes it may vouch for. The kernel's word first (the
 * interlock, the presence name), then where the record comes from, then the process its pid names.
 */
export function judgeHolder(record: LockRecord, context: JudgeContext, writtenMs?: number, owner?: number): Verdict {
  const { probe } = context;
  const pidns = otherPidNamespace(record, probe);
  return (
    judgeByInterlock(record, context, pidns) ??
    judgePresence(record, context, pidns, owner) ??
    judgeOtherHost(record, probe) ??
    (pidns !== undefined
      ? judgeInPidNamespace(record, probe, pidns)
      : record.pid === probe.pid
        ? judgeOwnPid(record, context)
        : judgeProcess(record, probe, writtenMs, owner))
  );
}

/** Whether the record was written before this machine last booted. */
function fromEarlierBoot(record: LockRecord, probe: ProcessProbe): boolean {
  const bootId = probe.bootId();
  return record.bootId !== undefined && bootId !== undefined && record.bootId !== bootId;
}

/** What a free interlock says of the record, where the caller knows it to be free; else undefined. */
function judgeByInterlock(record: LockRecord, context: JudgeContext, pidns: string | undefined): Verdict | undefined {
  const { probe, interlockFree } = context;
  const { pid } = record;
  if (interlockFree === undefined) return undefined;
  // Only the kind of interlock the holder held proves anything by being free: a holder of a
  // socket file is not gone because the abstract name is free, nor the other way round.
  const heldThis = record.interlock === true && (interlockFree.kind ?? recordedKind(record)) === recordedKind(record);
  // The kernel frees the interlock when its holder dies: on this kernel and network namespace, a
  // free interlock is proof, whatever hostname (UTS namespace) or pid namespace the holder had.
  if (heldThis && sameKernelAndNetwork(record, probe)) {
    const where = pidns === undefined ? '' : ` (in another pid namespace, ${pidns})`;
    return stale(
      'certain',
      `process ${pid}${where} no longer holds the lock's interlock, which the kernel frees when it exits`,
    );
  }
  const where = elsewhere(record, probe);
  // Another network namespace of this kernel (a container sharing the lock directory) is alive or
  // not whatever is free here: its record is judged by its holder's identity, and never replaced
  // for being of another namespace (the acquirer keeps its own record beside it, see attempt.ts).
  if (where !== undefined && interlockFree.hostLocal && otherNetworkHere(record, probe) === undefined) {
    return stale('certain', `it was taken ${where}, whose port is not this one; here the port's interlock is free`);
  }
  if (where === undefined && heldThis) {
    return stale(
      'certain',
      `process ${pid} no longer holds the lock's interlock, which the kernel frees when it exits`,
    );
  }
  return undefined;
}

/**
 * A record from another host: its processes cannot be checked from here. Not one of another
 * network namespace of this kernel and boot: that is a container of this machine, whatever
 * hostname its UTS namespace gave it, and its holder is judged by its pid namespace.
 */
function judgeOtherHost(record: LockRecord, probe: ProcessProbe): Verdict | undefined {
  if (record.hostname === undefined || record.hostname === probe.hostname()) return undefined;
  if (otherNetworkHere(record, probe) !== undefined) return undefined;
  return {
    state: 'unknown',
    certainty: 'likely',
    reason: `it was taken on host ${record.hostname}, whose processes cannot be checked from ${probe.hostname()}`,
  };
}

/** A record of another pid namespace: its pid is looked up there, where the OS can, never here. */
function judgeInPidNamespace(record: LockRecord, probe: ProcessProbe, pidns: string): Verdict {
  const { pid } = record;
  if (fromEarlierBoot(record, probe)) {
    return stale('certain', `it was taken before the machine last booted, in another pid namespace`);
  }
  const there = probe.inPidNamespace?.(pidns, pid);
  const inside = `process ${pid} of another pid namespace (${pidns})`;
  if (there === 'gone') return stale('certain', `${inside} is gone`);
  if (there !== undefined && record.processStart !== undefined) {
    if (there.state === 'Z' || there.state === 'X' || there.startTime !== record.processStart) {
      return stale('certain', `${inside} has exited (its pid now names another process, or a zombie)`);
    }
    // Alive; but its pid means nothing here: it is stopped where it runs, never signalled from here.
    return {
      state: 'unknown',
      certainty: 'certain',
      reason: `process ${pid} runs in another pid namespace (${pidns}) and is alive there; stop it inside that namespace`,
    };
  }
  return {
    state: 'unknown',
    certainty: 'likely',
    reason: `process ${pid} runs in another pid namespace (${pidns}), whose processes cannot be checked from here`,
  };
}

/**
 * A record of this host naming another process: is that pid still the process that took the lock?
 * A record vouches only for processes of its file's owner (`owner`), for each process writes its
 * own: one naming a live process of another user, which its owner could not have been, is a claim
 * that is not believed (see {@link notOwnersProcess}).
 */
function judgeProcess(
  record: LockRecord,
  probe: ProcessProbe,
  writtenMs: number | undefined,
  owner: number | undefined,
): Verdict {
  const verdict = judgeNamedProcess(record, probe, writtenMs);
  return verdict.state === 'stale' ? verdict : (notOwnersProcess(record, probe, owner) ?? verdict);
}

/**
 * Where the live process a record names runs as another user than the record file's owner (Linux,
 * by its effective uid): `unknown`, certain. Its owner's holder would be a process of its own, so
 * the record does not speak for this one: neither held (nothing vouches for it, and it is never
 * signalled) nor stale (a holder that changed its user since may still hold the lock, and a record
 * its owner wrote is its owner's to remove). Undefined where the users agree or cannot be told.
 */
function notOwnersProcess(record: LockRecord, probe: ProcessProbe, owner: number | undefined): Verdict | undefined {
  if (owner === undefined) return undefined;
  const info = probe.info(record.pid);
  if (info === 'gone' || info?.uid === undefined || info.uid === owner) return undefined;
  const user = userName(info.uid);
  const runs = withUid(user, info.uid);
  const writer = withUid(userName(owner), owner);
  return {
    state: 'unknown',
    certainty: 'certain',
    notOwners: user,
    reason: `the record claims process ${record.pid}, which runs as ${runs}, not as ${writer}, who owns the lock file: a record speaks only for its owner's processes, so it cannot speak for this one`,
  };
}

/** `root (uid 0)`, or `uid 1234` alone where the user has no name. */
const withUid = (user: string, uid: number): string => (user.startsWith('uid ') ? user : `${user} (uid ${uid})`);

function judgeNamedProcess(record: LockRecord, probe: ProcessProbe, writtenMs: number | undefined): Verdict {
  const { pid } = record;
  if (fromEarlierBoot(record, probe)) {
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
  return judgeByStartedAt(record, probe, info, otherUser, writtenMs);
}

/** A record without a start time (Percy's original format): the process's start against the record's times. */
function judgeByStartedAt(
  record: LockRecord,
  probe: ProcessProbe,
  info: ProcessInfo,
  otherUser: string,
  writtenMs: number | undefined,
): Verdict {
  const { pid } = record;
  const bootMs = probe.bootTimeMs();
  const processStartMs =
    info.startedAtMs ??
    (bootMs === undefined ? undefined : bootMs + (Number(info.startTime) * 1000) / probe.ticksPerSecond);
  const impossible = impossibleTime(record.startedAt, probe.now());
  if (impossible !== undefined) {
    // A time that cannot be true vouches for nothing. The file's own mtime is the kernel's word for
    // when the record was last written: a process that started after that did not write it.
    if (processStartMs !== undefined && writtenMs !== undefined && processStartMs > writtenMs + START_SLACK_MS) {
      return stale('likely', `pid ${pid} was reused: that process started after the lock file was last written`);
    }
    // Unknown rather than held: nothing vouches for this process, so nothing may signal it.
    return {
      state: 'unknown',
      certainty: 'likely',
      reason: `process ${pid} is alive${otherUser}, but ${impossible}, so nothing confirms it is the process that took the lock (if it is not, remove the lock file)`,
    };
  }
  const startedAt = Date.parse(record.startedAt);
  if (processStartMs !== undefined && processStartMs > startedAt + START_SLACK_MS) {
    return stale('likely', `pid ${pid} was reused: that process started after the lock was taken`);
  }
  return held(
    'likely',
    `process ${pid} is alive${otherUser}; the record has no start time to confirm it is the same process`,
  );
}

/** Judges a lock file as found on disk. */
export function judgeRecordFile(file: RecordFile, context: JudgeContext): Verdict {
  return file.record === undefined
    ? judgeUnreadable(file, context)
    : judgeHolder(file.record, context, file.mtimeMs, file.uid);
}
