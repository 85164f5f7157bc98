import { type Asked, ask } from '../interlock/client.ts';
import {
  boundAbstractNames,
  describeProcess,
  isBound,
  type KernelHolders,
  kernelHolders,
  runsWhollyAs,
} from '../interlock/holders.ts';
import { interlockName } from '../interlock/name.ts';
import { answerable } from '../interlock/watchers.ts';
import { printable } from '../printable.ts';
import { describeHolder, listed } from '../record/holder-text.ts';
import type { InterlockHolder, LockRecord } from '../types.ts';
import { HANDOFF_ENV, parseHandoff, RUN_PID_ENV } from './handoff.ts';
import { environment } from './lineage.ts';

/**
 * A lock held through its kernel name by processes that no record of theirs names and that cannot
 * answer a question (none waits on the socket for connections): a command that outlived the
 * `portlock run` that took the lock, or a background child that inherited its descriptor. The
 * kernel's table is all there is to tell of it, and every command tells it the same way, at once.
 */
interface Orphaned {
  holders: InterlockHolder[];
  /** The one sentence every command prints: who holds it, how, and where it came from. */
  reason: string;
  /** The lock directory its giver used, where the holder's environment tells it. */
  dir?: string;
}

/** Where a process that holds a lock it did not take got it from, as far as can be learned. */
interface Origin {
  giver: string;
  pid?: number;
  exited?: boolean;
  dir?: string;
  /**
   * Set where only the holder's environment tells it, and that environment is not the reader's
   * own: any process may set its own, so it is the holder's claim, not a fact.
   */
  claimed?: true;
}

/** Whether pid `pid` is no longer the process that started before `holder` (gone, or reused since). */
function exitedBefore(pid: number, holder: InterlockHolder): boolean {
  const now = describeProcess(pid);
  if (now === undefined) return true;
  return (
    now.startTime !== undefined && holder.startTime !== undefined && BigInt(now.startTime) > BigInt(holder.startTime)
  );
}

/**
 * The origin of a holder's lock: the record of the process that took it, if it names this holder
 * as its command; else the environment the holder was started with, where `portlock run` (or
 * `portlock up`) handed the lock on. Undefined where neither tells: nothing is guessed.
 */
function originOf(
  holder: InterlockHolder,
  port: number | undefined,
  record: LockRecord | undefined,
): Origin | undefined {
  if (record !== undefined && record.pid !== holder.pid && record.commandPid !== undefined) {
    // Named as it was started: `portlock run --name percy` where it was given a name of its own.
    const giver =
      record.name === undefined || record.name === 'portlock' ? 'portlock run' : `portlock run --name ${record.name}`;
    return { giver, pid: record.pid, exited: exitedBefore(record.pid, holder) };
  }
  const env = environment(holder.pid);
  const handoff = parseHandoff(env.get(HANDOFF_ENV));
  if (handoff === undefined || (port !== undefined && handoff.port !== port)) return undefined;
  const giver = handoff.leaving ? 'portlock up' : 'portlock run';
  const pid = Number(env.get(RUN_PID_ENV));
  const named = Number.isSafeInteger(pid) && pid > 0;
  // The reader's own process was started by the reader's own; another user's environment is only
  // its own account. Not its ancestors either: an orphan is adopted by pid 1 or a subreaper, which
  // would then look like the giver it names.
  const caller = process.getuid?.();
  const claimed = caller === undefined || !runsWhollyAs(holder, caller);
  const origin: Origin = { giver, dir: handoff.dir, ...(claimed && { claimed: true as const }) };
  return named ? { ...origin, pid, exited: exitedBefore(pid, holder) } : origin;
}

/**
 * The processes holding a lock's kernel name, when they hold it orphaned (see {@link Orphaned}):
 * the kernel shows every one of them, none waits on the socket for connections nor is about to
 * (see `answerable`: it has no event loop, or it inherited the socket from `portlock run`), and no
 * record names one of them as its live holder (a holder that has just adopted the lock may not yet
 * wait on it). Undefined otherwise: then a question may be answered, and is asked.
 */
export function orphaned(
  kernel: KernelHolders | undefined,
  record: LockRecord | undefined,
  port: number | undefined,
): Orphaned | undefined {
  if (kernel === undefined || kernel.state !== 'held' || kernel.holders.length === 0 || kernel.lookAlikes) {
    return undefined;
  }
  const recorded = kernel.holders.filter(
    (holder) => record !== undefined && holder.pid === record.pid && holder.startTime === record.processStart,
  );
  // Handed the socket by `portlock run` or `up`, as the environment it was started with says.
  const inherited = (pid: number) => {
    const handoff = parseHandoff(environment(pid).get(HANDOFF_ENV));
    return handoff !== undefined && (port === undefined || handoff.port === port);
  };
  if (recorded.length > 0 || answerable(kernel, inherited) !== 'no') return undefined;
  const origins = kernel.holders.map((holder) => originOf(holder, port, record));
  const known = origins.find((origin) => origin !== undefined);
  const they = kernel.holders.length > 1;
  const giver =
    known === undefined
      ? ''
      : `${known.giver}${known.pid === undefined ? '' : `, pid ${known.pid}${known.exited ? ', which has exited' : ''}`}`;
  const origin =
    known === undefined
      ? ''
      : known.claimed
        ? ` (${they ? 'their environment says' : 'its environment says'} ${giver}${known.pid === undefined ? '' : ','} handed ${they ? 'them' : 'it'} the lock)`
        : ` (${they ? 'they' : 'it'} inherited the lock from ${giver})`;
  const file = record === undefined ? ', with no lock file' : '';
  const reason = printable(
    `held by ${listed(kernel.holders.map(describeHolder))} through the kernel interlock${file}${origin}`,
  );
  return { holders: kernel.holders, reason, ...(known?.dir !== undefined && { dir: known.dir }) };
}

/**
 * How long a question runs before the kernel is asked whether anyone can answer it. A holder
 * answers well within this as a rule, and then /proc is scanned once, after the answer, as
 * before; a question still open by then has its holders looked at in the kernel, and where none
 * can answer (see {@link orphaned}) it is abandoned at once instead of running to its timeout.
 */
const ORPHAN_LOOK_MS = 50;

/** What a question on a lock's name came to: an answer (or silence), or holders that cannot answer. */
export type Heard =
  | { asked: Asked; kernel?: KernelHolders; orphan?: undefined }
  | { orphan: Orphaned; kernel: KernelHolders };

/**
 * Asks the holder of `name` who it is, and meanwhile, once {@link ORPHAN_LOOK_MS} has passed
 * without an answer, looks in the kernel (`read`) whether any holder can answer at all: held
 * orphaned, the question is abandoned and the orphans are returned. The kernel's holders, where
 * they were read, come back too, for judging the answer by (see {@link kernelAfterAsk}). `recordOf`
 * gives the lock's record, read only then (a holder that answers at once costs no file read).
 */
export async function askUnlessOrphaned(
  name: string,
  read: () => KernelHolders,
  recordOf: () => LockRecord | undefined,
  port: number | undefined,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Heard> {
  const give = new AbortController();
  const question = ask(name, { op: 'who' }, timeoutMs, signal ? AbortSignal.any([signal, give.signal]) : give.signal);
  let timer: NodeJS.Timeout | undefined;
  const look = new Promise<'look'>((resolve) => {
    timer = setTimeout(resolve, ORPHAN_LOOK_MS, 'look');
  });
  const first = await Promise.race([question, look]);
  clearTimeout(timer);
  if (first !== 'look') return { asked: first };
  const kernel = read();
  const orphan = orphaned(kernel, recordOf(), port);
  if (orphan === undefined) return { asked: await question, kernel };
  give.abort();
  await question;
  return { orphan, kernel };
}

/**
 * The kernel's holders to judge an answer by: those read before the question, where the process
 * that answered is among them (the same pid and start time: it held the name then, and answered
 * on it since), else read again (`read`), for the name may have changed hands while it was asked.
 * One scan of /proc instead of two for the common case, a holder that answers.
 */
export function kernelAfterAsk(
  asked: Asked,
  before: KernelHolders | undefined,
  read: () => KernelHolders,
): KernelHolders {
  if (before === undefined) return read();
  const answer =
    asked.kind === 'answered' && asked.reply.ok && 'record' in asked.reply ? asked.reply.record : undefined;
  const shown =
    answer !== undefined &&
    answer.processStart !== undefined &&
    before.holders.some((holder) => holder.pid === answer.pid && holder.startTime === answer.processStart);
  return shown ? before : read();
}

/**
 * After a holder has let go of a port's lock: the processes that still hold its kernel name
 * orphaned, having inherited it (a background child of the command of `portlock run`), or
 * undefined. Cheap when the name is free: one read of the kernel's table of names.
 */
export function orphanedAfterRelease(port: number, dir: string): Orphaned | undefined {
  const name = interlockName({ kind: 'port', port }, dir);
  const bound = boundAbstractNames();
  if (name === undefined || bound === undefined || !isBound(bound, name)) return undefined;
  return orphaned(kernelHolders(name), undefined, port);
}
