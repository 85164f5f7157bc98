import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { lastLines } from './tail.ts';

/**
 * When a background server counts as ready:
 * - `tcp`: its port accepts a TCP connection on localhost (the default);
 * - `http`: a GET of the URL is answered with 2xx or 3xx;
 * - `log`: a line of its log contains the text.
 */
export type ReadyCheck = { kind: 'tcp' } | { kind: 'http'; url: string } | { kind: 'log'; text: string };

/** Between two looks; a server that is ready at once is found on the first. */
const LOOK_EVERY_MS = 25;
/** A look that takes longer than this is a look that failed. */
const LOOK_TIMEOUT_MS = 1000;

/** Reads `--ready`: `tcp`, an http(s) URL, or `log:<text>`; undefined for anything else. */
export function parseReadyCheck(text: string): ReadyCheck | undefined {
  if (text === 'tcp') return { kind: 'tcp' };
  if (text.startsWith('log:') && text.length > 4) return { kind: 'log', text: text.slice(4) };
  if (/^https?:\/\/[^\s]+$/.test(text) && URL.canParse(text)) return { kind: 'http', url: text };
  return undefined;
}

/** Where a server on `port` is reached, as printed: the origin of the check's URL, else http://localhost:<port>. */
export function urlFor(check: ReadyCheck, port: number): string {
  return check.kind === 'http' ? new URL(check.url).origin : `http://localhost:${port}`;
}

function accepts(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host, timeout: LOOK_TIMEOUT_MS });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(LOOK_TIMEOUT_MS) });
    await response.body?.cancel();
    return response.status >= 200 && response.status < 400;
  } catch {
    return false;
  }
}

function logged(path: string, text: string): boolean {
  // Enough lines to see what was written since the last look, at any pace a server logs at start.
  return lastLines(path, 1000).some((line) => line.includes(text));
}

/** One look: is it ready now? */
export async function isReady(check: ReadyCheck, port: number, log: string | undefined): Promise<boolean> {
  switch (check.kind) {
    case 'tcp':
      // A server may listen on either loopback address; `localhost` can mean either.
      return (await accepts(port, '127.0.0.1')) || (await accepts(port, '::1'));
    case 'http':
      return answers(check.url);
    case 'log':
      return log !== undefined && logged(log, check.text);
  }
}

/** Looks until the check passes; rejects with the signal's reason once it aborts. */
export async function waitUntilReady(
  check: ReadyCheck,
  port: number,
  log: string | undefined,
  signal: AbortSignal,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    if (await isReady(check, port, log)) return;
    await sleep(LOOK_EVERY_MS, undefined, { signal }).catch(() => {});
  }
}
