import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { LockHeldError, type LockLostError, lockHeldMessage } from '../errors.ts';
import { crypto } from '../lazy-crypto.ts';
import { acquireLock } from '../lock/acquire.ts';
import { lockPathFor } from '../options/resolve.ts';
import { isPort, validateDuration } from '../options/validate.ts';
import type { HolderUpdate, LockHandle } from '../types.ts';
import { type ControlRoutes, createControlRoutes, type HealthReport, normalizePrefix } from './control-routes.ts';
import { Connections } from './drain.ts';
import { AlreadyRunningError } from './errors.ts';
import { type Listening, listenOn, urlFor } from './listen.ts';
import { createLogger } from './logger.ts';
import { describeForLog, redact } from './redact.ts';
import type {
  Agent,
  AgentAddress,
  AgentLockOptions,
  AgentLogger,
  AgentOptions,
  AgentReadyState,
  SetupHook,
  StopOptions,
  Teardown,
} from './types.ts';

/** Percy's agent port, where this lifecycle comes from. */
export const DEFAULT_PORT = 5338;
const DEFAULT_DRAIN_TIMEOUT = 5000;

/** Everything one start takes, so that a stop or a failed start gives back exactly that. */
interface Run {
  readonly abort: AbortController;
  readonly connections: Connections;
  readonly server: Server;
  readonly instanceId: string;
  readonly teardowns: Teardown[];
  lock?: LockHandle;
  listening?: Listening;
  detach?: () => void;
}

/** Lock tokens of running agents, for redacting them from crash logs without exposing the handle. */
const tokens = new WeakMap<Agent, () => string | undefined>();

/** The token of the lock an agent holds, if it holds one. */
export function agentToken(agent: Agent): string | undefined {
  return tokens.get(agent)?.();
}

/** How `handleShutdown` tells an agent that the process is ending, without a public method. */
const interrupters = new WeakMap<Agent, (reason: Error) => void>();

/**
 * Tells an agent that its process is ending: a start under way is aborted with `reason`, and every
 * later `start()` rejects with it, so that nothing starts serving in a process that is on its way
 * out. The first reason stays.
 */
export function interruptAgent(agent: Agent, reason: Error): void {
  interrupters.get(agent)?.(reason);
}

/** Agents that speak to a command line: their refusals name `--dir`, not the `dir` option. */
const commandLineAgents = new WeakSet<Agent>();

/** Makes `agent`'s logged refusals use the command line's words (`portlock agent`). */
export function speakCommandLine(agent: Agent): void {
  commandLineAgents.add(agent);
}

/**
 * The locks of every started agent in this process, released by one shared `process.on('exit')`
 * listener for an exit that skips `stop()`. One listener per agent would trip Node's
 * MaxListenersExceededWarning at the eleventh agent; this one is attached only while some agent
 * holds a lock.
 */
const exitReleases = new Set<LockHandle>();

function releaseAllOnExit(): void {
  // Synchronous, because nothing async runs on exit; releaseSync never throws.
  for (const lock of exitReleases) lock.releaseSync();
}

function releaseOnExit(lock: LockHandle): void {
  if (exitReleases.size === 0) process.on('exit', releaseAllOnExit);
  exitReleases.add(lock);
}

function forgetOnExit(lock: LockHandle): void {
  if (exitReleases.delete(lock) && exitReleases.size === 0) process.off('exit', releaseAllOnExit);
}

function validateOptions(options: AgentOptions): void {
  const { port = DEFAULT_PORT, drainTimeout = DEFAULT_DRAIN_TIMEOUT, handler, server, setup } = options;
  // Port 0: any free port the system picks.
  if (port !== 0 && !isPort(port)) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  validateDuration(drainTimeout, 'drainTimeout');
  if (handler !== undefined && typeof handler !== 'function') throw new TypeError('handler must be a function');
  if (handler !== undefined && server !== undefined) throw new TypeError('give handler or server, not both');
  const hooks = setup === undefined ? [] : Array.isArray(setup) ? setup : [setup];
  if (hooks.some((hook) => typeof hook !== 'function')) throw new TypeError('setup must be a function or functions');
  // Name and directory are checked by the lock's own rules now, rather than at the first start.
  lockPathFor({ port: 1, name: options.name, dir: options.dir });
}

/** The options the agent uses itself; all others are the lock's. */
const AGENT_OPTIONS = new Set<string>([
  'name',
  'version',
  'port',
  'host',
  'handler',
  'server',
  'setup',
  'drainTimeout',
  'logger',
  'controlPrefix',
  'alreadyRunningMessage',
] satisfies (keyof AgentOptions)[]);

function lockOptionsOf(options: AgentOptions): AgentLockOptions {
  return Object.fromEntries(Object.entries(options).filter(([key]) => !AGENT_OPTIONS.has(key)));
}

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

class PortAgent implements Agent {
  readonly name: string;
  readonly logger: AgentLogger;
  readonly drainTimeout: number;
  readonly #options: AgentOptions;
  readonly #lockOptions: AgentLockOptions;
  readonly #port: number;
  readonly #hooks: SetupHook[];
  #state: AgentReadyState = 'idle';
  #run: Run | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #interrupted: Error | undefined;

  constructor(options: AgentOptions) {
    validateOptions(options);
    const { name = 'portlock', port = DEFAULT_PORT, setup, drainTimeout = DEFAULT_DRAIN_TIMEOUT, logger } = options;
    this.name = name;
    this.#options = options;
    this.#lockOptions = lockOptionsOf(options);
    this.#port = port;
    this.#hooks = setup === undefined ? [] : Array.isArray(setup) ? [...setup] : [setup];
    this.drainTimeout = drainTimeout;
    this.logger = logger ?? createLogger({ name });
    tokens.set(this, () => this.#run?.lock?.record.token);
    interrupters.set(this, (reason) => {
      this.#interrupted ??= reason;
    });
  }

  get readyState(): AgentReadyState {
    return this.#state;
  }

  get address(): AgentAddress | undefined {
    const listening = this.#run?.listening;
    if (listening === undefined || (this.#state !== 'ready' && this.#state !== 'stopping')) return undefined;
    return { port: listening.port, hosts: [...listening.hosts], url: urlFor(listening.hosts, listening.port) };
  }

  start(): Promise<void> {
    if ((this.#state === 'starting' || this.#state === 'ready') && this.#starting) return this.#starting;
    if (this.#state === 'stopping') {
      return Promise.reject(new Error(`${this.name} is stopping; wait for stop() to finish before starting it again`));
    }
    if (this.#interrupted !== undefined) return Promise.reject(this.#interrupted);
    const run: Run = {
      abort: new AbortController(),
      connections: new Connections(),
      // node:http is loaded here, when an agent starts, not when the library is imported: it is
      // most of what an import would cost, and a tool that only takes the lock never needs it.
      server: this.#options.server ?? process.getBuiltinModule('node:http').createServer(),
      instanceId: crypto().randomUUID(),
      teardowns: [],
    };
    this.#run = run;
    this.#state = 'starting';
    this.#starting = this.#start(run);
    return this.#starting;
  }

  stop(options: StopOptions = {}): Promise<void> {
    const run = this.#run;
    if (this.#stopping !== undefined) {
      if (options.force) run?.connections.force();
      return this.#stopping;
    }
    if (run === undefined || this.#state === 'idle' || this.#state === 'stopped') return Promise.resolve();
    this.#stopping = this.#stop(run, options.force === true).finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #start(run: Run): Promise<void> {
    const { signal } = run.abort;
    try {
      if (run.server.listening) throw new Error('the server given to createAgent must not be listening yet');
      this.#attach(run);
      // With port 0 there is no port to lock until the OS has chosen one.
      if (this.#port === 0) await this.#listen(run, 0);
      signal.throwIfAborted();
      const lock = await this.#lock(run, run.listening?.port ?? this.#port);
      signal.throwIfAborted();
      for (const hook of this.#hooks) {
        const teardown = await hook({ lock, port: run.listening?.port ?? this.#port, logger: this.logger, signal });
        if (typeof teardown === 'function') run.teardowns.push(teardown);
        signal.throwIfAborted();
      }
      if (run.listening === undefined) await this.#listen(run, this.#port);
      signal.throwIfAborted();
      this.#state = 'ready';
      this.#describe(run, { state: 'ready', ...(this.address && { url: this.address.url }) });
      this.logger.info(`listening on ${this.address?.url} (pid ${process.pid})`);
    } catch (error) {
      try {
        await this.#shutDown(run, true);
      } catch (cleanupError) {
        this.logger.error(`cleaning up after the failed start failed too: ${describeForLog(cleanupError)}`);
      }
      this.#state = 'stopped';
      throw error;
    }
  }

  async #stop(run: Run, force: boolean): Promise<void> {
    if (this.#state === 'starting') {
      run.abort.abort(this.#interrupted ?? new DOMException(`${this.name} was stopped while starting`, 'AbortError'));
      await this.#starting?.catch(() => {});
      return;
    }
    this.#state = 'stopping';
    this.#describe(run, { state: 'stopping' });
    this.logger.info(force ? 'stopping now' : 'stopping: letting in-flight requests finish');
    try {
      await this.#shutDown(run, force);
    } finally {
      this.#state = 'stopped';
      this.logger.info('stopped');
    }
  }

  /** Tells the lock's record and `who` answer where this agent is; a description, so never fatal. */
  #describe(run: Run, changes: HolderUpdate): void {
    try {
      run.lock?.update(changes);
    } catch (error) {
      this.logger.error(`the lock's record could not be updated: ${describeForLog(error)}`);
    }
  }

  #refusal(port: number): string {
    const message = this.#options.alreadyRunningMessage;
    if (typeof message === 'function') return message({ name: this.name, port });
    if (typeof message === 'string') return message;
    return `${capitalize(this.name)} is already running or the port ${port} is in use`;
  }

  async #lock(run: Run, port: number): Promise<LockHandle> {
    const userSignal = this.#lockOptions.signal;
    const signal = userSignal ? AbortSignal.any([userSignal, run.abort.signal]) : run.abort.signal;
    let lock: LockHandle;
    try {
      // Without a kernel interlock, a record removed or replaced by hand is found only by looking;
      // an application that does not say what to do then at least finds it in the log. The port
      // stays bound, so a second instance still cannot serve it.
      const onLost = this.#lockOptions.onLost ?? ((lost: LockLostError) => this.logger.error(lost.message));
      // What it is, for `portlock status` and `who`: a lock adopted from `portlock run` keeps its command.
      const holder = { command: process.argv, cwd: process.cwd(), state: 'starting' as const };
      lock = await acquireLock({ ...this.#lockOptions, onLost, port, name: this.name, signal, holder });
    } catch (error) {
      // Stopped while the holder was being asked who it is: the stop's reason, not a refusal.
      run.abort.signal.throwIfAborted();
      if (!(error instanceof LockHeldError)) throw error;
      this.logger.error(lockHeldMessage(error, commandLineAgents.has(this) ? 'cli' : 'library'));
      throw new AlreadyRunningError(this.#refusal(port), {
        port,
        cause: error,
        lockPath: error.lockPath,
        holder: error.meta,
      });
    }
    run.lock = lock;
    // Last chance, for an exit that skips stop().
    releaseOnExit(lock);
    lock.onStopRequest = () => {
      this.logger.info('stop requested by another process through the lock');
      return this.stop();
    };
    return lock;
  }

  async #listen(run: Run, port: number): Promise<void> {
    try {
      run.listening = await listenOn(run.server, this.#options.host, port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      // Loaded only now: naming the program that has the port is worth a read of the kernel's tables.
      const { portHolders } = await import('../listeners/port-holders.ts');
      const { currentReader, portInUseLine, portInUseNextStep } = await import('../listeners/describe.ts');
      const listeners = await portHolders(port);
      this.logger.error(
        listeners.length === 0
          ? `port ${port} is in use by a program that does not hold ${this.name}'s lock (${(error as Error).message})`
          : `${portInUseLine(port, listeners)}.\n${portInUseNextStep(port, listeners, currentReader())}`,
      );
      throw new AlreadyRunningError(this.#refusal(port), { port, cause: error, listeners });
    }
  }

  /** Puts the control routes and the request accounting in front of the application's routes. */
  #attach(run: Run): void {
    const { server, connections } = run;
    const own = this.#options.server === undefined;
    const handler = this.#options.handler;
    const appListeners: RequestListener[] = own
      ? handler === undefined
        ? []
        : [handler]
      : (server.listeners('request') as RequestListener[]);
    const control = this.#controlRoutes(run);
    const dispatch = (req: IncomingMessage, res: ServerResponse) => {
      if (!connections.begin(req, res)) return;
      // While stopping, a request on a connection already open is served (with `Connection:
      // close`): it may have been sent before the stop began.
      if (control?.(req, res)) return;
      if (this.#state === 'stopping') return this.#serveAll(server, appListeners, req, res);
      if (this.#state !== 'ready') return this.#unavailable(res, 'starting');
      this.#serveAll(server, appListeners, req, res);
    };
    if (!own) server.removeAllListeners('request');
    server.on('request', dispatch);
    server.on('connection', connections.add);
    run.detach = () => {
      server.off('request', dispatch);
      server.off('connection', connections.add);
      if (!own) for (const listener of appListeners) server.on('request', listener);
    };
  }

  #serveAll(server: Server, listeners: RequestListener[], req: IncomingMessage, res: ServerResponse): void {
    if (listeners.length === 0) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found\n');
      return;
    }
    for (const listener of listeners) this.#serve(server, listener, req, res);
  }

  #serve(server: Server, listener: RequestListener, req: IncomingMessage, res: ServerResponse): void {
    const fail = (error: unknown) => {
      const secrets = [this.#run?.lock?.record.token ?? ''];
      // The URL too: a query string may carry a token.
      this.logger.error(
        `${redact(`${req.method} ${req.url}`, { secrets })} failed: ${describeForLog(error, { secrets })}`,
      );
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('Internal error\n');
      else res.destroy();
    };
    try {
      const result: unknown = listener.call(server, req, res);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  #unavailable(res: ServerResponse, why: 'starting' | 'stopping'): void {
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1', connection: 'close' });
    res.end(`${this.name} is ${why}\n`);
  }

  #controlRoutes(run: Run): ControlRoutes | undefined {
    const prefix = this.#options.controlPrefix ?? '';
    if (prefix === false) return undefined;
    return createControlRoutes({
      prefix: normalizePrefix(prefix),
      logger: this.logger,
      port: () => run.listening?.port ?? this.#port,
      token: () => (run.lock !== undefined && this.#state === 'ready' ? run.lock.record.token : undefined),
      health: (): HealthReport => ({
        name: this.name,
        version: this.#options.version ?? null,
        pid: process.pid,
        port: run.listening?.port ?? this.#port,
        startedAt: run.lock?.record.startedAt ?? '',
        instanceId: run.instanceId,
        readyState: this.#state,
      }),
      stop: () => {
        this.stop().catch((error: unknown) => this.logger.error(`stop failed: ${describeForLog(error)}`));
      },
    });
  }

  /** Closes the server, then the setup hooks' resources, and releases the lock last, in any case. */
  async #shutDown(run: Run, force: boolean): Promise<void> {
    const failures: unknown[] = [];
    try {
      if (run.listening !== undefined) {
        const closed = run.listening.close();
        const outcome = await run.connections.drain(force ? 0 : this.drainTimeout);
        if (outcome.forced && outcome.connections > 0) {
          // Forced by this stop, or by a stop({ force }) (a second signal) during a graceful one.
          const why = force || outcome.cause === 'force' ? 'forced stop' : `drain timeout (${this.drainTimeout} ms)`;
          this.logger.warn(
            `${why}: closed ${outcome.connections} connection(s) with ${outcome.requests} request(s) in flight`,
          );
        }
        await closed;
      }
      run.detach?.();
      for (const teardown of run.teardowns.splice(0).reverse()) {
        try {
          await teardown();
        } catch (error) {
          failures.push(error);
          this.logger.error(`a teardown failed: ${describeForLog(error)}`);
        }
      }
    } finally {
      const lock = run.lock;
      if (lock !== undefined) {
        lock.onStopRequest = undefined;
        try {
          await lock.release();
        } finally {
          // A release that failed will not do better on exit: a lock is released at most once.
          forgetOnExit(lock);
        }
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} teardowns failed`);
  }
}

/**
 * An agent for one port: `start()` takes the port's lock before anything else, so that a second
 * instance is refused at once, and `stop()` drains the server and releases the lock.
 */
export function createAgent(options: AgentOptions = {}): Agent {
  return new PortAgent(options);
}
