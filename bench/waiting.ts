import { spawnSync } from 'node:child_process';
import { bundledWorker, Worker } from './children.ts';
import { freePort, nowMs, type Scale, type Summary, sleep, summarize, tempDir } from './common.ts';

export interface WaitingResult {
  /** The version of the Node that ran the waiters and the holders. */
  node?: string;
  waiters: number;
  holdMs: number;
  /** Kendall tau between the order waiters started waiting and the order they got the lock. */
  kendallTau: number;
  /** Waiters served before one that started waiting earlier than they did. */
  servedAheadOfEarlier: number;
  /**
   * CPU time of all waiters while waiting (from each one's call to its grant), over the wall time
   * from the first wait to the last grant, in a second round of waiters that have each taken one
   * lock of their own before, outside that window: the first lock in a process compiles the
   * library's code and loads the parts of Node it uses, which is start-up, not waiting. That
   * round's waiters have also been left alone for {@link SETTLE_MS} since that lock: V8 shrinks
   * a new process's heap some 8 s after it started (full collections, tens of ms of CPU in a
   * worker that takes no lock at all), which fell inside the window of every waiter started less
   * than that long before it.
   */
  waitersCpuPercentOfCore: number;
  waitersCpuMs: number;
  waitingWallMs: number;
  /**
   * The same, measured as before: waiters whose wait is their process's very first lock, so that
   * the window holds that start-up too (the round that gives the order and the hand-overs).
   */
  coldStart?: { waitersCpuPercentOfCore: number; waitersCpuMs: number; waitingWallMs: number };
  /** The hand-over gap in that second round (waiters that took a lock before), for comparison. */
  primedHandOverGap?: Summary;
  /** Context switches of all waiting processes (their main threads), per hand-over. */
  switchesPerHandOver: number;
  /** Of those, the voluntary ones: the process slept, waiting for an event (the rest: preempted). */
  voluntarySwitchesPerHandOver?: number;
  /** Both again, in the second round (waiters that took a lock before). */
  primedSwitchesPerHandOver?: number;
  primedVoluntarySwitchesPerHandOver?: number;
  /** From a holder's release to the next waiter holding the lock. */
  handOverGap: Summary;
  /** Every hand-over gap, in the order of service. */
  gapsMs: number[];
  /** Moments when a waiter got the lock before the previous holder released it. */
  overlaps: number;
  /** From the bench seeing a SIGKILLed holder exit to the first waiter holding the lock, per trial. */
  killHandOver: Summary;
  /** From the SIGKILL to the first waiter holding the lock. */
  killToAcquired: Summary;
  /** Trials where the first waiter served after the kill was not the first to start waiting. */
  killOutOfOrder: number;
  errors: string[];
}

const WORKER_LIFETIME_MS = 300_000;
/**
 * How long the primed round's waiters are left alone after their first lock, before they queue:
 * past the start-up heap shrinking (`Mark-Compact (reduce)` in `--trace-gc`, 8 to 9.5 s after a
 * worker started; under tsx, its loader thread's heap shrank again up to 18 s in).
 */
const SETTLE_MS = 20_000;

/** Kendall's tau-a of a permutation against the identity. */
export function kendallTau(order: readonly number[]): number {
  const n = order.length;
  if (n < 2) return Number.NaN;
  let score = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) score += Math.sign((order[j] ?? 0) - (order[i] ?? 0));
  }
  return score / ((n * (n - 1)) / 2);
}

/**
 * The waiter's script: bundled to JavaScript with the library, and run by Node alone, as users run
 * the built package (see `bundledWorker`). Under tsx, the CPU of tsx's own thread (its V8 heap's
 * collections, 10 to 40 ms at a time, at any moment of a worker's first minute) counted as waiting.
 */
let waiterScript = 'waiter.ts';

/** The Node binary that runs the waiters and holders (see `runWaiting`). */
let waiterNode = process.execPath;

async function startWorkers(count: number): Promise<Worker[]> {
  const workers: Worker[] = [];
  // A few at a time: fifty start-ups at once would only queue on two cores.
  while (workers.length < count) {
    const batch = Math.min(4, count - workers.length);
    const start = () => Worker.start(waiterScript, [], WORKER_LIFETIME_MS, [], waiterNode);
    workers.push(...(await Promise.all(Array.from({ length: batch }, start))));
  }
  return workers;
}

/**
 * Waiters join one after another (each once the one before it has started waiting, a few ms
 * apart), so that the order of arrival is plain; then the holder releases.
 */
async function queueUp(waiters: Worker[], port: number, dir: string, holdMs: number, prime = true): Promise<number[]> {
  const arrivals: number[] = [];
  for (const waiter of waiters) {
    waiter.send({ op: 'wait', port, dir, holdMs, prime });
    arrivals.push(Number((await waiter.expect('waiting', 10_000)).t));
    await sleep(5);
  }
  // Time for the last ones to be placed in the holder's queue.
  await sleep(500);
  return arrivals;
}

async function orderAndCost(scale: Scale, result: WaitingResult, prime = true): Promise<void> {
  const { waiters: count, holdMs } = result;
  const port = await freePort();
  const dir = tempDir('waiting');
  const [holder, ...waiters] = await startWorkers(count + 1);
  if (holder === undefined) throw new Error('no holder');
  if (prime) {
    for (const waiter of waiters) waiter.send({ op: 'prime' });
    for (const waiter of waiters) await waiter.expect('primed', 30_000);
    await sleep(SETTLE_MS);
  }
  holder.send({ op: 'hold', port, dir });
  await holder.expect('held', 10_000);
  const arrivals = await queueUp(waiters, port, dir, holdMs, prime);
  holder.send({ op: 'release', port, dir });
  const released = Number((await holder.expect('released', 10_000)).t);
  const served = await Promise.all(
    waiters.map(async (waiter, index) => {
      const acquired = await waiter.expect('acquired', count * (holdMs + 1000) + 30_000);
      const done = await waiter.expect('released', holdMs + 30_000);
      return {
        index,
        acquired: Number(acquired.t),
        cpuMs: Number(acquired.cpuMs),
        switches: Number(acquired.switches),
        voluntarySwitches: Number(acquired.voluntarySwitches),
        released: Number(done.t),
      };
    }),
  );
  await Promise.all([holder, ...waiters].map((worker) => worker.stop()));
  served.sort((a, b) => a.acquired - b.acquired);
  const order = served.map((entry) => entry.index);
  result.kendallTau = kendallTau(order);
  result.servedAheadOfEarlier = order.filter((index, at) => order.slice(at + 1).some((later) => later < index)).length;
  result.waitersCpuMs = served.reduce((sum, entry) => sum + entry.cpuMs, 0);
  result.waitingWallMs = (served.at(-1)?.acquired ?? Number.NaN) - (arrivals[0] ?? Number.NaN);
  result.waitersCpuPercentOfCore = (100 * result.waitersCpuMs) / result.waitingWallMs;
  result.switchesPerHandOver = served.reduce((sum, entry) => sum + entry.switches, 0) / count;
  result.voluntarySwitchesPerHandOver = served.reduce((sum, entry) => sum + entry.voluntarySwitches, 0) / count;
  const gaps: number[] = [];
  let previousRelease = released;
  for (const entry of served) {
    const gap = entry.acquired - previousRelease;
    if (gap < 0) result.overlaps++;
    gaps.push(gap);
    previousRelease = entry.released;
  }
  result.handOverGap = summarize(gaps);
  result.gapsMs = gaps;
  scale.log(
    `  ${count} waiters${prime ? '' : ' (cold start)'}: tau ${result.kendallTau.toFixed(3)}, CPU ${result.waitersCpuPercentOfCore.toFixed(2)} % of a core, median gap ${result.handOverGap.median.toFixed(2)} ms`,
  );
}

async function killTrial(result: WaitingResult, kills: number[], killsFromSignal: number[]): Promise<void> {
  const port = await freePort();
  const dir = tempDir('waiting-kill');
  const [holder, ...waiters] = await startWorkers(4);
  if (holder === undefined) throw new Error('no holder');
  try {
    holder.send({ op: 'hold', port, dir });
    await holder.expect('held', 10_000);
    await queueUp(waiters, port, dir, 0, false);
    const killedAt = nowMs();
    holder.kill('SIGKILL');
    const served = await Promise.all(
      waiters.map(async (waiter, index) => ({ index, t: Number((await waiter.expect('acquired', 30_000)).t) })),
    );
    await holder.exited();
    served.sort((a, b) => a.t - b.t);
    const first = served[0];
    if (first === undefined) throw new Error('no waiter was served');
    if (first.index !== 0) result.killOutOfOrder++;
    kills.push(first.t - (holder.exitedAt ?? Number.NaN));
    killsFromSignal.push(first.t - killedAt);
  } finally {
    for (const worker of [holder, ...waiters]) worker.kill();
  }
}

/**
 * The scenario, its waiters and holders run by `node` (the bench's own Node by default): the
 * library takes a lock differently on Node 20, which cannot bind a name's legacy form and reads
 * the kernel's table of Unix sockets instead, at every acquire.
 */
export async function runWaiting(scale: Scale, node = process.execPath): Promise<WaitingResult> {
  waiterNode = node;
  const kills: number[] = [];
  const killsFromSignal: number[] = [];
  const result: WaitingResult = {
    node: spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim(),
    waiters: scale.quick ? 8 : 50,
    holdMs: 200,
    kendallTau: Number.NaN,
    servedAheadOfEarlier: 0,
    waitersCpuPercentOfCore: Number.NaN,
    waitersCpuMs: Number.NaN,
    waitingWallMs: Number.NaN,
    switchesPerHandOver: Number.NaN,
    handOverGap: summarize([]),
    gapsMs: [],
    overlaps: 0,
    killHandOver: summarize([]),
    killToAcquired: summarize([]),
    killOutOfOrder: 0,
    errors: [],
  };
  waiterScript = await bundledWorker('waiter.ts');
  // Order, hand-overs and the CPU as measured before: waiters whose wait is their first lock, as
  // a `portlock run --wait` is. Then the CPU of waiting alone: waiters that took a lock before.
  await orderAndCost(scale, result, false);
  const cold = { ...result };
  const primed: WaitingResult = { ...result, handOverGap: summarize([]), gapsMs: [], overlaps: 0, errors: [] };
  await orderAndCost(scale, primed, true);
  result.waitersCpuPercentOfCore = primed.waitersCpuPercentOfCore;
  result.waitersCpuMs = primed.waitersCpuMs;
  result.waitingWallMs = primed.waitingWallMs;
  result.coldStart = {
    waitersCpuPercentOfCore: cold.waitersCpuPercentOfCore,
    waitersCpuMs: cold.waitersCpuMs,
    waitingWallMs: cold.waitingWallMs,
  };
  result.primedHandOverGap = primed.handOverGap;
  result.primedSwitchesPerHandOver = primed.switchesPerHandOver;
  result.primedVoluntarySwitchesPerHandOver = primed.voluntarySwitchesPerHandOver;
  const trials = scale.quick ? 2 : 9;
  for (let trial = 0; trial < trials; trial++) {
    try {
      await killTrial(result, kills, killsFromSignal);
      scale.log(`  SIGKILL trial ${trial + 1}/${trials}: ${kills.at(-1)?.toFixed(2)} ms after the holder's exit`);
    } catch (error) {
      result.errors.push(String(error));
    }
  }
  result.killHandOver = summarize(kills);
  result.killToAcquired = summarize(killsFromSignal);
  return result;
}
