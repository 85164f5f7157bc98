import { existsSync } from 'node:fs';
import type { Verdict } from '../identity/judge.ts';
import { nsPids, readText, systemProbe } from '../identity/probe.ts';
import type { Asked } from '../interlock/client.ts';
import {
  type KernelHolders,
  kernelHolders,
  kernelHoldersAmong,
  runsWhollyAs,
  setApartLookAlikes,
} from '../interlock/holders.ts';
import { type UnlistedSocketFile, unlistedSocketFile } from '../interlock/unlisted-socket-file.ts';
import type { LockScope } from '../options/validate.ts';
import { printable } from '../printable.ts';
import { describeHolder, holdersHold, listed } from '../record/holder-text.ts';
import { publicRecord } from '../record/record.ts';
import type { InterlockHolder, LockRecord, PublicLockRecord } from '../types.ts';
import { isHoldersLockFile } from './vouched-lock-file.ts';

/** Where a holder that /proc does not show runs (see `HeldByInterlock.outOfSight`). */
export type OutOfSight = 'pid-namespace' | 'network-namespace';

/** What the interlock says about a lock, once the kernel has been heard: undefined when nobody holds it. */
interface HeldByInterlock {
  /** `unknown` (certain): held, by a process of another pid namespace, whose pid means nothing here. */
  verdict: Verdict & { state: 'held' | 'unknown' };
  /** The holder's own answer, only where the kernel agrees with it. */
  record?: PublicLockRecord;
  /** The processes the kernel says hold the name. */
  holders: InterlockHolder[];
  /** An answer the kernel contradicts: what the process on the name claims to be. */
  claim?: PublicLockRecord;
  /** Set when a holder of a privileged port's name could not have bound that port. */
  impostor?: true;
  /** Set when the kernel says the name is held, but /proc shows this user no process that holds it (another user's). */
  hidden?: true;
  /**
   * Where a holder /proc does not show runs, where that is known: `pid-namespace` when the reader
   * is root, whom /proc hides no process of its own pid namespace; `network-namespace` when a socket
   * file answers that /proc/net/unix, which lists this network namespace's sockets alone, does not
   * show (it claims another namespace). Either way: a container, or the host; its user is not known.
   */
  outOfSight?: OutOfSight;
  /** Processes holding a look-alike of the name (shown the same way by /proc/net/unix): not holders. */
  lookAlikes?: InterlockHolder[];
  /**
   * Set when a live socket listens at the lock's socket file that /proc/net/unix here does not
   * list: what the kernel tells of it (its file's owner, its processes where they can be seen).
   */
  unlisted?: UnlistedSocketFile;
}

/** `"percy" pid 1`: what an answer claims to be. */
function claimOf(answer: PublicLockRecord): string {
  return `${answer.name === undefined ? 'a portlock holder' : JSON.stringify(answer.name)} pid ${answer.pid}`;
}

/** The lowest port a process without privileges may bind (1024 unless the host lowered it). */
function unprivilegedPortStart(): number {
  const text = readText('/proc/sys/net/ipv4/ip_unprivileged_port_start')?.trim();
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : 1024;
}

/** Holders of a privileged port's name that could not have bound the port itself. */
function impostorsOf(scope: LockScope | undefined, holders: InterlockHolder[]): InterlockHolder[] {
  if (scope?.kind !== 'port' || scope.port >= unprivilegedPortStart()) return [];
  return holders.filter((holder) => holder.canBindPrivileged === false);
}

/** The innermost pid of a process (its pid in its own pid namespace), from /proc/<pid>/status. */
function innermostPid(pid: number): number | undefined {
  const innermost = nsPids(pid)?.at(-1);
  return innermost === undefined ? undefined : Number(innermost);
}

/**
 * The process the kernel lists as holding the name that an answer is about, where the kernel
 * agrees with everything the answer says of it: the same pid (or, in another pid namespace, the
 * process that is that pid there: the innermost NSpid, in the pid namespace the answer names), the
 * same user, the same start time where the answer gives one, and a pid namespace the kernel shows.
 * Undefined when no holder agrees: the answer is then a claim.
 */
function vouchedHolder(
  answer: PublicLockRecord,
  holders: InterlockHolder[],
  pidns: string | undefined,
): InterlockHolder | undefined {
  // The pid namespace the answer's pid is in: the one it names, else (an older record) ours.
  const namespace = answer.pidns ?? pidns;
  return holders.find(
    (holder) =>
      // A pid namespace that cannot be read cannot vouch for what a pid means.
      holder.pidns !== undefined &&
      (namespace === undefined || holder.pidns === namespace) &&
      (holder.pidns === pidns ? holder.pid === answer.pid : innermostPid(holder.pid) === answer.pid) &&
      (answer.user === undefined || answer.user === holder.user) &&
      (answer.processStart === undefined || answer.processStart === holder.startTime),
  );
}

/**
 * The kernel's holders without those of look-alike names: nothing listens on the exact name when
 * the question found it free; else the socket its holder reported on the name itself is its own.
 */
function withoutLookAlikes(asked: Asked, answer: PublicLockRecord | undefined, kernel: KernelHolders): KernelHolders {
  if (asked.kind === 'free') return setApartLookAlikes(kernel, null);
  return answer?.socketInode === undefined ? kernel : setApartLookAlikes(kernel, answer.socketInode);
}

/**
 * What an answer on a lock's interlock says about the lock, judged against the kernel: the answer
 * is a claim, the kernel's table of names and processes is the proof. An answer is believed only
 * where the kernel lists its process as holding the name, with the user, start time and pid
 * namespace it claims (see {@link vouchedHolder}); one it contradicts is reported as what it
 * is; where the kernel cannot tell, no answer is believed (the caller falls back to the record,
 * at most `likely`).
 */
export function heldByAnswer(
  asked: Asked,
  probe: { pid: number; pidns?(): string | undefined; netns?(): string | undefined },
  found: KernelHolders,
  scope?: LockScope,
): HeldByInterlock | undefined {
  const answer =
    asked.kind === 'answered' && asked.reply.ok && 'record' in asked.reply ? asked.reply.record : undefined;
  const kernel = withoutLookAlikes(asked, answer, found);
  const { holders } = kernel;
  // Free to the question and to the kernel: nobody holds it. (A holder of the legacy form alone
  // may not be reachable by a question under every Node version; the kernel still sees it.)
  if (kernel.state === 'free' || (asked.kind === 'free' && kernel.state !== 'held')) return undefined;
  const lookAlikes = kernel.lookAlikes ?? [];
  const apart =
    lookAlikes.length === 0 ? '' : `; ${holdersHold(lookAlikes)} a look-alike of its name, which does not count`;
  const held = (certainty: Verdict['certainty'], reason: string, extra: Partial<HeldByInterlock> = {}) => ({
    verdict: { state: 'held' as const, certainty, reason: printable(reason + apart) },
    holders,
    ...(lookAlikes.length > 0 && { lookAlikes }),
    ...extra,
  });
  const seen = listed(holders.map(describeHolder));
  // Where it is not known which socket is the name's own, one that could bind the port may be it.
  const impostors =
    kernel.ambiguous && holders.some((holder) => holder.canBindPrivileged !== false) ? [] : impostorsOf(scope, holders);
  if (scope?.kind === 'port' && impostors.length > 0) {
    return held(
      'certain',
      `its kernel name is held by ${listed(impostors.map(describeHolder))}, which cannot bind port ${scope.port}: ${impostors.length === 1 ? 'an impostor, not a server' : 'impostors, not servers'} on that port`,
      { impostor: true },
    );
  }
  if (kernel.state === 'unseen' || holders.length === 0) {
    // The kernel says the name is held (or cannot say at all), but not by whom: an answer
    // cannot be checked, so it is not believed.
    // Root sees every process of the pid namespace its /proc shows: one it does not see runs in another.
    const elsewhere = kernel.state !== 'unseen' && process.getuid?.() === 0;
    const why =
      kernel.state === 'unseen'
        ? 'this OS does not tell which process holds it'
        : elsewhere
          ? '/proc here does not show it: it runs in another pid namespace (a container, or the host)'
          : "/proc does not show which process holds it (another user's, or hidden)";
    const hidden =
      kernel.state === 'unseen'
        ? {}
        : { hidden: true as const, ...(elsewhere && { outOfSight: 'pid-namespace' as const }) };
    const found =
      answer === undefined
        ? held('likely', `a process holds the lock's kernel interlock; ${why}`, hidden)
        : held(
            'likely',
            `a process holds the lock's kernel interlock; ${why}; it claims to be ${claimOf(answer)}, which cannot be checked from here`,
            { claim: answer, ...hidden },
          );
    // Held, but out of reach, as a holder of another pid namespace that the kernel shows: `unknown`
    // here, stopped where it runs, never from here.
    return elsewhere ? { ...found, verdict: { ...found.verdict, state: 'unknown' } } : found;
  }
  const legacy = kernel.legacy ? ' (in the unpadded form of an older portlock or Node)' : '';
  const pidns = probe.pidns?.();
  const vouched = answer === undefined ? undefined : vouchedHolder(answer, holders, pidns);
  if (answer !== undefined && vouched !== undefined) {
    // Shown as the kernel tells it: the user is the process's, whatever the answer says; and the
    // lock file it names only where the file agrees (the kernel vouches for the process, not the path).
    const { lockFile, ...rest } = answer;
    const record: PublicLockRecord = {
      ...rest,
      ...(vouched.user !== undefined && { user: vouched.user }),
      ...(lockFile !== undefined && isHoldersLockFile(lockFile, answer, vouched) && { lockFile }),
    };
    if (pidns !== undefined && vouched.pidns !== pidns) {
      // Held for sure, but by a pid that names some other process here: out of reach, never signalled.
      const reason = `process ${answer.pid} runs in another pid namespace (${vouched.pidns}) and holds the lock's kernel interlock; stop it inside that namespace`;
      return {
        verdict: { state: 'unknown', certainty: 'certain', reason: printable(reason + apart) },
        holders,
        record,
        ...(lookAlikes.length > 0 && { lookAlikes }),
      };
    }
    const reason =
      answer.pid === probe.pid
        ? 'this process holds it'
        : `process ${answer.pid} holds the lock's kernel interlock${legacy}`;
    return held('certain', reason, { record });
  }
  if (answer !== undefined) {
    return held(
      'certain',
      `held by ${seen}, which claims to be ${claimOf(answer)}: it is not a portlock holder of yours`,
      {
        claim: answer,
      },
    );
  }
  const why =
    asked.kind === 'silent'
      ? `, and ${holders.length === 1 ? 'does' : 'do'} not answer (${asked.reason})`
      : asked.kind === 'free'
        ? legacy
        : ', and refused to say who it is';
  return held('certain', `${holdersHold(holders)} the lock's kernel interlock${why}`);
}

/**
 * {@link heldByAnswer} for the interlock `name`, asking the kernel no more than it takes. Reading
 * every process's descriptors for the holders of the name is most of what a refusal costs, and the
 * answer names the one to look at: where that process holds every socket listening on the name
 * and the kernel vouches for the answer, that settles it, since the refusal then names the holder
 * from its answer alone. Every other case is judged on all of /proc, because its message names
 * every holder: no answer, an answer the kernel does not vouch for, a look-alike, and a port
 * below the unprivileged start (a holder that could not have bound it is an impostor, even one
 * the answer does not name).
 */
export function heldByAnswerOn(
  name: string,
  asked: Asked,
  probe: { pid: number; pidns?(): string | undefined; netns?(): string | undefined },
  scope?: LockScope,
): HeldByInterlock | undefined {
  const answer =
    asked.kind === 'answered' && asked.reply.ok && 'record' in asked.reply ? asked.reply.record : undefined;
  if (asked.kind === 'free' && name.startsWith('/') && !existsSync(name)) {
    // A socket file whose link was removed (a cleaner of /tmp): nothing answers at the path, yet
    // its holder still listens under the name it was bound at, and holds the lock.
    const kernel = kernelHolders(name);
    if (kernel.state === 'held' && kernel.holders.length > 0) {
      const reason = `${holdersHold(kernel.holders)} the lock's socket, though its file at ${name} was removed (a cleaner of /tmp?): it cannot be asked who it is`;
      return { verdict: { state: 'held', certainty: 'certain', reason: printable(reason) }, holders: kernel.holders };
    }
  }
  const privileged = scope?.kind === 'port' && scope.port < unprivilegedPortStart();
  const claimed = answer === undefined || privileged ? undefined : kernelHoldersAmong(name, [answer.pid]);
  if (claimed !== undefined) {
    const held = heldByAnswer(asked, probe, claimed, scope);
    const settled = held?.record !== undefined && held.verdict.state === 'held' && !held.impostor;
    if (settled && held.lookAlikes === undefined) return held;
  }
  const kernel = kernelHolders(name);
  return heldByAnswer(asked, probe, kernel, scope);
}

/**
 * Where the interlock seemed free to the kernel here, yet a lock's socket file answered (or took
 * the connection and kept silent): a socket /proc/net/unix here does not list at that path, bound
 * in another network namespace (or at another path), whatever it claims. Such a socket holds the
 * lock's file, so the lock is held; by whom, the kernel says (the file's owner, and the processes
 * holding it where /proc shows them), never its answer, which cannot be checked from here (a user
 * may make a network namespace of their own and claim any other in it). The record on file
 * (`onFile`) is believed only where the kernel shows its own process (same pid and start time,
 * run by the record file's owner) holding the socket in another network namespace: a holder in
 * a container that shares this pid namespace. Undefined where the kernel does not bear that out
 * (see {@link unlistedSocketFile}).
 */
export async function heldByUnlisted(
  name: string,
  asked: Asked,
  onFile?: { record: LockRecord | undefined; uid?: number | undefined },
): Promise<HeldByInterlock | undefined> {
  if (!name.startsWith('/') || asked.kind === 'free') return undefined;
  const answer =
    asked.kind === 'answered' && asked.reply.ok && 'record' in asked.reply ? asked.reply.record : undefined;
  const unlisted = await unlistedSocketFile(name);
  if (unlisted === undefined) return undefined;
  const { holders, user, uid, listedAs } = unlisted;
  const record = onFile?.record;
  // The record's own process: that pid (in its pid namespace, where it names another: the
  // innermost pid there), with its start time, run by the record file's owner.
  const pidns = systemProbe.pidns?.();
  const own =
    listedAs === undefined && record?.processStart !== undefined
      ? holders.find(
          (holder) =>
            holder.pidns !== undefined &&
            (record.pidns === undefined || holder.pidns === record.pidns) &&
            (holder.pidns === pidns ? holder.pid === record.pid : innermostPid(holder.pid) === record.pid) &&
            holder.startTime === record.processStart &&
            (onFile?.uid === undefined || runsWhollyAs(holder, onFile.uid)),
        )
      : undefined;
  if (record !== undefined && own !== undefined) {
    const shown = { ...publicRecord(record), ...(own.user !== undefined && { user: own.user }) };
    if (own.pidns !== pidns) {
      // Held for sure, but by a pid that names some other process here: out of reach, never signalled.
      const reason = `process ${record.pid} runs in another pid namespace (${own.pidns}) and holds the lock's socket file ${name} from another network namespace, as the kernel shows (host pid ${own.pid}); stop it inside that namespace`;
      return { verdict: { state: 'unknown', certainty: 'certain', reason: printable(reason) }, holders, record: shown };
    }
    const reason = `process ${record.pid} holds the lock's socket file ${name} from another network namespace, as the kernel shows (its own /proc/${record.pid}/net/unix and descriptors)`;
    return { verdict: { state: 'held', certainty: 'certain', reason: printable(reason) }, holders, record: shown };
  }
  const who =
    holders.length === 0
      ? `a socket of user ${user} (uid ${uid}, the file's owner)`
      : `${listed(holders.map(describeHolder))} (the file's owner is ${user}, uid ${uid})`;
  const claims = answer === undefined ? '' : `; it claims to be ${claimOf(answer)}, which cannot be checked from here`;
  const where =
    listedAs === undefined
      ? '/proc/net/unix here does not list it under this path: it was bound in another network namespace, or at another path (a bind mount, a hard link), so its answers cannot be checked'
      : `/proc/net/unix here lists it at ${listedAs}, not at this path (a hard link, a symbolic link or a bind mount on the way), so its answers cannot be checked`;
  const reason = `the lock's socket file ${name} is held by ${who}: ${where}${claims}`;
  return {
    verdict: { state: 'held', certainty: 'certain', reason: printable(reason) },
    holders,
    ...(answer !== undefined && { claim: answer }),
    ...(holders.length === 0 && { hidden: true as const }),
    ...(listedAs === undefined && { outOfSight: 'network-namespace' as const }),
    unlisted,
  };
}
