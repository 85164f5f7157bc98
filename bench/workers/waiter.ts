// A waiter the bench drives over stdin, for the waiting scenario: `hold` takes the lock at once and
// keeps it until `release`; `wait` waits for it (reporting the CPU time and context switches it
// spent waiting, from its call to the grant), keeps it `holdMs`, and releases it; with `prime`,
// after a first lock of its own outside that window (which `prime` takes alone, ahead of time).
// Times are CLOCK_MONOTONIC ms.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, type LockHandle } from '../../src/index.ts';
import { errorText, nowMs, sleep } from '../common.ts';
import { reply, serveCommands } from './serve.ts';

interface Command {
  op: 'hold' | 'wait' | 'release' | 'prime';
  port: number;
  dir: string;
  holdMs?: number;
  /** Take and release a scratch lock once before waiting, outside the measured window. */
  prime?: boolean;
}

let primed = false;

/**
 * A process's first lock: the library's code compiled, and the parts of Node it uses loaded (the
 * first listen loads Node's cluster module; the first token, its crypto), once per process. That
 * is start-up, not waiting: a primed waiter's measured CPU is what waiting costs it.
 */
async function primeOnce(): Promise<void> {
  if (primed) return;
  primed = true;
  const dir = mkdtempSync(join(tmpdir(), 'portlock-bench-prime-'));
  try {
    const lock = await acquireLock({ key: 'prime', dir });
    await lock.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Context switches of this process's main thread so far: voluntary (it slept, waiting for an
 * event) and in all (with those where the kernel preempted it, which grow with the machine's load).
 */
function contextSwitches(): { voluntary: number; total: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const count = (pattern: RegExp) => Number(pattern.exec(status)?.[1] ?? Number.NaN);
  const voluntary = count(/^voluntary_ctxt_switches:\s+(\d+)$/m);
  return { voluntary, total: voluntary + count(/^nonvoluntary_ctxt_switches:\s+(\d+)$/m) };
}

let held: LockHandle | undefined;

/** How long after a release a worker tells of it (see `wait`). */
const REPORT_DELAY_MS = 20;

async function handle(command: Command): Promise<void> {
  const { port, dir } = command;
  switch (command.op) {
    case 'prime':
      await primeOnce();
      reply({ type: 'primed', t: nowMs() });
      return;
    case 'hold':
      held = await acquireLock({ port, dir });
      reply({ type: 'held', t: nowMs(), pid: process.pid });
      return;
    case 'wait': {
      if (command.prime) await primeOnce();
      const switches = contextSwitches();
      const cpu = process.cpuUsage();
      const t = nowMs();
      // Told once the call has begun: its first steps, up to its first wait, run in this turn, and
      // its place in the queue is from then. Told before the call, the bench sent the next waiter
      // its command meanwhile, and a waiter slow to come to the call (cold code, two busy cores)
      // queued behind that next one, rightly, and counted as served out of order.
      const waiting = acquireLock({ port, dir, wait: 300_000 });
      reply({ type: 'waiting', t });
      try {
        const lock = await waiting;
        const acquired = nowMs();
        const used = process.cpuUsage(cpu);
        reply({
          type: 'acquired',
          t: acquired,
          cpuMs: (used.user + used.system) / 1000,
          switches: contextSwitches().total - switches.total,
          voluntarySwitches: contextSwitches().voluntary - switches.voluntary,
        });
        await sleep(command.holdMs ?? 0);
        // Taken just before the release: the gap to the next holder starts here.
        const releasing = nowMs();
        await lock.release();
        // Told a little later: the bench reading it at once would take a core from the next
        // holder in the middle of the hand-over it measures.
        await sleep(REPORT_DELAY_MS);
        reply({ type: 'released', t: releasing });
      } catch (error) {
        reply({ type: 'failed', t: nowMs(), error: errorText(error) });
      }
      return;
    }
    case 'release': {
      // Taken just before the release, and told later, as for a waiter.
      const releasing = nowMs();
      await held?.release();
      held = undefined;
      await sleep(REPORT_DELAY_MS);
      reply({ type: 'released', t: releasing });
      return;
    }
  }
}

await serveCommands(handle);
