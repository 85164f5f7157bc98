import { Worker } from './children.ts';
import { rotated, type Scale, type Summary, summarize, tempDir } from './common.ts';

export const LIST_SIZES = [10, 1000, 10_000] as const;
export const LIST_MODES = ['auto', 'off'] as const;
export type ListMode = (typeof LIST_MODES)[number];

export interface ListLocksEntry {
  /** Microseconds per record of a warm call, one sample per fresh process. */
  perRecordUs: Summary;
  /** The first (cold) call in a fresh process, in milliseconds. */
  firstCallMs: Summary;
  /** Peak resident memory during the first call over resident memory before it, KiB. */
  peakRssGrowthKb: Summary;
  /** Heap still used by the returned list, KiB. */
  heapRetainedKb: Summary;
  /** Records reported, and how many of them as held (all are). */
  count: number;
  held: number;
}

export interface ListLocksResult {
  rounds: number;
  records: string;
  /** Keyed by `<interlock option of listLocks>:<number of records>`. */
  entries: Record<string, ListLocksEntry>;
}

export const listKey = (mode: ListMode, size: number): string => `${mode}:${size}`;

/**
 * Real records, taken by this process and left held with the default interlock, so that each is
 * judged alive the full way. Keys, not ports: a key's interlock name is scoped to its directory,
 * while a port's is host-wide and could collide with other programs on the host.
 */
// A key lock holds two kernel names (see keyPathName), each a descriptor: the 11,010 locks of
// every size, held by one process, would pass the common limit of 20,000 open files.
const LOCKS_PER_HOLDER = 2500;

/**
 * Fills a directory with `size` held key locks, held by child processes of this bench that take
 * them side by side (under Node 20 each acquire reads the kernel's table of Unix sockets, which
 * grows with every lock held).
 */
async function populate(size: number): Promise<{ dir: string; holders: Worker[] }> {
  const dir = tempDir(`list-${size}`);
  const holders: Worker[] = [];
  for (let from = 1; from <= size; from += LOCKS_PER_HOLDER) {
    const to = Math.min(size, from + LOCKS_PER_HOLDER - 1);
    holders.push(new Worker('key-holder.ts', [dir, String(from), String(to)], 900_000));
  }
  await Promise.all(holders.map((holder) => holder.expect('ready', 300_000)));
  return { dir, holders };
}

interface ChildResult {
  count: number;
  held: number;
  firstMs: number;
  medianMs: number;
  peakRssGrowthKb: number;
  heapRetainedKb: number;
}

export async function runListLocks(scale: Scale): Promise<ListLocksResult> {
  const rounds = scale.quick ? 1 : 3;
  const dirs = new Map<number, { dir: string; holders: Worker[] }>();
  for (const size of LIST_SIZES) dirs.set(size, await populate(size));
  const runs = LIST_SIZES.flatMap((size) => LIST_MODES.map((mode) => ({ size, mode })));
  const results = new Map<string, ChildResult[]>(runs.map(({ size, mode }) => [listKey(mode, size), []]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const { size, mode } of rotated(runs, round)) {
        const args = [dirs.get(size)?.dir ?? '', mode];
        const worker = new Worker('list-locks.ts', args, 120_000, ['--expose-gc']);
        const answer = await worker.expect('result', 120_000);
        await worker.stop();
        results.get(listKey(mode, size))?.push(answer as unknown as ChildResult);
        scale.log(
          `  listLocks round ${round + 1}/${rounds} ${size} records, interlock ${mode}: ${Number(answer.medianMs).toFixed(1)} ms`,
        );
      }
    }
  } finally {
    await Promise.all([...dirs.values()].flatMap(({ holders }) => holders.map((holder) => holder.stop())));
  }
  const entries: Record<string, ListLocksEntry> = {};
  for (const { size, mode } of runs) {
    const found = results.get(listKey(mode, size)) ?? [];
    entries[listKey(mode, size)] = {
      perRecordUs: summarize(found.map((run) => (run.medianMs * 1000) / size)),
      firstCallMs: summarize(found.map((run) => run.firstMs)),
      peakRssGrowthKb: summarize(found.map((run) => run.peakRssGrowthKb)),
      heapRetainedKb: summarize(found.map((run) => run.heapRetainedKb)),
      count: found[0]?.count ?? 0,
      held: found[0]?.held ?? 0,
    };
  }
  return {
    rounds,
    records: `key locks held by live processes of the bench (${LOCKS_PER_HOLDER} each) with the default interlock, so each is found held the full way`,
    entries,
  };
}
