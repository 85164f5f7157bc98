import type { ProcessProbe } from '../identity/probe.ts';
import { ASK_TIMEOUT_MS } from '../interlock/client.ts';
import { kernelHolders } from '../interlock/holders.ts';
import { socketOf } from '../interlock/unlisted-socket-file.ts';
import type { ResolvedAcquire } from '../options/resolve.ts';
import { readRecordFileQuietly } from '../record/read-record.ts';
import type { InterlockHolder, PublicLockRecord, UnlistedSocket } from '../types.ts';
import type { Attempt } from './attempt.ts';
import { heldByAnswer, heldByAnswerOn, heldByUnlisted, type OutOfSight } from './interlock-answer.ts';
import { askUnlessOrphaned, type Heard, kernelAfterAsk } from './orphan.ts';
import { recordPathHere } from './record-path.ts';
import { claimedLockFile } from './vouched-lock-file.ts';

/** Why a try did not take the lock: the record's account, and what the interlock told of its holder. */
export type Refusal = Exclude<Attempt, { kind: 'acquired' }> & {
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
  /** A live socket at the lock's socket file that the kernel here does not list (see `LockInspection.unlistedSocket`). */
  unlisted?: UnlistedSocket;
};

/** A refusal by a taken interlock whose holder was not asked who it is. */
export const UNIDENTIFIED: Refusal = {
  kind: 'held',
  unidentified: true,
  record: undefined,
  verdict: { state: 'held', certainty: 'certain', reason: "another process holds the lock's kernel interlock" },
};

/**
 * Asks the holder of a taken interlock who it is (unless `heard` already did), for a refusal that
 * names the real holder. Held by processes that cannot answer: named from the kernel's table at
 * once, not asked.
 */
export async function heldByInterlock(
  name: string,
  options: ResolvedAcquire,
  probe: ProcessProbe,
  heard?: Heard,
): Promise<Refusal> {
  heard ??= await askHolder(name, options, probe);
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
  const judged =
    heard.kernel === undefined
      ? heldByAnswerOn(name, answer, probe, options.scope)
      : heldByAnswer(
          answer,
          probe,
          kernelAfterAsk(answer, heard.kernel, () => kernelHolders(name)),
          options.scope,
        );
  // Free to the kernel here, yet a socket file answered: held from another network namespace.
  const here = recordPathHere(options.dir, options.scope, probe);
  const held =
    judged ?? (await heldByUnlisted(name, answer, name.startsWith('/') ? readRecordFileQuietly(here) : undefined));
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
  if (held.unlisted !== undefined) {
    // No record speaks for a socket of another network namespace: the kernel's word alone.

    return {
      kind: 'held',
      viaInterlock: true,
      record: undefined,
      ...(held.holders.length > 0 && { holders: held.holders }),
      ...(held.claim && { claim: held.claim }),
      unlisted: socketOf(held.unlisted),
      verdict: held.verdict,
    };
  }
  // The record is read where no answer was believed: none came.
  const file = held.claim === undefined && !held.impostor ? readRecordFileQuietly(here) : undefined;
  const record = file?.record;
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
      claimedFile: claimedLockFile(here, held.claim),
    }),
    verdict: held.verdict,
  };
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
export async function askFirst(
  name: string,
  options: ResolvedAcquire,
  probe: ProcessProbe,
): Promise<Heard | undefined> {
  if (askedFirst || !name.startsWith('\0')) return undefined;
  askedFirst = true;
  const heard = await askHolder(name, options, probe);
  options.signal?.throwIfAborted();
  return heard.orphan === undefined && heard.asked.kind === 'free' ? undefined : heard;
}

/**
 * Whether what was heard before binding proves the name taken: only an answer, or the kernel
 * naming holders that cannot answer, does; silence may be a failed connection, which bind tells apart.
 */
export function provesTaken(heard: Heard | undefined): heard is Heard {
  return heard !== undefined && (heard.orphan !== undefined || heard.asked.kind === 'answered');
}

/** Asks who holds `name`, or learns from the kernel that none of its holders can answer. */
function askHolder(name: string, options: ResolvedAcquire, probe: ProcessProbe): Promise<Heard> {
  const recordOf = () => readRecordFileQuietly(recordPathHere(options.dir, options.scope, probe))?.record;
  const port = options.scope.kind === 'port' ? options.scope.port : undefined;
  return askUnlessOrphaned(name, () => kernelHolders(name), recordOf, port, ASK_TIMEOUT_MS, options.signal);
}
