import type { ChildProcess } from 'node:child_process';
import type { AcquireOptions } from '../../src/index.ts';
import { fixture, lineMatching, spawnTs } from './spawn.ts';

export interface Holder {
  child: ChildProcess;
  pid: number;
  path: string;
  interlocked: boolean;
  childPid?: number;
}

/** Starts a process that holds a lock, resolving once it holds it. */
export async function startHolder(
  options: AcquireOptions & { stoppable?: boolean; child?: boolean },
  timeoutMs = 60_000,
): Promise<Holder> {
  const child = spawnTs(fixture('holder.ts'), [JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    timeoutMs,
  });
  const ready = JSON.parse(await lineMatching(child, /"ready":true/));
  if (child.pid === undefined) throw new Error('holder has no pid');
  return { child, pid: child.pid, ...ready };
}
