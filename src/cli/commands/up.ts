import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { identityText, isSameServer, type ServerIdentity, servingPid, startingKey } from '../../background/identity.ts';
import { waitUntilReady } from '../../background/readiness.ts';
import { removeRecordOf, signalGroup, startSupervisor } from '../../background/start.ts';
import { lastLines, linesSince, sizeOf } from '../../background/tail.ts';
import { LockHeldError, PortRangeExhaustedError } from '../../errors.ts';
import { processExists } from '../../identity/probe.ts';
import { acquireLock } from '../../lock/acquire.ts';
import { listLocks } from '../../lock/inspect.ts';
import { monotonicMs } from '../../monotonic.ts';
import { acquirePort } from '../../port/acquire-port.ts';
import { commandText } from '../../record/holder-text.ts';
import { readRecordFileQuietly } from '../../record/read-record.ts';
import { since } from '../../record/started-at.ts';
import type { LockHandle, PublicLockRecord } from '../../types.ts';
import { parseExitCode, parseSeconds, stringValue, UsageError, type Values } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import type { Output } from '../output.ts';
import { portChoice } from '../port-choice.ts';
import { parseLogSize, readyCheckOf, superviseOptions } from '../supervise.ts';
import { refuse, refuseInUse, run } from './run.ts';

/** Lines of the log shown when a server does not become ready. */
const TAIL_LINES = 20;
/** How often the record is read for the server's state while waiting for it. */
const LOOK_EVERY_MS = 20;
/** After SIGTERM to a server that never became ready, this long before SIGKILL. */
const KILL_AFTER_MS = 5000;
/** A second `up` waits for the first one's start this much longer than the ready timeout. */
const GATE_SLACK_MS = 10_000;

interface Settings {
  identity: ServerIdentity;
  ready: string;
  readyGiven: boolean;
  deadline: number;
  conflict: number;
  logOption: string | undefined;
  logSize: number;
  dir: string;
  env: Record<string, string | undefined>;
  out: Output;
}

/** A supervisor whose server was killed releases the lock within this long. */
const RELEASE_WAIT_MS = 2000;

/** Whether a process exists (another user's included). */
const isAlive = (pid: number) => processExists(pid) !== 'gone';

const remaining = (deadline: number) => Math.max(0, deadline - monotonicMs());

function urlOf(record: PublicLockRecord, port: number): string {
  return record.url ?? `http://localhost:${port}`;
}

function report(out: Output, record: PublicLockRecord, port: number, already: boolean): number {
  const url = urlOf(record, port);
  const pid = servingPid(record);
  if (out.json) {
    out.document({
      port,
      url,
      pid,
      already,
      command: record.command,
      cwd: record.cwd,
      log: record.log,
      state: record.state,
    });
  } else if (already) {
    out.out(`already up: ${url} (pid ${pid}, since ${since(record.startedAt) ?? '?'} ago)`);
  } else {
    const what = record.command === undefined ? '' : `, ${commandText(record.command)}`;
    out.out(`up: ${url} (pid ${pid}${what}${record.log === undefined ? '' : `, log ${record.log}`})`);
  }
  return EXIT.ok;
}

function printTail(out: Output, log: string | undefined, why: string, offset?: number): void {
  const lines =
    log === undefined ? [] : offset === undefined ? lastLines(log, TAIL_LINES) : linesSince(log, offset, TAIL_LINES);
  // With --json, the tail is part of the one document.
  out.error('ENOTREADY', why, out.json ? { log, tail: lines } : {});
  if (out.json || log === undefined) return;
  const heading =
    lines.length === 0
      ? `(it wrote nothing to its log, ${log})`
      : `The last ${lines.length === 1 ? 'line' : `${lines.length} lines`} it wrote to ${log}:`;
  out.err(heading);
  for (const line of lines) out.err(`  ${line}`);
}

/** The server is up already: wait for it to be ready if it is starting (or --ready says so). */
async function alreadyUp(settings: Settings, record: PublicLockRecord, port: number, path: string): Promise<number> {
  const { out, deadline } = settings;
  let now: PublicLockRecord = record;
  if (settings.readyGiven) {
    const check = readyCheckOf(settings.ready);
    if (check !== undefined) {
      try {
        await waitUntilReady(check, port, record.log, AbortSignal.timeout(remaining(deadline)));
      } catch {
        printTail(
          out,
          record.log,
          `${urlOf(record, port)} is up but not ready after --ready-timeout (${settings.ready})`,
        );
        return EXIT.failure;
      }
    }
  } else {
    while (now.state === 'starting' && remaining(deadline) > 0) {
      await sleep(LOOK_EVERY_MS);
      const read = readRecordFileQuietly(path)?.record;
      if (read === undefined) break;
      now = read;
    }
    if (now.state === 'starting') {
      printTail(out, now.log, `${urlOf(now, port)} is still starting after --ready-timeout`);
      return EXIT.failure;
    }
  }
  return report(out, now, port, true);
}

/** Takes the port's lock, or finds the server this identity started before. */
async function lockOrFind(
  settings: Settings,
  values: Values,
  name: string,
): Promise<{ lock: LockHandle } | { found: PublicLockRecord; port: number; path: string } | { code: number }> {
  const { identity, dir, out, conflict } = settings;
  const choice = portChoice({ ...values, port: stringValue(values, 'port') ?? 'auto' });
  if (choice.kind === 'fixed') {
    let wait = 0;
    for (;;) {
      try {
        return { lock: await acquireLock({ port: choice.port, dir, name, wait }) };
      } catch (error) {
        if (!(error instanceof LockHeldError)) throw error;
        const mine = error.state === 'held' && error.meta !== undefined && isSameServer(error.meta, identity);
        if (!mine || error.meta === undefined) return { code: refuse(out, error, conflict) };
        // Its server was just killed, and its supervisor is letting go of the lock: wait for that.
        if (wait === 0 && !isAlive(servingPid(error.meta))) {
          wait = RELEASE_WAIT_MS;
          continue;
        }
        return { found: error.meta, port: choice.port, path: error.lockPath };
      }
    }
  }
  // With --port auto the server may be on any port: the one this identity started is found by its record.
  const mine = (await listLocks({ dir, name })).find(
    (lock) =>
      lock.state === 'held' &&
      isSameServer(lock.record, identity) &&
      lock.record?.port !== undefined &&
      isAlive(servingPid(lock.record)),
  );
  if (mine?.record?.port !== undefined) return { found: mine.record, port: mine.record.port, path: mine.path };
  try {
    const lock = await acquirePort({
      dir,
      name,
      prefer: choice.prefer ?? identityText(identity),
      ...(choice.range !== undefined && { range: choice.range }),
    });
    return { lock };
  } catch (error) {
    if (!(error instanceof PortRangeExhaustedError)) throw error;
    out.error(error.code, error.message, { range: error.range });
    return { code: conflict };
  }
}

type Outcome = { kind: 'ready'; record: PublicLockRecord } | { kind: 'exited'; code: number } | { kind: 'timeout' };

/** Waits until the record, adopted by the supervisor (or by its command), says ready. */
async function untilReady(
  child: ChildProcess,
  lock: LockHandle,
  handedOver: boolean,
  deadline: number,
): Promise<Outcome> {
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal }));
  let exited: { code: number | null } | undefined;
  void exit.then((value) => {
    exited = value;
  });
  const token = lock.record.token;
  for (;;) {
    const record = readRecordFileQuietly(lock.path)?.record;
    // The supervisor's record: the one handed to it (same token), or the one it took itself.
    const theirs = handedOver
      ? record?.token === token && record?.pid !== process.pid
      : record?.pid === child.pid || record?.supervisorPid === child.pid;
    if (record !== undefined && theirs && record.state === 'ready') {
      const { token: _, ...shown } = record;
      return { kind: 'ready', record: shown };
    }
    if (exited !== undefined) return { kind: 'exited', code: exited.code ?? EXIT.failure };
    if (remaining(deadline) === 0) return { kind: 'timeout' };
    await Promise.race([sleep(Math.min(LOOK_EVERY_MS, remaining(deadline))), exit]);
  }
}

/** Stops what this `up` started and never saw ready: the supervisor's whole session. */
async function stopStarted(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = once(child, 'exit');
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), KILL_AFTER_MS);
  await exit;
  clearTimeout(timer);
  // Whatever of the command outlived its supervisor in its session goes too.
  signalGroup(child, 'SIGKILL');
}

async function startServer(settings: Settings, lock: LockHandle, name: string): Promise<number> {
  const { identity, out, dir, deadline } = settings;
  const port = lock.record.port ?? 0;
  const inUse = await refuseInUse(out, port, [...identity.command], settings.conflict);
  if (inUse !== undefined) {
    await lock.release();
    return inUse;
  }
  const log = resolve(settings.logOption ?? join(dir, `agent-${port}.log`));
  // What this start writes, not what the server before it wrote, is the tail shown if it fails.
  const offset = sizeOf(log);
  const { child, handedOver } = startSupervisor(lock, port, {
    command: [...identity.command],
    cwd: identity.cwd,
    dir,
    name,
    log,
    logSize: settings.logSize,
    ready: settings.ready,
    env: settings.env,
  });
  const token = lock.record.token;
  const outcome = await untilReady(child, lock, handedOver, deadline);
  if (outcome.kind === 'ready') {
    // The server's session lives on without this process.
    child.unref();
    await lock.release();
    return report(out, outcome.record, port, false);
  }
  await stopStarted(child);
  removeRecordOf(lock.path, token);
  await lock.release();
  const command = commandText(identity.command);
  if (outcome.kind === 'exited') {
    printTail(out, log, `${command} exited (code ${outcome.code}) before it was ready on port ${port}`, offset);
    return outcome.code === 0 ? EXIT.failure : outcome.code;
  }
  printTail(out, log, `${command} was not ready on port ${port} within --ready-timeout; it was stopped`, offset);
  return EXIT.failure;
}

export const up: Command = {
  name: 'up',
  rest: true,
  usage: 'portlock up [--port <port>|auto] [options] -- <command> [args...]',
  summary: 'make sure a server runs in the background, once, and is ready; say where',
  description:
    'Starts the command in the background under `portlock run`, in a session of its own (the end of the\n' +
    'calling terminal or script does not reach it), with its output in a log file, and waits until it is\n' +
    'ready: by default, until its port accepts a TCP connection on localhost. Then it prints\n' +
    "'up: <url> (pid, command, log)' and exits 0. A portlock-aware command (portlock agent) adopts the\n" +
    'lock and says itself when it is ready.\n' +
    'When the same command, from the same directory, with the same --name, already runs, it prints\n' +
    "'already up: <url> (pid, since)' and exits 0 at once. When the port is held by anything else, it\n" +
    'names it and exits 75. If the command exits or is not ready within --ready-timeout, it prints the\n' +
    'last 20 lines of the log, stops what it started, and exits 1 (or the exit code the command gave).\n' +
    'With --port auto (the default), the port preferred is a hash of the directory and the command, and a\n' +
    'second up finds the server the first one started, on whichever port it got.',
  options: {
    port: {
      type: 'string',
      short: 'p',
      value: '<port|auto>',
      description: "the port to lock and serve (given to the command as PORT), or 'auto' to choose a free one",
      defaultText: 'auto',
    },
    prefer: {
      type: 'string',
      value: '<port|text>',
      description: 'with --port auto: the port to try first, or text hashed to one',
      defaultText: 'a hash of the directory, --name and the command',
    },
    range: { type: 'string', value: '<low>-<high>', description: 'with --port auto: the ports to choose from' },
    ready: {
      ...(superviseOptions.ready ?? { type: 'string', description: '' }),
      defaultText: 'tcp',
    },
    'ready-timeout': {
      type: 'string',
      value: '<seconds>',
      description: 'how long to wait for the server to be ready before stopping it',
      default: '60',
    },
    log: {
      type: 'string',
      value: '<file>',
      description: "the file for the command's output (mode 0600, rotated once at --log-size)",
      defaultText: '<dir>/agent-<port>.log',
    },
    'log-size': {
      type: 'string',
      value: '<bytes>',
      description: 'the size at which the log is moved to <file>.1 (replacing the one before) and a new one begun',
      default: superviseOptions['log-size']?.default ?? '',
    },
    'conflict-exit-code': run.options['conflict-exit-code'] ?? { type: 'string', description: '' },
  },
  env: [['PORT', 'set for the command to its port']],
  exitCodes: [
    [EXIT.ok, 'up: started and ready, or already up (the same command from the same directory)'],
    [EXIT.failure, 'not ready in time, or it exited first (its log tail is printed; nothing is left running)'],
    [EXIT.usage, 'usage error'],
    [EXIT.held, 'the port is held by another server, or used by a program that does not use portlock'],
    ['N', 'the exit code of a command that exited with one before it was ready'],
  ],
  examples: [
    ['portlock up -- npm run dev', 'start the dev server unless it runs already; print its URL'],
    ['portlock up -p 3000 --ready http://localhost:3000/health -- node server.js', 'ready when /health answers'],
    ["portlock up -p 8080 --ready 'log:Listening' -- ./serve", 'ready when the log says so'],
  ],
  async run({ values, rest, out, dir, name, env }) {
    if (rest.length === 0 || rest[0] === '') throw new UsageError('missing the command to start, after --');
    const readyText = stringValue(values, 'ready');
    readyCheckOf(readyText);
    // Checked now, before anything is locked or started.
    portChoice({ ...values, port: stringValue(values, 'port') ?? 'auto' });
    const timeoutMs = parseSeconds(stringValue(values, 'ready-timeout') ?? '60', '--ready-timeout');
    const settings: Settings = {
      identity: { command: rest, cwd: process.cwd(), name },
      ready: readyText ?? 'tcp',
      readyGiven: readyText !== undefined,
      deadline: monotonicMs() + timeoutMs,
      conflict: parseExitCode(stringValue(values, 'conflict-exit-code') ?? '', '--conflict-exit-code'),
      logOption: stringValue(values, 'log'),
      logSize: parseLogSize(stringValue(values, 'log-size') ?? ''),
      dir,
      env,
      out,
    };
    // One `up` of a server at a time decides whether to start it; the others then find it running.
    const gate = await acquireLock({ key: startingKey(settings.identity), dir, name, wait: timeoutMs + GATE_SLACK_MS });
    try {
      const taken = await lockOrFind(settings, values, name);
      if ('code' in taken) return taken.code;
      if ('found' in taken) return await alreadyUp(settings, taken.found, taken.port, taken.path);
      return await startServer(settings, taken.lock, name);
    } finally {
      await gate.release();
    }
  },
};
