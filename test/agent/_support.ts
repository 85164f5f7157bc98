import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { AgentFixtureConfig } from '../fixtures/agent-server.ts';
import { fixture, spawnTs } from '../helpers/spawn.ts';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface HttpOptions {
  port: number;
  path?: string;
  method?: string;
  host?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** One request on its own connection, with any headers (Host and Origin included) as given. */
export async function http(options: HttpOptions): Promise<HttpResult> {
  const { port, path = '/', method = 'GET', host = '127.0.0.1', headers = {}, body: sent } = options;
  const req = request({ host, port, path, method, headers, agent: false });
  req.end(sent);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) body += chunk;
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

export const lockFile = (dir: string, port: number): string => join(dir, `agent-${port}.lock`);

/** A child's output as it arrives, and waiting for what it prints. */
export class Watched {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #waiters = new Set<() => void>();
  #closed = false;

  constructor(child: ChildProcess) {
    this.child = child;
    // 'close', not 'exit': by then everything the child printed has been read.
    this.exited = once(child, 'close').then(([code, signal]) => ({ code, signal }));
    const wake = () => {
      for (const waiter of this.#waiters) waiter();
    };
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      wake();
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      wake();
    });
    child.once('close', () => {
      this.#closed = true;
      wake();
    });
  }

  /** Resolves with the first complete stdout line that is the JSON event `name`. */
  event(name: string): Promise<Record<string, unknown>> {
    return this.#until(() => {
      for (const line of this.stdout.split('\n').slice(0, -1)) {
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.event === name) return parsed;
      }
      return undefined;
    }, `event ${name}`);
  }

  /** Resolves once stdout has a complete line matching `pattern`. */
  stdoutLine(pattern: RegExp): Promise<string> {
    return this.#until(
      () =>
        this.stdout
          .split('\n')
          .slice(0, -1)
          .find((line) => pattern.test(line)),
      `stdout ${pattern}`,
    );
  }

  /** Resolves once stderr has a line matching `pattern`. */
  stderrLine(pattern: RegExp): Promise<string> {
    return this.#until(() => this.stderr.split('\n').find((line) => pattern.test(line)), `stderr ${pattern}`);
  }

  #until<T>(found: () => T | undefined, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = found();
        if (value !== undefined) {
          this.#waiters.delete(check);
          resolve(value);
        } else if (this.#closed) {
          this.#waiters.delete(check);
          reject(new Error(`exited before printing ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
        }
      };
      this.#waiters.add(check);
      check();
    });
  }
}

/** Starts `test/fixtures/agent-server.ts`; killed after 60 s and when the test file ends. */
export function startAgentFixture(config: AgentFixtureConfig, env: NodeJS.ProcessEnv = {}): Watched {
  const child = spawnTs(fixture('agent-server.ts'), [JSON.stringify(config)], {
    env: { ...process.env, ...env },
    timeoutMs: 60_000,
  });
  return new Watched(child);
}

/** Sends a command line to a running fixture. */
export function tell(watched: Watched, command: string): void {
  watched.child.stdin?.write(`${command}\n`);
}

/** A logger that keeps its lines, so that tests stay quiet and can read and await what was logged. */
export function memoryLogger() {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const at = (level: string) => (message: string) => {
    lines.push(`${level}: ${message}`);
    for (const waiter of waiters) waiter();
  };
  /** Resolves once a line matching `pattern` has been logged. */
  const logged = (pattern: RegExp) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!lines.some((line) => pattern.test(line))) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  return { lines, logged, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

/** Whether anything accepts TCP connections at host:port. */
export async function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  const socket = connect({ port, host });
  try {
    await once(socket, 'connect');
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}
