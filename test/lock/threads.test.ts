import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { acquireLock } from '../../src/index.ts';
import { fixture } from '../helpers/spawn.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const THREADS = 4;
const ROUNDS = 200;

function startWorkers(options: Record<string, unknown>, count: number) {
  const barrier = new SharedArrayBuffer(4);
  const workers = Array.from(
    { length: count },
    () => new Worker(fixture('thread-racer.mjs'), { workerData: { options, barrier } }),
  );
  return { workers, gate: new Int32Array(barrier) };
}

const next = <T>(worker: Worker): Promise<T> => once(worker, 'message').then(([message]) => message as T);

for (const interlock of ['auto', 'off'] as const) {
  describe(`worker threads of one process, interlock '${interlock}'`, () => {
    it(`${THREADS} threads racing for one lock, ${ROUNDS} rounds: exactly one holder each round`, {
      timeout: 60_000,
    }, async () => {
      const dir = tempDir();
      const { workers, gate } = startWorkers({ key: 'threads', dir, interlock }, THREADS);
      try {
        for (let round = 1; round <= ROUNDS; round++) {
          const armed = workers.map((worker) => next<string>(worker));
          for (const worker of workers) worker.postMessage({ round });
          await Promise.all(armed);
          const results = workers.map((worker) => next<{ acquired: boolean; reason?: string }>(worker));
          Atomics.store(gate, 0, round);
          Atomics.notify(gate, 0);
          const outcome = await Promise.all(results);
          const holders = outcome.flatMap((result, i) => (result.acquired ? [i] : []));
          assert.equal(holders.length, 1, `round ${round}: holders ${holders.join(', ')}`);
          for (const result of outcome) if (!result.acquired) assert.equal(result.reason, 'LockHeldError');
          const holder = workers[holders[0] as number] as Worker;
          const released = next<string>(holder);
          holder.postMessage('release');
          await released;
        }
      } finally {
        await Promise.all(workers.map((worker) => worker.terminate()));
      }
    });

    it("takes a terminated worker's lock at the next acquire, while its process lives on", {
      timeout: 30_000,
    }, async () => {
      const dir = tempDir();
      const { workers } = startWorkers({ key: 'terminated', dir, interlock }, 1);
      const [worker] = workers as [Worker];
      try {
        const took = next<{ acquired: boolean }>(worker);
        worker.postMessage('hold');
        assert.equal((await took).acquired, true);
        await assert.rejects(acquireLock({ key: 'terminated', dir, interlock }), { name: 'LockHeldError' });
      } finally {
        await worker.terminate();
      }
      const lock = await acquireLock({ key: 'terminated', dir, interlock });
      await lock.release();
    });
  });
}
