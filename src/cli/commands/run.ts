import type { ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockHeldError, lockHeldMessage, PortRangeExhaustedError } from '../../errors.ts';
import { currentReader, describeListeners, portInUseNextStep } from '../../listeners/describe.ts';
import { mayBeInUse, portHolders } from '../../listeners/port-holders.ts';
import { acquireLock } from '../../lock/acquire.ts';
import { Lock } from '../../lock/handle.ts';
import { HANDOFF_ENV, handoffValue, RUN_PID_ENV } from '../../lock/handoff.ts';
import { orphanedAfterRelease } from '../../lock/orphan.ts';
import { acquirePort } from '../../port/acquire-port.ts';
import { STOP_SIGNALS, signalExitCode } from '../../signals.ts';
import type { AcquireOptions, LockHandle } from '../../types.ts';
import { parseExitCode, parseSeconds, stringValue, UsageError, type Values } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import { inForegroundGroup } from '../foreground.ts';
import { describeRecord, type Output } from '../output.ts';
import { type PortChoice, portChoice } from '../port-choice.ts';
import { superviseOptions, supervisor } from '../supervise.ts';

// As the agent does before it calls a port in use: a few looks, 20 ms apart.
const IN_USE_CHECKS = 4;
const IN_USE_DELAY_MS = 20;

type Ended = { code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException };

/** Takes the lock, failing fast first; only a held lock with --wait waits, with a live line on a terminal. */
async function take(
  target: AcquireOptions & { port: number },
  waitMs: number,
  out: Output,
  signal: AbortSignal,
): Promise<LockHandle> {
  try {
    return await acquireLock({ ...target, signal });
  } catch (error) {
    if (!(error instanceof LockHeldError) || waitMs === 0) throw error;
    // Loaded only here, like everything off the fast path: a refusal costs little more than Node's start.
    const line = out.liveErr
      ? new (await import('../wait-line.ts')).WaitLine(out, target, error.meta, waitMs)
      : undefined;
    // Off a terminal (a log, CI), one line says that the silence to come is a wait, and for whom.
    if (line === undefined) out.err(waitNotice(target.port, error, waitMs));
    try {
      return await acquireLock({ ...target, wait: waitMs, signal });
    } finally {
      line?.stop();
    }
  }
}

function waitNotice(port: number, error: LockHeldError, waitMs: number): string {
  const who = error.meta === undefined ? 'another process' : describeRecord(error.meta);
  const howLong = Number.isFinite(waitMs) ? `up to ${waitMs / 1000} s` : 'until it is free';
  return `portlock: port ${port} is held by ${who}; waiting ${howLong} (Ctrl-C gives up)`;
}

/** Lets acquirePort choose the port, and says which it chose (on stderr, and on stdout with --json). */
async function choose(
  choice: PortChoice & { kind: 'auto' },
  target: AcquireOptions,
  waitMs: number,
  out: Output,
  signal: AbortSignal,
  command: string[],
): Promise<LockHandle> {
  const { prefer, range } = choice;
  const handle = await acquirePort({
    ...target,
    ...(prefer !== undefined && { prefer }),
    ...(range !== undefined && { range }),
    wait: waitMs,
    signal,
  });
  out.err(`portlock: port ${handle.port} for ${command.join(' ')}`);
  if (out.json) out.document({ port: handle.port, path: handle.path, command }, { line: true });
  return handle;
}

function exhausted(out: Output, error: PortRangeExhaustedError, exitCode: number): number {
  out.error(error.code, error.message, {
    range: error.range,
    heldByPortlock: error.heldByPortlock,
    heldByOthers: error.heldByOthers,
  });
  return exitCode;
}

/** A program that takes no lock listens on the port: the command would only fail to bind it. */
export async function refuseInUse(
  out: Output,
  port: number,
  command: string[],
  exitCode: number,
): Promise<number | undefined> {
  // This process holds the port's lock, so a moment's bind races no portlock user.
  if (!(await mayBeInUse(port))) return undefined;
  let listeners = await portHolders(port);
  // A holder killed a moment ago frees its lock a moment before its last sockets: give it that moment.
  for (let check = 1; listeners.length > 0 && check < IN_USE_CHECKS; check++) {
    await sleep(IN_USE_DELAY_MS);
    listeners = await portHolders(port);
  }
  if (listeners.length === 0) return undefined;
  out.error(
    'EADDRINUSE',
    `port ${port} is in use by ${describeListeners(listeners)}, not through portlock: ${command.join(' ')} was not started.\n` +
      portInUseNextStep(port, listeners, currentReader()),
    { port, listeners },
  );
  return exitCode;
}

/**
 * Says so when the lock outlives this run: a background child of the command inherited the lock's
 * descriptor and holds the port locked, with no lock file, until it exits.
 */
function warnInherited(out: Output, port: number, dir: string): void {
  const left = orphanedAfterRelease(port, dir);
  if (left === undefined) return;
  out.err(`portlock: port ${port} stays locked: ${left.reason}.`);
  out.err(`Next step: let it exit, or stop it: portlock stop ${port} --force.`);
}

export function refuse(out: Output, error: LockHeldError, exitCode: number): number {
  out.error(error.code, lockHeldMessage(error, 'cli'), {
    state: error.state,
    certainty: error.certainty,
    lockPath: error.lockPath,
    ...(error.meta !== undefined && { holder: error.meta }),
    ...(error.holders !== undefined && { holders: error.holders }),
  });
  return exitCode;
}

/** Starts the command, handing it the lock's interlock so the lock outlives this process if it must. */
function start(
  spawn: typeof import('node:child_process').spawn,
  command: string[],
  lock: LockHandle,
  port: number,
  env: Record<string, string | undefined>,
  logged: boolean,
): ChildProcess {
  const [file = '', ...args] = command;
  const fd = lock.interlockFd();
  // A portlock-aware command (the agent, a program calling acquireLock) adopts the lock it is
  // handed, instead of refusing the very process that started it.
  const token = lock.record.token;
  const handoff =
    fd !== undefined && token !== undefined && lock instanceof Lock
      ? {
          [HANDOFF_ENV]: handoffValue({ port, fd: 3, token, leaving: false, dir: dirname(lock.path) }),
          [RUN_PID_ENV]: String(process.pid),
        }
      : {};
  if (handoff[HANDOFF_ENV] !== undefined) (lock as Lock).handOff('staying');
  const output = logged ? 'pipe' : 'inherit';
  return spawn(file, args, {
    stdio: [logged ? 'ignore' : 'inherit', output, output, ...(fd === undefined ? [] : [fd])],
    env: { ...env, PORT: String(port), ...handoff },
  });
}

function ended(child: ChildProcess): Promise<Ended> {
  return new Promise((resolve) => {
    // After a successful spawn, 'error' only means a kill failed; the exit still comes.
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) resolve({ error });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** What `run` is asked to do, as given on its command line. */
function runSettings(values: Values, rest: string[]) {
  const choice = portChoice(values);
  const waitMs = parseSeconds(stringValue(values, 'wait') ?? '0', '--wait', { forever: true });
  const conflict = parseExitCode(stringValue(values, 'conflict-exit-code') ?? '', '--conflict-exit-code');
  const killAfterMs = parseSeconds(stringValue(values, 'kill-after') ?? '', '--kill-after');
  if (rest.length === 0 || rest[0] === '') throw new UsageError('missing the command to run, after --');
  return { choice, waitMs, conflict, killAfterMs };
}

/**
 * The signals that end a run, while it runs: before the command starts, the first one gives up
 * taking the lock; after, each is passed on to the command.
 */
class Signals {
  readonly abort = new AbortController();
  /** What the lock is taken for, for the message of an interrupted wait. */
  readonly which: string;
  child: ChildProcess | undefined;
  interrupted: NodeJS.Signals | undefined;

  constructor(which: string) {
    this.which = which;
    for (const signal of STOP_SIGNALS) process.on(signal, this.#onSignal);
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.child === undefined) {
      this.interrupted ??= signal;
      this.abort.abort(new Error(`interrupted by ${signal} while taking the lock for ${this.which}`));
      return;
    }
    // The terminal sends Ctrl-C and hangups to the whole foreground group, the command included.
    if (signal !== 'SIGTERM' && inForegroundGroup()) return;
    this.child.kill(signal);
  };

  close(): void {
    for (const signal of STOP_SIGNALS) process.off(signal, this.#onSignal);
  }
}

/** A stop requested through the lock (`portlock stop`): SIGTERM to the command, SIGKILL after --kill-after. */
class StopOnRequest {
  #killTimer: NodeJS.Timeout | undefined;

  constructor(
    lock: LockHandle,
    running: ChildProcess,
    port: number,
    killAfterMs: number,
    out: Output,
    background: Pick<ReturnType<typeof supervisor>, 'stopping'>,
  ) {
    lock.onStopRequest = () => {
      if (running.exitCode !== null || running.signalCode !== null) return;
      background.stopping(lock);
      out.err(`portlock: stop requested for port ${port}: sending SIGTERM to pid ${running.pid}`);
      running.kill('SIGTERM');
      this.#killTimer ??= setTimeout(() => {
        out.err(`portlock: pid ${running.pid} still runs ${killAfterMs / 1000} s after SIGTERM: sending SIGKILL`);
        running.kill('SIGKILL');
      }, killAfterMs);
    };
  }

  clear(): void {
    clearTimeout(this.#killTimer);
  }
}

/** The command's own exit code (128 + n for signal n), or why it could not be run. */
async function exitCodeOf(result: Ended, out: Output, rest: string[], port: number): Promise<number> {
  if ('error' in result) {
    const { explainSpawnError } = await import('../system-errors.ts');
    out.error(result.error.code ?? 'ESPAWN', explainSpawnError(result.error, rest[0] ?? '', port));
    return result.error.code === 'ENOENT' ? EXIT.notFound : EXIT.cannotRun;
  }
  return result.signal !== null ? signalExitCode(result.signal) : (result.code ?? EXIT.failure);
}

export const run: Command = {
  name: 'run',
  rest: true,
  usage:
    'portlock run --port <port|auto> [options] -- <command> [args...]\n       portlock run <port> [options] -- <command> [args...]',
  summary: 'run a command while holding the lock for its port',
  description:
    'Takes the lock for the port, then starts the command with PORT set to it, and holds the lock until the\n' +
    'command exits; portlock then exits with its exit code (128 + the signal number when a signal ended it)\n' +
    'and releases the lock, on every path. If the port is held, it prints the holder and exits 75 at once,\n' +
    'or waits with --wait. If a program that does not use portlock listens on the port, it names that\n' +
    'program and exits 75 without starting the command. SIGINT, SIGTERM and SIGHUP are passed on to the\n' +
    'command (on a terminal, Ctrl-C reaches it directly and is not sent twice). `portlock stop <port>`\n' +
    'reaches the command as SIGTERM, then SIGKILL after --kill-after. On Linux the command inherits the\n' +
    'lock (an extra file descriptor, 3, which it need not touch): if portlock itself is killed with\n' +
    "SIGKILL, the port stays locked for as long as the command lives, and 'portlock status' names it.\n" +
    'With --port auto, portlock chooses a free port (see acquirePort in the README): one whose lock nobody\n' +
    'holds and that can be bound on 127.0.0.1, ::1, 0.0.0.0 and ::; it prints "portlock: port <port> for\n' +
    '<command>" on stderr (and, with --json, {"port":...} on stdout) before the command starts. Parallel\n' +
    'runs never get the same port. When every port of the range is held, it exits 75 (--conflict-exit-code).',
  options: {
    port: {
      type: 'string',
      short: 'p',
      value: '<port|auto>',
      description:
        "the port to lock (1-65535), or 'auto' to choose a free one; given to the command as PORT (required; or as the first argument)",
    },
    prefer: {
      type: 'string',
      value: '<port|text>',
      description: 'with --port auto: the port to try first, or any text (a project path) hashed to a stable one',
    },
    range: {
      type: 'string',
      value: '<low>-<high>',
      description: 'with --port auto: the ports to choose from',
      defaultText: 'below the ephemeral range, 20000-32767 on most hosts',
    },
    wait: {
      type: 'string',
      value: '<seconds>',
      description:
        "if the port (with --port auto, every port of the range) is held, wait this long ('forever' waits for good)",
      default: '0',
    },
    'conflict-exit-code': {
      type: 'string',
      value: '<code>',
      description: 'the exit code when the port is held by another process, or used by another program',
      default: String(EXIT.held),
    },
    ...superviseOptions,
    'kill-after': {
      type: 'string',
      value: '<seconds>',
      description: 'after a stop request has sent SIGTERM to the command, send SIGKILL this much later',
      default: '5',
    },
  },
  env: [['PORT', 'set for the command to the locked port']],
  exitCodes: [
    ['N', "the command's own exit code N, whatever it is (128 + n when signal n ended it)"],
    [EXIT.failure, 'the lock directory cannot be used'],
    [EXIT.usage, 'usage error'],
    [
      EXIT.held,
      'the port is held by another process, a program that does not use portlock listens on it, or with --port auto every port of the range is held (see --conflict-exit-code)',
    ],
    [EXIT.cannotRun, 'the command cannot be run (permission denied)'],
    [EXIT.notFound, 'the command was not found'],
  ],
  examples: [
    ['portlock run --port 8080 -- node server.js', 'serve on 8080 unless another instance does already'],
    ['portlock run -p 8080 --wait 30 -- npm start', 'wait up to 30 s for the holder of 8080 to exit first'],
    ['portlock run -p 8080 --conflict-exit-code 0 -- ./serve', 'in CI: a second start is not an error'],
    ['portlock run --port auto -- node server.js', 'a free port of its own, never the one a parallel run got'],
    [
      'portlock run --port auto --prefer "$PWD" -- npm run dev',
      'the same port for this project, run after run, while it is free',
    ],
  ],
  async run({ values, rest, out: given, dir, name, env }) {
    const settings = runSettings(values, rest);
    const { choice, waitMs, conflict } = settings;
    // With --log, the command's output and this process's own messages go to a bounded log file.
    const background = supervisor(values, rest, given);
    const out = background.out;
    const target = { name, dir, holder: background.holder };
    // Known once the lock is taken, with --port auto.
    let port = choice.kind === 'fixed' ? choice.port : 0;
    const signals = new Signals(choice.kind === 'fixed' ? `port ${choice.port}` : 'a port');
    let lock: LockHandle | undefined;
    let stopOnRequest: StopOnRequest | undefined;
    // Last resort if this process dies of an error: the command goes, and the record with it.
    const onExit = () => {
      const { child } = signals;
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      lock?.releaseSync();
    };
    process.on('exit', onExit);
    try {
      try {
        lock =
          choice.kind === 'fixed'
            ? await take({ ...target, port }, waitMs, out, signals.abort.signal)
            : await choose(choice, target, waitMs, out, signals.abort.signal, rest);
      } catch (error) {
        if (signals.interrupted !== undefined) {
          out.error('EINTERRUPTED', `interrupted by ${signals.interrupted} while waiting for ${signals.which}`);
          return signalExitCode(signals.interrupted);
        }
        if (error instanceof LockHeldError) return refuse(out, error, conflict);
        if (error instanceof PortRangeExhaustedError) return exhausted(out, error, conflict);
        throw error;
      }
      port = lock.record.port ?? port;
      const inUse = await refuseInUse(out, port, rest, conflict);
      if (inUse !== undefined) return inUse;
      const { spawn } = await import('node:child_process');
      if (signals.interrupted !== undefined) return signalExitCode(signals.interrupted);
      const running = start(spawn, rest, lock, port, env, background.logged);
      signals.child = running;
      background.started(lock, running, port);
      stopOnRequest = new StopOnRequest(lock, running, port, settings.killAfterMs, out, background);
      const result = await ended(running);
      await background.ended();
      return await exitCodeOf(result, out, rest, port);
    } finally {
      stopOnRequest?.clear();
      // A release that fails must not hide the command's exit code; say so and go on.
      await lock?.release().catch((error: unknown) => out.err(`portlock: releasing the lock failed: ${String(error)}`));
      if (signals.child !== undefined && lock !== undefined) warnInherited(out, port, dirname(lock.path));
      process.off('exit', onExit);
      background.close();
      signals.close();
    }
  },
};
