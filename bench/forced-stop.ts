import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { stopLock } from '../src/index.ts';
import { spawnTracked, workerPath } from './children.ts';
import { freePort, nowMs, type Scale, type Summary, summarize, tempDir } from './common.ts';

/** The time each step of the stop may take (`timeout`): the request, the wait after SIGTERM, after SIGKILL. */
export const FORCED_STOP_TIMEOUT_MS = 1000;

export interface ForcedStopResult {
  timeoutMs: number;
  /** From calling stopLock to its result, per round: the holder ignores SIGTERM, so SIGKILL ends it. */
  stopMs: Summary;
  /** Rounds whose stop did not end in SIGKILL and a holder gone. */
  failures: string[];
}

/**
 * `stopLock({ force: true, timeout })` against a holder that refuses stop requests and ignores
 * SIGTERM: one step's timeout (after SIGTERM) and then SIGKILL, never the default 10 s a step.
 */
export async function runForcedStop(scale: Scale): Promise<ForcedStopResult> {
  const rounds = scale.quick ? 1 : 5;
  const times: number[] = [];
  const failures: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const port = await freePort();
    const dir = tempDir('forced-stop');
    const holder = spawnTracked(
      process.execPath,
      ['--import', 'tsx', workerPath('stubborn-holder.ts'), JSON.stringify({ port, dir })],
      60_000,
    );
    holder.stderr?.resume();
    const lines = createInterface({ input: holder.stdout ?? process.stdin });
    const [line] = (await once(lines, 'line')) as [string];
    if (JSON.parse(line).type !== 'ready') throw new Error(`the holder said ${line}`);
    const started = nowMs();
    const result = await stopLock({ port, dir, force: true, timeout: FORCED_STOP_TIMEOUT_MS });
    times.push(nowMs() - started);
    const [, signal] = holder.exitCode === null && holder.signalCode === null ? await once(holder, 'exit') : [];
    if (result.via !== 'SIGKILL' || (signal ?? holder.signalCode) !== 'SIGKILL') {
      failures.push(`round ${round}: ${result.outcome} via ${result.via}: ${result.reason}`);
    }
  }
  const stopMs = summarize(times);
  scale.log(`  forced stop, ${FORCED_STOP_TIMEOUT_MS} ms a step: median ${stopMs.median.toFixed(0)} ms over ${rounds}`);
  return { timeoutMs: FORCED_STOP_TIMEOUT_MS, stopMs, failures };
}
