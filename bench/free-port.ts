import { portRange } from '../test/helpers/port-range.ts';
import { Worker } from './children.ts';
import { nowMs, rotated, type Scale, type Summary, summarize, tempDir } from './common.ts';
import { FINDER_IDS, type FinderId, finders } from './port-finders.ts';

export const PORT_NS = [8, 32] as const;

export interface PortCell {
  rounds: number;
  /** Rounds in which two processes got the same port, or one could not bind the port it got. */
  collisionRounds: number;
  /** Ports handed to more than one process, counted once per extra process, over all rounds. */
  duplicates: number;
  /** Processes whose bind of the port they were given failed with EADDRINUSE. */
  eaddrinuse: number;
  /** Time of one call, from the barrier to the port in hand. */
  msPerPort: Summary;
  errors: string[];
}

export interface FreePortResult {
  rounds: number;
  /** Every finder searched a block of this many ports, from its low end. */
  rangeSize: number;
  cells: Record<string, Partial<Record<FinderId, PortCell>>>;
  calls: Record<FinderId, string>;
}

// Time for every worker to read its command before the barrier falls, even on a busy host.
const START_DELAY_MS = 100;
const RANGE_SIZE = 64;

type Got = { port?: number; ms?: number; bindError?: string; error?: string };

async function startPool(size: number, lifetimeMs: number): Promise<Worker[]> {
  const pool: Worker[] = [];
  // A few at a time: 32 tsx start-ups at once on two cores only queue behind each other.
  while (pool.length < size) {
    const batch = Math.min(4, size - pool.length);
    pool.push(...(await Promise.all(Array.from({ length: batch }, () => Worker.start('port.ts', [], lifetimeMs)))));
  }
  return pool;
}

/**
 * N processes at one barrier each ask a finder for a port and bind it at once, round after
 * round. A prober (bind, close, return the number) hands one port to several of them; the bind
 * that comes second fails with EADDRINUSE.
 */
export async function runFreePort(scale: Scale): Promise<FreePortResult> {
  const rounds = scale.quick ? 3 : 40;
  const pool = await startPool(Math.max(...PORT_NS), 600_000);
  const samples = new Map<string, { cell: PortCell; times: number[] }>();
  // One block of ports per finder and N, below the ephemeral range, claimed like a test's.
  const ranges = new Map<string, [number, number]>();
  const dirs = new Map<string, string>();
  for (const n of PORT_NS) {
    for (const id of FINDER_IDS) {
      ranges.set(`${n}:${id}`, await portRange(RANGE_SIZE));
      dirs.set(`${n}:${id}`, tempDir(`ports-${id}-${n}`));
    }
  }
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [index, n] of PORT_NS.entries()) {
        for (const id of rotated(FINDER_IDS, round + index)) {
          const key = `${n}:${id}`;
          const query = { range: ranges.get(key) as [number, number], dir: dirs.get(key) as string };
          const workers = pool.slice(0, n);
          const startAt = nowMs() + START_DELAY_MS;
          for (const worker of workers) worker.send({ op: 'get', finder: id, query, startAt });
          const answers = (await Promise.all(workers.map((worker) => worker.expect('got', 60_000)))) as Got[];
          for (const worker of workers) worker.send({ op: 'release' });
          await Promise.all(workers.map((worker) => worker.expect('released', 60_000)));

          const entry = samples.get(key) ?? {
            cell: {
              rounds: 0,
              collisionRounds: 0,
              duplicates: 0,
              eaddrinuse: 0,
              msPerPort: summarize([]),
              errors: [],
            },
            times: [],
          };
          const ports = answers.flatMap((answer) => (answer.port === undefined ? [] : [answer.port]));
          const duplicates = ports.length - new Set(ports).size;
          const eaddrinuse = answers.filter((answer) => answer.bindError === 'EADDRINUSE').length;
          entry.cell.rounds++;
          entry.cell.duplicates += duplicates;
          entry.cell.eaddrinuse += eaddrinuse;
          if (duplicates > 0 || eaddrinuse > 0) entry.cell.collisionRounds++;
          for (const answer of answers) {
            if (answer.ms !== undefined) entry.times.push(answer.ms);
            const trouble = answer.error ?? (answer.bindError === 'EADDRINUSE' ? undefined : answer.bindError);
            if (trouble !== undefined && entry.cell.errors.length < 5) entry.cell.errors.push(trouble);
          }
          samples.set(key, entry);
          scale.log(
            `  ports round ${round + 1}/${rounds} N=${n} ${id}: ${duplicates} duplicates, ${eaddrinuse} EADDRINUSE`,
          );
        }
      }
    }
  } finally {
    await Promise.all(pool.map((worker) => worker.stop()));
  }
  const cells: FreePortResult['cells'] = {};
  for (const n of PORT_NS) {
    const row: Partial<Record<FinderId, PortCell>> = {};
    for (const id of FINDER_IDS) {
      const entry = samples.get(`${n}:${id}`);
      if (entry !== undefined) row[id] = { ...entry.cell, msPerPort: summarize(entry.times) };
    }
    cells[String(n)] = row;
  }
  const calls = Object.fromEntries(FINDER_IDS.map((id) => [id, finders[id].call])) as Record<FinderId, string>;
  return { rounds, rangeSize: RANGE_SIZE, cells, calls };
}
