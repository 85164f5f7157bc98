// `npm run bench`: every scenario in one run, then bench/results.json and BENCHMARKS.md.
// `--quick` shrinks every loop for a smoke run and writes its files to the temp directory instead;
// `--only=crash,refusal` runs just those scenarios (uncontended, crash, contention, refusal, list,
// ports, waiting, loop, stop).
// Lock files go under TMPDIR: point it elsewhere when the host's /tmp is busy with other work.
// `--node=PATH[,PATH]` (or PORTLOCK_BENCH_NODE) adds Node binaries on which the refusal scenario also
// measures loading and refusal, and the waiting scenario runs again; the bench itself runs on the `node` that npm finds (to run it all on
// another Node, put that Node first in PATH). A run of the refusal scenario, even alone with
// `--only=refusal`, renews BENCHMARKS.md's "Loading and refusal" block and bench/loading.json.
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, tmpdir, type } from 'node:os';
import { join } from 'node:path';
import { killAll } from './children.ts';
import { errorText, nowMs, removeTempDirs, repoRoot, type Scale } from './common.ts';
import { runContention } from './contention.ts';
import { runCrash } from './crash-reacquire.ts';
import { runForcedStop } from './forced-stop.ts';
import { runFreePort } from './free-port.ts';
import { runListLocks } from './list-locks.ts';
import { loadingGoals, writeLoadingMarkdown } from './loading-report.ts';
import { runRefusal, selectedNodes } from './refusal.ts';
import { evaluateGoals, type Outcome, type Results, writeJson, writeMarkdown } from './report.ts';
import { runTightLoop } from './tight-loop.ts';
import { runUncontended } from './uncontended.ts';
import { runWaiting, type WaitingResult } from './waiting.ts';

// A hung scenario must not leave children behind: stop the whole bench after this long. A full run
// takes some ten minutes on two cores, two of them setting up listLocks's 10,000 held locks.
const DEADLINE_MS = 14 * 60_000;

const quick = process.argv.includes('--quick');
const only = process.argv
  .find((arg) => arg.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const nodes = selectedNodes(process.argv, process.env);
const started = nowMs();
const loadAtStart = loadavg()[0] ?? Number.NaN;
const commit = describeCommit();
const scale: Scale = {
  quick,
  log: (message) => console.log(`[${((nowMs() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`),
};

function describeCommit(): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown';
  return git('status', '--porcelain', '--', 'src') === '' ? head : `${head} (with uncommitted changes in src/)`;
}

process.on('exit', () => {
  killAll();
  removeTempDirs();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
setTimeout(() => {
  console.error(`bench: still running after ${DEADLINE_MS / 60_000} minutes; stopping`);
  process.exit(1);
}, DEADLINE_MS).unref();

async function scenario<T>(name: string, id: string, run: (scale: Scale) => Promise<T>): Promise<Outcome<T>> {
  if (only !== undefined && !only.includes(id)) return { error: 'skipped (--only)' };
  scale.log(`${name}...`);
  try {
    return await run(scale);
  } catch (error) {
    scale.log(`${name} failed: ${errorText(error)}`);
    return { error: errorText(error) };
  } finally {
    killAll();
  }
}

const uncontended = await scenario('1. uncontended acquire + release', 'uncontended', runUncontended);
const crash = await scenario('2. crash to re-acquire', 'crash', runCrash);
const contention = await scenario('3. contention', 'contention', runContention);
const refusal = await scenario('4. refusal latency and loading', 'refusal', (s) => runRefusal(s, nodes));
const waiting = await scenario('7. waiting in line', 'waiting', (s) => runWaiting(s));
// Again on each other Node given: Node 20 takes a lock differently (see runWaiting).
const waitingOnOtherNodes: Outcome<WaitingResult>[] = [];
for (const node of nodes.slice(1)) {
  waitingOnOtherNodes.push(await scenario(`7. waiting in line, on ${node}`, 'waiting', (s) => runWaiting(s, node)));
}
const tightLoop = await scenario('8. a tight loop of acquire and release', 'loop', runTightLoop);
const forcedStop = await scenario('9. a forced stop', 'stop', runForcedStop);
// Last, though reported in their places: these two start and end thousands of processes, locks
// and sockets, and the hand-overs of the waiting scenario, measured after them, took 2.1 to 3.1 ms
// against 1.7 to 2.1 ms on the same machine without them (Node 20): the machine's state, which
// took minutes to pass, not the library's.
const listLocks = await scenario('5. listLocks', 'list', runListLocks);
const freePort = await scenario('6. a free port for each process', 'ports', runFreePort);

const results: Results = {
  environment: {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: availableParallelism(),
    os: `${type()} ${release()}`,
    commit,
    tempBase: tmpdir(),
    loadAverage: [loadAtStart, loadavg()[0] ?? Number.NaN],
    quick,
  },
  durationS: (nowMs() - started) / 1000,
  uncontended,
  crash,
  contention,
  refusal,
  listLocks,
  freePort,
  waiting,
  ...(waitingOnOtherNodes.length > 0 && { waitingOnOtherNodes }),
  tightLoop,
  forcedStop,
};

const scratch = quick || only !== undefined;
const outDir = scratch ? tmpdir() : repoRoot;
const jsonPath = scratch ? join(outDir, 'portlock-bench-quick.json') : join(repoRoot, 'bench', 'results.json');
const markdownPath = join(outDir, scratch ? 'portlock-bench-quick.md' : 'BENCHMARKS.md');
writeJson(jsonPath, results);
writeMarkdown(markdownPath, results);
if (!quick && !('error' in refusal)) {
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  writeJson(join(repoRoot, 'bench', 'loading.json'), { environment: results.environment, refusal });
  writeLoadingMarkdown(join(repoRoot, 'BENCHMARKS.md'), refusal, results.environment, command);
}
for (const row of [...evaluateGoals(results), ...loadingGoals(refusal)])
  console.log(`${row.met.padEnd(3)}  ${row.goal}: ${row.measured}`);
scale.log(`wrote ${jsonPath} and ${markdownPath}`);
process.exit(0);
