import { MAX_TIMER_MS, validateDuration } from '../options/validate.ts';
import { STOP_SIGNALS, signalExitCode } from '../signals.ts';
import { agentToken, interruptAgent } from './agent.ts';
import { describeForLog } from './redact.ts';
import type { Agent, ShutdownOptions } from './types.ts';

const DEFAULT_EXIT_DELAY = 3000;
const DEFAULT_BUDGET_MARGIN = 5000;

/**
 * Stops the agent cleanly when the process is told to end. The first signal drains within a
 * budget, the second forces the stop, a third exits at once; a crash (`unhandledRejection`,
 * `uncaughtException`) is logged with secrets redacted and drains like a first signal. The exit
 * code is set through `process.exitCode`, so that the run ends by itself once the agent has
 * stopped and `finally` blocks and exit handlers still run; if something keeps the process alive,
 * it exits `exitDelay` ms after the stop anyway. Returns a function that removes the handlers.
 *
 * Whenever it comes, the first signal (or crash) means that the process is ending, so the agent
 * will not start any more: a start under way is aborted and undone (its `start()` rejects with an
 * `AbortError`, and nothing is left held), and a later `start()` rejects the same way. A signal that
 * comes while the agent is not running (`idle`, before `start()`, or `stopped`) has nothing to stop:
 * it sets the exit code and arms no hard exit, because that timer, unref'd, would otherwise end
 * whatever the process does next a few seconds later, a start included. The application's own code
 * then meets the rejected `start()` and ends; a second signal exits at once.
 */
export function handleShutdown(agent: Agent, options: ShutdownOptions = {}): () => void {
  const {
    signals = STOP_SIGNALS,
    timeout = Math.min(agent.drainTimeout + DEFAULT_BUDGET_MARGIN, MAX_TIMER_MS),
    exitDelay = DEFAULT_EXIT_DELAY,
    crashes = true,
    logger = agent.logger,
    secrets = [],
  } = options;
  validateDuration(timeout, 'timeout');
  validateDuration(exitDelay, 'exitDelay');
  let phase: 'running' | 'draining' | 'forcing' | 'stopped' = 'running';
  let budget: NodeJS.Timeout | undefined;
  let hardExit: NodeJS.Timeout | undefined;

  const describe = (error: unknown) => describeForLog(error, { secrets: [...secrets, agentToken(agent) ?? ''] });
  const setExitCode = (code: number) => {
    // The first reason to end the run is the one its exit code reports.
    if (!process.exitCode) process.exitCode = code;
  };

  const armHardExit = () => {
    if (hardExit !== undefined) return;
    // Unref'd: it must not keep alive a process that would otherwise end by itself.
    hardExit = setTimeout(() => {
      logger.error(`still running ${exitDelay} ms after stopping; exiting now`);
      process.exit();
    }, exitDelay).unref();
  };

  const force = () => {
    phase = 'forcing';
    clearTimeout(budget);
    // Its failure is logged where the stop began.
    agent.stop({ force: true }).catch(() => {});
    armHardExit();
  };

  const drain = () => {
    phase = 'draining';
    budget = setTimeout(() => {
      logger.warn(`the stop is taking longer than ${timeout} ms; forcing it`);
      force();
    }, timeout).unref();
    agent
      .stop()
      .catch((error: unknown) => {
        logger.error(`stop failed: ${describe(error)}`);
        setExitCode(1);
      })
      .finally(() => {
        phase = 'stopped';
        clearTimeout(budget);
        armHardExit();
      });
  };

  /** True when the agent holds nothing: there is nothing to drain, and no reason to arm a hard exit. */
  const notRunning = () => agent.readyState === 'idle' || agent.readyState === 'stopped';

  // Ctrl-C is how a person sends SIGINT; other signals come from kill, a supervisor or a hangup.
  const again = (signal: NodeJS.Signals) => (signal === 'SIGINT' ? 'press Ctrl-C again' : `send ${signal} again`);

  const onSignal = (signal: NodeJS.Signals) => {
    setExitCode(signalExitCode(signal));
    if (phase === 'running') {
      interruptAgent(agent, new DOMException(`${agent.name} was interrupted by ${signal}`, 'AbortError'));
      if (notRunning()) {
        phase = 'stopped';
        logger.warn(
          `${signal} received while ${agent.name} is not running: it will not start (${again(signal)} to exit now)`,
        );
        return;
      }
      logger.warn(
        agent.readyState === 'starting'
          ? `${signal} received while ${agent.name} is starting: giving the start up`
          : `${signal} received, draining (${again(signal)} to force)`,
      );
      drain();
    } else if (phase === 'draining') {
      logger.warn(`${signal} received again, forcing the stop`);
      force();
    } else {
      logger.warn(`${signal} received again, exiting now`);
      process.exit();
    }
  };

  const onCrash = (what: string) => (error: unknown) => {
    logger.error(`${what}: ${describe(error)}`);
    setExitCode(1);
    if (phase === 'running') {
      interruptAgent(agent, new DOMException(`${agent.name} was stopped after an ${what}`, 'AbortError'));
      if (notRunning()) {
        phase = 'stopped';
        return;
      }
      logger.warn('stopping after the error');
      drain();
    }
  };
  const onRejection = onCrash('unhandled rejection');
  const onException = onCrash('uncaught exception');

  for (const signal of signals) process.on(signal, onSignal);
  if (crashes) {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
  }
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    clearTimeout(budget);
    clearTimeout(hardExit);
  };
}
