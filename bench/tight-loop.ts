import { once } from 'node:events';
import { spawnTracked, workerPath } from './children.ts';
import { type Scale, tempDir } from './common.ts';

export interface TightLoopResult {
  cycles: number;
  /** Microseconds per acquire + release. */
  perCycleUs: number;
  /** Firings of a 10 ms interval timer during the loop, and how many its duration allows. */
  timerTicks: number;
  timerTicksDue: number;
  /** Heap after a full GC at the end, less that after a full GC before the loop. */
  heapGrowthBytes: number;
  /** Highest heap seen during the loop (sampled every 10,000 cycles), less the heap before it. */
  heapPeakGrowthBytes: number;
}

export async function runTightLoop(scale: Scale): Promise<TightLoopResult> {
  const cycles = scale.quick ? 20_000 : 200_000;
  const args = JSON.stringify({ dir: tempDir('loop'), cycles, warmup: 1000 });
  const child = spawnTracked(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', workerPath('loop.ts'), args],
    600_000,
  );
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.resume();
  // 'close', not 'exit': by then everything the worker printed has been read.
  await once(child, 'close');
  const done = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
  if (done.type !== 'done') throw new Error(`the loop worker said ${stdout.slice(0, 200)}`);
  const result: TightLoopResult = {
    cycles,
    perCycleUs: (1000 * done.elapsedMs) / cycles,
    timerTicks: done.ticks,
    timerTicksDue: Math.floor(done.elapsedMs / 10),
    heapGrowthBytes: done.heapAfter - done.heapBefore,
    heapPeakGrowthBytes: done.heapPeak - done.heapBefore,
  };
  scale.log(
    `  ${cycles} cycles: ${result.perCycleUs.toFixed(1)} µs each, timer ${result.timerTicks}/${result.timerTicksDue}, heap ${(result.heapGrowthBytes / 1024).toFixed(0)} KiB`,
  );
  return result;
}
