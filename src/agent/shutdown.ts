import { MAX_TIMER_MS, validateDuration } from '../options/validate.ts';
import { STOP_SIGNALS, signalExitCode } from '../signals.ts';
import { agentToken, interruptAgent } from './agent.ts';
import { describeForLog } from './redact.ts';
import type { Agent, AgentLogger, ShutdownOptions } from './types.ts';

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
  const shutdown = new Shutdown(agent, settingsOf(agent, options));
  return shutdown.install();
}

interface Settings {
  signals: readonly NodeJS.Signals[];
  timeout: number;
  exitDelay: number;
  crashes: boolean;
  logger: AgentLogger;
  secrets: string[];
}

function settingsOf(agent: Agent, options: ShutdownOptions): Settings {
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
  return { signals, timeout, exitDelay, crashes, logger, secrets };
}

// Ctrl-C is how a person sends SIGINT; other signals come from kill, a supervisor or a hangup.
const again = (signal: NodeJS.Signals) => (signal === 'SIGINT' ? 'press Ctrl-C again' : `send ${signal} again`);

/** One agent's way out: running, then draining within a budget, then forcing, then stopped. */
class Shutdown {
  readonly #agent: Agent;
  readonly #settings: Settings;
  #phase: 'running' | 'draining' | 'forcing' | 'stopped' = 'running';
  #budget: NodeJS.Timeout | undefined;
  #hardExit: NodeJS.Timeout | undefined;

  constructor(agent: Agent, settings: Settings) {
    this.#agent = agent;
    this.#settings = settings;
  }

  /** Listens for the signals (and crashes); returns the function that stops listening. */
  install(): () => void {
    const { signals, crashes } = this.#settings;
    const onRejection = this.#onCrash('unhandled rejection');
    const onException = this.#onCrash('uncaught exception');
    for (const signal of signals) process.on(signal, this.#onSignal);
    if (crashes) {
      process.on('unhandledRejection', onRejection);
      process.on('uncaughtException', onException);
    }
    return () => {
      for (const signal of signals) process.off(signal, this.#onSignal);
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
      clearTimeout(this.#budget);
      clearTimeout(this.#hardExit);
    };
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    const { logger } = this.#settings;
    const name = this.#agent.name;
    this.#setExitCode(signalExitCode(signal));
    if (this.#phase === 'draining') {
      logger.warn(`${signal} received again, forcing the stop`);
      this.#force();
    } else if (this.#phase !== 'running') {
      logger.warn(`${signal} received again, exiting now`);
      process.exit();
    } else if (!this.#interrupt(`${name} was interrupted by ${signal}`)) {
      logger.warn(`${signal} received while ${name} is not running: it will not start (${again(signal)} to exit now)`);
    } else {
      logger.warn(
        this.#agent.readyState === 'starting'
          ? `${signal} received while ${name} is starting: giving the start up`
          : `${signal} received, draining (${again(signal)} to force)`,
      );
      this.#drain();
    }
  };

  #onCrash(what: string): (error: unknown) => void {
    return (error) => {
      this.#settings.logger.error(`${what}: ${this.#describe(error)}`);
      this.#setExitCode(1);
      if (this.#phase !== 'running') return;
      if (!this.#interrupt(`${this.#agent.name} was stopped after an ${what}`)) return;
      this.#settings.logger.warn('stopping after the error');
      this.#drain();
    };
  }

  /**
   * The process is ending: the agent will not start any more. True when it holds something to
   * stop; otherwise there is nothing to drain, and no reason to arm a hard exit.
   */
  #interrupt(reason: string): boolean {
    interruptAgent(this.#agent, new DOMException(reason, 'AbortError'));
    const state = this.#agent.readyState;
    if (state !== 'idle' && state !== 'stopped') return true;
    this.#phase = 'stopped';
    return false;
  }

  #drain(): void {
    const { logger, timeout } = this.#settings;
    this.#phase = 'draining';
    this.#budget = setTimeout(() => {
      logger.warn(`the stop is taking longer than ${timeout} ms; forcing it`);
      this.#force();
    }, timeout).unref();
    this.#agent
      .stop()
      .catch((error: unknown) => {
        logger.error(`stop failed: ${this.#describe(error)}`);
        this.#setExitCode(1);
      })
      .finally(() => {
        this.#phase = 'stopped';
        clearTimeout(this.#budget);
        this.#armHardExit();
      });
  }

  #force(): void {
    this.#phase = 'forcing';
    clearTimeout(this.#budget);
    // Its failure is logged where the stop began.
    this.#agent.stop({ force: true }).catch(() => {});
    this.#armHardExit();
  }

  #armHardExit(): void {
    if (this.#hardExit !== undefined) return;
    const { logger, exitDelay } = this.#settings;
    // Unref'd: it must not keep alive a process that would otherwise end by itself.
    this.#hardExit = setTimeout(() => {
      logger.error(`still running ${exitDelay} ms after stopping; exiting now`);
      process.exit();
    }, exitDelay).unref();
  }

  #setExitCode(code: number): void {
    // The first reason to end the run is the one its exit code reports.
    if (!process.exitCode) process.exitCode = code;
  }

  #describe(error: unknown): string {
    return describeForLog(error, { secrets: [...this.#settings.secrets, agentToken(this.#agent) ?? ''] });
  }
}
