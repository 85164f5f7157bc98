import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock, type InterlockOption, lockPathFor } from '../../src/index.ts';
import { freePort } from '../helpers/free-port.ts';
import { deadPid, liveProcess, processStartOf, recordFor, writeRecord } from '../helpers/records.ts';
import { choicesFor, replayable, replayHint } from '../helpers/seed.ts';
import { fixture, spawnTs } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

// PORTLOCK_INTERLOCK, the test-wide mode switch (see .ci/run), races in that one mode instead.
const MODES = (
  process.env.PORTLOCK_INTERLOCK ? [process.env.PORTLOCK_INTERLOCK] : ['off', 'auto']
) as InterlockOption[];
const linuxOnly = { skip: process.platform !== 'linux' && 'abstract sockets and /proc are Linux only' };

const RACE_WORKERS = 8;
const RACE_ROUNDS = 108;
const RACE_TIMEOUT_MS = 90_000;
// Far enough ahead that every worker has the arm message before the barrier falls.
const BARRIER_LEAD_MS = 30;

const CHURN_WORKERS = 8;
const CHURN_KILLS = 40;
const CHURN_MAX_MS = 20_000;
// Fewer kills than this in CHURN_MAX_MS means the machine is far too slow for the test to mean much.
const CHURN_MIN_KILLS = 10;
const CHURN_MIN_ACQUISITIONS = 50;
// Each kill must be followed by new acquisitions, each within this: otherwise the lock is stuck.
const CHURN_PROGRESS_MS = 12_000;
// Acquisitions awaited after each kill before the next: the lock changes hands between kills, on
// a loaded machine too, where fewer happen by themselves in the short pause before a kill.
const CHURN_ACQUISITIONS_PER_KILL = 2;
// Leftovers of killed processes that a reclaim has not swept yet; a pile would be far more.
const LEFTOVER_LIMIT = 8;

// Eight workers load TypeScript at once; on a loaded machine that takes far longer than a round.
const WORKER_READY_MS = 60_000;

type Message = { type: string; [field: string]: unknown };

/** A worker process spoken to over IPC: its messages queue up until a test takes them. */
class Worker {
  readonly child: ChildProcess;
  readonly ready: Promise<Message>;
  #queue: Message[] = [];
  #waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  #stderr = '';
  #exit: string | undefined;
  #ready = false;

  constructor(
    script: string,
    options: object,
    hooks: { onMessage?: (message: Message) => void; onExit?: (signal: string | null, why: string) => void } = {},
  ) {
    this.child = spawnTs(fixture(script), [JSON.stringify(options)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      timeoutMs: 120_000,
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    this.child.on('message', (message: Message) => {
      hooks.onMessage?.(message);
      const at = this.#waiters.findIndex((waiter) => waiter.match(message));
      if (at < 0) this.#queue.push(message);
      else this.#waiters.splice(at, 1)[0]?.resolve(message);
    });
    this.child.once('exit', (code, signal) => {
      this.#exit = `worker ${this.child.pid} exited (${code ?? signal}) ${this.#stderr}`;
      for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(this.#exit));
      hooks.onExit?.(signal, this.#exit);
    });
    this.ready = this.next((m) => m.type === 'ready', WORKER_READY_MS);
    // A worker killed on purpose before it was ready must not fail the test through this promise.
    this.ready.then(
      () => {
        this.#ready = true;
      },
      () => {},
    );
  }

  /** Up and running its loop: killing it now tests something, killing it while it loads does not. */
  get isReady(): boolean {
    return this.#ready && this.#exit === undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  next(match: (message: Message) => boolean, timeoutMs = 15_000): Promise<Message> {
    const at = this.#queue.findIndex(match);
    if (at >= 0) return Promise.resolve(this.#queue.splice(at, 1)[0] as Message);
    if (this.#exit !== undefined) return Promise.reject(new Error(this.#exit));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter.resolve !== done);
        reject(new Error(`worker ${this.child.pid}: no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (message: Message) => {
        clearTimeout(timer);
        resolve(message);
      };
      this.#waiters.push({
        match,
        resolve: done,
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  send(message: object): void {
    this.child.send(message);
  }

  async stop(signal?: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    if (signal === undefined) this.child.disconnect();
    else this.child.kill(signal);
    await exited;
  }
}

const wallClock = (): number => performance.timeOrigin + performance.now();
const token = (): string => randomBytes(16).toString('hex');

/** Temp files and claim files next to the lock: what a process killed mid-acquire leaves. */
function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.tmp') || name.includes('.claim-'));
}

function tokenAt(path: string): string | undefined {
  return (JSON.parse(readFileSync(path, 'utf8')) as { token?: string }).token;
}

interface Stage {
  path: string;
  port: number;
  /** The pid of a process that has exited. */
  dead: () => number;
  /** The pid of a live process that never took a lock. */
  unrelated: number;
  round: number;
}

/** The ways a lock is found stale in the wild, each planted before a round of the race. */
const STALE_KINDS: { name: string; plant(stage: Stage): void }[] = [
  {
    name: 'dead pid',
    plant: ({ path, port, dead }) => writeRecord(path, recordFor(process.pid, { pid: dead(), port, token: token() })),
  },
  {
    name: 'live unrelated pid with another start time (pid reuse)',
    plant: ({ path, port, unrelated }) => {
      const processStart = String(Number(processStartOf(unrelated)) + 1);
      writeRecord(path, recordFor(unrelated, { port, processStart, token: token() }));
    },
  },
  {
    name: 'live unrelated pid from an earlier boot',
    plant: ({ path, port, unrelated }) =>
      writeRecord(path, recordFor(unrelated, { port, bootId: '00000000-0000-0000-0000-000000000000', token: token() })),
  },
  {
    name: 'original { pid, port, startedAt } format, dead pid',
    // startedAt in the past: should the pid be reused already, its new owner started later.
    plant: ({ path, port, dead }) =>
      writeRecord(path, { pid: dead(), port, startedAt: new Date(Date.now() - 60_000).toISOString() }),
  },
  {
    name: 'corrupt or empty file last written a minute ago',
    plant: ({ path, round }) => writeRecord(path, round % 2 === 0 ? '{"pid": 12' : '', 60_000),
  },
  {
    name: 'dead pid behind a chain of claims left by dead claimers',
    plant: ({ path, port, dead }) => {
      let identity = token();
      writeRecord(path, recordFor(process.pid, { pid: dead(), port, token: identity }));
      for (let link = 0; link < 2; link++) {
        const claimer = token();
        writeRecord(`${path}.claim-${identity}`, recordFor(process.pid, { pid: dead(), port, token: claimer }));
        identity = claimer;
      }
    },
  },
];

for (const interlock of MODES) {
  describe(`barrier race on a stale lock (interlock: ${interlock})`, linuxOnly, () => {
    const raceName = `hands the lock to exactly one of ${RACE_WORKERS} workers, every one of ${RACE_ROUNDS} rounds`;
    it(raceName, { timeout: RACE_TIMEOUT_MS }, (t) =>
      replayable(async () => {
        // The order of the news and the dead pids planted are drawn from the run's seed.
        const { pick, shuffled } = choicesFor(`race ${interlock}`);
        t.diagnostic(replayHint);
        const dir = tempDir();
        const port = await freePort();
        const path = lockPathFor({ port, dir });
        // Alive for the whole test, however long a loaded machine makes it.
        const unrelated = (await liveProcess(RACE_TIMEOUT_MS)).pid;
        const deadPids = await Promise.all(Array.from({ length: 4 }, () => deadPid()));
        const dead = (): number => pick(deadPids) as number;
        const workers = Array.from(
          { length: RACE_WORKERS },
          () => new Worker('race-worker.ts', { port, dir, interlock }),
        );
        await Promise.all(workers.map((worker) => worker.ready));
        const wins = new Map<number, number>();
        const spreads: number[] = [];
        let contenders = 0;

        for (let round = 0; round < RACE_ROUNDS; round++) {
          const kind = STALE_KINDS[round % STALE_KINDS.length] as (typeof STALE_KINDS)[number];
          const where = `round ${round} (${kind.name})`;
          kind.plant({ path, port, dead, unrelated, round });
          const results = workers.map((worker) => worker.next((m) => m.type === 'result' && m.round === round));
          const deadline = wallClock() + BARRIER_LEAD_MS;
          // In a new order every round, so that no worker is always first to hear the news.
          for (const worker of shuffled(workers)) worker.send({ type: 'arm', round, deadline });
          const outcomes = await Promise.all(results);

          const failures = outcomes.filter((o) => !o.won && !o.heldError);
          assert.deepEqual(failures, [], `${where}: a loss must be a LockHeldError`);
          const winners = outcomes.filter((o) => o.won);
          assert.equal(winners.length, 1, `${where}: ${winners.length} winners: ${JSON.stringify(winners)}`);
          const winner = winners[0] as Message;
          assert.equal(tokenAt(path), winner.token, `${where}: the lock file carries the winner's record`);
          if (interlock === 'off') {
            for (const loser of outcomes.filter((o) => !o.won)) {
              const { holderPid } = loser.error as { holderPid?: number };
              assert.equal(holderPid, winner.pid, `${where}: a refusal names the winner, not the stale holder`);
            }
          }
          const lates = outcomes.map((o) => o.late as number);
          const first = Math.min(...lates);
          spreads.push(Math.max(...lates) - first);
          contenders += lates.filter((late) => late - first < 1).length;
          wins.set(winner.pid as number, (wins.get(winner.pid as number) ?? 0) + 1);

          const holder = workers.find((worker) => worker.pid === winner.pid) as Worker;
          const released = holder.next((m) => m.type === 'released' && m.round === round);
          holder.send({ type: 'release', round });
          assert.equal((await released).error, undefined, `${where}: release failed`);
          assert.equal(existsSync(path), false, `${where}: release removes the lock file`);
          if (interlock === 'off') assert.deepEqual(leftovers(dir), [], `${where}: nothing is left beside the lock`);
          else assert.ok(leftovers(dir).length <= LEFTOVER_LIMIT, `${where}: leftovers pile up: ${leftovers(dir)}`);
        }

        await Promise.all(workers.map((worker) => worker.stop()));
        spreads.sort((a, b) => a - b);
        const median = spreads[Math.floor(spreads.length / 2)] ?? 0;
        t.diagnostic(
          `wins per worker: ${[...wins.values()].join(' ')}; first to last start after the barrier: ` +
            `median ${median.toFixed(2)} ms, worst ${(spreads.at(-1) ?? 0).toFixed(2)} ms; ` +
            `workers starting within 1 ms of the first: ${(contenders / RACE_ROUNDS).toFixed(1)} per round`,
        );
      }),
    );
  });

  describe(`SIGKILL churn (interlock: ${interlock})`, linuxOnly, () => {
    const churnName = `never has two holders, and the lock is taken again, through up to ${CHURN_KILLS} kills at random moments`;
    it(churnName, { timeout: 90_000 }, (t) =>
      replayable(async () => {
        // Which worker dies, and when, is drawn from the run's seed.
        const { int, chance, pick } = choicesFor(`churn ${interlock}`);
        t.diagnostic(replayHint);
        const dir = tempDir();
        const port = await freePort();
        const log = join(tempDir(), 'reports.jsonl');
        writeFileSync(log, '');
        const options = { port, dir, interlock, observer: `\0portlock-observer-${randomUUID()}`, log };

        let acquisitions = 0;
        let timeouts = 0;
        const crashes: string[] = [];
        let holder: Worker | undefined;
        let onAcquired: (() => void) | undefined;
        const pool = new Set<Worker>();
        const spawnWorker = (): Worker => {
          const worker: Worker = new Worker('churn-worker.ts', options, {
            onMessage: (message) => {
              if (message.type === 'acquired') {
                acquisitions++;
                holder = worker;
                onAcquired?.();
              } else if (message.type === 'releasing' && holder === worker) {
                holder = undefined;
              } else if (message.type === 'timeout') {
                timeouts++;
              }
            },
            // Only the test kills workers, and only with SIGKILL: any other exit is a crash.
            onExit: (signal, why) => {
              if (signal !== 'SIGKILL') crashes.push(why);
            },
          });
          pool.add(worker);
          return worker;
        };
        /** Resolves after `count` more acquisitions, each within CHURN_PROGRESS_MS of the last. */
        const acquisitionsAfter = (count: number): Promise<void> =>
          new Promise((resolve, reject) => {
            const target = acquisitions + count;
            let timer: NodeJS.Timeout | undefined;
            const arm = () => {
              clearTimeout(timer);
              timer = setTimeout(
                () => reject(new Error(`no acquisition within ${CHURN_PROGRESS_MS} ms: the lock is stuck`)),
                CHURN_PROGRESS_MS,
              );
            };
            arm();
            onAcquired = () => {
              if (acquisitions < target) return arm();
              clearTimeout(timer);
              onAcquired = undefined;
              resolve();
            };
          });
        const kill = (worker: Worker): void => {
          pool.delete(worker);
          if (holder === worker) holder = undefined;
          worker.child.kill('SIGKILL');
          spawnWorker();
        };
        const leftoversSeen = new Set<string>();
        let mostLeftovers = 0;

        await Promise.all(Array.from({ length: CHURN_WORKERS }, () => spawnWorker().ready));
        const started = performance.now();
        let kills = 0;
        while (kills < CHURN_KILLS && performance.now() - started < CHURN_MAX_MS) {
          // A random moment shortly after the latest acquisition: anywhere from publish to release.
          await sleep(int(0, 40));
          const victim = holder !== undefined && chance(0.5) ? holder : pick([...pool].filter((w) => w.isReady));
          const progress = acquisitionsAfter(CHURN_ACQUISITIONS_PER_KILL);
          if (victim === undefined) {
            await progress;
            continue;
          }
          kill(victim);
          kills++;
          // A second kill soon after a holder dies tends to land on a worker in the middle of reclaiming.
          let secondKill = false;
          if (chance(0.4)) {
            await sleep(int(0, 20));
            const second = pick([...pool].filter((w) => w.isReady));
            if (second !== undefined) {
              kill(second);
              kills++;
              secondKill = true;
            }
          }
          const left = leftovers(dir);
          for (const name of left) leftoversSeen.add(name);
          mostLeftovers = Math.max(mostLeftovers, left.length);
          await progress;
          if (secondKill) await acquisitionsAfter(CHURN_ACQUISITIONS_PER_KILL);
        }
        // The end comes at a random moment too: the last holder dies holding the lock, or mid-acquire.
        await sleep(int(0, 40));
        await Promise.all([...pool].map((worker) => worker.stop('SIGKILL')));

        const reports = readFileSync(log, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { kind: string });
        t.diagnostic(
          `${kills} kills, ${acquisitions} acquisitions, ${timeouts} waits ran out, ` +
            `${leftoversSeen.size} leftovers seen during the run, ${Math.round(performance.now() - started)} ms`,
        );
        assert.deepEqual(
          reports.filter((r) => r.kind === 'violation'),
          [],
          'two holders at once',
        );
        assert.deepEqual(
          reports.filter((r) => r.kind === 'error'),
          [],
          'workers failed other than by a refusal',
        );
        assert.deepEqual(crashes, [], 'workers crashed');
        assert.ok(kills >= CHURN_MIN_KILLS, `only ${kills} kills in ${CHURN_MAX_MS} ms`);
        assert.ok(mostLeftovers <= LEFTOVER_LIMIT, `${mostLeftovers} leftovers at once during the run`);
        const enough = Math.max(CHURN_MIN_ACQUISITIONS, CHURN_ACQUISITIONS_PER_KILL * kills);
        assert.ok(acquisitions >= enough, `only ${acquisitions} acquisitions for ${kills} kills`);

        // Whatever the kills left behind, the lock is taken at once, with nothing cleaned up by hand.
        const path = lockPathFor({ port, dir });
        const lock = await acquireLock({ port, dir, interlock });
        assert.equal(tokenAt(path), lock.record.token);
        const left = leftovers(dir);
        assert.ok(left.length <= LEFTOVER_LIMIT, `leftovers pile up: ${left.join(' ')}`);
        await lock.release();
        assert.equal(existsSync(path), false);
      }),
    );
  });
}
