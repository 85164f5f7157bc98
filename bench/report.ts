import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, type Summary } from './common.ts';
import { type ContenderId, contenders } from './contenders.ts';
import { CONTENTION_IDS, CONTENTION_NS, type ContentionResult } from './contention.ts';
import { CRASH_IDS, type CrashResult } from './crash-reacquire.ts';
import type { ForcedStopResult } from './forced-stop.ts';
import { type FreePortResult, PORT_NS } from './free-port.ts';
import { LIST_MODES, LIST_SIZES, type ListLocksResult, listKey } from './list-locks.ts';
import { FINDER_IDS, finders } from './port-finders.ts';
import type { RefusalResult } from './refusal.ts';
import type { TightLoopResult } from './tight-loop.ts';
import { UNCONTENDED_IDS, type UncontendedId, type UncontendedResult } from './uncontended.ts';
import type { WaitingResult } from './waiting.ts';

export interface Environment {
  date: string;
  node: string;
  cpu: string;
  cores: number;
  os: string;
  /** Where the per-run directories were made (TMPDIR): every lock file lives there. */
  tempBase: string;
  /** The commit measured, as it was when the bench started, and whether src/ had changes not in it. */
  commit: string;
  /** One-minute load average when the bench started and when it ended: other work on the host skews every number. */
  loadAverage: [number, number];
  quick: boolean;
}

export type Outcome<T> = T | { error: string };

export interface Results {
  environment: Environment;
  durationS: number;
  uncontended: Outcome<UncontendedResult>;
  crash: Outcome<CrashResult>;
  contention: Outcome<ContentionResult>;
  refusal: Outcome<RefusalResult>;
  listLocks: Outcome<ListLocksResult>;
  /** Absent from results written before this scenario existed. */
  freePort?: Outcome<FreePortResult>;
  /** Absent from results written before the waiting scenario existed. */
  waiting?: Outcome<WaitingResult>;
  /** The waiting scenario again, on each other Node the bench was given (`--node`). */
  waitingOnOtherNodes?: Outcome<WaitingResult>[];
  /** Absent from results written before the tight-loop scenario existed. */
  tightLoop?: Outcome<TightLoopResult>;
  /** Absent from results written before the forced-stop scenario existed. */
  forcedStop?: Outcome<ForcedStopResult>;
}

export interface GoalRow {
  goal: string;
  measured: string;
  met: 'yes' | 'no' | 'n/a';
}

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

function ok<T extends object>(outcome: Outcome<T> | undefined): T | undefined {
  return outcome === undefined || 'error' in outcome ? undefined : (outcome as T);
}

const us = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(value < 100 ? 1 : 0)} µs` : 'n/a');
const ms = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(value < 100 ? 1 : 0)} ms` : 'n/a');
const times = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a');
const met = (condition: boolean | undefined): GoalRow['met'] =>
  condition === undefined ? 'n/a' : condition ? 'yes' : 'no';
const labelOf = (id: UncontendedId): string =>
  id === 'floor' ? 'raw floor (open O_EXCL, close, unlink)' : contenders[id].label;

function crashMeasured(crash: CrashResult, id: ContenderId): string {
  const entry = crash.entries[id];
  if (entry === undefined) return 'n/a';
  const got = `${entry.latenciesMs.length}/${entry.trials} re-acquired`;
  if (entry.latenciesMs.length === 0) return `${got} within ${ms(entry.waitMs)}`;
  return `median ${ms(entry.latency.median)}, worst ${ms(entry.latency.max)} (${got})`;
}

export function evaluateGoals(results: Results): GoalRow[] {
  const rows: GoalRow[] = [];
  const un = ok(results.uncontended);
  const op = (id: UncontendedId): number => un?.perOpUs[id].median ?? Number.NaN;
  const ratio = (id: UncontendedId): number => un?.ratioToFloor[id].median ?? Number.NaN;
  // The socket file is an interlock as the abstract socket is (a bind, a link and an unlink more): the same limit.
  for (const [mode, limit] of [
    ['off', 3],
    ['auto', 5],
    ['socket-file', 5],
  ] as const) {
    const id = `portlock-${mode}` as const;
    rows.push({
      goal: `Uncontended acquire + release within ${limit}x the raw floor, interlock ${mode}`,
      measured:
        un === undefined
          ? 'failed'
          : `${times(ratio(id))} (median of per-round ratios; medians ${us(op(id))} vs ${us(op('floor'))})`,
      met: met(un === undefined ? undefined : ratio(id) <= limit),
    });
  }
  for (const other of ['proper-lockfile', 'lockfile'] as const) {
    const slowest = Math.max(op('portlock-auto'), op('portlock-off'), op('portlock-socket-file'));
    rows.push({
      goal: `Uncontended: faster than ${other}`,
      measured:
        un === undefined
          ? 'failed'
          : `portlock ${us(op('portlock-off'))} (off) / ${us(op('portlock-auto'))} (auto) / ${us(op('portlock-socket-file'))} (socket-file) vs ${us(op(other))}: ${times(op(other) / slowest)} as fast`,
      met: met(un === undefined ? undefined : slowest < op(other)),
    });
  }
  const crash = ok(results.crash);
  for (const id of ['portlock-auto', 'portlock-off', 'portlock-socket-file'] as const) {
    const entry = crash?.entries[id];
    rows.push({
      goal: `Crash to re-acquire under 50 ms (median), ${contenders[id].label}`,
      measured: crash === undefined ? 'failed' : crashMeasured(crash, id),
      met: met(
        entry === undefined
          ? undefined
          : entry.latenciesMs.length === entry.trials && entry.grantedWhileHeld === 0 && entry.latency.median < 50,
      ),
    });
  }
  const contention = ok(results.contention);
  const overlapsOf = (id: ContenderId): string =>
    CONTENTION_NS.map((n) => `N=${n}: ${contention?.cells[String(n)]?.[id]?.overlaps ?? 'n/a'}`).join(', ');
  for (const id of ['portlock-auto', 'portlock-off', 'portlock-socket-file'] as const) {
    const total = CONTENTION_NS.reduce(
      (sum, n) => sum + (contention?.cells[String(n)]?.[id]?.overlaps ?? Number.NaN),
      0,
    );
    rows.push({
      goal: `Zero moments with two holders at every N, ${contenders[id].label}`,
      measured: contention === undefined ? 'failed' : overlapsOf(id),
      met: met(contention === undefined ? undefined : total === 0),
    });
  }
  for (const id of ['proper-lockfile', 'lockfile'] as const) {
    rows.push({
      goal: `(for comparison) moments with two holders, ${contenders[id].label}`,
      measured: contention === undefined ? 'failed' : overlapsOf(id),
      met: 'n/a',
    });
  }
  const list = ok(results.listLocks);
  for (const mode of LIST_MODES) {
    const per = (size: number): number => list?.entries[listKey(mode, size)]?.perRecordUs.median ?? Number.NaN;
    const growth = per(10_000) / per(1000);
    rows.push({
      goal: `listLocks linear (interlock ${mode}): time per record at 10,000 within 1.5x of that at 1,000`,
      measured: list === undefined ? 'failed' : `${us(per(1000))} -> ${us(per(10_000))} per record (${times(growth)})`,
      met: met(list === undefined ? undefined : growth <= 1.5),
    });
  }
  rows.push(...freePortGoals(results.freePort));
  const onOtherNodes = results.waitingOnOtherNodes ?? [];
  rows.push(...waitingGoals(ok(results.waiting), onOtherNodes.length > 0));
  for (const other of onOtherNodes) rows.push(...waitingGoals(ok(other), true));
  const loop = ok(results.tightLoop);
  rows.push({
    goal: `A tight loop of acquire + release: heap flat within 1 MB over ${loop?.cycles.toLocaleString('en') ?? '200,000'} cycles, and timers run`,
    measured:
      loop === undefined
        ? 'failed'
        : `${(loop.heapGrowthBytes / 1024).toFixed(0)} KiB after GC (peak ${(loop.heapPeakGrowthBytes / 1024 / 1024).toFixed(1)} MiB); a 10 ms timer fired ${loop.timerTicks} of ${loop.timerTicksDue} times`,
    met: met(loop === undefined ? undefined : loop.heapGrowthBytes <= 1024 * 1024 && loop.timerTicks > 0),
  });
  rows.push(forcedStopGoal(results.forcedStop));
  return rows;
}

/**
 * A forced stop of a holder that ignores SIGTERM waits one step's timeout after SIGTERM, then sends
 * SIGKILL: within that timeout and one second more, far from the default 10 s a step.
 */
function forcedStopGoal(outcome: Outcome<ForcedStopResult> | undefined): GoalRow {
  const stop = ok(outcome);
  const limit = (stop?.timeoutMs ?? 1000) + 1000;
  return {
    goal: `A forced stop of a holder that ignores SIGTERM, timeout ${ms(stop?.timeoutMs ?? 1000)} a step: under ${ms(limit)} (median), ended by SIGKILL`,
    measured:
      stop === undefined
        ? outcome === undefined
          ? 'not run'
          : 'failed'
        : `${ms(stop.stopMs.median)} (${ms(stop.stopMs.min)} – ${ms(stop.stopMs.max)} over ${stop.stopMs.n})${stop.failures.length === 0 ? '' : `; ${stop.failures.join('; ')}`}`,
    met: met(stop === undefined ? undefined : stop.stopMs.median < limit && stop.failures.length === 0),
  };
}

function freePortGoals(outcome: Outcome<FreePortResult> | undefined): GoalRow[] {
  const ports = ok(outcome);
  const cell = (n: number, id: (typeof FINDER_IDS)[number]) => ports?.cells[String(n)]?.[id];
  const perN = (text: (n: number) => string): string => PORT_NS.map((n) => `N=${n}: ${text(n)}`).join('; ');
  const rows: GoalRow[] = [];
  const portlockClean = PORT_NS.every((n) => {
    const c = cell(n, 'portlock');
    return c !== undefined && c.collisionRounds === 0 && c.errors.length === 0;
  });
  rows.push({
    goal: 'A free port for each process: zero collisions for portlock acquirePort at every N',
    measured:
      ports === undefined
        ? 'failed'
        : perN((n) => {
            const c = cell(n, 'portlock');
            return c === undefined ? 'n/a' : `${c.collisionRounds}/${c.rounds} rounds, ${c.eaddrinuse} EADDRINUSE`;
          }),
    met: met(ports === undefined ? undefined : portlockClean),
  });
  const ratio = (n: number): number =>
    (cell(n, 'portlock')?.msPerPort.median ?? Number.NaN) / (cell(n, 'get-port')?.msPerPort.median ?? Number.NaN);
  rows.push({
    goal: "A free port for each process: time per port within 2x of get-port's (median)",
    measured:
      ports === undefined
        ? 'failed'
        : perN(
            (n) =>
              `${ms(cell(n, 'portlock')?.msPerPort.median ?? Number.NaN)} vs ${ms(cell(n, 'get-port')?.msPerPort.median ?? Number.NaN)} (${times(ratio(n))})`,
          ),
    met: met(ports === undefined ? undefined : PORT_NS.every((n) => ratio(n) <= 2)),
  });
  for (const id of FINDER_IDS.filter((id) => id !== 'portlock')) {
    rows.push({
      goal: `(for comparison) rounds with a collision, ${finders[id].label}`,
      measured:
        ports === undefined
          ? 'failed'
          : perN((n) => {
              const c = cell(n, id);
              return c === undefined ? 'n/a' : `${c.collisionRounds}/${c.rounds} rounds, ${c.eaddrinuse} EADDRINUSE`;
            }),
      met: 'n/a',
    });
  }
  return rows;
}

/** `perNode`: the scenario ran on several Nodes, and each row names its own. */
function waitingGoals(waiting: WaitingResult | undefined, perNode = false): GoalRow[] {
  const n = waiting?.waiters ?? 50;
  const on = perNode && waiting?.node !== undefined ? `, Node ${waiting.node}` : '';
  const row = (goal: string, measured: (w: WaitingResult) => string, pass: (w: WaitingResult) => boolean) => ({
    goal: `${goal}${on}`,
    measured: waiting === undefined ? 'failed' : measured(waiting),
    met: met(waiting === undefined ? undefined : pass(waiting)),
  });
  return [
    row(
      `Waiting in line (${n} waiters): Kendall tau between arrival and service order >= 0.9`,
      (w) => `${w.kendallTau.toFixed(3)} (${w.servedAheadOfEarlier} served before an earlier arrival)`,
      (w) => w.kendallTau >= 0.9,
    ),
    row(
      `Waiting in line (${n} waiters): waiters' CPU while waiting < 5 % of a core in all`,
      (w) =>
        `${w.waitersCpuPercentOfCore.toFixed(2)} % (${ms(w.waitersCpuMs)} over ${ms(w.waitingWallMs)}; each waiter's first lock in its process outside the window${w.coldStart === undefined ? '' : `; with it inside, as measured before: ${w.coldStart.waitersCpuPercentOfCore.toFixed(2)} %`})`,
      (w) => w.waitersCpuPercentOfCore < 5,
    ),
    row(
      'Waiting in line: median hand-over gap <= 2 ms, interlock auto',
      (w) =>
        `${ms(w.handOverGap.median)} (range ${ms(w.handOverGap.min)} – ${ms(w.handOverGap.max)}; ${w.overlaps} overlaps)`,
      (w) => w.handOverGap.median <= 2 && w.overlaps === 0,
    ),
    row(
      "Waiting in line: after a SIGKILL, the first waiter holds the lock within 2 ms of the holder's exit (median)",
      (w) =>
        `${ms(w.killHandOver.median)} (range ${ms(w.killHandOver.min)} – ${ms(w.killHandOver.max)}, ${w.killHandOver.n} trials; ${w.killOutOfOrder} served out of order)`,
      (w) => w.killHandOver.n > 0 && w.killHandOver.median <= 2 && w.killOutOfOrder === 0,
    ),
  ];
}

function tightLoopSection(outcome: Outcome<TightLoopResult> | undefined): string {
  if (outcome === undefined) return 'Not run.';
  if ('error' in outcome) return failed(outcome);
  const loop = outcome;
  return [
    `One process runs \`const lock = await acquireLock({ key, dir }); await lock.release()\` ${loop.cycles.toLocaleString('en')} times in a row (interlock auto, after 1,000 cycles of warm-up), with a 10 ms interval timer set. The heap is measured after a full GC before and after the loop.`,
    '',
    table(
      ['Measure', 'Value'],
      [
        ['per acquire + release', us(loop.perCycleUs)],
        ['10 ms timer firings during the loop (of those due)', `${loop.timerTicks} of ${loop.timerTicksDue}`],
        ['heap growth after GC', `${(loop.heapGrowthBytes / 1024).toFixed(0)} KiB`],
        ['heap peak during the loop, above the start', `${(loop.heapPeakGrowthBytes / 1024 / 1024).toFixed(1)} MiB`],
      ],
    ),
  ].join('\n');
}

function forcedStopSection(outcome: Outcome<ForcedStopResult> | undefined): string {
  if (outcome === undefined) return 'Not run.';
  if ('error' in outcome) return failed(outcome);
  const { timeoutMs, stopMs, failures } = outcome;
  return [
    `\`stopLock({ port, dir, force: true, timeout: ${timeoutMs} })\` against a process that holds the port's lock, refuses stop requests and ignores SIGTERM, from the call to its result; a fresh holder each round.`,
    '',
    table(
      ['Measure', 'Value'],
      [
        ['forced stop, median', ms(stopMs.median)],
        ['range', `${ms(stopMs.min)} – ${ms(stopMs.max)} over ${stopMs.n} rounds`],
        ['rounds not ended by SIGKILL', failures.length === 0 ? '–' : failures.join('; ')],
      ],
    ),
  ].join('\n');
}

/** `again`: the same scenario on another Node, told by its heading and table alone. */
function waitingSection(outcome: Outcome<WaitingResult> | undefined, again = false): string {
  if (outcome === undefined) return 'Not run.';
  if ('error' in outcome) return again ? ['### On another Node', '', failed(outcome)].join('\n') : failed(outcome);
  const w = outcome;
  if (again) return [`### On Node ${w.node ?? 'unknown'}`, '', waitingTable(w)].join('\n');
  return [
    ...(w.node === undefined ? [] : [`On Node ${w.node}.`, '']),
    `One process holds a port's lock (interlock auto); ${w.waiters} already running processes (Node running the bench's waiter bundled with the library into one JavaScript file, as users run the built package, not through tsx) call \`acquireLock({ port, wait })\` one after another, each a few ms after the one before it has started waiting; then the holder releases, and each waiter keeps the lock ${w.holdMs} ms once it has it and releases it. In that round each wait is its process's first lock, as a \`portlock run --wait\` is: order, hand-overs and the SIGKILL trials come from it, and so does the CPU figure as measured before. But a process's first lock compiles the library's code and loads the parts of Node it uses (its cluster module on the first listen, its crypto on the first token): start-up, not waiting. So a second round of ${w.waiters} fresh waiters, each of which has taken and released one lock of its own before it waits (outside the window) and has then been left alone for 20 s, gives the CPU of waiting itself, the goal's figure: V8 shrinks a new process's heap some 8 s after it starts (full collections, tens of ms of CPU), which is start-up too. Times are CLOCK_MONOTONIC, read by each process; a worker tells the bench of its release 20 ms after it, so that the bench reading that line does not take a core from the next holder in the middle of the hand-over it measures. The SIGKILL rows: a holder with 3 waiters queued is killed; the time runs from the bench seeing the holder exit (and, in brackets, from the kill) to the first waiter holding the lock.`,
    '',
    waitingTable(w),
  ].join('\n');
}

function waitingTable(w: WaitingResult): string {
  return table(
    ['Measure', 'Value'],
    [
      ['Kendall tau, arrival order vs service order', w.kendallTau.toFixed(3)],
      ['waiters served before one that arrived earlier', String(w.servedAheadOfEarlier)],
      [
        "waiters' CPU while waiting, all together (second round: each waiter's first lock taken before)",
        `${ms(w.waitersCpuMs)} over ${ms(w.waitingWallMs)}: ${w.waitersCpuPercentOfCore.toFixed(2)} % of a core`,
      ],
      ...(w.coldStart === undefined
        ? []
        : [
            [
              "the same in the first round, each wait its process's first lock (as measured before)",
              `${ms(w.coldStart.waitersCpuMs)} over ${ms(w.coldStart.waitingWallMs)}: ${w.coldStart.waitersCpuPercentOfCore.toFixed(2)} % of a core`,
            ],
          ]),
      [
        'context switches of the waiting processes per hand-over (voluntary ones in brackets)',
        `${w.switchesPerHandOver.toFixed(1)}${w.voluntarySwitchesPerHandOver === undefined ? '' : ` (${w.voluntarySwitchesPerHandOver.toFixed(1)})`}`,
      ],
      ...(w.primedSwitchesPerHandOver === undefined
        ? []
        : [
            [
              'the same in the second round',
              `${w.primedSwitchesPerHandOver.toFixed(1)} (${w.primedVoluntarySwitchesPerHandOver?.toFixed(1)})`,
            ],
          ]),
      ['hand-over gap (release to next holder), median', ms(w.handOverGap.median)],
      ['hand-over gap, range', `${ms(w.handOverGap.min)} – ${ms(w.handOverGap.max)}`],
      ...(w.primedHandOverGap === undefined
        ? []
        : [['hand-over gap in the second round, median', ms(w.primedHandOverGap.median)]]),
      ['moments with two holders', String(w.overlaps)],
      [
        'SIGKILL: holder gone to first waiter holding, median',
        `${ms(w.killHandOver.median)} (from the kill: ${ms(w.killToAcquired.median)})`,
      ],
      ['SIGKILL: range', `${ms(w.killHandOver.min)} – ${ms(w.killHandOver.max)} over ${w.killHandOver.n} trials`],
      ['SIGKILL: first served not the first to wait', String(w.killOutOfOrder)],
      ['errors', w.errors.length === 0 ? '–' : w.errors.join('; ')],
    ],
  );
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function failed(outcome: { error: string }): string {
  return `The scenario failed: \`${outcome.error.replaceAll('`', "'")}\``;
}

function uncontendedSection(outcome: Outcome<UncontendedResult>): string {
  const un = ok(outcome);
  if (un === undefined) return failed(outcome as { error: string });
  const rows = UNCONTENDED_IDS.map((id) => {
    const s: Summary = un.perOpUs[id];
    const r: Summary = un.ratioToFloor[id];
    return [
      labelOf(id),
      us(s.median),
      `${us(s.min)} – ${us(s.max)}`,
      `${times(r.median)} (${times(r.min)} – ${times(r.max)})`,
    ];
  });
  return [
    `${un.rounds} rounds of ${un.cyclesPerRound} acquire + release cycles per contender in one process, contenders interleaved round by round (the order rotates each round); medians over rounds are shown. The abstract socket of the interlock ${un.interlockSeen ? 'was' : 'was not'} seen in \`/proc/net/unix\` while portlock held a lock with \`interlock: 'auto'\`${un.interlockSeen ? '' : ", so 'auto' measured the same work as 'off'"}. With \`interlock: 'socket-file'\` (macOS's and BSD's interlock, forced here) ${un.socketFileSeen === undefined ? 'no socket file was seen while portlock held the lock' : `the port's socket file (\`${un.socketFileSeen}\`) was there while portlock held the lock, and gone once it released it`}.`,
    '',
    table(['Contender', 'per op (median)', 'range over rounds', 'ratio to the floor in the same round (range)'], rows),
  ].join('\n');
}

function crashSection(outcome: Outcome<CrashResult>): string {
  const crash = ok(outcome);
  if (crash === undefined) return failed(outcome as { error: string });
  const rows = CRASH_IDS.map((id) => {
    const e = crash.entries[id];
    if (e === undefined) return [contenders[id].label, '', 'n/a', '', '', '', ''];
    const notes = [
      e.notReacquired > 0 ? `${e.notReacquired} not re-acquired within ${ms(e.waitMs)}` : '',
      e.grantedWhileHeld > 0 ? `${e.grantedWhileHeld} granted while the holder lived` : '',
      e.errors.length > 0 ? `${e.errors.length} errors` : '',
    ].filter((note) => note !== '');
    return [
      contenders[id].label,
      `\`${contenders[id].options}\``,
      `${e.latenciesMs.length}/${e.trials}`,
      ms(e.latency.median),
      e.latenciesMs.length === 0 ? 'n/a' : `${ms(e.latency.min)} – ${ms(e.latency.max)}`,
      ms(e.holderExitMs.median),
      notes.join('; ') || '–',
    ];
  });
  return [
    `A holder process takes the lock; a second, already running process starts waiting for it; about ${crash.settleMs} ms later (plus a random part of one 100 ms poll period) the holder is killed with SIGKILL. The time is from the kill to the waiter holding the lock, both read from CLOCK_MONOTONIC, so Node's start-up is not in it. Waiters poll every 10 ms doubling to 100 ms (portlock's own schedule; proper-lockfile's \`retries\` set to match; lockfile's fixed default \`pollPeriod\` of 100 ms). "Holder gone" is when the bench saw the killed holder exit: the kernel frees a dead process's sockets and other names only while tearing it down, so no lock can be re-acquired sooner than about that.`,
    '',
    table(['Contender', 'options', 're-acquired', 'median', 'range', 'holder gone (median)', 'notes'], rows),
  ].join('\n');
}

function contentionSection(outcome: Outcome<ContentionResult>): string {
  const c = ok(outcome);
  if (c === undefined) return failed(outcome as { error: string });
  const rows: string[][] = [];
  for (const n of CONTENTION_NS) {
    for (const id of CONTENTION_IDS) {
      const cell = c.cells[String(n)]?.[id];
      if (cell === undefined) continue;
      const trouble = [
        cell.errors.length > 0 ? `${cell.errors.length} errors (${cell.errors[0]})` : '',
        cell.compromised > 0 ? `${cell.compromised} compromised` : '',
      ].filter((note) => note !== '');
      rows.push([
        String(n),
        contenders[id].label,
        cell.acquisitionsPerSec.median.toFixed(0),
        String(cell.overlaps),
        `${cell.perProcessMin} – ${cell.perProcessMax}`,
        trouble.join('; ') || '–',
      ]);
    }
  }
  return [
    `N processes each acquire and release in a loop for ${(c.durationMs / 1000).toFixed(1)} s, ${c.rounds} rounds, median shown. Observer: ${c.observer}; it is bound after acquiring and closed before releasing, so every overlap it reports is real.`,
    '',
    table(
      ['N', 'Contender', 'acquisitions/s', 'two holders at once', 'per-process acquisitions (min – max)', 'errors'],
      rows,
    ),
  ].join('\n');
}

function refusalSection(outcome: Outcome<RefusalResult>): string {
  if ('error' in outcome) return failed(outcome);
  return 'Measured on each Node selected, with what importing the library costs: see "Loading and refusal" below.';
}

function listSection(outcome: Outcome<ListLocksResult>): string {
  const l = ok(outcome);
  if (l === undefined) return failed(outcome as { error: string });
  const rows = LIST_MODES.flatMap((mode) =>
    LIST_SIZES.map((size) => {
      const e = l.entries[listKey(mode, size)];
      if (e === undefined) return [String(size), mode, 'n/a', '', '', '', ''];
      return [
        size.toLocaleString('en-US'),
        `\`${mode}\``,
        us(e.perRecordUs.median),
        ms(e.firstCallMs.median),
        `${(e.peakRssGrowthKb.median / 1024).toFixed(1)} MiB`,
        `${(e.heapRetainedKb.median / 1024).toFixed(2)} MiB`,
        `${e.count} (${e.held} held)`,
      ];
    }),
  );
  return [
    `Records: ${l.records}. Each size is listed in a fresh process (${l.rounds} per size and option, median shown): the first call gives the memory, repeated calls the time per record. With \`interlock: 'auto'\` (the default) listLocks asks each lock's holder over its kernel interlock; with \`'off'\` it reads the files alone.`,
    '',
    table(
      [
        'Records',
        'listLocks interlock',
        'time per record (warm)',
        'first call',
        'peak RSS growth',
        'heap retained by the result',
        'reported',
      ],
      rows,
    ),
  ].join('\n');
}

function freePortSection(outcome: Outcome<FreePortResult> | undefined): string {
  if (outcome === undefined) return 'Not run.';
  const p = ok(outcome);
  if (p === undefined) return failed(outcome as { error: string });
  const rows: string[][] = [];
  for (const n of PORT_NS) {
    for (const id of FINDER_IDS) {
      const c = p.cells[String(n)]?.[id];
      if (c === undefined) continue;
      rows.push([
        String(n),
        finders[id].label,
        `\`${p.calls[id]}\``,
        `${c.collisionRounds}/${c.rounds}`,
        String(c.duplicates),
        String(c.eaddrinuse),
        ms(c.msPerPort.median),
        c.errors.length > 0 ? `${c.errors.length} (${c.errors[0]})` : '–',
      ]);
    }
  }
  return [
    `N processes, started once, are released at one barrier (a shared CLOCK_MONOTONIC instant) ${p.rounds} times per finder and N, finders interleaved (the order rotates each round). At the barrier each process calls the finder and at once binds the port it got with a plain \`net.Server\` on 127.0.0.1, as its own server would, and holds it until every process of the round has answered; then all let go. Every finder searches the same kind of range, a block of ${p.rangeSize} free ports below the ephemeral range, from its low end (the way these libraries are used: "a port from 3000 up"); portlock is given the low end as \`prefer\`. A round has a collision when two processes got the same port or a bind failed with EADDRINUSE. Time per port is one call, from the barrier to the port in hand, median over every call: with more processes than cores they queue for the CPU, so it is a time under load, alike for every finder.`,
    '',
    table(
      [
        'N',
        'Finder',
        'call',
        'rounds with a collision',
        'duplicate ports',
        'EADDRINUSE',
        'time per port (median)',
        'errors',
      ],
      rows,
    ),
  ].join('\n');
}

export function renderMarkdown(results: Results): string {
  const env = results.environment;
  const goals = evaluateGoals(results);
  const minutes = Math.floor(results.durationS / 60);
  return [
    START,
    `Run on ${env.date} at commit ${env.commit}, with Node ${env.node} on ${env.cpu} (${env.cores} cores), ${env.os}; lock files in fresh directories under \`${env.tempBase}\`. The whole \`npm run bench\` took ${minutes} min ${Math.round(results.durationS - minutes * 60)} s; the one-minute load average was ${env.loadAverage[0].toFixed(1)} when it started and ${env.loadAverage[1].toFixed(1)} when it ended${env.loadAverage[0] > env.cores || env.loadAverage[1] > env.cores ? ', so other work shared the cores and every number carries its noise' : ''}. Raw numbers: [bench/results.json](bench/results.json).`,
    '',
    '## Goals',
    '',
    table(
      ['Goal', 'Measured', 'Met'],
      goals.map((row) => [row.goal, row.measured, row.met]),
    ),
    '',
    '## 1. Uncontended acquire + release',
    '',
    uncontendedSection(results.uncontended),
    '',
    '## 2. Crash to re-acquire',
    '',
    crashSection(results.crash),
    '',
    '## 3. Contention',
    '',
    contentionSection(results.contention),
    '',
    '## 4. Refusal latency and loading',
    '',
    refusalSection(results.refusal),
    '',
    '## 5. listLocks',
    '',
    listSection(results.listLocks),
    '',
    '## 6. A free port for each process',
    '',
    freePortSection(results.freePort),
    '',
    '## 7. Waiting in line',
    '',
    waitingSection(results.waiting),
    ...(results.waitingOnOtherNodes ?? []).flatMap((other) => ['', waitingSection(other, true)]),
    '',
    '## 8. A tight loop of acquire and release',
    '',
    tightLoopSection(results.tightLoop),
    '',
    '## 9. A forced stop',
    '',
    forcedStopSection(results.forcedStop),
    END,
  ].join('\n');
}

const PREAMBLE = [
  '# Benchmarks',
  '',
  'portlock against proper-lockfile and lockfile, two widely used lock libraries on npm, and against',
  'the physical floor; and `acquirePort` against get-port, portfinder, detect-port and get-port-please,',
  'the free-port finders most used on npm; measured in one run of `npm run bench` on one machine. Read',
  'the ratios, not the absolute times: they move with the machine. Everything between the markers',
  'below is regenerated by each run.',
  '',
].join('\n');

/** Replaces the generated part of `path`, keeping whatever was written around it. */
export function writeMarkdown(path: string, results: Results): void {
  const generated = renderMarkdown(results);
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  const next =
    start >= 0 && end > start
      ? `${current.slice(0, start)}${generated}${current.slice(end + END.length)}`
      : `${PREAMBLE}\n${generated}\n`;
  writeFileSync(path, next);
}

/** Microsecond precision is all a millisecond figure from a loaded host can carry. */
function rounded(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isInteger(value) ? Math.round(value * 1000) / 1000 : value;
}

/** Writes the results, then lets the project's formatter lay them out so that `biome check` passes. */
export function writeJson(path: string, results: object): void {
  writeFileSync(path, `${JSON.stringify(results, rounded, 2)}\n`);
  const biome = join(repoRoot, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  if (existsSync(biome)) {
    spawnSync(process.execPath, [biome, 'format', '--write', path], {
      cwd: repoRoot,
      stdio: 'ignore',
      timeout: 30_000,
    });
  }
}
