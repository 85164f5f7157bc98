import { createAgent, DEFAULT_PORT, speakCommandLine } from '../../agent/agent.ts';
import { AlreadyRunningError } from '../../agent/errors.ts';
import { createLogger } from '../../agent/logger.ts';
import { handleShutdown } from '../../agent/shutdown.ts';
import type { Agent } from '../../agent/types.ts';
import { LockHeldError, lockHeldMessage } from '../../errors.ts';
import { currentReader, portInUseLine, portInUseNextStep } from '../../listeners/describe.ts';
import { lockPathFor } from '../../options/resolve.ts';
import { STOP_SIGNALS, signalExitCode } from '../../signals.ts';
import { parsePort, stringValue, UsageError, type Values } from '../args.ts';
import type { Command } from '../command.ts';
import { EXIT } from '../exit-codes.ts';
import type { Output } from '../output.ts';

/** What the agent logged about a refused start: the lock's holder, or the program on the port. */
function explanation(error: AlreadyRunningError): string {
  if (error.cause instanceof LockHeldError) return lockHeldMessage(error.cause, 'cli');
  if (error.listeners === undefined || error.listeners.length === 0) return error.message;
  return `${portInUseLine(error.port, error.listeners)}.\n${portInUseNextStep(error.port, error.listeners, currentReader())}`;
}

/** The port to serve: --port, else $PORT (as `portlock run` sets it), else Percy's. */
function agentPort(values: Values, env: Record<string, string | undefined>): number {
  const given = stringValue(values, 'port');
  const fromEnv = given === undefined && env.PORT ? env.PORT : undefined;
  return parsePort(given ?? fromEnv ?? String(DEFAULT_PORT), fromEnv === undefined ? '--port' : '$PORT', {
    allowZero: true,
  });
}

/** A refused start, in one line: the agent has logged the full refusal, holder included. */
function refused(out: Output, error: AlreadyRunningError): number {
  // The same code as `run` for the same conflict: ELOCKED for the lock, EADDRINUSE for a program.
  const code = error.cause instanceof LockHeldError ? error.cause.code : error.code;
  // On stderr the log has said it all; a JSON reader gets the whole explanation in the document.
  out.error(code, out.json ? explanation(error) : error.message, {
    port: error.port,
    ...(error.lockPath !== undefined && { lockPath: error.lockPath }),
    ...(error.holder !== undefined && { holder: error.holder }),
    ...(error.listeners !== undefined && { listeners: error.listeners }),
  });
  return EXIT.held;
}

/** With --json, one line saying where the agent serves, once it does. */
function announce(out: Output, instance: Agent, name: string, dir: string): void {
  const address = instance.address;
  if (!out.json || address === undefined) return;
  out.document(
    {
      name,
      pid: process.pid,
      port: address.port,
      url: address.url,
      lockPath: lockPathFor({ port: address.port, name, dir }),
    },
    { line: true },
  );
}

/** Waits for the agent's stop; false, having said why, when it failed. */
async function stoppedCleanly(out: Output, instance: Agent): Promise<boolean> {
  try {
    await instance.stop();
    return true;
  } catch (error) {
    // With --json, stdout has had its one document: a failure after it is a diagnostic.
    const { explainSystemError } = await import('../system-errors.ts');
    const why = explainSystemError(error)?.message ?? (error as Error)?.message ?? String(error);
    out.err(`portlock: stopping the agent failed: ${why}`);
    return false;
  }
}

export const agent: Command = {
  name: 'agent',
  usage: 'portlock agent [--port <port> | <port>] [options]',
  summary: 'run the reference agent in the foreground until it is stopped',
  description:
    'Takes the lock for the port, then serves the control endpoints on localhost: GET /healthcheck and\n' +
    "POST /stop (with the lock record's token as a bearer token), and nothing else. A second agent on the\n" +
    'same port is refused at once, naming this one. Ctrl-C (or SIGTERM, SIGHUP, `portlock stop <port>`)\n' +
    'drains and releases the lock; a second Ctrl-C forces the stop. Logs go to stderr; with --json, one\n' +
    'document on stdout says where it listens, once it does.',
  options: {
    port: {
      type: 'string',
      short: 'p',
      value: '<port>',
      description: 'the port to serve and lock; 0 lets the OS choose',
      defaultText: '$PORT, else 5338',
    },
  },
  env: [['PORT', 'the port when --port is not given (as `portlock run` sets it)']],
  exitCodes: [
    [EXIT.ok, 'stopped on request (portlock stop, POST /stop)'],
    [EXIT.failure, 'it failed to start, crashed, or failed to stop cleanly'],
    [EXIT.usage, 'usage error'],
    [EXIT.held, 'another instance holds the port, or another program listens on it'],
    [130, 'stopped or interrupted while starting by SIGINT (143: SIGTERM, 129: SIGHUP)'],
  ],
  examples: [
    ['portlock agent', 'serve port 5338 (or $PORT) until Ctrl-C'],
    ['portlock agent --port 0 --json', 'serve a port the OS chooses, and print it as JSON'],
  ],
  async run({ positionals, values, out, dir, name, env }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const port = agentPort(values, env);
    const logger = createLogger({ name, stream: out.io.stderr });
    let stopped = () => {};
    const whenStopped = new Promise<void>((resolve) => {
      stopped = resolve;
    });
    // A teardown runs on every stop, whoever asked for it: a signal, `portlock stop`, POST /stop.
    const instance = createAgent({ port, name, dir, logger, setup: () => stopped });
    speakCommandLine(instance);
    let first: NodeJS.Signals | undefined;
    const remember = (signal: NodeJS.Signals) => {
      first ??= signal;
    };
    for (const signal of STOP_SIGNALS) process.on(signal, remember);
    const dispose = handleShutdown(instance, { signals: STOP_SIGNALS, logger });
    try {
      try {
        await instance.start();
      } catch (error) {
        // A signal during start-up aborts the start: that is the verdict, whatever the start was doing.
        if (first !== undefined) {
          out.error('EINTERRUPTED', `interrupted by ${first} while starting${port === 0 ? '' : ` on port ${port}`}`);
          return signalExitCode(first);
        }
        if (!(error instanceof AlreadyRunningError)) throw error;
        return refused(out, error);
      }
      announce(out, instance, name, dir);
      await whenStopped;
      // Joins the stop under way (the teardown that resolved whenStopped is part of it).
      if (!(await stoppedCleanly(out, instance))) return EXIT.failure;
      return first === undefined ? EXIT.ok : signalExitCode(first);
    } finally {
      dispose();
      for (const signal of STOP_SIGNALS) process.off(signal, remember);
    }
  },
};
