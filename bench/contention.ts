import { Worker } from './children.ts';
import { freePort, nowMs, rotated, type Scale, type Summary, summarize, tempDir } from './common.ts';
import type { ContenderId, Target } from './contenders.ts';

export const CONTENTION_IDS: readonly ContenderId[] = [
  'portlock-auto',
  'portlock-off',
  'portlock-socket-file',
  'proper-lockfile',
  'lockfile',
];
export const CONTENTION_NS = [2, 8, 32] as const;

export interface ContentionCell {
  /** Acquisitions per second by all N processes together, one sample per round. */
  acquisitionsPerSec: Summary;
  /** Moments the observer saw two holders at once, summed over rounds. */
  overlaps: number;
  /** Fewest and most acquisitions one process made in a round: how fairly the lock is shared. */
  perProcessMin: number;
  perProcessMax: number;
  /** Waits that ran out at the end of the window (expected) and errors (not expected). */
  timeouts: number;
  errors: string[];
  /** proper-lockfile's reports that a held lock was taken over. */
  compromised: number;
}

export interface ContentionResult {
  durationMs: number;
  rounds: number;
  observer: string;
  cells: Record<string, Partial<Record<ContenderId, ContentionCell>>>;
}

// Time for every worker to read its command before the window opens, even on a busy host.
const START_DELAY_MS = 300;
let observerSeq = 0;

interface Done {
  acquisitions: number;
  overlaps: number;
  timeouts: number;
  errors: string[];
  compromised: number;
}

async function startPool(size: number, lifetimeMs: number): Promise<Worker[]> {
  const pool: Worker[] = [];
  // A few at a time: 32 tsx start-ups at once on two cores only queue behind each other.
  while (pool.length < size) {
    const batch = Math.min(4, size - pool.length);
    pool.push(...(await Promise.all(Array.from({ length: batch }, () => Worker.start('agent.ts', [], lifetimeMs)))));
  }
  return pool;
}

export async function runContention(scale: Scale): Promise<ContentionResult> {
  const durationMs = scale.quick ? 400 : 2500;
  const rounds = scale.quick ? 1 : 2;
  const maxN = Math.max(...CONTENTION_NS);
  const pool = await startPool(maxN, 400_000);
  const compromisedSoFar = new Map<Worker, number>(pool.map((worker) => [worker, 0]));
  const samples = new Map<string, { rates: number[]; cell: ContentionCell }>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [index, n] of CONTENTION_NS.entries()) {
        for (const id of rotated(CONTENTION_IDS, round + index)) {
          const target: Target = { dir: tempDir(`contention-${id}-${n}`), port: await freePort() };
          const observer = `\0portlock-bench-observer-${process.pid}-${observerSeq++}`;
          const workers = pool.slice(0, n);
          const startAt = nowMs() + START_DELAY_MS;
          const endAt = startAt + durationMs;
          for (const worker of workers) worker.send({ op: 'contend', contender: id, target, observer, startAt, endAt });
          const answers = await Promise.all(workers.map((worker) => worker.expect('done', durationMs + 30_000)));
          const key = `${n}:${id}`;
          const entry = samples.get(key) ?? {
            rates: [],
            cell: {
              acquisitionsPerSec: summarize([]),
              overlaps: 0,
              perProcessMin: Number.POSITIVE_INFINITY,
              perProcessMax: 0,
              timeouts: 0,
              errors: [],
              compromised: 0,
            },
          };
          let total = 0;
          for (const [i, answer] of answers.entries()) {
            const done = answer as unknown as Done;
            const worker = workers[i] as Worker;
            total += done.acquisitions;
            entry.cell.overlaps += done.overlaps;
            entry.cell.timeouts += done.timeouts;
            entry.cell.errors.push(...done.errors.slice(0, 5));
            entry.cell.compromised += done.compromised - (compromisedSoFar.get(worker) ?? 0);
            compromisedSoFar.set(worker, done.compromised);
            entry.cell.perProcessMin = Math.min(entry.cell.perProcessMin, done.acquisitions);
            entry.cell.perProcessMax = Math.max(entry.cell.perProcessMax, done.acquisitions);
          }
          entry.rates.push(total / (durationMs / 1000));
          samples.set(key, entry);
          scale.log(
            `  contention round ${round + 1}/${rounds} N=${n} ${id}: ${total} acquisitions, ${answers.reduce((sum, a) => sum + Number(a.overlaps), 0)} overlaps`,
          );
        }
      }
    }
  } finally {
    await Promise.all(pool.map((worker) => worker.stop()));
  }
  const cells: ContentionResult['cells'] = {};
  for (const n of CONTENTION_NS) {
    const row: Partial<Record<ContenderId, ContentionCell>> = {};
    for (const id of CONTENTION_IDS) {
      const entry = samples.get(`${n}:${id}`);
      if (entry !== undefined) row[id] = { ...entry.cell, acquisitionsPerSec: summarize(entry.rates) };
    }
    cells[String(n)] = row;
  }
  return {
    durationMs,
    rounds,
    observer:
      'each holder binds one abstract Unix socket name while inside; EADDRINUSE means a second holder is inside',
    cells,
  };
}
