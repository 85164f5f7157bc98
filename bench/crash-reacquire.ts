import { Worker } from './children.ts';
import { freePort, nowMs, rotated, type Scale, type Summary, sleep, summarize, tempDir } from './common.ts';
import type { ContenderId, Target } from './contenders.ts';

export const CRASH_IDS: readonly ContenderId[] = [
  'portlock-auto',
  'portlock-off',
  'portlock-socket-file',
  'proper-lockfile',
  'proper-lockfile-stale2s',
  'lockfile',
  'lockfile-stale2s',
];

export interface CrashEntry {
  /** How long the waiter was allowed to wait after the kill. */
  waitMs: number;
  trials: number;
  /** Milliseconds from SIGKILL of the holder to the waiter holding the lock, per re-acquiring trial. */
  latenciesMs: number[];
  latency: Summary;
  /**
   * Milliseconds from the SIGKILL until the bench saw the holder exit: how long the kernel takes to
   * tear the process down, before which no kernel-held name is freed.
   */
  holderExitMs: Summary;
  /** Trials where the waiter still did not hold the lock when its wait ran out. */
  notReacquired: number;
  /** Trials where the waiter got the lock while the holder was still alive: a double grant. */
  grantedWhileHeld: number;
  errors: string[];
}

export interface CrashResult {
  /** The holder is killed this long (plus up to one poll period) after the waiter starts waiting. */
  settleMs: number;
  entries: Partial<Record<ContenderId, CrashEntry>>;
}

// Long enough for every poll schedule to reach its steady 100 ms period before the kill.
const SETTLE_MS = 400;
const POLL_PERIOD_MS = 100;
const WORKER_LIFETIME_MS = 400_000;

/** How many rounds each contender runs and how long its waiter waits: defaults that never free a lock run once. */
function plan(id: ContenderId, quick: boolean): { rounds: number; waitMs: number } {
  if (id === 'lockfile') return { rounds: 1, waitMs: quick ? 2000 : 12_000 };
  if (id === 'proper-lockfile') return { rounds: quick ? 1 : 3, waitMs: 15_000 };
  if (id.endsWith('stale2s')) return { rounds: quick ? 1 : 5, waitMs: 6000 };
  return { rounds: quick ? 2 : 9, waitMs: 5000 };
}

class Spares {
  readonly #ready: Worker[] = [];

  async fill(count: number): Promise<void> {
    while (this.#ready.length < count) this.#ready.push(await Worker.start('agent.ts', [], WORKER_LIFETIME_MS));
  }

  take(): Worker {
    const worker = this.#ready.shift();
    if (worker === undefined) throw new Error('no spare worker');
    return worker;
  }

  give(worker: Worker): void {
    this.#ready.push(worker);
  }

  has(worker: Worker): boolean {
    return this.#ready.includes(worker);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.#ready.splice(0).map((worker) => worker.stop()));
  }
}

type TrialOutcome =
  | { kind: 'acquired'; latencyMs: number; holderExitMs: number }
  | { kind: 'not-reacquired' }
  | { kind: 'granted-while-held' }
  | { kind: 'error'; error: string };

async function trial(id: ContenderId, waitMs: number, spares: Spares): Promise<TrialOutcome> {
  const target: Target = { dir: tempDir(`crash-${id}`), port: await freePort() };
  await spares.fill(2);
  const holder = spares.take();
  const waiter = spares.take();
  try {
    holder.send({ op: 'hold', contender: id, target });
    await holder.expect('held', 10_000);
    waiter.send({ op: 'wait', contender: id, target, waitMs });
    await waiter.expect('waiting', 10_000);
    // A random phase, so that the kill does not always fall at the same point of the poll period.
    await sleep(SETTLE_MS + Math.random() * POLL_PERIOD_MS);
    if (waiter.poll() !== undefined) return { kind: 'granted-while-held' };
    const killedAt = nowMs();
    holder.kill('SIGKILL');
    const answer = await waiter.next(waitMs + 10_000);
    if (answer.type === 'failed') return { kind: 'not-reacquired' };
    if (answer.type !== 'acquired') return { kind: 'error', error: JSON.stringify(answer) };
    const latencyMs = Number(answer.t) - killedAt;
    if (latencyMs < 0) return { kind: 'granted-while-held' };
    waiter.send({ op: 'release' });
    await waiter.expect('released', 10_000);
    spares.give(waiter);
    await holder.exited();
    return { kind: 'acquired', latencyMs, holderExitMs: (holder.exitedAt ?? Number.NaN) - killedAt };
  } catch (error) {
    return { kind: 'error', error: String(error) };
  } finally {
    holder.kill();
    if (!spares.has(waiter)) waiter.kill();
  }
}

export async function runCrash(scale: Scale): Promise<CrashResult> {
  const spares = new Spares();
  const entries: Partial<Record<ContenderId, CrashEntry>> = {};
  for (const id of CRASH_IDS) {
    const { waitMs } = plan(id, scale.quick);
    entries[id] = {
      waitMs,
      trials: 0,
      latenciesMs: [],
      latency: summarize([]),
      holderExitMs: summarize([]),
      notReacquired: 0,
      grantedWhileHeld: 0,
      errors: [],
    };
  }
  const exits = new Map<ContenderId, number[]>(CRASH_IDS.map((id) => [id, []]));
  const maxRounds = Math.max(...CRASH_IDS.map((id) => plan(id, scale.quick).rounds));
  try {
    for (let round = 0; round < maxRounds; round++) {
      for (const id of rotated(CRASH_IDS, round)) {
        const { rounds, waitMs } = plan(id, scale.quick);
        const entry = entries[id];
        if (round >= rounds || entry === undefined) continue;
        const outcome = await trial(id, waitMs, spares);
        entry.trials++;
        if (outcome.kind === 'acquired') {
          entry.latenciesMs.push(outcome.latencyMs);
          exits.get(id)?.push(outcome.holderExitMs);
        } else if (outcome.kind === 'not-reacquired') entry.notReacquired++;
        else if (outcome.kind === 'granted-while-held') entry.grantedWhileHeld++;
        else entry.errors.push(outcome.error);
        scale.log(`  crash round ${round + 1}/${maxRounds} ${id}: ${describe(outcome)}`);
      }
    }
  } finally {
    await spares.stopAll();
  }
  for (const [id, entry] of Object.entries(entries) as [ContenderId, CrashEntry][]) {
    entry.latency = summarize(entry.latenciesMs);
    entry.holderExitMs = summarize(exits.get(id) ?? []);
  }
  return { settleMs: SETTLE_MS, entries };
}

function describe(outcome: TrialOutcome): string {
  switch (outcome.kind) {
    case 'acquired':
      return `${outcome.latencyMs.toFixed(1)} ms`;
    case 'error':
      return `error ${outcome.error}`;
    default:
      return outcome.kind;
  }
}
