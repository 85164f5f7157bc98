import { lstatSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { processExists } from '../identity/probe.ts';
import { crypto } from '../lazy-crypto.ts';
import { listenOrFail } from '../listen-or-fail.ts';
import { monotonicMs } from '../monotonic.ts';
import { MAX_TIMER_MS } from '../options/validate.ts';
import { readLines } from './lines.ts';
import { encode, PROTOCOL_VERSION, parkName, parseReply, type Reply, type Request } from './protocol.ts';

/** How long an asker waits for a holder's answer before reporting it unresponsive. */
export const ASK_TIMEOUT_MS = 1000;

/** A reply longer than this is not one: whoever sent it is not a holder worth hearing out. */
const MAX_REPLY_LENGTH = 65536;

export type Asked =
  /** Nobody holds the name, or its holder left before answering. */
  | { kind: 'free' }
  /** Someone holds it and answered. */
  | { kind: 'answered'; reply: Reply }
  /** Someone holds it and did not answer in time, or answered nonsense. */
  | { kind: 'silent'; reason: string };

/**
 * `1 s`, `0.3 s`, `50 ms`: a time limit as a person would state it. A caller that gives a question
 * what is left of a deadline passes 996 ms for a limit of 1 s; the limit is what a reader knows.
 */
function roundFigure(ms: number): string {
  return ms < 100 ? `${Math.round(ms)} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** Whether a path holds a socket or nothing (lstat: a symbolic link is not followed). */
function socketOrNothing(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Each combined deadline's timeout signal, alive for as long as the combined signal is. */
const timeoutsOf = new WeakMap<AbortSignal, AbortSignal>();

/**
 * A signal that aborts when `signal` does or `ms` has passed, whichever comes first. The time is
 * held to what a timer can wait: Node runs a longer one (Infinity too) at once.
 */
function deadlineOf(ms: number, signal: AbortSignal | undefined): { deadline: AbortSignal; until: AbortSignal } {
  const deadline = AbortSignal.timeout(Math.max(0, Math.ceil(Math.min(ms, MAX_TIMER_MS))));
  if (signal === undefined) return { deadline, until: deadline };
  const until = AbortSignal.any([signal, deadline]);
  // AbortSignal.any holds its sources weakly, and a timeout signal that nothing else holds is
  // collected with its timer before it fires (nodejs/node#57736): the combined signal keeps it.
  timeoutsOf.set(until, deadline);
  return { deadline, until };
}

/**
 * Sends one request to whoever holds `name` and waits for the reply, for at most `timeoutMs`. An
 * aborted `signal` stops the waiting at once (the answer is then `silent`; the caller looks at its
 * signal).
 */
export function ask(name: string, request: Request, timeoutMs = ASK_TIMEOUT_MS, signal?: AbortSignal): Promise<Asked> {
  const { deadline, until } = deadlineOf(timeoutMs, signal);
  return new Promise((resolve) => {
    let socket: Socket | undefined;
    let retry: NodeJS.Timeout | undefined;
    let backlogPause = 1;
    let done = false;
    // The caller's signal first: a question given up as its time runs out is the caller's doing.
    const onAbort = () =>
      finish(
        signal?.aborted || !deadline.aborted
          ? { kind: 'silent', reason: 'the question was abandoned' }
          : { kind: 'silent', reason: `it did not answer within ${roundFigure(timeoutMs)}` },
      );
    const finish = (result: Asked) => {
      if (done) return;
      done = true;
      clearTimeout(retry);
      until.removeEventListener('abort', onAbort);
      socket?.destroy();
      resolve(result);
    };
    const attempt = () => {
      // A socket file's path holding a link or a file is no holder's: never connected through.
      if (name.startsWith('/') && !socketOrNothing(name)) return finish({ kind: 'free' });
      let connected = false;
      // The socket ends with the question: `until` aborting destroys it.
      const current = connect({ path: name, signal: until });
      socket = current;
      current.on('connect', () => {
        connected = true;
        current.write(encode({ v: PROTOCOL_VERSION, ...request }));
      });
      readLines(current, MAX_REPLY_LENGTH, (line) => {
        const reply = line === undefined ? undefined : parseReply(line);
        finish(
          reply === undefined
            ? { kind: 'silent', reason: 'its answer was not understood' }
            : { kind: 'answered', reply },
        );
        return false;
      });
      current.on('error', (error: NodeJS.ErrnoException) => {
        if (!connected && (error.code === 'ECONNREFUSED' || error.code === 'ENOENT')) finish({ kind: 'free' });
        else if (!connected && error.code === 'EAGAIN' && !done) {
          // The holder's backlog is full for a moment (a crowd of askers): knock again shortly.
          current.removeAllListeners('close');
          retry = setTimeout(attempt, backlogPause);
          backlogPause = Math.min(backlogPause * 2, 50);
        } else finish({ kind: 'silent', reason: `the connection failed (${error.code ?? error.message})` });
      });
      current.on('close', () => finish({ kind: 'silent', reason: 'it closed the connection without an answer' }));
    };
    if (until.aborted) onAbort();
    else {
      until.addEventListener('abort', onAbort, { once: true });
      attempt();
    }
  });
}

/**
 * Whether someone listens on `name`: connects and hangs up at once, asking nothing, which costs
 * both ends a small fraction of what a question does (no request, no record, no JSON). Refused or
 * absent: no; connected, or anything else (a full backlog, no answer within
 * {@link ASK_TIMEOUT_MS}): yes.
 */
function listening(name: string): Promise<boolean> {
  // A socket file's path holding a link or a file is no holder's: never connected through.
  if (name.startsWith('/') && !socketOrNothing(name)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect({ path: name });
    const done = (held: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(held);
    };
    const timer = setTimeout(() => done(true), ASK_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'),
    );
  });
}

/** A waiter the holder turned away (its queue is full) tries again after this, doubling... */
const BUSY_RETRY_MIN_MS = 20;
/** ...up to this: a full queue costs a waiter a connection a second, not a busy loop. */
const BUSY_RETRY_MAX_MS = 1000;
/**
 * After a release, a waiter with `n` ahead of it first looks for the successor `n` times this
 * late, so that the looks come in queue order and mostly find the successor bound.
 */
const LOOK_STEP_MS = 2;
/**
 * A waiter finding the name free takes it once the waiter that was just ahead of it has had its
 * turn (it held the lock, or its process is gone), and in any case `n` times this long after the
 * release: the one ahead may have given up, or live on in a process that no longer waits.
 */
export const TURN_STEP_MS = 250;

/**
 * How long a waiter stays at the park of the one ahead before asking the holder again: all that
 * one ahead can cost it by neither going nor leaving (stopped, or no portlock waiter at all).
 */
export const PARK_RECHECK_MS = 5000;
/** Waiters a park keeps at most: one, as a rule, or a few that queued in the same moment. */
const MAX_FOLLOWERS = 128;

/**
 * A waiter's park (Linux): an abstract socket of its own, on which the waiter just behind it waits,
 * connected and asleep, until this one has had its turn. Closed once this waiter holds the lock or
 * gives up, and by the kernel when it dies; either way the one behind wakes and asks the holder
 * again. Nothing is said on it: its closing is the whole message.
 */
export class Park {
  readonly id: string;
  readonly #server: Server;
  readonly #followers: Set<Socket>;

  private constructor(id: string, server: Server, followers: Set<Socket>) {
    this.id = id;
    this.#server = server;
    this.#followers = followers;
  }

  /** Binds a new park; undefined where there are no abstract names, or the bind fails. */
  static async open(): Promise<Park | undefined> {
    if (process.platform !== 'linux') return undefined;
    const id = `${process.pid}-${crypto().randomBytes(16).toString('hex')}`;
    const followers = new Set<Socket>();
    const server = createServer({ allowHalfOpen: false });
    server.on('connection', (socket) => {
      socket.unref();
      socket.on('error', () => socket.destroy());
      // A follower says nothing; anything said, or a crowd, is not a follower.
      if (followers.size >= MAX_FOLLOWERS) {
        socket.destroy();
        return;
      }
      followers.add(socket);
      socket.on('close', () => followers.delete(socket));
      socket.on('data', () => socket.destroy());
    });
    try {
      await listenOrFail(server, { path: parkName(id), exclusive: true });
    } catch {
      return undefined;
    }
    server.on('error', () => {});
    // The park must not keep its waiter's process alive.
    server.unref();
    return new Park(id, server, followers);
  }

  /** Lets the waiters behind go: the kernel ends their connections. */
  close(): void {
    this.#server.close();
    for (const socket of this.#followers) socket.destroy();
    this.#followers.clear();
  }
}

type Heard =
  /** Nobody holds the name, or its holder left before answering. */
  | { kind: 'free' }
  /** The holder released or died; what it last said of this waiter's place. */
  | { kind: 'released'; ahead: number; after: number | undefined; holder: number | undefined }
  /** Told to wait at the park of the one ahead. */
  | { kind: 'park'; behind: string }
  /** The holder's queue is full, or its backlog is. */
  | { kind: 'busy' }
  /** The holder does not queue waiters (or is not a portlock holder): look by other means. */
  | { kind: 'poll' }
  | { kind: 'timeout' };

/**
 * One `wait` on the holder of `name`: resolves when the connection ends, saying what the waiter
 * was last told. `signal` aborts it (`timeout`).
 */
function waitOnce(
  name: string,
  since: number,
  signal: AbortSignal,
  park: Park | undefined,
  avoid: string | undefined,
): Promise<Heard> {
  return new Promise((resolve) => {
    // A holder that closes before answering has just released: as good as a free name.
    let heard: Heard = { kind: 'free' };
    let connected = false;
    let done = false;
    const socket = connect({ path: name, allowHalfOpen: true });
    const finish = () => {
      if (done) return;
      done = true;
      resolve(heard);
      // Tidied a turn later: after a release, the waiter binds the name first. Ending a socket
      // and dropping a listener run code a waiter has not run before (about 0.4 ms in all, cold),
      // and meanwhile the lock stands free to nobody.
      setImmediate(() => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
      });
    };
    const onAbort = () => {
      heard = { kind: 'timeout' };
      finish();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => {
      connected = true;
      socket.write(encode({ v: PROTOCOL_VERSION, op: 'wait', since, pid: process.pid, park: park?.id }));
    });
    readLines(socket, MAX_REPLY_LENGTH, (line) => {
      const reply = line === undefined ? undefined : parseReply(line);
      if (reply?.ok && 'waiting' in reply && park !== undefined && shouldPark(reply, park.id, avoid)) {
        heard = { kind: 'park', behind: reply.behind };
        finish();
        return false;
      }
      if (reply?.ok && 'waiting' in reply) {
        // A holder that keeps no queue says nothing of places: its waiters all go at once.
        heard = { kind: 'released', ahead: reply.ahead ?? 0, after: reply.after, holder: reply.holder };
        return true;
      }
      heard = !reply?.ok && reply?.error.code === 'EBUSY' ? { kind: 'busy' } : { kind: 'poll' };
      finish();
      return false;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The holder's backlog is full: as good as a full queue.
      if (!connected && error.code === 'EAGAIN') heard = { kind: 'busy' };
      // No socket file at the path: its holder may still listen, its link removed (see
      // socket-file.ts); the caller binds again after a pause rather than at once.
      else if (!connected && error.code === 'ENOENT' && name.startsWith('/')) heard = { kind: 'poll' };
      // Refused: nobody holds the name; anything else, it is gone too (the default).
      finish();
    });
    // The holder's end, as soon as it is read (its close comes a turn of the event loop later).
    socket.on('end', finish);
    socket.on('close', finish);
  });
}

/** Whether a place told by a holder sends this waiter to the park of the one ahead of it. */
function shouldPark(
  place: Extract<Reply, { waiting: true }>,
  own: string,
  avoid: string | undefined,
): place is typeof place & { behind: string } {
  const { ahead = 0, behind } = place;
  return ahead > 0 && behind !== undefined && behind !== own && behind !== avoid;
}

/**
 * Waits at the park `id`: `ended` when it closes or refuses (the one ahead has had its turn, or is
 * gone), `free` when, looking every {@link PARK_RECHECK_MS}, `stillHeld` finds the lock free while
 * the park stands, and again {@link TURN_STEP_MS} later; `timeout` when `signal` aborts. The
 * connection to the park stays open while looking: a waiter that looks wakes neither the one ahead
 * nor those behind it. Exported for its test.
 */
export function parkBehind(
  id: string,
  signal: AbortSignal,
  stillHeld: () => Promise<boolean>,
): Promise<'ended' | 'free' | 'timeout'> {
  if (signal.aborted) return Promise.resolve('timeout');
  return new Promise((resolve) => {
    const socket = connect({ path: parkName(id) });
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (how: 'ended' | 'free' | 'timeout') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(how);
    };
    const onAbort = () => finish('timeout');
    // Free at one look may be the moment between two holders, when the lock is free by design: a
    // waiter that left its park then would rejoin the queue at its head, behind the next holder's
    // park, and be woken at every hand-over after. Free at a second look a turn's time later, the
    // one ahead has had its turn and not taken it.
    let freeOnce = false;
    const look = (ms: number) => {
      timer = setTimeout(async () => {
        const held = await stillHeld();
        if (done) return;
        if (held || !freeOnce) {
          freeOnce = !held;
          look(held ? PARK_RECHECK_MS : TURN_STEP_MS);
        } else finish('free');
      }, ms);
    };
    look(PARK_RECHECK_MS);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('data', () => finish('ended'));
    socket.on('error', () => finish('ended'));
    // The park's end, as soon as it is read (its close comes a turn of the event loop later).
    socket.on('end', () => finish('ended'));
    socket.on('close', () => finish('ended'));
  });
}

/** Sleeps; false when `signal` aborted first. */
async function pauseUnless(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(Math.max(0, ms), undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves when the holder of `name` releases it or dies and it is this waiter's turn: `released`,
 * or also when nobody holds the name any more. Waiters are served in the order of `since` (when
 * each started waiting, in ms since the epoch): the holder keeps them in that order and tells each
 * its place. With a `park` (see {@link Park}), a waiter with others ahead of it waits at the park of
 * the one just ahead instead of on the holder, so that a release wakes only the head; when that
 * park closes it asks the holder again, and is the head by then as a rule. Every
 * {@link PARK_RECHECK_MS} at a park it looks whether the name is free: if it is, and still is
 * {@link TURN_STEP_MS} later, the one ahead has had its turn, and this one goes. A waiter still on
 * the holder when it releases (no park) goes at once if it is the head; each other looks a few ms
 * later by its place, queueing again
 * with the successor, and takes a name it finds free only once the waiter that was ahead of it has
 * had its turn (see `TURN_STEP_MS`). One turned away from a full queue tries again with an
 * exponential back-off up to a second. Resolves `poll` when waiting this way is not possible (the
 * holder does not support it), so the caller looks again after a pause; and `timeout` when
 * `timeoutMs` passes or `signal` aborts. Whatever a park or a holder says, the lock is taken only
 * by binding its name.
 */
export async function waitForRelease(
  name: string,
  timeoutMs: number,
  signal?: AbortSignal,
  since: number = Date.now(),
  park?: Park,
): Promise<'released' | 'poll' | 'timeout'> {
  if (signal?.aborted) return 'timeout';
  const { until } = deadlineOf(timeoutMs, signal);
  // The waiter that was just ahead of this one at the last release, until it has had its turn;
  // and when this one goes regardless.
  let before: number | undefined;
  let turnAt = 0;
  let lookPause = LOOK_STEP_MS;
  let busyPause = BUSY_RETRY_MIN_MS;
  // A park that ended is not gone to again: the holder may still keep the place of one that left.
  let ended: string | undefined;
  for (;;) {
    const heard = await waitOnce(name, since, until, park, ended);
    switch (heard.kind) {
      case 'park': {
        // Long at the park: while someone holds the lock, the queue moves, or will; only a free
        // name means the one ahead may be stuck.
        const how = await parkBehind(heard.behind, until, () => listening(name));
        if (how === 'timeout') return 'timeout';
        // Ended: the one ahead has had its turn (its park closes only once it has), or is gone.
        // Free for a turn's time while the one ahead still waits: it is stuck, or no waiter.
        if (how === 'ended') ended = heard.behind;
        before = undefined;
        continue;
      }
      case 'released': {
        const now = monotonicMs();
        // The one this waiter let go first has had its turn: it was the holder that released.
        if (before !== undefined && heard.holder === before) before = undefined;
        if (heard.ahead > 0) {
          before = heard.after;
          turnAt = now + heard.ahead * TURN_STEP_MS;
        }
        // Told it is first by a holder that has not seen everyone: the one it was behind at an
        // earlier release, if still waiting to come, still goes first.
        if (before === undefined || now >= turnAt) return 'released';
        lookPause = LOOK_STEP_MS;
        busyPause = BUSY_RETRY_MIN_MS;
        if (!(await pauseUnless(Math.max(1, heard.ahead) * LOOK_STEP_MS, until))) return 'timeout';
        continue;
      }
      case 'free': {
        const wait = turnAt - monotonicMs();
        if (before === undefined || wait <= 0 || processExists(before) === 'gone') return 'released';
        // Free, but the one ahead has not had its turn: look again, a little later each time.
        if (!(await pauseUnless(Math.min(lookPause, wait), until))) return 'timeout';
        lookPause = Math.min(lookPause * 2, 16);
        continue;
      }
      case 'busy':
        before = undefined;
        if (!(await pauseUnless(busyPause, until))) return 'timeout';
        busyPause = Math.min(busyPause * 2, BUSY_RETRY_MAX_MS);
        continue;
      case 'poll':
      case 'timeout':
        return heard.kind;
    }
  }
}
