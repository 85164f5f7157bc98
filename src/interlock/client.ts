import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { encode, PROTOCOL_VERSION, parseReply, type Reply, type Request } from './protocol.ts';

/** How long an asker waits for a holder's answer before reporting it unresponsive. */
export const ASK_TIMEOUT_MS = 1000;

export type Asked =
  /** Nobody holds the name. */
  | { kind: 'free' }
  /** Someone holds it and answered. */
  | { kind: 'answered'; reply: Reply }
  /** Someone holds it and did not answer in time, or answered nonsense. */
  | { kind: 'silent'; reason: string };

/**
 * Sends one request to whoever holds `name` and waits for the reply. An aborted `signal` stops the
 * waiting at once (the answer is then `silent`; the caller looks at its signal).
 */
export function ask(name: string, request: Request, timeoutMs = ASK_TIMEOUT_MS, signal?: AbortSignal): Promise<Asked> {
  return new Promise((resolve) => {
    let socket: Socket | undefined;
    let retry: NodeJS.Timeout | undefined;
    let backlogPause = 1;
    let done = false;
    const onAbort = () => finish({ kind: 'silent', reason: 'the question was abandoned' });
    const finish = (result: Asked) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(retry);
      signal?.removeEventListener('abort', onAbort);
      socket?.destroy();
      resolve(result);
    };
    const attempt = () => {
      let connected = false;
      let buffered = '';
      const current = connect({ path: name });
      socket = current;
      current.on('connect', () => {
        connected = true;
        current.write(encode({ v: PROTOCOL_VERSION, ...request }));
      });
      current.on('data', (chunk) => {
        buffered += chunk.toString('utf8');
        const end = buffered.indexOf('\n');
        if (end < 0 && buffered.length < 65536) return;
        const reply = parseReply(buffered.slice(0, end < 0 ? undefined : end));
        finish(
          reply === undefined
            ? { kind: 'silent', reason: 'its answer was not understood' }
            : { kind: 'answered', reply },
        );
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
    const timer = setTimeout(
      () => finish({ kind: 'silent', reason: `it did not answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    if (signal?.aborted) onAbort();
    else {
      signal?.addEventListener('abort', onAbort, { once: true });
      attempt();
    }
  });
}

/** Node fires a timer set beyond this at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A waiter the holder turned away (its queue is full) tries again after this, doubling... */
const BUSY_RETRY_MIN_MS = 20;
/** ...up to this: a full queue costs a waiter a connection a second, not a busy loop. */
export const BUSY_RETRY_MAX_MS = 1000;
/** A waiter behind the head gives the head this long to wake and bind before it looks again... */
const BEHIND_FIRST_LOOK_MS = 4;
/** ...and this long in all before it takes a name still free for a sign that the head is gone. */
export const HANDOVER_GRACE_MS = 250;

type Heard =
  /** Nobody holds the name. */
  | 'free'
  /** The holder released or died while this waiter was at the head of its queue. */
  | 'first'
  /** The holder released or died while others were ahead in its queue. */
  | 'behind'
  /** The holder's queue is full, or its backlog is. */
  | 'busy'
  /** The holder does not queue waiters (or is not a portlock holder): look by other means. */
  | 'poll'
  | 'timeout';

/**
 * One `wait` on the holder of `name`: resolves when the connection ends, saying what the waiter
 * was last told. `signal` aborts it (`timeout`).
 */
function waitOnce(name: string, since: number, signal: AbortSignal): Promise<Heard> {
  return new Promise((resolve) => {
    let heard: Heard = 'poll';
    let connected = false;
    let buffered = '';
    const socket = connect({ path: name });
    const finish = () => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(heard);
    };
    const onAbort = () => {
      heard = 'timeout';
      finish();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => {
      connected = true;
      socket.write(encode({ v: PROTOCOL_VERSION, op: 'wait', since }));
    });
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const reply = parseReply(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
        if (reply?.ok && 'waiting' in reply) {
          // A holder that does not keep a queue says nothing of it: its waiters all go at once.
          heard = reply.first === false ? 'behind' : 'first';
        } else {
          heard = !reply?.ok && reply?.error.code === 'EBUSY' ? 'busy' : 'poll';
          finish();
          return;
        }
      }
      if (buffered.length > 65536) finish();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ECONNREFUSED' || error.code === 'ENOENT')) heard = 'free';
      // The holder's backlog is full: as good as a full queue.
      else if (!connected && error.code === 'EAGAIN') heard = 'busy';
      finish();
    });
    socket.on('close', finish);
  });
}

/** Sleeps; false when `signal` aborted first. */
async function pauseUnless(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves when the holder of `name` releases it or dies and this waiter is next: `released`, or
 * also when nobody holds the name any more. Waiters are served in the order of `since` (when each
 * started waiting, in ms since the epoch): one woken behind others queues again with the next
 * holder, and takes a free name only after giving the head `HANDOVER_GRACE_MS` to take it. One
 * turned away from a full queue tries again with an exponential back-off up to a second. Resolves
 * `poll` when waiting this way is not possible (the holder does not support it), so the caller
 * looks again after a pause; and `timeout` when `timeoutMs` passes or `signal` aborts.
 */
export async function waitForRelease(
  name: string,
  timeoutMs: number,
  signal?: AbortSignal,
  since: number = Date.now(),
): Promise<'released' | 'poll' | 'timeout'> {
  if (signal?.aborted) return 'timeout';
  const deadline = AbortSignal.timeout(Math.max(0, Math.ceil(Math.min(timeoutMs, MAX_TIMER_MS))));
  const until = signal === undefined ? deadline : AbortSignal.any([signal, deadline]);
  let behindSince: number | undefined;
  let behindPause = BEHIND_FIRST_LOOK_MS;
  let busyPause = BUSY_RETRY_MIN_MS;
  for (;;) {
    const heard = await waitOnce(name, since, until);
    switch (heard) {
      case 'first':
        return 'released';
      case 'free':
        if (behindSince === undefined || performance.now() - behindSince >= HANDOVER_GRACE_MS) return 'released';
        // Free just after a release that was the head's to take: give the head its moment.
        if (!(await pauseUnless(behindPause, until))) return 'timeout';
        behindPause = Math.min(behindPause * 2, 32);
        continue;
      case 'behind':
        behindSince = performance.now();
        behindPause = BEHIND_FIRST_LOOK_MS;
        busyPause = BUSY_RETRY_MIN_MS;
        if (!(await pauseUnless(behindPause, until))) return 'timeout';
        continue;
      case 'busy':
        behindSince = undefined;
        if (!(await pauseUnless(busyPause, until))) return 'timeout';
        busyPause = Math.min(busyPause * 2, BUSY_RETRY_MAX_MS);
        continue;
      case 'poll':
      case 'timeout':
        return heard;
    }
  }
}
