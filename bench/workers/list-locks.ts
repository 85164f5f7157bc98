// Lists one directory of lock records in a fresh process, so that its memory is listLocks's alone.
import { readFileSync, writeFileSync } from 'node:fs';
import { listLocks } from '../../src/index.ts';
import { nowMs, summarize } from '../common.ts';

const dir = process.argv[2] ?? '';
const interlock = process.argv[3] === 'off' ? 'off' : 'auto';
const REPEAT_BUDGET_MS = 300;

/** A field of /proc/self/status, in KiB. */
function statusKb(field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s*(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'latin1'));
  return Number(match?.[1] ?? Number.NaN);
}

const collect = (globalThis as { gc?: () => void }).gc;
collect?.();
let peakReset = true;
try {
  // Writing 5 resets the peak-RSS mark (VmHWM), so the peak read afterwards is this call's.
  writeFileSync('/proc/self/clear_refs', '5');
} catch {
  peakReset = false;
}
const rssBeforeKb = statusKb('VmRSS');
const heapBefore = process.memoryUsage().heapUsed;
const start = nowMs();
const first = await listLocks({ dir, interlock });
const firstMs = nowMs() - start;
const peakRssKb = statusKb('VmHWM');
const heapRetained = process.memoryUsage().heapUsed - heapBefore;
const held = first.filter((lock) => lock.state === 'held').length;

const times: number[] = [];
const until = nowMs() + REPEAT_BUDGET_MS;
while (times.length < 2 || (nowMs() < until && times.length < 50)) {
  const t = nowMs();
  await listLocks({ dir, interlock });
  times.push(nowMs() - t);
}

process.stdout.write(
  `${JSON.stringify({
    type: 'result',
    count: first.length,
    held,
    firstMs,
    medianMs: summarize(times).median,
    repeats: times.length,
    peakRssGrowthKb: peakReset ? peakRssKb - rssBeforeKb : Number.NaN,
    heapRetainedKb: heapRetained / 1024,
  })}\n`,
);
