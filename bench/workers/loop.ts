// Takes and releases one lock in a tight loop (`await acquireLock(); await release()`), and reports
// how the heap and a 10 ms timer fared. argv[2]: { dir, cycles, warmup }. Run with --expose-gc.
import { acquireLock } from '../../src/index.ts';

const { dir, cycles, warmup } = JSON.parse(process.argv[2] ?? '{}') as { dir: string; cycles: number; warmup: number };
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const cycle = async () => {
  const lock = await acquireLock({ key: 'tight-loop', dir });
  await lock.release();
};
for (let i = 0; i < warmup; i++) await cycle();
gc();
const heapBefore = process.memoryUsage().heapUsed;
let ticks = 0;
const timer = setInterval(() => ticks++, 10);
const started = performance.now();
let heapPeak = heapBefore;
for (let i = 0; i < cycles; i++) {
  await cycle();
  if (i % 10_000 === 0) heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
}
const elapsedMs = performance.now() - started;
clearInterval(timer);
gc();
const heapAfter = process.memoryUsage().heapUsed;
process.stdout.write(
  `${JSON.stringify({ type: 'done', cycles, elapsedMs, ticks, heapBefore, heapAfter, heapPeak })}\n`,
);
