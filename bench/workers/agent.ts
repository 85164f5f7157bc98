// A lock user the bench drives over stdin: holds, waits for, or contends for one contender's lock.
import { createServer, type Server } from 'node:net';
import { errorText, nowMs, sleep } from '../common.ts';
import { type ContenderId, compromised, contenders, type Held, isHeldError, type Target } from '../contenders.ts';
import { reply, serveCommands } from './serve.ts';

interface Command {
  op: 'hold' | 'wait' | 'release' | 'contend';
  contender: ContenderId;
  target: Target;
  waitMs?: number;
  observer?: string;
  startAt?: number;
  endAt?: number;
}

/**
 * Binds the observer's abstract socket for as long as this process believes it holds the lock.
 * The kernel allows one binder per name, so EADDRINUSE means a second holder is inside.
 */
function enter(name: string): Promise<{ server: Server | undefined; overlap: boolean; error?: string }> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      resolve({ server: undefined, overlap: error.code === 'EADDRINUSE', error: errorText(error) });
    });
    server.listen({ path: name }, () => resolve({ server, overlap: false }));
  });
}

async function contend(command: Command): Promise<object> {
  const contender = contenders[command.contender];
  const { observer = '', startAt = nowMs(), endAt = nowMs() } = command;
  let acquisitions = 0;
  let overlaps = 0;
  let timeouts = 0;
  const errors: string[] = [];
  await sleep(startAt - nowMs());
  while (nowMs() < endAt) {
    let held: Held;
    try {
      held = await contender.acquire(command.target, Math.max(1, endAt - nowMs()));
    } catch (error) {
      if (isHeldError(error)) timeouts++;
      else if (errors.push(errorText(error)) > 20) break;
      continue;
    }
    if (nowMs() < endAt) {
      const inside = await enter(observer);
      if (inside.overlap) overlaps++;
      else if (inside.error !== undefined) errors.push(inside.error);
      inside.server?.close();
      acquisitions++;
    }
    await held.release();
  }
  return { type: 'done', acquisitions, overlaps, timeouts, errors, compromised: compromised.count };
}

let held: Held | undefined;

async function handle(command: Command): Promise<void> {
  const contender = contenders[command.contender];
  switch (command.op) {
    case 'hold':
      held = await contender.acquire(command.target, 0);
      reply({ type: 'held', t: nowMs(), pid: process.pid });
      return;
    case 'wait':
      reply({ type: 'waiting', t: nowMs() });
      try {
        held = await contender.acquire(command.target, command.waitMs ?? 0);
        reply({ type: 'acquired', t: nowMs() });
      } catch (error) {
        reply({ type: 'failed', t: nowMs(), error: errorText(error) });
      }
      return;
    case 'release':
      await held?.release();
      held = undefined;
      reply({ type: 'released' });
      return;
    case 'contend':
      reply(await contend(command));
      return;
  }
}

await serveCommands(handle);
