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

/** Sends one request to whoever holds `name` and waits for the reply. */
export function ask(name: string, request: Request, timeoutMs = ASK_TIMEOUT_MS): Promise<Asked> {
  return new Promise((resolve) => {
    let connected = false;
    let buffered = '';
    const socket = connect({ path: name });
    const finish = (result: Asked) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'silent', reason: 'it did not answer within a second' }), timeoutMs);
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

/**
 * Resolves when the holder of `name` releases it or dies (the connection closes), when
 * `timeoutMs` passes, or when `signal` aborts. Returns false when the holder does not support
 * waiting, so the caller falls back to polling.
 */
export function waitForRelease(name: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    let supported = true;
    let buffered = '';
    const socket = connect({ path: name });
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      socket.destroy();
      resolve(supported);
    };
    const timer = setTimeout(finish, timeoutMs);
    signal?.addEventListener('abort', finish, { once: true });
    socket.on('connect', () => socket.write(encode({ v: PROTOCOL_VERSION, op: 'wait' })));
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const end = buffered.indexOf('\n');
      if (end < 0) return;
      const reply = parseReply(buffered.slice(0, end));
      if (reply === undefined || !reply.ok) {
        supported = false;
        finish();
      }
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
}
