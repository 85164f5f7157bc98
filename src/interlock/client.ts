import { connect } from 'node:net';
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
    let connected = false;
    let buffered = '';
    const socket = connect({ path: name });
    const onAbort = () => finish({ kind: 'silent', reason: 'the question was abandoned' });
    const finish = (result: Asked) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ kind: 'silent', reason: `it did not answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => {
      connected = true;
      socket.write(encode({ v: PROTOCOL_VERSION, ...request }));
    });
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const end = buffered.indexOf('\n');
      if (end < 0 && buffered.length < 65536) return;
      const reply = parseReply(buffered.slice(0, end < 0 ? undefined : end));
      finish(
        reply === undefined ? { kind: 'silent', reason: 'its answer was not understood' } : { kind: 'answered', reply },
      );
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ECONNREFUSED' || error.code === 'ENOENT')) finish({ kind: 'free' });
      else finish({ kind: 'silent', reason: `the connection failed (${error.code ?? error.message})` });
    });
    socket.on('close', () => finish({ kind: 'silent', reason: 'it closed the connection without an answer' }));
  });
}

/** Node fires a timer set beyond this at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Resolves when the holder of `name` releases it or dies: `released`, or also when nobody holds
 * the name any more. Resolves `poll` when waiting this way is not possible (the holder does not
 * support it, or does not accept connections), so the caller looks again after a pause; and
 * `timeout` when `timeoutMs` passes or `signal` aborts.
 */
export function waitForRelease(
  name: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<'released' | 'poll' | 'timeout'> {
  if (signal?.aborted) return Promise.resolve('timeout');
  return new Promise((resolve) => {
    let outcome: 'released' | 'poll' | 'timeout' = 'poll';
    let buffered = '';
    const socket = connect({ path: name });
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(outcome);
    };
    const onAbort = () => {
      outcome = 'timeout';
      finish();
    };
    const timer = setTimeout(onAbort, Math.min(timeoutMs, MAX_TIMER_MS));
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => socket.write(encode({ v: PROTOCOL_VERSION, op: 'wait' })));
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const end = buffered.indexOf('\n');
      if (end < 0) return;
      const reply = parseReply(buffered.slice(0, end));
      // Admitted: from now on, the connection's end is the release.
      if (reply?.ok && 'waiting' in reply) outcome = 'released';
      else finish();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // Refused: nobody holds the name now. Anything else (a full queue, say): look again later.
      if (outcome === 'poll' && (error.code === 'ECONNREFUSED' || error.code === 'ENOENT')) outcome = 'released';
      finish();
    });
    socket.on('close', finish);
  });
}
