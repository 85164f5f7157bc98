import type { RequestListener, Server } from 'node:http';
import type { AcquireOptions, LockHandle } from '../types.ts';

/** Severity of a log message, from the most to the least verbose. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Where the agent writes what it does. `console` fits; so does any leveled logger (pino, winston). */
export interface AgentLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /**
   * Shown in brackets before every line, like `[percy] listening on http://localhost:5338`.
   * @default 'portlock'
   */
  name?: string;
  /**
   * The least severe level written; `debug` shows everything.
   * @default 'info'
   */
  level?: LogLevel;
  /**
   * Where the lines go.
   * @default process.stderr
   */
  stream?: { write(text: string): unknown };
}

/**
 * The state of an agent:
 * - `idle`: created, `start()` not called yet;
 * - `starting`: taking the lock, running setup hooks, binding the port;
 * - `ready`: serving, and holding the lock;
 * - `stopping`: draining in-flight requests, then releasing the lock;
 * - `stopped`: stopped, or a start failed; nothing is held. `start()` may be called again.
 */
export type AgentReadyState = 'idle' | 'starting' | 'ready' | 'stopping' | 'stopped';

/** Where a started agent listens. */
export interface AgentAddress {
  /** The port actually bound (the one chosen by the OS when `port` was 0). */
  port: number;
  /** Every address bound, for example `['127.0.0.1', '::1']`. */
  hosts: string[];
  /** The URL to reach the agent by: `http://localhost:<port>` when bound to loopback only. */
  url: string;
}

/** What a setup hook is given. */
export interface SetupContext {
  /** The lock this start holds. Its record is what `POST /stop` callers must prove they can read. */
  lock: LockHandle;
  /** The port the agent serves. */
  port: number;
  /** The agent's logger. */
  logger: AgentLogger;
  /** Aborted when `stop()` is called while the agent is still starting: give up early. */
  signal: AbortSignal;
}

/** Undoes what a setup hook did; runs on stop after the server has closed, and on a failed start. */
export type Teardown = () => void | Promise<void>;

/**
 * The application's own setup, run once the lock is held (so a second instance is refused before
 * any of it runs). It may return a teardown.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a hook that returns nothing is typed void, or Promise<void> when async.
export type SetupHook = (context: SetupContext) => void | Teardown | Promise<void | Teardown>;

/** What a custom refusal message is built from. */
export interface AlreadyRunningInfo {
  /** The agent's name, as given in the options. */
  name: string;
  port: number;
}

/** The lock options passed through to `acquireLock` unchanged (`port` and `name` come from the agent). */
export type AgentLockOptions = Omit<AcquireOptions, 'port' | 'key' | 'name'>;

/** Options of {@link createAgent}. */
export interface AgentOptions extends AgentLockOptions {
  /**
   * The application's name: shown in messages, reported by `/healthcheck`, and used as the lock's
   * name (so the default lock directory is `~/.<name>`). Letters, digits, `.`, `_` and `-`.
   * @default 'portlock'
   */
  name?: string;
  /**
   * The application's version, reported by `/healthcheck`.
   * @default null in the report
   */
  version?: string;
  /**
   * The port to serve and lock. `0` lets the OS choose: the agent then listens first and locks the
   * port it was given.
   * @default 5338
   */
  port?: number;
  /**
   * The address or addresses to listen on. `'localhost'` binds every loopback address localhost may
   * resolve to (127.0.0.1 and ::1 where the host has them), so that `http://localhost:<port>` reaches
   * the agent whichever one a client tries first. Anything else (`'0.0.0.0'`, `'::'`, a LAN address)
   * widens it deliberately.
   * @default 'localhost'
   */
  host?: string | string[];
  /**
   * The application's request handler. Give this or `server`; with neither, only the control
   * routes are served.
   */
  handler?: RequestListener;
  /**
   * The application's own HTTP server, not yet listening. Its `request` listeners, attached before
   * `start()`, serve every route but the control routes.
   */
  server?: Server;
  /** Run in order once the lock is held; see {@link SetupHook}. */
  setup?: SetupHook | SetupHook[];
  /**
   * Milliseconds that `stop()` lets in-flight requests finish before it closes their connections.
   * @default 5000
   */
  drainTimeout?: number;
  /**
   * Where the agent logs.
   * @default createLogger({ name }), which writes to stderr
   */
  logger?: AgentLogger;
  /**
   * The path under which the control routes are mounted: with `'/percy'`, they are
   * `/percy/healthcheck` and `/percy/stop`. `false` serves none.
   * @default '' (so `/healthcheck` and `/stop`)
   */
  controlPrefix?: string | false;
  /**
   * The message of the error a refused start throws, when another instance holds the lock or
   * something else holds the port. The full explanation is logged either way.
   * @default '<Name> is already running or the port <port> is in use'
   */
  alreadyRunningMessage?: string | ((info: AlreadyRunningInfo) => string);
}

/** Options of {@link Agent.stop}. */
export interface StopOptions {
  /**
   * Close every connection at once instead of letting in-flight requests finish. A `stop({ force })`
   * during a graceful stop cuts that stop's drain short.
   * @default false
   */
  force?: boolean;
}

/** One server on one port, which exactly one live process may run at a time. */
export interface Agent {
  /** The name given in the options. */
  readonly name: string;
  /** See {@link AgentReadyState}. */
  readonly readyState: AgentReadyState;
  /** Where the agent listens while it is ready or stopping; undefined otherwise. */
  readonly address: AgentAddress | undefined;
  /** The logger the agent writes to. */
  readonly logger: AgentLogger;
  /** The drain budget of a graceful stop, in milliseconds. */
  readonly drainTimeout: number;
  /**
   * Takes the lock, runs the setup hooks, listens. Rejects with `AlreadyRunningError` when another
   * instance holds the lock or another program holds the port; a failed start leaves nothing held.
   * Calls made while starting or ready share one start. Once `handleShutdown` has seen a
   * signal or a crash, a start under way is aborted and any later one rejects, with an `AbortError`.
   */
  start(): Promise<void>;
  /**
   * Stops accepting connections, lets in-flight requests finish (up to `drainTimeout`), runs the
   * teardowns and releases the lock once the server has closed. Calls made while stopping share
   * one stop; a stop while starting aborts the start.
   */
  stop(options?: StopOptions): Promise<void>;
}

/** Options of {@link handleShutdown}. */
export interface ShutdownOptions {
  /**
   * The signals that stop the agent: the first drains, the second forces, the third exits at once.
   * A signal while the agent is not running (before `start()`, or after a stop) stops nothing and
   * arms no hard exit; the agent will not start after it, and a second signal exits at once.
   * @default ['SIGINT', 'SIGTERM', 'SIGHUP']
   */
  signals?: readonly NodeJS.Signals[];
  /**
   * Milliseconds a graceful stop may take in all (drain and teardowns) before it is forced: from 0
   * to 2147483647 (the longest timer Node keeps); anything else throws.
   * @default the agent's drainTimeout + 5000
   */
  timeout?: number;
  /**
   * Milliseconds after a forced or finished stop after which the process exits even if something
   * still keeps it alive: from 0 to 2147483647; anything else throws.
   * @default 3000
   */
  exitDelay?: number;
  /**
   * Also stop the agent, after logging the error with secrets redacted, on `unhandledRejection`
   * and `uncaughtException`; the run then ends with exit code 1.
   * @default true
   */
  crashes?: boolean;
  /**
   * Where to log.
   * @default the agent's logger
   */
  logger?: AgentLogger;
  /** More values to redact from logged errors, besides the ones {@link redact} finds itself. */
  secrets?: string[];
}
